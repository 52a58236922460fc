// What an AADSTS error from Microsoft Entra means for an admin: a short title, the cause in plain
// language, the fix (a portal path, a PowerShell command or a `mailbridge login`, with the admin's
// ids filled in), and what the error means for the mailbox's grant. Covers every code of reference
// section 5.4 plus the authorize-time, device-flow, tenant and certificate codes the reference
// names elsewhere; any other code gets a generic explanation that links Microsoft's error lookup.
//
// Product code: this must not import the emulator (its catalogue is the emulator's own copy of the
// wire texts). Entra's texts "are subject to change at any time", so nothing here parses them
// beyond the `AADSTS<code>` number.
import { CLOUDS, type Cloud, type CloudName } from '../config/clouds.ts';

export type GrantHealth = 'ok' | 'needs_sign_in' | 'broken_configuration' | 'temporary';

export interface ExplanationContext {
  clientId?: string;
  tenant?: string;
  appName?: string;
  mailbox?: string;
  /** The Enterprise application's (service principal's) object id, not the app registration's. */
  servicePrincipalObjectId?: string;
  /** e.g. `https://portal.azure.com`; a national-cloud portal also selects that cloud's hosts. */
  cloudPortal?: string;
  /** The redirect URI mailbridge uses for this app, for redirect URI errors. */
  redirectUri?: string;
  /** The cloud's hosts and scopes when known exactly (wins over what `cloudPortal` implies). */
  cloud?: Pick<Cloud, 'loginUrl' | 'portal' | 'delegatedScopePrefix' | 'appOnlyScope'>;
}

export interface Explanation {
  /** The AADSTS code. */
  code: number;
  /** Short, e.g. "Client secret is the Secret ID, not the value". */
  title: string;
  /** Plain language: what happened and why. */
  cause: string;
  /** What the admin does, with their ids filled in (or readable placeholders). */
  fix: string;
  /** What it means for the grant. */
  health: GrantHealth;
  /** True only for temporary errors. */
  retryable: boolean;
}

// ---------------------------------------------------------------------------------------------
// The admin's ids, filled in or replaced by readable placeholders.

const SHARED_TENANTS = new Set(['common', 'organizations', 'consumers']);
const GLOBAL_PORTAL = 'https://entra.microsoft.com';
const CLOUD_LABELS: Record<CloudName, string> = {
  global: 'global',
  'usgov-gcc-high': 'GCC High',
  'usgov-dod': 'DoD',
  china: '21Vianet',
};

interface Facts {
  clientId: string;
  /** The configured tenant, or a placeholder. */
  tenant: string;
  /** A tenant id or domain: the configured one unless it is common/organizations/consumers. */
  specificTenant: string;
  /** The configured tenant when it is common/organizations/consumers. */
  sharedTenant: string | undefined;
  /** For prose: `tenant contoso.onmicrosoft.com`, or `the tenant` when no specific one is configured. */
  tenantRef: string;
  org: string;
  app: string;
  mailbox: string;
  sp: string;
  redirectUri: string;
  /** `mailbridge login <mailbox>`, in backquotes. */
  login: string;
  loginUrl: string;
  appReg(...path: string[]): string;
  entApp(...path: string[]): string;
  portal(...path: string[]): string;
  /** A delegated Exchange permission with its resource prefix, in backquotes. */
  scope(permission: string): string;
  /** The delegated scopes per protocol. */
  mailScopes: string;
  appOnlyScope: string;
  adminConsentUrl: string;
  grantConsent: string;
  /** A sentence saying where the service principal's object id is found. */
  spObjectIdWhere: string;
  /** The Exchange Online PowerShell for app-only access, ending with a full sentence. */
  exchangeSetup: string;
}

