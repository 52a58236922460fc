// /authorize (reference sections 2.1 to 2.3, 2.6, 2.7), the posts of the sign-in, MFA and consent
// pages, logout and the /error lookup page. The device code page and admin consent live in their
// own modules and are registered from here.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AadError } from '../aad-error.ts';
import { FormParams } from '../form.ts';
import { formBody } from '../http.ts';
import {
  appResponse,
  begin,
  clearSessionCookie,
  currentSession,
  errorFields,
  errorPageOutcome,
  handleConsent,
  handleLogin,
  handleMfa,
  lookupErrorText,
  pageRoute,
  PROMPTS,
  staleRequestOutcome,
  validateClientAndRedirect,
  type Outcome,
  type Prompt,
  type ResponseMode,
  type ValidatedClient,
  type Web,
} from '../interaction.ts';
import { errorLookupPage, signedOutPage } from '../pages/error.ts';
import { isAllowedRedirectUri, matchRedirectUri } from '../redirect-uris.ts';
import { parseDelegatedScopes } from '../scopes.ts';
import type { IdentityState } from '../state.ts';
import { registerAdminConsentRoutes } from './admin-consent.ts';
import { registerDeviceLoginRoutes } from './device-login.ts';

type TenantRequest = FastifyRequest<{ Params: { tenant: string } }>;

/** Query parameters for GET, the form body for POST (Entra reads no query on a POST). */
export function requestParams(request: FastifyRequest): FormParams {
  return request.method === 'POST' ? formBody(request) : FormParams.fromQuery(request.query);
}

/** A value that is allowed to be repeated or absent without failing the request. */
function lenient(params: FormParams, name: string): string | undefined {
  try {
    return params.get(name);
  } catch {
    return undefined;
  }
}

const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const PLAIN_CHALLENGE = /^[A-Za-z0-9._~-]{43,128}$/;

async function authorize(web: Web, tenant: string): Promise<Outcome> {
  const { state, request } = web;
  state.count('authorize');
  const params = requestParams(request);
  const correlationId = lenient(params, 'client-request-id');
  if (correlationId) web.correlationId = correlationId;

  // Before the redirect URI is trusted, every error is a page.
  let client: ValidatedClient;
  try {
    client = validateClientAndRedirect(web, tenant, params);
  } catch (err) {
    if (err instanceof AadError) return errorPageOutcome(web, err);
    throw err;
  }
  const { app } = client;

  let responseMode: ResponseMode = 'query';
  let stateValue: string | undefined;
  const redirectError = (err: AadError): Outcome => appResponse({ redirectUri: client.redirectUri, responseMode }, errorFields(web, err, stateValue));
  try {
    stateValue = lenient(params, 'state');
    const rawType = params.get('response_type');
    const types = (rawType ?? '').split(' ').filter(Boolean);
    const rawMode = params.get('response_mode');
    if (rawMode === 'query' || rawMode === 'fragment' || rawMode === 'form_post') responseMode = rawMode;
    else if (types.includes('id_token') || types.includes('token')) responseMode = 'fragment';
    // Repeated `state` is an error like any other repeated parameter (after the mode is known).
    params.get('state');

    if (rawType === undefined || rawType.trim() === '') throw new AadError(900144, { name: 'response_type' });
    const wantsIdToken = types.includes('id_token');
    if (wantsIdToken && !app.idTokenIssuance) throw new AadError(700054);
    const supported = types.includes('code') && types.every((t) => t === 'code' || t === 'id_token') && new Set(types).size === types.length;
    if (!supported) throw new AadError(700051, { responseType: rawType });

    const rawScope = params.get('scope');
    if (rawScope === undefined || rawScope.trim() === '') throw new AadError(900144, { name: 'scope' });
    const parsed = parseDelegatedScopes(rawScope);

    const nonce = params.get('nonce');
    if (wantsIdToken && !nonce) throw new AadError(900144, { name: 'nonce' });

    const challenge = params.get('code_challenge');
    const rawMethod = params.get('code_challenge_method');
    const method = rawMethod === '' ? undefined : rawMethod;
    if (method !== undefined && method !== 'S256' && method !== 'plain') throw new AadError(50147);
    let codeChallengeMethod: 'S256' | 'plain' | undefined;
    if (challenge !== undefined) {
      codeChallengeMethod = method ?? 'plain';
      const shape = codeChallengeMethod === 'S256' ? S256_CHALLENGE : PLAIN_CHALLENGE;
      if (!shape.test(challenge)) throw new AadError(501491);
    }

    const rawPrompt = params.get('prompt');
    let prompt: Prompt | undefined;
    if (rawPrompt !== undefined && rawPrompt !== '') {
      if (!(PROMPTS as readonly string[]).includes(rawPrompt)) throw new AadError(90023);
      prompt = rawPrompt as Prompt;
    }
    const loginHint = params.get('login_hint') || undefined;
    if (prompt === 'select_account' && loginHint) throw new AadError(90024);
    const wantClientInfo = params.get('client_info') === '1';

    return await begin(web, {
      authority: client.authority,
      clientId: app.clientId,
      target: {
        kind: 'authorize',
        redirectUri: client.redirectUri,
        redirectKind: client.redirectKind,
        responseMode,
        idToken: wantsIdToken,
        ...(stateValue !== undefined ? { state: stateValue } : {}),
        ...(nonce !== undefined ? { nonce } : {}),
        ...(challenge !== undefined && codeChallengeMethod ? { codeChallenge: challenge, codeChallengeMethod } : {}),
        clientInfo: wantClientInfo,
      },
      permissions: parsed.permissions,
      directives: [...parsed.directives],
      defaults: parsed.defaults,
      ...(prompt ? { prompt } : {}),
      ...(loginHint ? { loginHint } : {}),
    });
  } catch (err) {
    if (err instanceof AadError) return redirectError(err);
    throw err;
  }
}

