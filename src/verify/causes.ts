// The causes `mailbridge verify` names, each with a one-line summary and the fix, the admin's ids
// filled in: client id, tenant, mailbox, and the service principal's object id when the token
// told us (an app-only token's `oid` is the Enterprise application's object id, which is the one
// New-ServicePrincipal and Add-MailboxPermission want, reference section 4.4).
import type { Protocol } from '../config/schema.ts';
import { explainAadsts, type Explanation } from '../identity/explanations.ts';
import { APP_ROLE, DELEGATED_PERMISSION } from './claims.ts';
import type { Cause, TokenSummary } from './types.ts';

export interface CauseContext {
  mailbox: string;
  protocol: Protocol;
  /** The app's name in the configuration. */
  appName: string;
  clientId: string;
  /** The configured tenant, or the token's when the configuration names common/organizations. */
  tenant: string;
  /** e.g. https://login.microsoftonline.com */
  loginUrl: string;
  /** e.g. https://entra.microsoft.com */
  portal: string;
  /** Prefix of delegated scopes in this cloud, e.g. https://outlook.office.com */
  delegatedScopePrefix: string;
  appOnlyScope: string;
  /** The user who signs in for a shared mailbox, when configured. */
  signInAs?: string;
  /** The token came from elsewhere (`verify --token-file`): fixes address the tool that got it. */
  externalToken?: boolean;
  /** Where the app's client secret is configured, for the fixes of a refused or expired secret. */
  secret?: ConfiguredSecret;
  token?: TokenSummary;
}

export interface ConfiguredSecret {
  /** The configuration key, e.g. `apps.web.clientSecret`. */
  key: string;
  /** Where its value comes from: `in /path/config.json`, `from the environment variable X`, ... */
  source: string;
  /** The value is shaped like a GUID, as a Secret ID is (undefined: it could not be read). */
  guidShaped?: boolean;
}

const PROTOCOL_NAME: Record<Protocol, string> = { imap: 'IMAP', pop: 'POP3', smtp: 'SMTP' };
const SWITCH: Record<Exclude<Protocol, 'smtp'>, string> = { imap: 'ImapEnabled', pop: 'PopEnabled' };
const SHARED_TENANTS = new Set(['common', 'organizations', 'consumers']);

export function protocolName(protocol: Protocol): string {
  return PROTOCOL_NAME[protocol];
}

function tenantOf(c: CauseContext): string {
  return SHARED_TENANTS.has(c.tenant.toLowerCase()) && c.token?.tid ? c.token.tid : c.tenant;
}

/** The service principal's object id from an app-only token, or a placeholder that says which id. */
function spId(c: CauseContext): string {
  return c.token?.kind === 'app' && c.token.oid ? c.token.oid : '<object id of the Enterprise application (service principal), not of the app registration>';
}

function appPermissionsPath(c: CauseContext): string {
  return `${c.portal} → App registrations → ${c.clientId} → API permissions`;
}

function fullAccess(c: CauseContext, who: string): string {
  return `Add-MailboxPermission -Identity ${c.mailbox} -User ${who} -AccessRights FullAccess`;
}

function enableProtocol(c: CauseContext, protocol: Exclude<Protocol, 'smtp'>): string {
  return `Set-CASMailbox -Identity ${c.mailbox} -${SWITCH[protocol]} $true`;
}

/** A path in the cloud's admin portal, e.g. `Entra admin center (https://entra.microsoft.com) > App registrations`. */
function portalPath(c: CauseContext, ...path: string[]): string {
  const portal = c.portal.replace(/\/+$/, '');
  const root = portal.toLowerCase() === 'https://entra.microsoft.com' ? `Entra admin center (${portal})` : `${portal} > Microsoft Entra ID`;
  return [root, ...path].join(' > ');
}

/** The app registration in the portal, found by its client id (its display name in Entra is not in the configuration). */
function appRegistration(c: CauseContext, ...path: string[]): string {
  return portalPath(c, 'App registrations', `the app with client id ${c.clientId}`, ...path);
}

