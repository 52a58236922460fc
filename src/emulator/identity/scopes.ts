// Scope strings to resources, as the v2 endpoint reads them (reference sections 6.2 and 7):
// a prefix names the resource, an unprefixed permission means Microsoft Graph, OIDC scopes are
// directives, and a token is only ever for one resource.
import { AadError } from './aad-error.ts';

export type ResourceId = 'exchange' | 'graph';

export interface ResourceDefinition {
  id: ResourceId;
  appId: string;
  /** Prefixes that name the resource in a scope, each with the `aud` its tokens carry. */
  prefixes: Record<string, string>;
  /** Canonical spelling of each delegated permission. */
  delegated: string[];
  /** Delegated permissions only an administrator can consent to. */
  adminOnly: string[];
  appRoles: string[];
  /** `aud` for an unprefixed request (Graph only). */
  defaultAudience: string;
}

export const RESOURCES: Record<ResourceId, ResourceDefinition> = {
  exchange: {
    id: 'exchange',
    appId: '00000002-0000-0ff1-ce00-000000000000',
    prefixes: {
      'https://outlook.office.com': 'https://outlook.office.com',
      'https://outlook.office365.com': 'https://outlook.office365.com',
      'https://ps.outlook.com': 'https://ps.outlook.com',
      '00000002-0000-0ff1-ce00-000000000000': '00000002-0000-0ff1-ce00-000000000000',
      'https://outlook.office365.us': 'https://outlook.office365.us',
      'https://outlook-dod.office365.us': 'https://outlook-dod.office365.us',
      'https://partner.outlook.cn': 'https://partner.outlook.cn',
    },
    delegated: [
      'IMAP.AccessAsUser.All',
      'POP.AccessAsUser.All',
      'SMTP.Send',
      'EWS.AccessAsUser.All',
      'EAS.AccessAsUser.All',
      'Mail.Read',
      'Mail.ReadWrite',
      'Mail.Send',
      'User.Read',
      'full_access_as_user',
    ],
    adminOnly: [],
    appRoles: ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp', 'full_access_as_app', 'Mail.Read', 'Mail.ReadWrite', 'Mail.Send'],
    defaultAudience: 'https://outlook.office.com',
  },
  graph: {
    id: 'graph',
    appId: '00000003-0000-0000-c000-000000000000',
    prefixes: {
      'https://graph.microsoft.com': '00000003-0000-0000-c000-000000000000',
      '00000003-0000-0000-c000-000000000000': '00000003-0000-0000-c000-000000000000',
      'https://graph.microsoft.us': '00000003-0000-0000-c000-000000000000',
      'https://dod-graph.microsoft.us': '00000003-0000-0000-c000-000000000000',
      'https://microsoftgraph.chinacloudapi.cn': '00000003-0000-0000-c000-000000000000',
    },
    delegated: [
      'User.Read',
      'User.ReadBasic.All',
      'Mail.Read',
      'Mail.ReadBasic',
      'Mail.ReadWrite',
      'Mail.Send',
      'Mail.Read.Shared',
      'Mail.ReadWrite.Shared',
      'Mail.Send.Shared',
      'IMAP.AccessAsUser.All',
      'POP.AccessAsUser.All',
      'SMTP.Send',
      'User.Read.All',
      'Directory.Read.All',
    ],
    adminOnly: ['User.Read.All', 'Directory.Read.All'],
    appRoles: ['Mail.Read', 'Mail.ReadWrite', 'Mail.Send', 'Mail.ReadBasic.All', 'User.Read.All'],
    defaultAudience: '00000003-0000-0000-c000-000000000000',
  },
};

export const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
export type OidcScope = (typeof OIDC_SCOPES)[number];

/** A permission of a resource: canonical name plus the prefix it was asked with. */
export interface Permission {
  resource: ResourceId;
  name: string;
  /** The scope as it is echoed back, e.g. `https://outlook.office.com/IMAP.AccessAsUser.All`. */
  scope: string;
  /** The `aud` a token for this permission carries (depends on the prefix used). */
  aud: string;
}

export interface ParsedScopes {
  directives: Set<OidcScope>;
  /** Requested permissions in request order, across resources. */
  permissions: Permission[];
  /** `<resource>/.default` requests, in order. */
  defaults: { resource: ResourceId; aud: string; scope: string }[];
}

export class UnknownResourceError extends Error {
  readonly resource: string;
  constructor(resource: string) {
    super(`unknown resource ${resource}`);
    this.resource = resource;
  }
}

function findResource(prefix: string): { resource: ResourceDefinition; aud: string } | undefined {
  const wanted = prefix.toLowerCase().replace(/\/+$/, '');
  for (const resource of Object.values(RESOURCES)) {
    for (const [known, aud] of Object.entries(resource.prefixes)) {
      if (known.toLowerCase() === wanted) return { resource, aud };
    }
  }
  return undefined;
}

function splitScope(scope: string): { prefix?: string; name: string } {
  const slash = scope.lastIndexOf('/');
  if (slash <= 0) return { name: scope };
  return { prefix: scope.slice(0, slash), name: scope.slice(slash + 1) };
}

/**
 * Parses a space-separated scope parameter. Throws AADSTS70011 for a permission no resource has,
 * and UnknownResourceError for a prefix that names no resource (the caller decides the code).
 */
export function parseScopes(raw: string): ParsedScopes {
  const parsed: ParsedScopes = { directives: new Set(), permissions: [], defaults: [] };
  // After a prefixed Exchange scope, unprefixed names are read as that resource's (section 6.2).
  let implied: { resource: ResourceDefinition; aud: string } | undefined;
  for (const scope of raw.split(/\s+/).filter(Boolean)) {
    const lower = scope.toLowerCase();
    if ((OIDC_SCOPES as readonly string[]).includes(lower)) {
      parsed.directives.add(lower as OidcScope);
      continue;
    }
    const { prefix, name } = splitScope(scope);
    let target: { resource: ResourceDefinition; aud: string };
    if (prefix !== undefined) {
      const found = findResource(prefix);
      if (!found) {
        if (/^https?:\/\/|^[0-9a-f-]{36}$/i.test(prefix)) throw new UnknownResourceError(prefix);
        throw new AadError(70011, { scope });
      }
      target = found;
    } else {
      target = implied ?? { resource: RESOURCES.graph, aud: RESOURCES.graph.defaultAudience };
    }
    implied ??= target;
    if (name === '.default') {
      parsed.defaults.push({ resource: target.resource.id, aud: target.aud, scope });
      continue;
    }
    const canonical = target.resource.delegated.find((p) => p.toLowerCase() === name.toLowerCase());
    if (!canonical) throw new AadError(70011, { scope });
    const echoPrefix = prefix ?? (target.resource.id === 'graph' ? 'https://graph.microsoft.com' : Object.keys(target.resource.prefixes)[0]);
    parsed.permissions.push({ resource: target.resource.id, name: canonical, scope: `${echoPrefix}/${canonical}`, aud: target.aud });
  }
  return parsed;
}

/** parseScopes for user flows: a prefix naming no resource is an invalid scope (AADSTS70011). */
export function parseDelegatedScopes(raw: string): ParsedScopes {
  try {
    return parseScopes(raw);
  } catch (err) {
    if (err instanceof UnknownResourceError) throw new AadError(70011, { scope: raw });
    throw err;
  }
}

/** Normal form used for consent records: `exchange:IMAP.AccessAsUser.All`. */
export function consentKey(p: { resource: ResourceId; name: string }): string {
  return `${p.resource}:${p.name}`;
}