/** Where logout may send the browser: a redirect URI registered by the app (or any app). */
function logoutTarget(state: IdentityState, uri: string | undefined, clientId: string | undefined): string | undefined {
  if (!uri || !isAllowedRedirectUri(uri)) return undefined;
  const apps = state.scenario.apps.filter((a) => !clientId || a.clientId.toLowerCase() === clientId.toLowerCase());
  return apps.some((a) => matchRedirectUri(a, uri)) ? uri : undefined;
}

async function logout(web: Web): Promise<Outcome> {
  const { state, request } = web;
  state.count('logout');
  const params = requestParams(request);
  const session = currentSession(web);
  if (session) state.sessions.delete(session.id);
  clearSessionCookie(web);
  const target = logoutTarget(state, lenient(params, 'post_logout_redirect_uri'), lenient(params, 'client_id'));
  if (!target) return { kind: 'page', status: 200, page: signedOutPage() };
  const stateValue = lenient(params, 'state');
  if (stateValue === undefined) return { kind: 'redirect', location: target };
  return appResponse({ redirectUri: target, responseMode: 'query' }, [['state', stateValue]]);
}

async function errorLookup(web: Web): Promise<Outcome> {
  const code = lenient(FormParams.fromQuery(web.request.query), 'code')?.trim();
  if (code === undefined || code === '') return { kind: 'page', status: 200, page: errorLookupPage({ found: false }) };
  const digits = code.replace(/^AADSTS/i, '');
  const text = /^\d{1,9}$/.test(digits) ? lookupErrorText(Number(digits)) : undefined;
  if (!text) return { kind: 'page', status: 404, page: errorLookupPage({ code, found: false }) };
  return { kind: 'page', status: 200, page: errorLookupPage({ code: digits, message: text, found: true }) };
}

export function registerAuthorizeRoutes(app: FastifyInstance, state: IdentityState): void {
  const authorizeHandler = pageRoute(state, (web) => authorize(web, (web.request as TenantRequest).params.tenant));
  app.get('/:tenant/oauth2/v2.0/authorize', authorizeHandler);
  app.post('/:tenant/oauth2/v2.0/authorize', authorizeHandler);

  // The pages' own posts. A GET here (a reload, a bookmark) has no pending request to continue.
  const posts: [string, (web: Web, form: FormParams) => Promise<Outcome>][] = [
    ['/:tenant/login', handleLogin],
    ['/:tenant/SAS/ProcessAuth', handleMfa],
    ['/:tenant/Consent/Set', handleConsent],
  ];
  for (const [path, handler] of posts) {
    app.post(
      path,
      pageRoute(state, (web) => handler(web, formBody(web.request))),
    );
    app.get(
      path,
      pageRoute(state, async (web) => staleRequestOutcome(web)),
    );
  }

  const logoutHandler = pageRoute(state, logout);
  app.get('/:tenant/oauth2/v2.0/logout', logoutHandler);
  app.post('/:tenant/oauth2/v2.0/logout', logoutHandler);
  app.get('/error', pageRoute(state, errorLookup));

  registerDeviceLoginRoutes(app, state);
  registerAdminConsentRoutes(app, state);
}
