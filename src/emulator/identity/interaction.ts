// The interactive half of the identity platform as one small state machine. /authorize, the
// device code page and /adminconsent each make a "pending interaction" (kept server-side under a
// random id that the pages carry in a hidden `ctx` field, bound to the browser by a cookie); the
// sign-in, account picker, MFA and consent pages move it from step to step, and it ends in one of
// three ways: a code (or an error) redirected to the app, a device code approved, or an admin
// consent recorded.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App, User } from '../scenario/schema.ts';
import { AadError, entraTimestamp, renderAadError, type ErrorContext } from './aad-error.ts';
import { AADSTS, isAadstsCode } from './aadsts-catalogue.ts';
import { checkUserForAuthority, findApp, isPersonal, missingConsent, recordConsent, resolveAuthority, type Authority } from './directory.ts';
import type { FormParams } from './form.ts';
import { requestOrigin } from './http.ts';
import { hasAnyRedirectUri, isAllowedRedirectUri, matchRedirectUri, type RedirectUriKind } from './redirect-uris.ts';
import { RESOURCES, type OidcScope, type ParsedScopes, type Permission } from './scopes.ts';
import { hashToken, randomToken, type IdentityState, type Session, type SignIn } from './state.ts';
import { clientInfo, idToken, newAuthorizationCode } from './tokens.ts';
import { accountPickerPage } from './pages/account-picker.ts';
import { adminConsentPage } from './pages/admin-consent.ts';
import { adminApprovalPage, consentPage, type ListedPermission } from './pages/consent.ts';
import { deviceDeclinedPage, deviceDonePage } from './pages/device.ts';
import { errorPage } from './pages/error.ts';
import { formPostPage } from './pages/form-post.ts';
import type { RenderedPage } from './pages/layout.ts';
import { mfaApprovePage, mfaDeniedPage, mfaEnrollPage } from './pages/mfa.ts';
import { signInPage } from './pages/sign-in.ts';

export const SESSION_COOKIE = 'ESTSAUTH';
/** Binds a pending interaction to the browser that started it. */
export const BROWSER_COOKIE = 'buid';
/** How long a sign-in page stays usable (emulator clock). */
const PENDING_TTL_MS = 60 * 60 * 1000;
const MAX_PENDING = 10_000;

export type ResponseMode = 'query' | 'fragment' | 'form_post';
export const PROMPTS = ['none', 'login', 'consent', 'select_account'] as const;
export type Prompt = (typeof PROMPTS)[number];

// ---------------------------------------------------------------------------------------------
// Errors.

/** `AADSTS<code>: <text>` for the /error lookup page, placeholders left visible. */
export function lookupErrorText(code: number): string | undefined {
  return isAadstsCode(code) ? `AADSTS${code}: ${AADSTS[code].text}` : undefined;
}

// ---------------------------------------------------------------------------------------------
// Requests, replies and cookies.

export interface Web {
  state: IdentityState;
  request: FastifyRequest;
  reply: FastifyReply;
  /** Set-Cookie values to send with the reply. */
  cookies: string[];
  /** The caller's `client-request-id`, echoed as the correlation id of errors. */
  correlationId?: string;
}

export type Outcome = { kind: 'page'; status: number; page: RenderedPage } | { kind: 'redirect'; location: string };

export function newWeb(state: IdentityState, request: FastifyRequest, reply: FastifyReply): Web {
  return { state, request, reply, cookies: [] };
}

function errorContext(web: Web): ErrorContext {
  return {
    nowMs: web.state.clock.nowMs(),
    origin: requestOrigin(web.request, web.state),
    ...(web.correlationId ? { correlationId: web.correlationId } : {}),
  };
}

function readCookies(request: FastifyRequest): Map<string, string> {
  const jar = new Map<string, string>();
  for (const part of String(request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!jar.has(name)) jar.set(name, part.slice(eq + 1).trim());
  }
  return jar;
}

function cookie(name: string, value: string, maxAgeSeconds?: number): string {
  return `${name}=${value}; path=/; secure; HttpOnly; SameSite=None${maxAgeSeconds !== undefined ? `; Max-Age=${maxAgeSeconds}` : ''}`;
}

export function clearSessionCookie(web: Web): void {
  web.cookies.push(cookie(SESSION_COOKIE, '', 0));
}

const TOKEN_VALUE = /^[\w-]{20,100}$/;

function browserId(web: Web): string {
  const existing = readCookies(web.request).get(BROWSER_COOKIE);
  if (existing && TOKEN_VALUE.test(existing)) return existing;
  const made = randomToken(24);
  web.cookies.push(cookie(BROWSER_COOKIE, made));
  return made;
}