function given(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

interface CloudFacts {
  loginUrl: string;
  portal: string;
  delegatedPrefixes: { prefix: string; label: string }[];
  appOnlyScopes: { scope: string; label: string }[];
}

function cloudFacts(ctx: ExplanationContext): CloudFacts {
  const portalGiven = given(ctx.cloudPortal);
  if (ctx.cloud) {
    return {
      loginUrl: withoutTrailingSlash(ctx.cloud.loginUrl),
      portal: withoutTrailingSlash(portalGiven ?? ctx.cloud.portal),
      delegatedPrefixes: [{ prefix: withoutTrailingSlash(ctx.cloud.delegatedScopePrefix), label: '' }],
      appOnlyScopes: [{ scope: ctx.cloud.appOnlyScope, label: '' }],
    };
  }
  const portal = withoutTrailingSlash(portalGiven ?? GLOBAL_PORTAL);
  // A national portal names its cloud; GCC High and DoD share one, so both of their scopes are named.
  const names = (Object.keys(CLOUDS) as CloudName[]).filter((name) => name !== 'global' && CLOUDS[name].portal.toLowerCase() === portal.toLowerCase());
  const matched = names.length > 0 ? names : (['global'] as CloudName[]);
  const labelled = matched.length > 1;
  const unique = <T extends { label: string }>(items: T[], key: (item: T) => string): T[] =>
    items.filter((item, i) => items.findIndex((other) => key(other) === key(item)) === i);
  return {
    loginUrl: CLOUDS[matched[0] ?? 'global'].loginUrl,
    portal,
    delegatedPrefixes: unique(
      matched.map((name) => ({ prefix: CLOUDS[name].delegatedScopePrefix, label: labelled ? CLOUD_LABELS[name] : '' })),
      (p) => p.prefix,
    ),
    appOnlyScopes: unique(
      matched.map((name) => ({ scope: CLOUDS[name].appOnlyScope, label: labelled ? CLOUD_LABELS[name] : '' })),
      (s) => s.scope,
    ),
  };
}

function alternatives(items: { text: string; label: string }[]): string {
  return items.map((item) => (item.label ? `${item.text} (${item.label})` : item.text)).join(' or ');
}

function factsOf(ctx: ExplanationContext): Facts {
  const cloud = cloudFacts(ctx);
  const clientId = given(ctx.clientId) ?? '<your application (client) id>';
  const configuredTenant = given(ctx.tenant);
  const sharedTenant = configuredTenant && SHARED_TENANTS.has(configuredTenant.toLowerCase()) ? configuredTenant : undefined;
  const tenant = configuredTenant ?? '<your tenant id or domain>';
  const specificTenant = sharedTenant || !configuredTenant ? '<your tenant id or domain>' : configuredTenant;
  const appName = given(ctx.appName);
  const givenClientId = given(ctx.clientId);
  const app = appName ?? (givenClientId ? `the app with client id ${givenClientId}` : '<your app>');
  const mailbox = given(ctx.mailbox) ?? '<mailbox address>';
  const sp = given(ctx.servicePrincipalObjectId) ?? '<Enterprise application object id>';
  const root = cloud.portal.toLowerCase() === GLOBAL_PORTAL ? `Entra admin center (${GLOBAL_PORTAL})` : `${cloud.portal} > Microsoft Entra ID`;
  const portal = (...path: string[]): string => [root, ...path].join(' > ');
  const scope = (permission: string): string => alternatives(cloud.delegatedPrefixes.map((p) => ({ text: `\`${p.prefix}/${permission}\``, label: p.label })));
  const appOnlyScope = alternatives(cloud.appOnlyScopes.map((s) => ({ text: `\`${s.scope}\``, label: s.label })));
  const org = configuredTenant && !sharedTenant ? configuredTenant : '<your organization>';
  const spObjectIdWhere = `The ObjectId is the Enterprise application's Object ID, shown at ${portal('Enterprise applications', app, 'Overview')}; not the app registration's Object ID`;
  return {
    clientId,
    tenant,
    specificTenant,
    sharedTenant,
    tenantRef: specificTenant.startsWith('<') ? 'the tenant' : `tenant ${specificTenant}`,
    org,
    app,
    mailbox,
    sp,
    redirectUri: given(ctx.redirectUri) ?? '<the redirect URI mailbridge uses>',
    login: `\`mailbridge login ${mailbox}\``,
    loginUrl: cloud.loginUrl,
    portal,
    appReg: (...path) => portal('App registrations', app, ...path),
    entApp: (...path) => portal('Enterprise applications', app, ...path),
    scope,
    mailScopes:
      cloud.delegatedPrefixes
        .map(
          (p) =>
            `${p.label ? `in ${p.label}: ` : ''}\`${p.prefix}/IMAP.AccessAsUser.All\` (IMAP), \`${p.prefix}/POP.AccessAsUser.All\` (POP) or \`${p.prefix}/SMTP.Send\` (SMTP)`,
        )
        .join('; ') + ', plus `offline_access`',
    appOnlyScope,
    adminConsentUrl: `${cloud.loginUrl}/${tenant}/adminconsent?client_id=${clientId}`,
    grantConsent: `${portal('App registrations', app, 'API permissions')} > Grant admin consent for ${org}`,
    spObjectIdWhere,
    exchangeSetup:
      `in Exchange Online PowerShell (\`Connect-ExchangeOnline\`) run ` +
      `\`New-ServicePrincipal -AppId ${clientId} -ObjectId ${sp}\`, then ` +
      `\`Add-MailboxPermission -Identity ${mailbox} -User ${sp} -AccessRights FullAccess\`. ${spObjectIdWhere}`,
  };
}

// ---------------------------------------------------------------------------------------------
// The explanations.

interface Entry {
  health: Exclude<GrantHealth, 'ok'>;
  title: string;
  cause: (f: Facts) => string;
  fix: (f: Facts) => string;
}

function signInAgain(f: Facts): string {
  return `Sign in again with ${f.login}.`;
}

const consentFix = (f: Facts): string =>
  `An admin grants consent once for the whole tenant: open ${f.adminConsentUrl} and accept, or use ${f.grantConsent}. ` +
  `API permissions must list the delegated permissions mailbridge asks for (IMAP.AccessAsUser.All, POP.AccessAsUser.All, SMTP.Send, offline_access; the portal shows them under Microsoft Graph). ` +
  `Then sign in again with ${f.login}.`;

const redirectRegistration = (f: Facts): string =>
  `${f.appReg('Authentication')} > Add a platform > Mobile and desktop applications (or Web, when mailbridge uses a client secret or certificate)`;

const reportBug = 'If it keeps happening with an unchanged configuration, report it as a mailbridge bug together with the error text (it contains no secrets).';

const multipleResources: Entry = {
  health: 'broken_configuration',
  title: 'Scope names more than one resource',
  cause: () =>
    'One token request may only ask for permissions of a single resource (API). This one mixed them, for example Exchange mail permissions with Microsoft Graph ones such as Mail.Read or User.Read.',
  fix: (f) =>
    `Request only Exchange scopes: ${f.mailScopes}. Leave out Graph scopes and unprefixed permission names; an unprefixed name means Microsoft Graph.`,
};

const appDisabled: Entry = {
  health: 'broken_configuration',
  title: 'App is disabled in the tenant',
  cause: (f) => `The Enterprise application for ${f.app} is disabled for sign-in in this tenant, so Entra issues no tokens for it.`,
  fix: (f) => `Turn it back on: ${f.entApp('Properties')} > Enabled for users to sign-in? = Yes, and Save.`,
};

const ENTRIES: Record<number, Entry> = {
  // Grants, codes and refresh tokens.
  70008: {
    health: 'needs_sign_in',
    title: 'Sign-in expired after inactivity',
    cause: () =>
      'The refresh token (or authorization code) mailbridge holds expired because it went unused for too long, so Entra wants a new interactive sign-in. Older Entra responses use this code for any expired grant.',
    fix: (f) => `${signInAgain(f)} A refresh token lives 90 days from its last use, so an account that is refreshed regularly does not run into this.`,
  },
  700082: {
    health: 'needs_sign_in',
    title: 'Refresh token expired after 90 days without use',
    cause: () =>
      'Entra refresh tokens expire after 90 days of inactivity. This account was not refreshed for 90 days, so its grant is gone. Nothing was revoked and nothing is misconfigured.',
    fix: signInAgain,
  },
  700084: {
    health: 'needs_sign_in',
    title: 'Single-page-app refresh token reached its 24-hour limit',
    cause: () =>
      "The refresh token was issued for a redirect URI registered as a Single-page application. Those tokens have a fixed 24-hour lifetime that refreshing can't extend.",
    fix: (f) =>
      `${signInAgain(f)} If the app registration lists mailbridge's redirect URI under Single-page application, move it: remove it there and add it under ${redirectRegistration(f)}.`,
  },
  50173: {
    health: 'needs_sign_in',
    title: 'Grant revoked (password changed or sessions revoked)',
    cause: () =>
      "Entra revoked the refresh token: the user changed or reset their password, or an admin revoked the user's sessions. Tokens issued before that moment are no longer valid.",
    fix: signInAgain,
  },
  70043: {
    health: 'needs_sign_in',
    title: 'Conditional Access sign-in frequency requires a new sign-in',
    cause: () => 'A Conditional Access policy limits how long a sign-in lasts (sign-in frequency). That time has passed, so the refresh token no longer works.',
    fix: (f) =>
      `${signInAgain(f)} To stop this recurring, an admin can exclude this app from the policy or lengthen its sign-in frequency: ${f.portal('Protection', 'Conditional Access', '<the policy>', 'Session', 'Sign-in frequency')}.`,
  },
  70000: {
    health: 'needs_sign_in',
    title: 'Stored grant not accepted',
    cause: () =>
      'Entra did not accept the refresh token (or device code) mailbridge sent: it is unknown, was already used, was copied incompletely, or belongs to another app registration.',
    fix: signInAgain,
  },
  70002: {
    health: 'broken_configuration',
    title: 'App credentials not accepted',
    cause: (f) =>
      `Entra could not validate the credentials sent for ${f.app}; typically the client secret is wrong or outdated. When another AADSTS code follows in the same error, that code names the specific cause.`,
    fix: (f) =>
      `Check the client id (${f.clientId}) and the client secret in mailbridge's configuration. If in doubt, create a new secret under ${f.appReg('Certificates & secrets')} > New client secret and copy its Value column.`,
  },
  54005: {
    health: 'needs_sign_in',
    title: 'Authorization code already used',
    cause: () =>
      'The authorization code of this sign-in had already been redeemed; codes are single use. Usually two sign-ins for the same mailbox ran at once, or the browser redirect was submitted twice.',
    fix: (f) => `Start one new sign-in with ${f.login} and finish it once; don't run two sign-ins for the same mailbox at the same time.`,
  },
  9002313: {
    health: 'needs_sign_in',
    title: 'Malformed token request',
    cause: () =>
      'Entra rejected the request as malformed. During a sign-in this usually means the authorization code was cut off or altered, for example when a redirect URL was pasted incompletely.',
    fix: (f) => `Sign in again with ${f.login}; if you paste the redirect URL, paste all of it. ${reportBug}`,
  },
  501481: {
    health: 'needs_sign_in',
    title: 'PKCE check failed: code from a different sign-in',
    cause: () =>
      "The code_verifier doesn't match the code_challenge of the sign-in that produced the authorization code. The code came from another sign-in attempt than the one being completed, for example an older browser tab.",
    fix: (f) => `Start a new sign-in with ${f.login} and finish it in the browser tab it opens.`,
  },
  500112: {
    health: 'broken_configuration',
    title: 'Redirect URI changed during the sign-in',
    cause: () =>
      "The redirect URI sent when redeeming the authorization code differs from the one the sign-in started with; Entra requires them to be identical. mailbridge's redirect URI setting changed during the sign-in, or a proxy rewrote it.",
    fix: (f) =>
      `Keep one redirect URI for this app in mailbridge's configuration (${f.redirectUri}), registered under ${redirectRegistration(f)}, then sign in again with ${f.login}.`,
  },
  50076: {
    health: 'needs_sign_in',
    title: 'Multi-factor authentication required',
    cause: () =>
      "A Conditional Access policy, per-user MFA, or a sign-in from a new location now requires multi-factor authentication, which a token refresh can't provide.",
    fix: (f) => `The user signs in again interactively with ${f.login} and completes the MFA prompt.`,
  },
  50078: {
    health: 'needs_sign_in',
    title: 'Multi-factor authentication expired',
    cause: () => "The user's last multi-factor authentication is older than the tenant's policies allow.",
    fix: (f) => `The user signs in again interactively with ${f.login} and completes the MFA prompt.`,
  },
  50079: {
    health: 'needs_sign_in',
    title: 'User must register for multi-factor authentication',
    cause: () => 'A policy now requires multi-factor authentication and the user has not registered an MFA method yet.',
    fix: (f) => `The user signs in again with ${f.login} and follows the prompts to register a method (or registers one first at https://aka.ms/mfasetup).`,
  },
  50055: {
    health: 'needs_sign_in',
    title: 'Password expired',
    cause: () => "The user's password has expired, so Entra won't sign them in or refresh their tokens.",
    fix: (f) => `The user changes the password (or an admin resets it), then signs in again with ${f.login}.`,
  },
  65001: {
    health: 'needs_sign_in',
    title: 'Consent missing for the app',
    cause: (f) =>
      `Neither the user nor an admin has consented to let ${f.app} (client id ${f.clientId}) use the mail permissions it asks for, so Entra issues no token. In many tenants users may not consent themselves.`,
    fix: consentFix,
  },
  65004: {
    health: 'needs_sign_in',
    title: 'User declined consent',
    cause: () => 'The user cancelled the consent screen instead of accepting the permissions the app asks for.',
    fix: (f) => `Sign in again with ${f.login} and accept. Or an admin consents once for everyone: open ${f.adminConsentUrl}, or use ${f.grantConsent}.`,
  },
  90094: {
    health: 'needs_sign_in',
    title: 'Admin approval needed',
    cause: () =>
      'The app asks for permissions only an administrator may consent to, or user consent is switched off in the tenant, so the user could not grant them.',
    fix: consentFix,
  },
  7000012: {
    health: 'needs_sign_in',
    title: 'Refresh token belongs to a different tenant',
    cause: (f) =>
      `The refresh token was obtained from one tenant and is now being redeemed at another${f.tenantRef === 'the tenant' ? '' : ` (${f.tenantRef})`}. Usually mailbridge's tenant setting changed after the sign-in.`,
    fix: (f) => `Set mailbridge's tenant back to the one used at sign-in, or sign in again with ${f.login} so the grant matches the current setting.`,
  },
  700005: {
    health: 'needs_sign_in',
    title: 'Authorization code redeemed at another tenant',
    cause: () =>
      'The authorization code was issued by one tenant and redeemed at another, for example signed in through a tenant id and redeemed through /common.',
    fix: (f) => `Use one tenant for the whole sign-in: set mailbridge's tenant to ${f.specificTenant}, then sign in again with ${f.login}.`,
  },
  50058: {
    health: 'needs_sign_in',
    title: 'No signed-in user for a silent sign-in',
    cause: () => 'A silent sign-in (prompt=none) found no browser session for the user, so an interactive sign-in is needed.',
    fix: signInAgain,
  },

  // Client authentication.
  7000215: {
    health: 'broken_configuration',
    title: 'Client secret is the Secret ID, not the value',
    cause: (f) =>
      `Entra did not accept the client secret sent for ${f.app} (client id ${f.clientId}). Almost always the Secret ID was configured instead of the secret's Value; otherwise the secret was deleted or belongs to another app registration.`,
    fix: (f) =>
      `Most likely you pasted the Secret ID (a GUID) — use the Value column, shown only once when the secret is created. If you no longer have it: ${f.appReg('Certificates & secrets')} > New client secret; copy the Value column (not Secret ID) right away and put it into mailbridge's configuration.`,
  },
  7000222: {
    health: 'broken_configuration',
    title: 'Client secret expired',
    cause: (f) =>
      `The client secret of ${f.app} (client id ${f.clientId}) has passed its expiry date. Entra secrets last at most 24 months, so every secret expires in the end.`,
    fix: (f) =>
      `Create a new secret: ${f.appReg('Certificates & secrets')} > New client secret; copy the Value column at once, put it into mailbridge's configuration, and delete the expired secret. Note its expiry date, or move to a certificate instead (${f.appReg('Certificates & secrets', 'Certificates', 'Upload certificate')}).`,
  },
  7000218: {
    health: 'broken_configuration',
    title: "App isn't a public client: it expects a secret or certificate",
    cause: () =>
      'mailbridge signed in as a public client (no secret, as for device-code and desktop sign-in), but the app registration is a confidential client, so Entra demands a client secret or certificate.',
    fix: (f) =>
      `Either turn on ${f.appReg('Authentication', 'Advanced settings', 'Allow public client flows')} = Yes and Save, or give mailbridge a client secret or certificate for this app.`,
  },
  700025: {
    health: 'broken_configuration',
    title: 'Public client must not send a secret',
    cause: () =>
      "Entra treats the app as a public client (its redirect URI is registered under Mobile and desktop applications, or 'Allow public client flows' is on), yet mailbridge sent a client secret or certificate. Entra refuses credentials from public clients.",
    fix: (f) =>
      `Either remove the client secret or certificate from mailbridge's configuration for this app, or make the app confidential: register the redirect URI under the Web platform in ${f.appReg('Authentication')} and set Advanced settings > Allow public client flows = No.`,
  },
  700027: {
    health: 'broken_configuration',
    title: 'Certificate not registered on the app, or expired',
    cause: (f) => `The certificate mailbridge signs its client assertion with is not among the certificates registered for ${f.app}, or it has expired there.`,
    fix: (f) =>
      `Upload the certificate's public part (.cer, .pem or .crt, never the private key) under ${f.appReg('Certificates & secrets', 'Certificates', 'Upload certificate')}, check that the Thumbprint shown there matches mailbridge's certificate, and replace expired ones.`,
  },
  700024: {
    health: 'broken_configuration',
    title: 'Client assertion outside its valid time (clock skew)',
    cause: () => "The client assertion's validity period does not include Entra's current time; usually the mailbridge host's clock is wrong.",
    fix: () => 'Synchronise the clock of the host running mailbridge (NTP; on Linux `timedatectl set-ntp true`), then try again.',
  },
  700021: {
    health: 'broken_configuration',
    title: 'Client assertion made for another app',
    cause: () => "The app id inside the client assertion (its issuer and subject) doesn't match the client_id sent with it.",
    fix: (f) => `Use the same Application (client) ID, ${f.clientId}, for the account and for its certificate in mailbridge's configuration.`,
  },
  700023: {
    health: 'broken_configuration',
    title: "Client assertion audience doesn't match the tenant",
    cause: () => "The client assertion's audience must be the token endpoint of the tenant the request goes to; it named another tenant or endpoint.",
    fix: (f) => `Configure one specific tenant for this account (${f.specificTenant}) so the assertion's audience and the request's endpoint match.`,
  },
  50027: {
    health: 'broken_configuration',
    title: 'Invalid JWT (client assertion)',
    cause: () => "A JWT in the request, normally mailbridge's certificate client assertion, is malformed, badly signed or carries wrong claims.",
    fix: (f) =>
      `Check that the certificate and private key mailbridge uses belong together and that the certificate is registered under ${f.appReg('Certificates & secrets', 'Certificates')}.`,
  },

  // Applications, tenants, endpoints and redirect URIs.
  700016: {
    health: 'broken_configuration',
    title: 'App not found in this tenant',
    cause: (f) =>
      `Entra has no application with client id ${f.clientId} in ${f.tenantRef}. The client id may be wrong (the Object ID or the Directory (tenant) ID copied instead of the Application (client) ID), the app may have been deleted, or the request went to the wrong tenant or cloud: a single-tenant app exists only in its home tenant.`,
    fix: (f) =>
      `Copy the Application (client) ID from ${f.appReg('Overview')} into mailbridge's configuration and use the Directory (tenant) ID shown on the same page as the tenant. For a multi-tenant app used by another organization, an admin there consents first: ${f.adminConsentUrl}.`,
  },
  90002: {
    health: 'broken_configuration',
    title: 'Tenant not found',
    cause: (f) =>
      `Entra can't find ${f.tenantRef} in this cloud. The tenant id or domain is mistyped, the domain is not verified in any tenant, the tenant belongs to another cloud (US Government and China use their own login hosts), or it has no active subscription.`,
    fix: (f) =>
      `Use the Directory (tenant) ID from ${f.portal('Overview')} or the tenant's onmicrosoft.com domain, and check that mailbridge uses the right cloud (login host ${f.loginUrl}).`,
  },
  9001023: {
    health: 'broken_configuration',
    title: "App-only sign-in can't use /common or /consumers",
    cause: (f) =>
      `Client credentials (app-only) requests must name one tenant; /common and /consumers don't${f.sharedTenant ? `, and mailbridge is configured with tenant '${f.sharedTenant}'` : ''}.`,
    fix: (f) =>
      `Use the tenant id or domain, not common or consumers, for client credentials: set mailbridge's tenant to ${f.specificTenant}` +
      (f.specificTenant.startsWith('<') ? ` (the Directory (tenant) ID on ${f.appReg('Overview')}, or a domain such as contoso.onmicrosoft.com).` : '.'),
  },
  50194: {
    health: 'broken_configuration',
    title: 'Single-tenant app used with /common',
    cause: () => "The app is registered for one organization only, and such apps created after October 2018 can't sign in through the /common endpoint.",
    fix: (f) =>
      `Set mailbridge's tenant to ${f.specificTenant} (the Directory (tenant) ID on ${f.appReg('Overview')}), or make the app multi-tenant under ${f.appReg('Authentication', 'Supported account types')}.`,
  },
  9002331: {
    health: 'broken_configuration',
    title: 'App is for personal Microsoft accounts only',
    cause: () => 'The app registration accepts only personal Microsoft accounts (Outlook.com, Hotmail), which sign in through the /consumers endpoint.',
    fix: (f) =>
      `For an Outlook.com mailbox set mailbridge's tenant to consumers. For work or school mailboxes, register an app that accepts organizational accounts (${f.appReg('Authentication', 'Supported account types')}).`,
  },
  70003: {
    health: 'broken_configuration',
    title: 'Grant type not supported for this app',
    cause: () =>
      'Entra does not accept the requested grant type for this app or endpoint. App-only access (client credentials), for example, works only for work or school tenants, never for personal Outlook.com accounts.',
    fix: (f) =>
      `For Outlook.com mailboxes use delegated sign-in (${f.login}); for app-only access use a work or school tenant id and an app registered in it. ${reportBug}`,
  },
  500011: {
    health: 'broken_configuration',
    title: 'Exchange Online resource not found in the tenant',
    cause: (f) =>
      `Entra can't find the resource the token was requested for in ${f.tenantRef}. For mail that resource is Office 365 Exchange Online: the scope's resource is misspelled, the tenant is the wrong one, or the tenant has no Exchange Online subscription.`,
    fix: (f) =>
      `Request exactly ${f.appOnlyScope} for app-only access (or ${f.scope('IMAP.AccessAsUser.All')} and the other delegated scopes), against the tenant that hosts the mailbox. ` +
      `App-only access also needs Exchange Online to know the app and let it into the mailbox: ${f.exchangeSetup}.`,
  },
  9002326: {
    health: 'broken_configuration',
    title: 'Cross-origin token redemption refused',
    cause: () => 'The token request carried a browser Origin header, which Entra allows only for redirect URIs registered as Single-page application.',
    fix: (f) =>
      `Register mailbridge's redirect URI under ${redirectRegistration(f)}, and make sure no browser or proxy adds an Origin header to mailbridge's token requests.`,
  },
  9002325: {
    health: 'broken_configuration',
    title: 'PKCE required for cross-origin redemption',
    cause: () => 'A token request sent from a browser (cross-origin) must use PKCE, and this one did not.',
    fix: (f) => `Register mailbridge's redirect URI under ${redirectRegistration(f)} rather than Single-page application, then sign in again with ${f.login}.`,
  },
  9002327: {
    health: 'broken_configuration',
    title: 'Redirect URI registered as a Single-page application',
    cause: () =>
      'The redirect URI is registered under the Single-page application platform, whose codes only JavaScript in a browser may redeem; mailbridge redeems them itself.',
    fix: (f) =>
      `In ${f.appReg('Authentication')}, remove ${f.redirectUri} from Single-page application and add it under Mobile and desktop applications (or Web, with a client secret), then sign in again with ${f.login}.`,
  },
  50011: {
    health: 'broken_configuration',
    title: 'Redirect URI not registered on the app',
    cause: (f) =>
      `The redirect URI in the sign-in request is not registered for ${f.app}. It must match exactly (scheme, host, path, trailing slash); only the port of an http://localhost URI is ignored.`,
    fix: (f) => `Add the exact redirect URI ${f.redirectUri} under ${redirectRegistration(f)}, Save, and sign in again with ${f.login}.`,
  },
  900971: {
    health: 'broken_configuration',
    title: 'No redirect URI in the request',
    cause: () => 'The sign-in request carried no redirect_uri, and Entra has no registered default to use instead.',
    fix: (f) =>
      `Register mailbridge's redirect URI under ${redirectRegistration(f)} and make sure mailbridge's configuration sets it for this account, then sign in again with ${f.login}.`,
  },
  500113: {
    health: 'broken_configuration',
    title: 'App has no redirect URI registered',
    cause: () => 'The app registration has no redirect (reply) URI at all, so Entra has nowhere to send the sign-in result.',
    fix: (f) => `Add mailbridge's redirect URI (${f.redirectUri}) under ${redirectRegistration(f)}, Save, and sign in again with ${f.login}.`,
  },
  700054: {
    health: 'broken_configuration',
    title: 'ID tokens are not enabled for the app',
    cause: () => "The sign-in asked the authorize endpoint for an ID token directly (response_type id_token), which needs the app's implicit ID-token setting.",
    fix: (f) =>
      `mailbridge needs only the code flow: remove id_token from any configured response type. Or enable ${f.appReg('Authentication', 'Implicit grant and hybrid flows', 'ID tokens')}.`,
  },
  700051: {
    health: 'broken_configuration',
    title: 'Response type not enabled for the app',
    cause: () => 'The sign-in asked for a response type (such as token) that is not enabled for this app.',
    fix: (f) =>
      `mailbridge needs only response_type code: remove other response types from the configuration, or enable them under ${f.appReg('Authentication', 'Implicit grant and hybrid flows')}.`,
  },
  90023: {
    health: 'broken_configuration',
    title: 'Invalid sign-in request',
    cause: () => 'Entra found the authorization request invalid, for example because of an unsupported prompt value.',
    fix: (f) => `Remove custom sign-in parameters (such as prompt) from mailbridge's configuration and sign in again with ${f.login}. ${reportBug}`,
  },
  50105: {
    health: 'broken_configuration',
    title: 'User not assigned to the app',
    cause: (f) => `The Enterprise application for ${f.app} requires user assignment, and this user is not assigned to it.`,
    fix: (f) =>
      `Assign the user: ${f.entApp('Users and groups')} > Add user/group, or set ${f.entApp('Properties')} > Assignment required? = No. Then sign in again with ${f.login}.`,
  },
  7000112: appDisabled,
  70001: appDisabled,

  // Scopes and resources.
  70011: {
    health: 'broken_configuration',
    title: 'Invalid scope',
    cause: () =>
      'Entra rejected a scope of the request: typically an Exchange permission without its resource prefix, a misspelled permission, or a scope this kind of sign-in cannot ask for.',
    fix: (f) =>
      `For delegated mail access request ${f.mailScopes}; for app-only (client credentials) request only ${f.appOnlyScope}. Unprefixed names such as IMAP.AccessAsUser.All or Mail.Read mean Microsoft Graph, whose tokens the mail servers reject.`,
  },
  1002012: {
    health: 'broken_configuration',
    title: 'App-only requests need a /.default scope',
    cause: () =>
      "Client credentials (app-only) requests must ask for '<resource>/.default'; the permissions come from the app's admin-consented Application permissions, not from the scope.",
    fix: (f) =>
      `Use the scope ${f.appOnlyScope}. Add the Application permissions IMAP.AccessAsApp, POP.AccessAsApp or SMTP.SendAsApp of Office 365 Exchange Online under ${f.appReg('API permissions')} > Add a permission > APIs my organization uses, then Grant admin consent for ${f.org}.`,
  },
  28000: multipleResources,
  700022: multipleResources,
  28003: {
    health: 'broken_configuration',
    title: 'Empty scope when redeeming the code',
    cause: () => 'The authorization code was redeemed without a scope, and Entra needs one to know which resource the token is for.',
    fix: (f) =>
      `Redeem with the Exchange scopes, e.g. ${f.mailScopes}; if mailbridge's configuration sets a scope list for this account, make sure it is not empty.`,
  },

  // Users.
  50020: {
    health: 'needs_sign_in',
    title: 'Account belongs to a different organization',
    cause: (f) =>
      `The user signed in with an account (for example a personal Microsoft account, or one from another organization) that does not exist in ${f.tenantRef}, so it can't use the app there.`,
    fix: (f) =>
      `Sign in again with ${f.login} using the mailbox's own work account. If the mailbox lives in another tenant, set mailbridge's tenant to that one; to let an outside user in, invite them as a guest (${f.portal('Users', 'All users', 'New user', 'Invite external user')}).`,
  },
  50126: {
    health: 'needs_sign_in',
    title: 'Wrong user name or password',
    cause: () => 'Entra rejected the user name or password entered during sign-in.',
    fix: (f) =>
      `Sign in again with ${f.login} using the right credentials. If the password is lost, reset it under ${f.portal('Users', 'All users', f.mailbox, 'Reset password')}.`,
  },
  50034: {
    health: 'needs_sign_in',
    title: 'User not found in the tenant',
    cause: (f) =>
      `The account does not exist in ${f.tenantRef}: the user name was mistyped, or the account lives in another tenant than the one mailbridge signs in to.`,
    fix: (f) =>
      `Sign in again with ${f.login} using the exact sign-in name (UPN, which can differ from the email address; see ${f.portal('Users', 'All users')}). If the account lives in another tenant, set mailbridge's tenant to that tenant.`,
  },
  50057: {
    health: 'needs_sign_in',
    title: 'User account disabled',
    cause: () => "The user's account is disabled in Entra (or disabled on-premises and synchronised), so it can neither sign in nor refresh tokens.",
    fix: (f) =>
      `Re-enable it (${f.portal('Users', 'All users', f.mailbox, 'Edit properties', 'Settings', 'Account enabled')}; for synchronised users, in on-premises Active Directory), then sign in again with ${f.login}.`,
  },
  50053: {
    health: 'needs_sign_in',
    title: 'Account locked after failed sign-ins',
    cause: () =>
      'Entra locked the account after too many sign-in attempts with a wrong password, or blocked the sign-in because it came from an IP address with malicious activity.',
    fix: (f) =>
      `Stop any client that keeps trying an old password, wait for the lockout to end (it grows with repeated failures), then sign in with ${f.login}. ${f.portal('Monitoring & health', 'Sign-in logs')} shows, for error 50053, which of the two reasons applied.`,
  },
  53003: {
    health: 'broken_configuration',
    title: 'Blocked by Conditional Access',
    cause: () =>
      "A Conditional Access policy blocked token issuance for this sign-in, for example one that blocks this app, the mailbridge host's location or IP address, its platform or its device state.",
    fix: (f) =>
      `Find the policy: ${f.portal('Monitoring & health', 'Sign-in logs')} > the failed sign-in > Conditional Access tab. Exclude this app (or the mailbridge host's network, as a named location) from it, or meet its conditions; then sign in again with ${f.login}.`,
  },

  // Device code flow.
  70016: {
    health: 'temporary',
    title: 'Waiting for the user to finish the device sign-in',
    cause: () => 'The device-code sign-in is still pending: the user has not yet entered the code on the verification page and finished signing in.',
    fix: () =>
      'Nothing is wrong. Enter the code shown by mailbridge on the verification page it names and finish signing in; mailbridge keeps polling until the code expires after 15 minutes.',
  },
  70019: {
    health: 'needs_sign_in',
    title: 'Device code expired',
    cause: () => 'The device code expired (after 15 minutes) before the user finished signing in.',
    fix: (f) => `Run ${f.login} again and finish the sign-in within 15 minutes.`,
  },
  70018: {
    health: 'needs_sign_in',
    title: 'Wrong device code entered',
    cause: () => 'The code typed on the verification page does not belong to a pending device sign-in: a typo, or a code from an older attempt.',
    fix: (f) => `Run ${f.login} again and type the new code exactly as shown.`,
  },
  90120: {
    health: 'needs_sign_in',
    title: 'Device sign-in already completed or declined',
    cause: () => 'This device code was already used: the user approved or declined it earlier.',
    fix: (f) => `Run ${f.login} again for a new code; if the user declined, they accept this time.`,
  },

  // Malformed requests.
  90014: {
    health: 'broken_configuration',
    title: 'Required field missing from the request',
    cause: () => 'A field Entra requires was missing from the request or its credential, for example an empty client id or client assertion.',
    fix: (f) =>
      `Check that mailbridge's configuration for this account has the client id (${f.clientId}) and, for a confidential app, its secret or certificate. ${reportBug}`,
  },
  900144: {
    health: 'broken_configuration',
    title: 'Required parameter missing from the request',
    cause: () => "The request lacked a parameter Entra requires (the error names it, e.g. 'client_id' or 'scope'); often a configuration value is empty.",
    fix: (f) => `Check that mailbridge's configuration for this account sets the client id (${f.clientId}), the tenant and the protocols. ${reportBug}`,
  },
  90015: {
    health: 'broken_configuration',
    title: 'Duplicated or oversized request parameter',
    cause: () => 'Entra rejected the request because a parameter was duplicated or the query string was too long (the error text says which).',
    fix: (f) => `Remove custom or duplicated sign-in parameters from mailbridge's configuration and sign in again with ${f.login}. ${reportBug}`,
  },
  900561: {
    health: 'broken_configuration',
    title: 'Token endpoint received GET instead of POST',
    cause: () =>
      'The token endpoint accepts only POST requests but received a GET. Something in between turned the POST into a GET: a redirect (e.g. from an http:// login URL to https://) or a proxy.',
    fix: (f) => `Set the login URL to exactly ${f.loginUrl} (https, no redirect) and check any HTTP proxy between mailbridge and Entra.`,
  },
  50147: {
    health: 'broken_configuration',
    title: 'Invalid PKCE code challenge',
    cause: () => 'The PKCE code_challenge of the sign-in, or its method (only plain and S256 are allowed), was invalid.',
    fix: (f) => `Sign in again with ${f.login}. ${reportBug}`,
  },
  501491: {
    health: 'broken_configuration',
    title: 'PKCE code challenge has the wrong size',
    cause: () => 'The PKCE code_challenge of the sign-in had an invalid length.',
    fix: (f) => `Sign in again with ${f.login}. ${reportBug}`,
  },

  // Temporary conditions.
  50196: {
    health: 'temporary',
    title: 'Same request repeated too often (loop detected)',
    cause: () => 'Entra saw the same request many times in a short period and stopped answering it, treating the client as stuck in a loop.',
    fix: () =>
      'Retry after a pause of a few minutes. Make sure only one mailbridge instance refreshes this account; two instances sharing its grant refresh it twice as often.',
  },
  90055: {
    health: 'temporary',
    title: 'Tenant throttled by Entra',
    cause: (f) => `Entra is throttling requests for ${f.tenantRef} because too many requests came in.`,
    fix: (f) =>
      `Retry later with back-off, and request tokens less often (reuse an access token until shortly before it expires). If it persists, ${f.portal('Monitoring & health', 'Sign-in logs')} shows which app floods Entra.`,
  },
};

export const EXPLAINED_CODES: readonly number[] = Object.freeze(Object.keys(ENTRIES).map(Number));

export function explainAadsts(code: number, ctx: ExplanationContext = {}): Explanation {
  const f = factsOf(ctx);
  const entry = Object.hasOwn(ENTRIES, code) ? ENTRIES[code] : undefined;
  if (!entry) {
    const lookup = `${f.loginUrl}/error?code=${code}`;
    return {
      code,
      title: `Entra error AADSTS${code}`,
      cause: `Microsoft Entra refused the request with AADSTS${code}, which mailbridge has no specific explanation for, so it can't tell whether the problem is temporary.`,
      fix: `Look the code up at ${lookup}. ${f.portal('Monitoring & health', 'Sign-in logs')} shows the failed sign-in with its failure reason (search for the Correlation ID in the error).`,
      health: 'broken_configuration',
      retryable: false,
    };
  }
  return {
    code,
    title: entry.title,
    cause: entry.cause(f),
    fix: entry.fix(f),
    health: entry.health,
    retryable: entry.health === 'temporary',
  };
}

// Codes Entra puts ahead of the specific one, e.g. `AADSTS70002: Error validating credentials.
// AADSTS54005: ...` with `error_codes: [70002, 54005]`.
const WRAPPER_CODES = new Set([70002]);

/**
 * The AADSTS code an error is about: the first in an `error_description` ("AADSTS7000215: ..."),
 * or the last of `error_codes` (Entra puts the specific one last, e.g. [70002, 54005] → 54005).
 * A leading generic code (70002) is passed over when a more specific one follows, and in
 * `error_codes` an explained code wins over a later unexplained one (e.g. [50173, 90033] → 50173).
 */
export function aadstsCodeOf(errorDescriptionOrCodes: string | number[] | undefined): number | undefined {
  if (errorDescriptionOrCodes === undefined) return undefined;
  if (typeof errorDescriptionOrCodes === 'string') {
    const codes = [...errorDescriptionOrCodes.matchAll(/AADSTS(\d{1,12})/gi)].map((m) => Number(m[1])).filter((c) => Number.isSafeInteger(c));
    return codes.find((c) => !WRAPPER_CODES.has(c)) ?? codes[0];
  }
  const codes = errorDescriptionOrCodes.filter((c) => Number.isSafeInteger(c) && c > 0);
  const specific = codes.filter((c) => !WRAPPER_CODES.has(c));
  const candidates = specific.length > 0 ? specific : codes;
  return candidates.findLast((c) => Object.hasOwn(ENTRIES, c)) ?? candidates.at(-1);
}