/**
 * The client secret codes, explained with where the secret is configured: the configuration key,
 * and whether the configured value could be a Secret ID at all (those are GUIDs).
 */
function secretExplanation(c: CauseContext, given: Explanation): Explanation | undefined {
  const secret = c.secret;
  if (!secret) return undefined;
  const where = `${secret.key} (${secret.source})`;
  const newSecret = `${appRegistration(c, 'Certificates & secrets')} > New client secret; copy the Value column (not Secret ID) at once`;
  if (given.code === 7000222) {
    return {
      ...given,
      cause: `The client secret in ${where} has passed its expiry date in Entra (app ${c.clientId}). Entra secrets last at most 24 months, so every secret expires in the end.`,
      fix: `Create a new secret: ${newSecret} and put it into ${where}; then delete the expired secret. Note the new expiry date, or move to a certificate instead (${appRegistration(c, 'Certificates & secrets', 'Certificates', 'Upload certificate')}).`,
    };
  }
  if (given.code === 7000215 && secret.guidShaped === false) {
    return {
      ...given,
      title: 'Client secret not accepted',
      cause: `Entra did not accept the client secret in ${where} for app ${c.clientId}. It is not a Secret ID (those are GUIDs), so it is mistyped or cut short, or the secret was deleted or belongs to another app registration.`,
      fix: `Compare ${secret.key} with the secret's Value (shown only once, when the secret was created), character for character. If you no longer have it: ${newSecret} and put it into ${where}.`,
    };
  }
  if (given.code === 7000215) {
    return {
      ...given,
      cause: `Entra did not accept the client secret in ${where} for app ${c.clientId}. It is shaped like a GUID, as a Secret ID is: almost always the Secret ID was configured instead of the secret's Value.`,
      fix: `Put the secret's Value into ${where}, not its Secret ID; the Value is shown only once, when the secret is created. If you no longer have it: ${newSecret} and put it into ${where}.`,
    };
  }
  return undefined;
}

/**
 * The provider's explanation of an AADSTS error, explained again with everything verify knows
 * (the configured cloud's hosts, the service principal's object id when a token told it, where
 * the client secret is configured). The app is named by its client id: the configuration's name
 * for it is not its display name in Entra.
 */
export function explainAgain(c: CauseContext, explanation: Explanation | undefined): Explanation | undefined {
  if (!explanation) return undefined;
  const again = explainAadsts(explanation.code, {
    clientId: c.clientId,
    tenant: c.tenant,
    mailbox: c.mailbox,
    cloudPortal: c.portal,
    cloud: { loginUrl: c.loginUrl, portal: c.portal, delegatedScopePrefix: c.delegatedScopePrefix, appOnlyScope: c.appOnlyScope },
    ...(c.token?.kind === 'app' && c.token.oid ? { servicePrincipalObjectId: c.token.oid } : {}),
  });
  const twice = `the app with client id ${c.clientId} (client id ${c.clientId})`;
  const once = (text: string) => text.split(twice).join(`the app with client id ${c.clientId}`);
  const named = { ...again, cause: once(again.cause), fix: once(again.fix) };
  return secretExplanation(c, named) ?? named;
}

const mk = (id: Cause['id'], summary: string, fix: string, extra: Partial<Cause> = {}): Cause => ({ id, summary, fix, ...extra });

