// Reads an access token's claims WITHOUT verifying it (reference section 6): only to explain what
// a server will think of it. Nothing here returns or logs the token itself. Personal Microsoft
// account tokens are opaque tickets (`EwB...`), not JWTs: they are reported as such.
import type { Protocol } from '../config/schema.ts';
import type { TokenSummary } from './types.ts';

export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

/** The delegated scope and the app-only role each protocol needs (reference section 7). */
export const DELEGATED_PERMISSION: Record<Protocol, string> = {
  imap: 'IMAP.AccessAsUser.All',
  pop: 'POP.AccessAsUser.All',
  smtp: 'SMTP.Send',
};
export const APP_ROLE: Record<Protocol, string> = {
  imap: 'IMAP.AccessAsApp',
  pop: 'POP.AccessAsApp',
  smtp: 'SMTP.SendAsApp',
};

export type Claims = Record<string, unknown>;

/** The payload of a JWT, or undefined when the token is not one (an opaque ticket). */
export function decodeClaims(token: string): Claims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? (payload as Claims) : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** `idtyp` says it outright; without it, roles and no scp mean app-only; else the grant decides. */
function tokenKind(idtyp: unknown, scp: string | undefined, roles: string[] | undefined, delegatedGrant: boolean): TokenSummary['kind'] {
  if (idtyp === 'app') return 'app';
  if (idtyp === 'user') return 'delegated';
  if (scp !== undefined) return 'delegated';
  if (roles !== undefined) return 'app';
  return delegatedGrant ? 'delegated' : 'app';
}

/**
 * A personal Microsoft account ticket: `Ew` and then base64, over a thousand characters. Only its
 * shape can be checked; anything shorter or otherwise shaped is no access token at all.
 */
const PERSONAL_TICKET = /^Ew[A-Za-z0-9+/_=-]{200,}$/;

/**
 * What a string that is not an access token looks like, for the people who put it there (never
 * its content): a JSON document, a refresh or ID token, or just something else.
 */
export function describeNotAToken(text: string): string {
  if (/^[[{]/.test(text)) return 'a JSON document (the whole token response?), not the access token in it';
  if (/^[01]\.A[A-Za-z0-9_-]/.test(text)) return 'shaped like a refresh token, not an access token';
  if (text.split('.').length === 3) return 'shaped like a JWT, but its claims cannot be read';
  if (text.split('.').length === 5) return 'an encrypted token (JWE), which mail servers do not take';
  return `${text.length} characters that are neither a JWT (eyJ…, three parts) nor a personal-account ticket (Ew…)`;
}

/** What mailbridge reports about a token; `delegatedGrant` decides the kind of an opaque one. */
export function summarizeToken(token: string, delegatedGrant: boolean): TokenSummary {
  const claims = decodeClaims(token);
  const kind = delegatedGrant ? 'delegated' : 'app';
  if (!claims) return PERSONAL_TICKET.test(token) ? { kind, opaque: true } : { kind, notAToken: true };
  const roles = Array.isArray(claims.roles) ? claims.roles.map(String) : undefined;
  const scp = str(claims.scp);
  const summary: TokenSummary = { kind: tokenKind(claims.idtyp, scp, roles, delegatedGrant) };
  const aud = str(claims.aud);
  if (aud) summary.aud = aud;
  if (scp !== undefined) summary.scp = scp;
  if (roles) summary.roles = roles;
  const upn = str(claims.upn) ?? str(claims.unique_name) ?? str(claims.preferred_username);
  if (upn) summary.upn = upn;
  for (const key of ['oid', 'tid', 'appid'] as const) {
    const value = str(claims[key]) ?? (key === 'appid' ? str(claims.azp) : undefined);
    if (value) summary[key] = value;
  }
  if (typeof claims.exp === 'number') summary.expiresAt = new Date(claims.exp * 1000).toISOString();
  return summary;
}

/** Microsoft Graph, by app id or by any national cloud's Graph host. */
export function isGraphAudience(aud: string | undefined): boolean {
  if (!aud) return false;
  const lower = aud.toLowerCase();
  if (lower === GRAPH_APP_ID) return true;
  try {
    const host = new URL(lower).hostname;
    return host.startsWith('graph.microsoft.') || host === 'dod-graph.microsoft.us' || host === 'microsoftgraph.chinacloudapi.cn';
  } catch {
    return false;
  }
}

export function hasDelegatedScope(summary: TokenSummary, protocol: Protocol): boolean {
  const wanted = DELEGATED_PERMISSION[protocol].toLowerCase();
  return (summary.scp ?? '').split(' ').some((s) => s.toLowerCase() === wanted);
}

export function hasAppRole(summary: TokenSummary, protocol: Protocol): boolean {
  const wanted = APP_ROLE[protocol].toLowerCase();
  return (summary.roles ?? []).some((r) => r.toLowerCase() === wanted);
}

/** One line for people: kind, audience, permissions, user, tenant, expiry. */
export function describeToken(summary: TokenSummary): string {
  if (summary.notAToken) return 'not an access token (neither a JWT nor a personal-account ticket)';
  if (summary.opaque) return `${summary.kind}, opaque personal-account token (its claims cannot be read)`;
  const parts: string[] = [summary.kind === 'app' ? 'app-only' : 'delegated'];
  if (summary.aud) parts.push(`aud ${summary.aud}`);
  if (summary.kind === 'app') parts.push(`roles ${summary.roles?.length ? summary.roles.join(' ') : '(none)'}`);
  else parts.push(`scp ${summary.scp || '(none)'}`);
  if (summary.upn) parts.push(`upn ${summary.upn}`);
  if (summary.oid) parts.push(`oid ${summary.oid}`);
  if (summary.tid) parts.push(`tid ${summary.tid}`);
  if (summary.appid) parts.push(`appid ${summary.appid}`);
  if (summary.expiresAt) parts.push(`expires ${summary.expiresAt}`);
  return parts.join(', ');
}
