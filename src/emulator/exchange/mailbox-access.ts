// Exchange Online's decision on an XOAUTH2 login (reference sections 4.4, 6, 7, 8.6): the token
// must verify, be for an Exchange audience, carry the protocol's scope or role, and name (by
// `user=`) a mailbox the caller may open with that protocol switched on. Some refusals happen
// after a successful AUTHENTICATE ("authenticated but not connected"), as on the real service.
import type { IdentityState } from '../identity/state.ts';
import { verifyAccessToken } from '../identity/access-token-verifier.ts';
import { RESOURCES } from '../identity/scopes.ts';
import type { Mailbox, Tenant } from '../scenario/schema.ts';

export type MailProtocol = 'imap' | 'pop' | 'smtp';

/** Why a login was refused, for the emulator's log and for tests; clients never see it. */
export type RefusalReason =
  | 'token_invalid'
  | 'token_expired'
  | 'wrong_audience'
  | 'missing_scope'
  | 'missing_role'
  | 'service_principal_not_registered'
  | 'no_mailbox_permission'
  | 'user_mismatch'
  | 'unknown_mailbox'
  | 'protocol_disabled'
  | 'smtp_auth_disabled_tenant'
  | 'smtp_auth_disabled_mailbox'
  | 'security_defaults';

export type AccessDecision =
  | { kind: 'ok'; mailbox: Mailbox; principal: string }
  /** AUTHENTICATE fails. */
  | { kind: 'refused'; reason: RefusalReason }
  /** AUTHENTICATE succeeds, every later mailbox command fails (IMAP; POP and SMTP refuse instead). */
  | { kind: 'not_connected'; reason: RefusalReason; mailbox?: Mailbox };

const DELEGATED_SCOPE: Record<MailProtocol, string> = {
  imap: 'IMAP.AccessAsUser.All',
  pop: 'POP.AccessAsUser.All',
  smtp: 'SMTP.Send',
};

const APP_ROLE: Record<MailProtocol, string> = {
  imap: 'IMAP.AccessAsApp',
  pop: 'POP.AccessAsApp',
  smtp: 'SMTP.SendAsApp',
};

const EXCHANGE_AUDIENCES = new Set(Object.values(RESOURCES.exchange.prefixes).map((a) => a.toLowerCase()));

function findMailbox(state: IdentityState, address: string): Mailbox | undefined {
  const wanted = address.trim().toLowerCase();
  return state.scenario.exchange.mailboxes.find((m) => m.address.toLowerCase() === wanted);
}

function hasFullAccess(mailbox: Mailbox, principal: string): boolean {
  const p = principal.toLowerCase();
  return mailbox.permissions.some((x) => x.principal.toLowerCase() === p && x.accessRights.includes('FullAccess'));
}

function protocolEnabled(mailbox: Mailbox, protocol: MailProtocol): boolean {
  if (protocol === 'imap') return mailbox.imapEnabled;
  if (protocol === 'pop') return mailbox.popEnabled;
  return true;
}

/** SMTP AUTH: the mailbox setting wins when set; otherwise the tenant's (and security defaults). */
function smtpAuthRefusal(tenant: Tenant | undefined, mailbox: Mailbox): RefusalReason | undefined {
  if (tenant?.securityDefaults) return 'security_defaults';
  if (mailbox.smtpClientAuthenticationDisabled === true) return 'smtp_auth_disabled_mailbox';
  if (mailbox.smtpClientAuthenticationDisabled === null && tenant?.smtpClientAuthenticationDisabled) return 'smtp_auth_disabled_tenant';
  return undefined;
}

/** A claim that should be a string ('' when absent or of another type: such a token grants nothing). */
function stringClaim(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

export async function decideAccess(state: IdentityState, protocol: MailProtocol, user: string, token: string): Promise<AccessDecision> {
  const check = await verifyAccessToken(state, token);
  if (!check.ok) return { kind: 'refused', reason: check.reason === 'expired' ? 'token_expired' : 'token_invalid' };
  const claims = check.claims;
  const aud = String(claims.aud ?? '').toLowerCase();
  if (!EXCHANGE_AUDIENCES.has(aud)) return { kind: 'refused', reason: 'wrong_audience' };

  const mailbox = findMailbox(state, user);
  const tenant = state.scenario.tenants.find((t) => t.id === claims.tid);
  const appOnly = claims.idtyp === 'app' || (claims.roles !== undefined && claims.scp === undefined);

  let principal: string;
  if (appOnly) {
    const roles = Array.isArray(claims.roles) ? claims.roles.map(String) : [];
    if (!roles.includes(APP_ROLE[protocol])) return { kind: 'refused', reason: 'missing_role' };
    const sp = state.scenario.exchange.servicePrincipals.find(
      (s) =>
        s.tenant === claims.tid &&
        s.appId.toLowerCase() === String(claims.appid).toLowerCase() &&
        s.objectId.toLowerCase() === String(claims.oid).toLowerCase(),
    );
    if (!sp) return { kind: 'refused', reason: 'service_principal_not_registered' };
    principal = sp.objectId;
    if (!mailbox || mailbox.tenant !== claims.tid) return { kind: protocol === 'imap' ? 'not_connected' : 'refused', reason: 'unknown_mailbox' };
    if (!hasFullAccess(mailbox, principal)) {
      return protocol === 'imap' ? { kind: 'not_connected', reason: 'no_mailbox_permission', mailbox } : { kind: 'refused', reason: 'no_mailbox_permission' };
    }
  } else {
    const scopes = stringClaim(claims.scp).split(' ');
    if (!scopes.includes(DELEGATED_SCOPE[protocol])) return { kind: 'refused', reason: 'missing_scope' };
    principal = stringClaim(claims.upn ?? claims.unique_name);
    if (!mailbox) return { kind: protocol === 'imap' ? 'not_connected' : 'refused', reason: 'unknown_mailbox' };
    const own = mailbox.address.toLowerCase() === principal.toLowerCase();
    if (!own && !hasFullAccess(mailbox, principal)) {
      return protocol === 'imap' ? { kind: 'not_connected', reason: 'user_mismatch', mailbox } : { kind: 'refused', reason: 'user_mismatch' };
    }
  }

  if (!protocolEnabled(mailbox, protocol)) {
    return protocol === 'imap' ? { kind: 'not_connected', reason: 'protocol_disabled', mailbox } : { kind: 'refused', reason: 'protocol_disabled' };
  }
  if (protocol === 'smtp') {
    const refusal = smtpAuthRefusal(tenant ?? state.scenario.tenants.find((t) => t.id === mailbox.tenant), mailbox);
    if (refusal) return { kind: 'refused', reason: refusal };
  }
  return { kind: 'ok', mailbox, principal };
}
