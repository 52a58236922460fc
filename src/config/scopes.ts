// OAuth scopes for mail, built from the protocols a mailbox uses and its cloud (reference
// section 7), and the check that refuses the scopes that yield a Graph token (section 6.2).
import type { Cloud } from './clouds.ts';
import type { GrantType, Protocol } from './schema.ts';

const PERMISSION: Record<Protocol, string> = {
  imap: 'IMAP.AccessAsUser.All',
  pop: 'POP.AccessAsUser.All',
  smtp: 'SMTP.Send',
};

/** Scopes to request: delegated mail permissions plus offline_access, or the app-only `.default`. */
export function scopesFor(cloud: Cloud, protocols: readonly Protocol[], grant: GrantType): string[] {
  if (grant === 'client_credentials') return [cloud.appOnlyScope];
  return [...new Set(protocols)].map((p) => `${cloud.delegatedScopePrefix}/${PERMISSION[p]}`).concat('offline_access');
}

/** The scopes to request for one protocol's access token (a token is for one resource). */
export function scopeForProtocol(cloud: Cloud, protocol: Protocol, grant: GrantType): string {
  return grant === 'client_credentials' ? cloud.appOnlyScope : `${cloud.delegatedScopePrefix}/${PERMISSION[protocol]}`;
}

const DIRECTIVES = new Set(['offline_access', 'openid', 'profile', 'email']);

/**
 * Scopes for a mailbox's sign-in: its configured `scopes` when given (offline_access added for
 * delegated grants), else the ones built from its protocols.
 */
export function signInScopes(cloud: Cloud, mailbox: { protocols: readonly Protocol[]; grant: GrantType; scopes?: readonly string[] | undefined }): string[] {
  if (!mailbox.scopes) return scopesFor(cloud, mailbox.protocols, mailbox.grant);
  if (mailbox.grant === 'client_credentials') return [...mailbox.scopes];
  return [...new Set([...mailbox.scopes, 'offline_access'])];
}

/** Scopes for one protocol's token: the configured ones (without OIDC directives), else the protocol's. */
export function tokenScopes(cloud: Cloud, protocol: Protocol, mailbox: { grant: GrantType; scopes?: readonly string[] | undefined }): string[] {
  const configured = mailbox.scopes?.filter((s) => !DIRECTIVES.has(s.toLowerCase()));
  return configured && configured.length > 0 ? configured : [scopeForProtocol(cloud, protocol, mailbox.grant)];
}

const MAIL_NAMES = new Set(Object.values(PERMISSION).map((p) => p.toLowerCase()));
const GRAPH_PREFIXES = [
  'https://graph.microsoft.com/',
  'https://graph.microsoft.us/',
  'https://dod-graph.microsoft.us/',
  'https://microsoftgraph.chinacloudapi.cn/',
  '00000003-0000-0000-c000-000000000000/',
];

/** Problems with scopes an admin wrote by hand, each naming the scope to use instead. */
export function checkScopes(scopes: readonly string[], grant: GrantType): string[] {
  const problems: string[] = [];
  for (const scope of scopes) {
    const lower = scope.toLowerCase();
    const graph = GRAPH_PREFIXES.find((p) => lower.startsWith(p));
    const name = graph ? scope.slice(graph.length) : scope;
    if ((graph || !scope.includes('/')) && MAIL_NAMES.has(name.toLowerCase())) {
      problems.push(
        `"${scope}" gives a Microsoft Graph token, which IMAP, POP and SMTP refuse; use "https://outlook.office.com/${Object.values(PERMISSION).find((p) => p.toLowerCase() === name.toLowerCase())}"`,
      );
    } else if (!scope.includes('/') && !DIRECTIVES.has(lower)) {
      problems.push(
        `"${scope}" has no resource prefix, so it means Microsoft Graph's ${scope}, and the token would be a Graph token that IMAP, POP and SMTP refuse; mail scopes start with "https://outlook.office.com/" (or use "https://outlook.office.com/.default")`,
      );
    } else if (grant === 'client_credentials' && !lower.endsWith('/.default')) {
      problems.push(`"${scope}": app-only access takes exactly one "<resource>/.default" scope, e.g. "https://outlook.office365.com/.default"`);
    } else if (graph && grant !== 'client_credentials') {
      problems.push(
        `"${scope}" is a Microsoft Graph permission; a token is issued for one resource, and mail needs the Outlook one (https://outlook.office.com/...)`,
      );
    }
  }
  return problems;
}