export const causes = {
  graph_audience(c: CauseContext): Cause {
    const P = PROTOCOL_NAME[c.protocol];
    const fix = c.externalToken
      ? `The tool that obtained this token asked for a Microsoft Graph permission (an unprefixed name such as Mail.Read or ${DELEGATED_PERMISSION[c.protocol]}, or a https://graph.microsoft.com/ one). Have it request ${c.token?.kind === 'app' ? `exactly ${c.appOnlyScope}` : `${c.delegatedScopePrefix}/${DELEGATED_PERMISSION[c.protocol]}, first in its scope list (a token is issued for the resource of the first scope),`} instead, then check the new token.`
      : c.token?.kind === 'app'
        ? `Request exactly ${c.appOnlyScope} for app-only mail (not https://graph.microsoft.com/.default): check "scopes" of ${c.mailbox} in the configuration, then run verify again.`
        : `Request the Exchange scope ${c.delegatedScopePrefix}/${DELEGATED_PERMISSION[c.protocol]}, not an unprefixed or graph.microsoft.com permission (an unprefixed name means Microsoft Graph): remove or correct "scopes" of ${c.mailbox} in the configuration, then run \`mailbridge login ${c.mailbox}\`.`;
    return mk(
      'graph_audience',
      `The ${P} token is for Microsoft Graph (aud ${c.token?.aud ?? '?'}); ${P} servers accept only Exchange Online tokens and refuse it.`,
      fix,
    );
  },

  missing_scope(c: CauseContext): Cause {
    const permission = DELEGATED_PERMISSION[c.protocol];
    const scope = `${c.delegatedScopePrefix}/${permission}`;
    return mk(
      'missing_scope',
      `The token has no ${permission} scope (scp: ${c.token?.scp || 'none'}), so ${PROTOCOL_NAME[c.protocol]} refuses it.`,
      `Add the delegated permission ${permission} to app ${c.clientId} (${appPermissionsPath(c)}; the portal lists it under Microsoft Graph) and grant consent for ${tenantOf(c)}; make sure "${c.protocol}" is in "protocols" of ${c.mailbox} (and that "scopes", if set, include ${scope}); then run \`mailbridge login ${c.mailbox}\` so the grant covers ${scope}.`,
    );
  },

  missing_role(c: CauseContext): Cause {
    const role = APP_ROLE[c.protocol];
    return mk(
      'missing_role',
      `The app-only token has no ${role} role (roles: ${c.token?.roles?.join(' ') || 'none'}), so ${PROTOCOL_NAME[c.protocol]} refuses it.`,
      `${appPermissionsPath(c)} → Add a permission → APIs my organization uses → Office 365 Exchange Online (00000002-0000-0ff1-ce00-000000000000) → Application permissions → ${role}; then "Grant admin consent" for tenant ${tenantOf(c)}.`,
    );
  },

  /** `imapTold`: an IMAP login with the same token was refused too (POP3 and SMTP alone cannot tell). */
  service_principal_missing(c: CauseContext, reply: string, imapTold = false): Cause {
    const why =
      imapTold && c.protocol !== 'imap'
        ? `; IMAP refused the same token too, and IMAP refuses only an app it does not know (without mailbox permission it accepts the login and refuses the mailbox), so`
        : ':';
    return mk(
      'service_principal_missing',
      `${PROTOCOL_NAME[c.protocol]} refused an app-only token that carries ${APP_ROLE[c.protocol]} (${reply})${why} Exchange Online does not know the app, its service principal is not registered there (or was registered with the wrong object id).`,
      `In Exchange Online PowerShell (Connect-ExchangeOnline): New-ServicePrincipal -AppId ${c.clientId} -ObjectId ${spId(c)} (the Enterprise application's object id, not the app registration's). If it is registered already, the mailbox permission is next: ${fullAccess(c, spId(c))}.`,
    );
  },

  /** POP3 and SMTP refuse an unknown app and an app without mailbox permission alike, and nothing else told which. */
  service_principal_or_mailbox_permission_missing(c: CauseContext, reply: string): Cause {
    const P = PROTOCOL_NAME[c.protocol];
    return mk(
      'service_principal_or_mailbox_permission_missing',
      `${P} refused an app-only token that carries ${APP_ROLE[c.protocol]} (${reply}). ${P} cannot tell which of two causes it is: Exchange Online does not know the app (no service principal), or the app has no permission on ${c.mailbox}. (An IMAP login would tell, but the token carries no ${APP_ROLE.imap} role.)`,
      `Check both in Exchange Online PowerShell (Connect-ExchangeOnline): 1. Get-ServicePrincipal -Identity ${spId(c)}; if it is not found: New-ServicePrincipal -AppId ${c.clientId} -ObjectId ${spId(c)}  2. Get-MailboxPermission -Identity ${c.mailbox} -User ${spId(c)}; if nothing is listed: ${fullAccess(c, spId(c))}`,
    );
  },

  /** `imapTold`: for POP3 and SMTP, an IMAP login with the same token was accepted. */
  mailbox_permission_missing(c: CauseContext, reply: string, delegate?: string, imapTold = false): Cause {
    const who = delegate ?? spId(c);
    const P = PROTOCOL_NAME[c.protocol];
    const second =
      c.protocol === 'smtp'
        ? delegate
          ? `Add-RecipientPermission -Identity ${c.mailbox} -Trustee ${delegate} -AccessRights SendAs`
          : `New-ServicePrincipal -AppId ${c.clientId} -ObjectId ${spId(c)} (if the service principal was registered with another object id)`
        : `${enableProtocol(c, c.protocol)} (${P} may be disabled for the mailbox)`;
    const known =
      imapTold && !delegate
        ? `role; ${P} refuses an unknown app and an app without mailbox permission alike, but IMAP accepted the same token, so the service principal exists`
        : `${delegate ? 'scope' : 'role and the service principal exists'}`;
    const summary =
      c.protocol === 'imap'
        ? `IMAP accepted the login but will not open ${c.mailbox} (${reply}): ${delegate ? delegate : 'the app'} has no permission on the mailbox.`
        : `${P} refused the login for ${c.mailbox} (${reply}) although the token carries the right ${known}: most likely ${delegate ? delegate : 'the app'} has no permission on the mailbox.`;
    return mk('mailbox_permission_missing', summary, `1. ${fullAccess(c, who)}  2. ${second}`);
  },

  protocol_disabled(c: CauseContext, reply: string): Cause {
    const protocol = c.protocol === 'smtp' ? 'imap' : c.protocol;
    const personal = tenantOf(c).toLowerCase() === 'consumers' || c.token?.tid === '9188040d-6c67-4c5b-b112-36a304b66dad';
    return mk(
      'protocol_disabled',
      `${PROTOCOL_NAME[protocol]} is disabled for ${c.mailbox}: the server ${protocol === 'imap' ? 'accepted the login but will not open the mailbox' : "refused a token with the right scope for the user's own mailbox"} (${reply}).`,
      personal
        ? `In Outlook.com: Settings → Mail → Forwarding and IMAP → "Let devices and apps use POP" / "Let devices and apps use IMAP".`
        : `In Exchange Online PowerShell: ${enableProtocol(c, protocol)}`,
    );
  },

  smtp_auth_disabled_tenant(c: CauseContext, reply: string): Cause {
    return mk(
      'smtp_auth_disabled_tenant',
      `SMTP AUTH is disabled for the whole organisation (${reply}).`,
      `Set-TransportConfig -SmtpClientAuthenticationDisabled $false (whole organisation), or for this mailbox only: Set-CASMailbox -Identity ${c.mailbox} -SmtpClientAuthenticationDisabled $false. Or send through Microsoft Graph instead.`,
    );
  },

  smtp_auth_disabled_mailbox(c: CauseContext, reply: string): Cause {
    return mk(
      'smtp_auth_disabled_mailbox',
      `SMTP AUTH is disabled for ${c.mailbox} (${reply}).`,
      `Set-CASMailbox -Identity ${c.mailbox} -SmtpClientAuthenticationDisabled $false`,
    );
  },

  security_defaults(c: CauseContext, reply: string): Cause {
    return mk(
      'security_defaults',
      `The tenant's security defaults block SMTP AUTH (${reply}).`,
      `Turn security defaults off (${c.portal} → Identity → Overview → Properties → Manage security defaults) and use Conditional Access instead, or send through Microsoft Graph.`,
    );
  },

  authenticated_not_connected(c: CauseContext, reply: string): Cause {
    const user = c.token?.upn ?? c.signInAs ?? '<the user who signs in>';
    return mk(
      'authenticated_not_connected',
      `IMAP accepted ${user}'s token but will not open ${c.mailbox} (${reply}).`,
      `Either of two: 1. ${user} needs FullAccess on the mailbox: ${fullAccess(c, user)}  2. IMAP is disabled for it: ${enableProtocol(c, 'imap')}`,
    );
  },

  send_as_denied(c: CauseContext, reply: string): Cause {
    const who = c.token?.kind === 'app' ? spId(c) : (c.token?.upn ?? '<the user who signs in>');
    return mk(
      'send_as_denied',
      `SMTP authenticated but may not send as ${c.mailbox} (${reply}).`,
      `Add-RecipientPermission -Identity ${c.mailbox} -Trustee ${who} -AccessRights SendAs`,
    );
  },

  throttled(c: CauseContext, reply: string): Cause {
    const ms = /Suggested Backoff Time:\s*(\d+)\s*milliseconds/i.exec(reply)?.[1];
    const backoffMs = ms === undefined ? undefined : Number(ms);
    return mk(
      'throttled',
      `Exchange is throttling ${c.mailbox} on ${PROTOCOL_NAME[c.protocol]}${backoffMs !== undefined ? `: suggested backoff ${backoffMs} ms` : ''} (${reply}).`,
      `Wait ${backoffMs !== undefined ? `${Math.ceil(backoffMs / 1000)} s (${backoffMs} ms)` : 'a few minutes'} before connecting again; use fewer connections per mailbox (Exchange allows about 20 per protocol) and reuse them instead of reconnecting.`,
      backoffMs !== undefined ? { backoffMs } : {},
    );
  },

  wrong_user(c: CauseContext): Cause {
    const upn = c.token?.upn ?? '?';
    return mk(
      'wrong_user',
      `The token is for ${upn}, but the mailbox is ${c.mailbox}${c.signInAs ? ` and "signInAs" is ${c.signInAs}` : `, which is not configured as a shared mailbox of ${upn}`}.`,
      `Run \`mailbridge login ${c.mailbox}\` and sign in as ${c.signInAs ?? c.mailbox}. If ${c.mailbox} is a shared mailbox that ${upn} opens, set "signInAs": "${upn}" for it in the configuration and grant ${fullAccess(c, upn)}.`,
    );
  },

  grant_expired_or_revoked(c: CauseContext, message: string, given?: Explanation): Cause {
    const explanation = explainAgain(c, given);
    const login = `mailbridge login ${c.mailbox}`;
    const fix = explanation ? (explanation.fix.includes(login) ? explanation.fix : `${explanation.fix} Then: \`${login}\`.`) : `Sign in again: \`${login}\`.`;
    return mk(
      'grant_expired_or_revoked',
      explanation
        ? `The grant of ${c.mailbox} no longer works: AADSTS${explanation.code}: ${explanation.title}. ${explanation.cause}`
        : `The grant of ${c.mailbox} needs a new sign-in: ${message}`,
      fix,
      explanation ? { aadsts: explanation.code } : {},
    );
  },

  token_request_failed(c: CauseContext, message: string, given?: Explanation): Cause {
    const explanation = explainAgain(c, given);
    return mk(
      'token_request_failed',
      explanation
        ? `No token for ${c.mailbox}: AADSTS${explanation.code}: ${explanation.title}. ${explanation.cause}`
        : `No token for ${c.mailbox}: ${message}`,
      explanation?.fix ?? `Check the app ${c.clientId} and the configuration of ${c.mailbox} (\`mailbridge accounts\` shows the grant's status).`,
      explanation ? { aadsts: explanation.code } : {},
    );
  },

  identity_unavailable(_c: CauseContext, message: string): Cause {
    return mk(
      'identity_unavailable',
      `The identity platform could not be reached or is failing: ${message}`,
      'Try again in a few minutes; check the network path (proxy, firewall) to the login host.',
    );
  },

  token_rejected(c: CauseContext, reply: string): Cause {
    const t = c.token;
    const facts = t && !t.opaque ? ` (aud ${t.aud ?? '?'}, tid ${t.tid ?? '?'}, expires ${t.expiresAt ?? '?'})` : '';
    return mk(
      'token_rejected',
      `${PROTOCOL_NAME[c.protocol]} refused the token${facts} (${reply}).`,
      t?.kind === 'app'
        ? `Check that tenant ${tenantOf(c)} hosts ${c.mailbox} and that the token's audience is Exchange Online (${c.appOnlyScope}); then run verify again.`
        : `Sign in again (\`mailbridge login ${c.mailbox}\`) as ${c.signInAs ?? c.mailbox}; if it persists, check that tenant ${tenantOf(c)} hosts ${c.mailbox}.`,
    );
  },

  not_a_token(c: CauseContext, shape: string): Cause {
    const what = c.externalToken ? 'The token file' : `The token mailbridge got for ${c.mailbox}`;
    return mk(
      'not_a_token',
      `${what} is not an access token: ${shape}. Nothing was sent to the ${PROTOCOL_NAME[c.protocol]} server.`,
      c.externalToken
        ? `Have the tool that wrote it save the access token itself: the "access_token" field of the token response (a JWT starting with eyJ, or for a personal account a ticket starting with Ew), not the refresh token, the ID token or the whole response; for ${PROTOCOL_NAME[c.protocol]} request ${c.delegatedScopePrefix}/${DELEGATED_PERMISSION[c.protocol]} (delegated) or ${c.appOnlyScope} (app-only). Then check it again with --token-file.`
        : `The identity platform at ${c.loginUrl} answered with something that is not an access token: check that "loginUrl" of the cloud points at the Microsoft identity platform, then run verify again.`,
    );
  },

  server_unavailable(c: CauseContext, step: string, reply: string): Cause {
    return mk(
      'server_unavailable',
      `The ${PROTOCOL_NAME[c.protocol]} server is temporarily unavailable (${step}: ${reply}); this is a problem on the server's side, not in the configuration.`,
      `Run verify again in a few minutes. If it lasts, look for an Exchange Online incident under Health → Service health in the Microsoft 365 admin center.`,
    );
  },

  tls(host: string, port: number, reason: string, code: string | undefined, hint: 'trust' | 'name' | 'expired' | 'other'): Cause {
    const fix = {
      trust: `The certificate is not issued by a CA this machine trusts. If a TLS-inspecting proxy sits in between, trust its CA (NODE_EXTRA_CA_CERTS, or "caFile" of the cloud in the configuration); for the emulator, set "caFile" to its ca.crt.`,
      name: `The certificate is not for ${host}: check the host name in the configuration (Exchange Online: outlook.office365.com for IMAP and POP, smtp.office365.com for SMTP).`,
      expired: `The server's certificate is expired or not yet valid: check this machine's clock; otherwise the server's operator must renew it.`,
      other: `Check that ${host}:${port} speaks TLS the way the configuration says (implicit TLS on 993/995/465, STARTTLS on 143/110/587).`,
    }[hint];
    return mk('tls', `TLS with ${host}:${port} failed: ${reason}${code ? ` (${code})` : ''}.`, fix);
  },

  dns(host: string, code: string, protocol: Protocol): Cause {
    return mk(
      'dns',
      `${host} does not resolve (${code}).`,
      `Check the ${PROTOCOL_NAME[protocol]} host in the configuration (Exchange Online: ${protocol === 'smtp' ? 'smtp.office365.com' : 'outlook.office365.com'}) and this machine's DNS.`,
    );
  },

  tcp(host: string, port: number, code: string): Cause {
    return mk(
      'tcp',
      `Cannot connect to ${host}:${port} (${code}).`,
      `Check the port in the configuration and that no firewall or proxy blocks outgoing connections to ${host}:${port}.`,
    );
  },

  unexpected_reply(c: CauseContext, step: string, reply: string): Cause {
    return mk(
      'unexpected_reply',
      `${PROTOCOL_NAME[c.protocol]} ${step}: unexpected reply: ${reply}`,
      `Check that the configured ${PROTOCOL_NAME[c.protocol]} endpoint is Exchange Online (or a server that speaks XOAUTH2); run verify again in case it was temporary.`,
    );
  },
};