export function currentSession(web: Web): Session | undefined {
  const id = readCookies(web.request).get(SESSION_COOKIE);
  return id && TOKEN_VALUE.test(id) ? web.state.sessions.get(id) : undefined;
}

/** The `sid` of a session: a GUID derived from (never equal to) the secret cookie value. */
function sessionSid(session: Session): string {
  const h = createHash('sha256').update(`sid:${session.id}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Remembers a completed sign-in in the browser's session (made on first use). */
function saveSignIn(web: Web, userId: string, amr: string[], authTimeSec: number): SignIn {
  let session = currentSession(web);
  if (!session) {
    session = { id: randomToken(32), signIns: [] };
    web.state.sessions.set(session.id, session);
    web.cookies.push(cookie(SESSION_COOKIE, session.id));
  }
  const signIn: SignIn = { userId, authTimeSec, amr: [...amr], sessionId: sessionSid(session) };
  session.signIns = session.signIns.filter((s) => s.userId !== userId);
  session.signIns.push(signIn);
  return signIn;
}

const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'";

export function sendOutcome(web: Web, outcome: Outcome): FastifyReply {
  const reply = web.reply;
  for (const c of web.cookies) reply.header('set-cookie', c);
  reply.header('cache-control', 'no-store, no-cache').header('pragma', 'no-cache').header('x-ms-request-id', randomUUID());
  if (outcome.kind === 'redirect') return reply.code(302).header('location', outcome.location).send();
  const scripts = outcome.page.scriptHashes.map((h) => ` '${h}'`).join('');
  return reply
    .code(outcome.status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', scripts ? `${PAGE_CSP}; script-src${scripts}` : PAGE_CSP)
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'strict-origin-when-cross-origin')
    .send(outcome.page.html);
}

function pageOutcome(page: RenderedPage, status = 200): Outcome {
  return { kind: 'page', status, page };
}

/** The HTML error page (HTTP 400) for errors that are not sent back to the app. */
export function errorPageOutcome(web: Web, err: AadError, appName?: string): Outcome {
  const d = renderAadError(err, errorContext(web));
  return pageOutcome(
    errorPage({ message: err.message, traceId: d.trace_id, correlationId: d.correlation_id, timestamp: d.timestamp, ...(appName ? { appName } : {}) }),
    400,
  );
}

export function staleRequestOutcome(web: Web): Outcome {
  const ctx = errorContext(web);
  return pageOutcome(
    errorPage({
      title: 'Sign in',
      message:
        'This sign-in request is no longer valid (it expired, was finished already, or was started in another browser). Go back to the application and sign in again.',
      traceId: randomUUID(),
      correlationId: ctx.correlationId ?? randomUUID(),
      timestamp: entraTimestamp(ctx.nowMs),
    }),
    400,
  );
}

/** Wraps a page route: Entra errors become the error page, anything unexpected a generic one. */
export function pageRoute(state: IdentityState, handler: (web: Web) => Promise<Outcome>) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const web = newWeb(state, request, reply);
    let outcome: Outcome;
    try {
      outcome = await handler(web);
    } catch (err) {
      if (err instanceof AadError) {
        outcome = errorPageOutcome(web, err);
      } else {
        request.log.error({ err }, 'unexpected error on an identity emulator page');
        const ctx = errorContext(web);
        outcome = pageOutcome(
          errorPage({
            message: 'The identity emulator could not complete this request; see its log.',
            traceId: randomUUID(),
            correlationId: randomUUID(),
            timestamp: entraTimestamp(ctx.nowMs),
          }),
          400,
        );
      }
    }
    return sendOutcome(web, outcome);
  };
}

// ---------------------------------------------------------------------------------------------
// Responses to the app.

interface ResponseTarget {
  redirectUri: string;
  responseMode: ResponseMode;
}

/** Sends fields to the app: query or fragment on the redirect URI, or an auto-posting form. */
export function appResponse(target: ResponseTarget, fields: [string, string][]): Outcome {
  if (target.responseMode === 'form_post') return pageOutcome(formPostPage({ action: target.redirectUri, fields }));
  const url = new URL(target.redirectUri);
  url.hash = '';
  // URL#href adds the "/" a URI without a path is returned with (section 2.2).
  const encoded = new URLSearchParams(fields).toString();
  if (target.responseMode === 'fragment') return { kind: 'redirect', location: `${url.href}#${encoded}` };
  return { kind: 'redirect', location: `${url.href}${url.search ? '&' : '?'}${encoded}` };
}

/** The error fields of an authorize (or admin consent) response. */
export function errorFields(web: Web, err: AadError, state: string | undefined, errorOverride?: string): [string, string][] {
  const d = renderAadError(err, errorContext(web));
  const fields: [string, string][] = [
    ['error', errorOverride ?? d.error],
    ['error_description', d.error_description],
    ['error_uri', d.error_uri],
  ];
  if (state !== undefined) fields.push(['state', state]);
  return fields;
}

// ---------------------------------------------------------------------------------------------
// The client and redirect URI checks shared by /authorize and /adminconsent: failures here are
// shown as a page, because the redirect target is not trusted yet.

export interface ValidatedClient {
  authority: Authority;
  app: App;
  redirectUri: string;
  redirectKind: RedirectUriKind;
}

export function validateClientAndRedirect(web: Web, tenantSegment: string, params: FormParams): ValidatedClient {
  const authority = resolveAuthority(web.state.scenario, tenantSegment);
  const clientId = params.get('client_id');
  if (clientId === undefined || clientId === '') throw new AadError(900144, { name: 'client_id' });
  const app = findApp(web.state.scenario, clientId, authority);
  const requested = params.get('redirect_uri');
  if (!hasAnyRedirectUri(app)) throw new AadError(500113);
  if (requested === undefined || requested === '') throw new AadError(900971);
  const match = isAllowedRedirectUri(requested) ? matchRedirectUri(app, requested) : undefined;
  if (!match) throw new AadError(50011, { uri: requested, appId: app.clientId });
  return { authority, app, redirectUri: requested, redirectKind: match.kind };
}

// ---------------------------------------------------------------------------------------------
// Pending interactions.

export interface AuthorizeTarget {
  kind: 'authorize';
  /** Exactly as the client sent it (the token request must repeat it). */
  redirectUri: string;
  redirectKind: RedirectUriKind;
  responseMode: ResponseMode;
  idToken: boolean;
  state?: string;
  nonce?: string;
  codeChallenge?: string;
  codeChallengeMethod?: 'S256' | 'plain';
  clientInfo: boolean;
}

export interface DeviceTarget {
  kind: 'device';
  deviceCode: string;
}

export interface AdminConsentTarget {
  kind: 'adminconsent';
  redirectUri: string;
  responseMode: 'query';
  state?: string;
  /** `scope` echoed on success (v2 endpoint only). */
  scopeEcho?: string;
  /** Scopes the organisation-wide consent records. */
  consentScopes: string[];
  listed: ListedPermission[];
}

export type Step = 'pick' | 'signin' | 'mfa' | 'enroll' | 'consent' | 'adminApproval' | 'adminConsent';

export interface PendingInteraction {
  id: string;
  browserId: string;
  createdAtMs: number;
  authority: Authority;
  clientId: string;
  target: AuthorizeTarget | DeviceTarget | AdminConsentTarget;
  permissions: Permission[];
  directives: OidcScope[];
  defaults: ParsedScopes['defaults'];
  prompt?: Prompt;
  loginHint?: string;
  step: Step;
  userId?: string;
  /** How the user proved who they are so far (MFA may still be missing). */
  auth?: { amr: string[]; authTimeSec: number };
  /** Set once the sign-in is complete and kept in the browser's session. */
  signIn?: SignIn;
}

export type PendingInit = Pick<PendingInteraction, 'authority' | 'clientId' | 'target' | 'permissions' | 'directives' | 'defaults'> &
  Partial<Pick<PendingInteraction, 'prompt' | 'loginHint'>>;

const stores = new WeakMap<IdentityState, Map<string, PendingInteraction>>();

function pendingStore(state: IdentityState): Map<string, PendingInteraction> {
  let store = stores.get(state);
  if (!store) {
    store = new Map();
    stores.set(state, store);
  }
  return store;
}

function createPending(web: Web, init: PendingInit): PendingInteraction {
  const store = pendingStore(web.state);
  const now = web.state.clock.nowMs();
  for (const [id, p] of store) {
    if (now - p.createdAtMs > PENDING_TTL_MS || now < p.createdAtMs - PENDING_TTL_MS) store.delete(id);
  }
  while (store.size >= MAX_PENDING) {
    const oldest = store.keys().next().value;
    if (oldest === undefined) break;
    store.delete(oldest);
  }
  const pending: PendingInteraction = { ...init, id: randomToken(32), browserId: browserId(web), createdAtMs: now, step: 'signin' };
  store.set(pending.id, pending);
  return pending;
}

function loadPending(web: Web, form: FormParams): PendingInteraction | undefined {
  let id: string | undefined;
  try {
    id = form.get('ctx');
  } catch {
    return undefined;
  }
  if (!id) return undefined;
  const store = pendingStore(web.state);
  const pending = store.get(id);
  if (!pending) return undefined;
  if (Math.abs(web.state.clock.nowMs() - pending.createdAtMs) > PENDING_TTL_MS) {
    store.delete(id);
    return undefined;
  }
  if (readCookies(web.request).get(BROWSER_COOKIE) !== pending.browserId) return undefined;
  return pending;
}

function endPending(web: Web, p: PendingInteraction): void {
  pendingStore(web.state).delete(p.id);
}

function appOf(web: Web, p: PendingInteraction): App {
  const app = web.state.scenario.apps.find((a) => a.clientId === p.clientId);
  if (!app) throw new AadError(700016, { appId: p.clientId, tenant: p.authority.segment });
  return app;
}

function userOf(web: Web, p: PendingInteraction): User {
  const user = p.userId ? web.state.findUserById(p.userId) : undefined;
  if (!user) throw new AadError(50034, { EmailHidden: 'unknown', tenant: p.authority.segment });
  return user;
}

function upnOf(web: Web, p: PendingInteraction): string {
  return p.userId ? (web.state.findUserById(p.userId)?.userPrincipalName ?? '') : '';
}

interface Candidate {
  user: User;
  signIn: SignIn;
}

/** Users signed in in this browser who may use this app through this authority. */
function sessionCandidates(web: Web, p: PendingInteraction, app: App): Candidate[] {
  const session = currentSession(web);
  if (!session) return [];
  const out: Candidate[] = [];
  for (const signIn of session.signIns) {
    const user = web.state.findUserById(signIn.userId);
    if (!user || !user.accountEnabled || user.locked) continue;
    if (user.tokensValidFrom && signIn.authTimeSec * 1000 < Date.parse(user.tokensValidFrom)) continue;
    try {
      checkUserForAuthority(web.state.scenario, user.userPrincipalName, app, p.authority);
    } catch {
      continue;
    }
    out.push({ user, signIn });
  }
  return out;
}

function isAdminOnly(p: Permission): boolean {
  return RESOURCES[p.resource].adminOnly.some((n) => n.toLowerCase() === p.name.toLowerCase());
}

/** Requested permissions, with `<resource>/.default` read as what is already consented there. */
function effectivePermissions(web: Web, p: PendingInteraction, app: App, user: User): Permission[] {
  const out = [...p.permissions];
  for (const d of p.defaults) {
    const prefix = d.scope.slice(0, d.scope.length - '/.default'.length);
    for (const consent of web.state.scenario.consents) {
      if (consent.clientId.toLowerCase() !== app.clientId.toLowerCase() || consent.tenant !== user.tenant) continue;
      if (consent.user && consent.user.toLowerCase() !== user.userPrincipalName.toLowerCase()) continue;
      for (const scope of consent.scopes) {
        const name = scope.slice(scope.lastIndexOf('/') + 1);
        const canonical = RESOURCES[d.resource].delegated.find((n) => n.toLowerCase() === name.toLowerCase());
        if (!canonical || name === '.default') continue;
        const belongs =
          Object.keys(RESOURCES[d.resource].prefixes).some((k) => scope.toLowerCase().startsWith(`${k.toLowerCase()}/`)) ||
          (d.resource === 'graph' && !scope.includes('/'));
        if (!belongs || out.some((q) => q.resource === d.resource && q.name === canonical)) continue;
        out.push({ resource: d.resource, name: canonical, scope: `${prefix}/${canonical}`, aud: d.aud });
      }
    }
  }
  return out;
}

const PERMISSION_TITLES: Record<string, string> = {
  'IMAP.AccessAsUser.All': 'Read and write access to mailboxes via IMAP.',
  'POP.AccessAsUser.All': 'Read and write access to mailboxes via POP.',
  'SMTP.Send': 'Send emails from mailboxes using SMTP AUTH.',
  'EWS.AccessAsUser.All': 'Access mailboxes as the signed-in user via Exchange Web Services',
  'EAS.AccessAsUser.All': 'Access mailboxes via Exchange ActiveSync',
  full_access_as_user: 'Access mailboxes as the signed-in user via Exchange Web Services',
  'Mail.Read': 'Read your mail',
  'Mail.ReadBasic': 'Read user basic mail',
  'Mail.ReadWrite': 'Read and write access to your mail',
  'Mail.Send': 'Send mail as you',
  'Mail.Read.Shared': 'Read user and shared mail',
  'Mail.ReadWrite.Shared': 'Read and write user and shared mail',
  'Mail.Send.Shared': 'Send mail on behalf of others',
  'User.Read': 'Sign you in and read your profile',
  'User.ReadBasic.All': "Read all users' basic profiles",
  'User.Read.All': "Read all users' full profiles",
  'Directory.Read.All': 'Read directory data',
};

const APP_ROLE_TITLES: Record<string, string> = {
  'IMAP.AccessAsApp': 'IMAP.AccessAsApp: access mailboxes via IMAP as the app',
  'POP.AccessAsApp': 'POP.AccessAsApp: access mailboxes via POP as the app',
  'SMTP.SendAsApp': 'SMTP.SendAsApp: send emails from mailboxes using SMTP AUTH as the app',
  full_access_as_app: 'full_access_as_app: use Exchange Web Services with full access to all mailboxes',
  'Mail.Read': 'Mail.Read: read mail in all mailboxes',
  'Mail.ReadWrite': 'Mail.ReadWrite: read and write mail in all mailboxes',
  'Mail.Send': 'Mail.Send: send mail as any user',
  'Mail.ReadBasic.All': 'Mail.ReadBasic.All: read basic mail in all mailboxes',
  'User.Read.All': "User.Read.All: read all users' full profiles",
};

export function listDelegated(permissions: Permission[], directives: OidcScope[] = []): ListedPermission[] {
  const listed: ListedPermission[] = permissions.map((p) => ({ title: PERMISSION_TITLES[p.name] ?? p.name, scope: p.scope }));
  if (directives.includes('openid') || directives.includes('profile'))
    listed.push({ title: 'View your basic profile', scope: directives.filter((d) => d === 'openid' || d === 'profile').join(' ') });
  if (directives.includes('email')) listed.push({ title: 'View your email address', scope: 'email' });
  if (directives.includes('offline_access')) listed.push({ title: 'Maintain access to data you have given it access to', scope: 'offline_access' });
  return listed;
}

export function listAppRoles(resource: keyof typeof RESOURCES, roles: string[]): ListedPermission[] {
  const prefix = resource === 'graph' ? 'https://graph.microsoft.com' : 'https://outlook.office365.com';
  return roles.map((r) => ({ title: APP_ROLE_TITLES[r] ?? r, scope: `${prefix}/${r}` }));
}

// ---------------------------------------------------------------------------------------------
// The steps.

function action(p: PendingInteraction, step: Step): string {
  const segment = encodeURIComponent(p.authority.segment);
  if (step === 'pick' || step === 'signin') return `/${segment}/login`;
  if (step === 'mfa' || step === 'enroll') return `/${segment}/SAS/ProcessAuth`;
  return `/${segment}/Consent/Set`;
}

interface SignInError {
  message: string;
  detail?: string;
  field: 'login' | 'passwd';
  login: string;
}

function render(web: Web, p: PendingInteraction, error?: SignInError): Outcome {
  const app = appOf(web, p);
  const ctx = p.id;
  const url = action(p, p.step);
  switch (p.step) {
    case 'pick':
      return pageOutcome(
        accountPickerPage({
          action: url,
          ctx,
          appName: app.displayName,
          accounts: sessionCandidates(web, p, app).map((c) => ({ upn: c.user.userPrincipalName, displayName: c.user.displayName })),
        }),
      );
    case 'signin': {
      const login = error?.login ?? p.loginHint;
      return pageOutcome(
        signInPage({
          action: url,
          ctx,
          appName: app.displayName,
          ...(login !== undefined ? { login } : {}),
          ...(error ? { error: { message: error.message, field: error.field, ...(error.detail ? { detail: error.detail } : {}) } } : {}),
        }),
      );
    }
    case 'mfa':
      return pageOutcome(mfaApprovePage({ action: url, ctx, upn: upnOf(web, p) }));
    case 'enroll': {
      const resource = RESOURCES[p.permissions[0]?.resource ?? 'graph'].appId;
      return pageOutcome(mfaEnrollPage({ action: url, ctx, upn: upnOf(web, p), detail: new AadError(50079, { resource }).message }));
    }
    case 'consent': {
      const user = userOf(web, p);
      const permissions = effectivePermissions(web, p, app, user);
      return pageOutcome(
        consentPage({
          action: url,
          ctx,
          appName: app.displayName,
          upn: user.userPrincipalName,
          permissions: listDelegated(permissions, p.directives),
          offerOrgConsent: user.admin && !isPersonal(user),
        }),
      );
    }
    case 'adminApproval': {
      const user = userOf(web, p);
      if (p.target.kind === 'adminconsent') {
        return pageOutcome(adminApprovalPage({ action: url, ctx, appName: app.displayName, upn: user.userPrincipalName, permissions: [] }));
      }
      const needed = missingConsent(web.state.scenario, app, user, effectivePermissions(web, p, app, user)).filter(isAdminOnly);
      return pageOutcome(adminApprovalPage({ action: url, ctx, appName: app.displayName, upn: user.userPrincipalName, permissions: listDelegated(needed) }));
    }
    case 'adminConsent': {
      const target = p.target as AdminConsentTarget;
      return pageOutcome(adminConsentPage({ action: url, ctx, appName: app.displayName, upn: upnOf(web, p), permissions: target.listed }));
    }
  }
}

/** Ends the interaction with an error: redirected to the app, or (device flow) shown. */
function fail(web: Web, p: PendingInteraction, err: AadError, errorOverride?: string): Outcome {
  endPending(web, p);
  const target = p.target;
  if (target.kind === 'device') return errorPageOutcome(web, err);
  return appResponse(target, errorFields(web, err, target.state, errorOverride));
}

function declineDevice(web: Web, p: PendingInteraction, err: AadError): Outcome {
  endPending(web, p);
  const target = p.target as DeviceTarget;
  const record = web.state.deviceCodes.get(target.deviceCode);
  if (record && record.status === 'pending') record.status = 'declined';
  return pageOutcome(deviceDeclinedPage({ appName: appOf(web, p).displayName, detail: err.message }));
}

/** Starts an interaction: silent (prompt=none), single sign-on from the session, or a page. */
export async function begin(web: Web, init: PendingInit): Promise<Outcome> {
  const p = createPending(web, init);
  const app = appOf(web, p);
  const candidates = sessionCandidates(web, p, app);
  const hint = p.loginHint?.trim().toLowerCase();
  const hinted = hint ? candidates.filter((c) => c.user.userPrincipalName.toLowerCase() === hint) : candidates;

  if (p.target.kind === 'authorize' && p.prompt === 'none') {
    const only = hinted.length === 1 ? hinted[0] : undefined;
    if (!only) return fail(web, p, new AadError(50058));
    return useSignIn(web, p, only, true);
  }
  if (p.prompt === 'login') {
    p.step = 'signin';
  } else if (p.prompt === 'select_account' || p.target.kind !== 'authorize') {
    p.step = candidates.length > 0 ? 'pick' : 'signin';
  } else if (hint) {
    const only = hinted[0];
    if (only) return useSignIn(web, p, only, false);
    p.step = 'signin';
  } else if (candidates.length === 1 && candidates[0]) {
    return useSignIn(web, p, candidates[0], false);
  } else {
    p.step = candidates.length > 1 ? 'pick' : 'signin';
  }
  return render(web, p);
}

function useSignIn(web: Web, p: PendingInteraction, c: Candidate, silent: boolean): Promise<Outcome> {
  p.userId = c.user.id;
  p.auth = { amr: [...c.signIn.amr], authTimeSec: c.signIn.authTimeSec };
  p.signIn = c.signIn;
  return identified(web, p, silent);
}

/** The user is known: armed failures, Conditional Access, then MFA. */
async function identified(web: Web, p: PendingInteraction, silent: boolean): Promise<Outcome> {
  const user = userOf(web, p);
  const app = appOf(web, p);
  if (p.target.kind === 'authorize') {
    try {
      web.state.checkFailures('authorize', { clientId: app.clientId, user });
    } catch (err) {
      if (err instanceof AadError) return fail(web, p, err);
      throw err;
    }
  }
  if (user.blockedByConditionalAccess) {
    if (silent) return fail(web, p, new AadError(53003), 'access_denied');
    endPending(web, p);
    return errorPageOutcome(web, new AadError(53003), app.displayName);
  }
  return afterPassword(web, p, silent);
}

async function afterPassword(web: Web, p: PendingInteraction, silent: boolean): Promise<Outcome> {
  const user = userOf(web, p);
  const amr = p.auth?.amr ?? [];
  const resource = RESOURCES[p.permissions[0]?.resource ?? 'graph'].appId;
  if (user.mfa === 'enroll') {
    if (silent) return fail(web, p, new AadError(50079, { resource }), 'interaction_required');
    p.step = 'enroll';
    return render(web, p);
  }
  if (user.mfa === 'required' && !amr.includes('mfa')) {
    if (silent) return fail(web, p, new AadError(50076, { resource }), 'interaction_required');
    p.step = 'mfa';
    return render(web, p);
  }
  if (!p.signIn) p.signIn = saveSignIn(web, user.id, amr, p.auth?.authTimeSec ?? web.state.clock.nowSeconds());
  return afterMfa(web, p, silent);
}

async function afterMfa(web: Web, p: PendingInteraction, silent: boolean): Promise<Outcome> {
  const user = userOf(web, p);
  const app = appOf(web, p);
  if (p.target.kind === 'adminconsent') {
    p.step = user.admin && !isPersonal(user) ? 'adminConsent' : 'adminApproval';
    return render(web, p);
  }
  const missing = missingConsent(web.state.scenario, app, user, effectivePermissions(web, p, app, user));
  if (silent) {
    if (missing.length > 0) return fail(web, p, new AadError(65001, { appId: app.clientId, appName: app.displayName }), 'consent_required');
    return complete(web, p);
  }
  if (!user.admin && missing.some(isAdminOnly)) {
    p.step = 'adminApproval';
    return render(web, p);
  }
  if (missing.length > 0 || p.prompt === 'consent') {
    p.step = 'consent';
    return render(web, p);
  }
  return complete(web, p);
}

/** The end of a successful interaction: a code for the app, or the device approved. */
async function complete(web: Web, p: PendingInteraction): Promise<Outcome> {
  endPending(web, p);
  const { state } = web;
  const app = appOf(web, p);
  const user = userOf(web, p);
  const signIn = p.signIn;
  if (!signIn) throw new Error('interaction completed without a sign-in');
  const target = p.target;
  if (target.kind === 'device') {
    const record = state.deviceCodes.get(target.deviceCode);
    if (!record) return errorPageOutcome(web, new AadError(70018));
    if (state.clock.nowMs() > record.expiresAtMs) return errorPageOutcome(web, new AadError(70019));
    if (record.status !== 'pending') return errorPageOutcome(web, new AadError(90120));
    record.status = 'approved';
    record.signIn = signIn;
    return pageOutcome(deviceDonePage({ appName: app.displayName, upn: user.userPrincipalName }));
  }
  if (target.kind !== 'authorize') throw new Error('admin consent completes through its own page');
  const code = newAuthorizationCode(user);
  state.codes.set(hashToken(code), {
    clientId: app.clientId,
    tenantId: user.tenant,
    redirectUri: target.redirectUri,
    ...(target.codeChallenge !== undefined ? { codeChallenge: target.codeChallenge, codeChallengeMethod: target.codeChallengeMethod ?? 'plain' } : {}),
    ...(target.nonce !== undefined ? { nonce: target.nonce } : {}),
    permissions: effectivePermissions(web, p, app, user),
    directives: p.directives,
    signIn,
    issuedAtMs: state.clock.nowMs(),
    redeemed: false,
    spa: target.redirectKind === 'spa',
  });
  const fields: [string, string][] = [['code', code]];
  if (target.idToken) fields.push(['id_token', await idToken(state, app, user, signIn, target.nonce, p.directives.includes('email'))]);
  if (target.clientInfo) fields.push(['client_info', clientInfo(user)]);
  if (target.state !== undefined) fields.push(['state', target.state]);
  fields.push(['session_state', signIn.sessionId]);
  return appResponse(target, fields);
}

// ---------------------------------------------------------------------------------------------
// Form posts from the pages.

const SIGN_IN_TEXT = {
  empty: 'Enter a valid email address, phone number, or Skype name.',
  50034: 'This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin.',
  50053: 'Your account is locked. Contact your support person to unlock it, then try again.',
  50126: "Your account or password is incorrect. If you don't remember your password, reset it now.",
  50057: 'Your account has been disabled. Contact your support person to re-enable it, then try again.',
} as const;

/** POST /{tenant}/login: the sign-in form and the account picker. */
export async function handleLogin(web: Web, form: FormParams): Promise<Outcome> {
  const p = loadPending(web, form);
  if (!p) return staleRequestOutcome(web);
  const app = appOf(web, p);
  if (p.step === 'pick') {
    const chosen = form.get('account');
    if (!chosen || chosen === 'other') {
      p.step = 'signin';
      return render(web, p);
    }
    const candidate = sessionCandidates(web, p, app).find((c) => c.user.userPrincipalName.toLowerCase() === chosen.toLowerCase());
    if (!candidate) {
      p.step = 'signin';
      p.loginHint = chosen;
      return render(web, p);
    }
    return useSignIn(web, p, candidate, false);
  }
  if (p.step !== 'signin') return render(web, p);

  const login = (form.get('login') ?? '').trim();
  const password = form.get('passwd') ?? '';
  if (login === '') return render(web, p, { message: SIGN_IN_TEXT.empty, field: 'login', login });
  let user: User;
  try {
    user = checkUserForAuthority(web.state.scenario, login, app, p.authority);
  } catch (err) {
    if (err instanceof AadError && err.code === 50034) {
      return render(web, p, { message: SIGN_IN_TEXT[50034], detail: err.message, field: 'login', login });
    }
    if (err instanceof AadError) {
      endPending(web, p);
      return errorPageOutcome(web, err, app.displayName);
    }
    throw err;
  }
  if (user.locked) return render(web, p, { message: SIGN_IN_TEXT[50053], detail: new AadError(50053).message, field: 'login', login });
  if (user.password !== password) {
    return render(web, p, { message: SIGN_IN_TEXT[50126], detail: new AadError(50126).message, field: 'passwd', login });
  }
  if (!user.accountEnabled) return render(web, p, { message: SIGN_IN_TEXT[50057], detail: new AadError(50057).message, field: 'login', login });
  p.userId = user.id;
  p.auth = { amr: ['pwd'], authTimeSec: web.state.clock.nowSeconds() };
  delete p.signIn;
  return identified(web, p, false);
}

/** POST /{tenant}/SAS/ProcessAuth: approve the MFA request, or register for MFA first. */
export async function handleMfa(web: Web, form: FormParams): Promise<Outcome> {
  const p = loadPending(web, form);
  if (!p) return staleRequestOutcome(web);
  const choice = form.get('action');
  if (p.step === 'enroll' && choice === 'register') {
    userOf(web, p).mfa = 'required';
    p.step = 'mfa';
    return render(web, p);
  }
  if (p.step === 'mfa' && choice === 'approve') {
    const amr = p.auth?.amr ?? ['pwd'];
    p.auth = { amr: [...new Set([...amr, 'mfa'])], authTimeSec: p.auth?.authTimeSec ?? web.state.clock.nowSeconds() };
    delete p.signIn;
    return afterPassword(web, p, false);
  }
  if (p.step === 'mfa' && choice === 'deny') {
    endPending(web, p);
    return pageOutcome(mfaDeniedPage({ upn: upnOf(web, p) }), 400);
  }
  return render(web, p);
}

/** POST /{tenant}/Consent/Set: accept or cancel consent, leave "Need admin approval", admin consent. */
export async function handleConsent(web: Web, form: FormParams): Promise<Outcome> {
  const p = loadPending(web, form);
  if (!p) return staleRequestOutcome(web);
  const choice = form.get('action');
  const app = appOf(web, p);
  const user = userOf(web, p);
  const sc = web.state.scenario;

  if (p.step === 'consent') {
    if (choice === 'accept') {
      const forOrganisation = form.get('orgConsent') === 'true' && user.admin && !isPersonal(user);
      const scopes = effectivePermissions(web, p, app, user).map((perm) => perm.scope);
      if (scopes.length > 0) recordConsent(sc, app, user.tenant, scopes, forOrganisation ? undefined : user);
      return complete(web, p);
    }
    if (choice === 'cancel') {
      if (p.target.kind === 'device') return declineDevice(web, p, new AadError(65004));
      return fail(web, p, new AadError(65004));
    }
    return render(web, p);
  }
  if (p.step === 'adminApproval') {
    if (p.target.kind === 'device') return declineDevice(web, p, new AadError(90094));
    return fail(web, p, new AadError(90094));
  }
  if (p.step === 'adminConsent' && p.target.kind === 'adminconsent') {
    const target = p.target;
    if (choice === 'cancel') return fail(web, p, new AadError(65004));
    if (choice !== 'accept') return render(web, p);
    endPending(web, p);
    const tenantId = user.tenant;
    recordConsent(sc, app, tenantId, target.consentScopes);
    app.servicePrincipals[tenantId] ??= randomUUID();
    const fields: [string, string][] = [
      ['admin_consent', 'True'],
      ['tenant', tenantId],
    ];
    if (target.scopeEcho !== undefined) fields.push(['scope', target.scopeEcho]);
    if (target.state !== undefined) fields.push(['state', target.state]);
    return appResponse(target, fields);
  }
  return render(web, p);
}
