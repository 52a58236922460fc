// First sign-in of a mailbox's grant, stored as the record the token provider then keeps alive:
// authorization code with PKCE (a loopback listener on a free port receives the redirect; on a
// remote shell the person pastes the URL the browser ended on), device code, or, for app-only
// access, a first client-credentials token that proves the configuration works.
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { CryptoProvider, type AuthenticationResult } from '@azure/msal-node';
import type { LoadedConfig } from '../config/load.ts';
import { signInScopes } from '../config/scopes.ts';
import type { GrantMeta, GrantSecrets, TokenStore } from '../store/token-store.ts';
import { aadstsCodeOf, explainAadsts } from './explanations.ts';
import { resolveGrant, type ResolvedGrant } from './grants.ts';
import { msalApp } from './msal-apps.ts';
import { classifyFailure, explanationContextOf, TokenError } from './token-errors.ts';
import { MailbridgeError } from '../errors.ts';

/**
 * A sign-in that ended without a grant because of what happened in it, not the configuration:
 * 'cancelled' when the person declined consent, 'protocol' when the answer belongs to another
 * sign-in (state mismatch). Both exit 1 (failure); nothing is stored.
 */
export class LoginError extends MailbridgeError<'cancelled' | 'protocol'> {
  constructor(code: 'cancelled' | 'protocol', message: string) {
    super(code, message);
    this.name = 'LoginError';
  }
}

/** The error for consent declined on the sign-in (or device code) page. */
function consentDeclined(grant: ResolvedGrant): LoginError {
  const who = grant.mailbox.signInAs ?? grant.address;
  return new LoginError(
    'cancelled',
    `${grant.address}: consent was declined on the sign-in page; nothing was stored. To sign in, run \`mailbridge login ${grant.address}\` again and, signed in as ${who}, accept the permissions ${grant.appName} asks for (or have an administrator consent for everyone)`,
  );
}

/** Whether msal-node's failure is the person declining (device code: authorization_declined; AADSTS65004). */
function isDeclined(err: unknown): boolean {
  const e = err as { errorCode?: string; errorMessage?: string; message?: string };
  return /authorization_declined|AADSTS65004\b/.test(`${e.errorCode ?? ''} ${e.errorMessage ?? ''} ${e.message ?? ''}`);
}

export interface LoginOptions {
  /** device: a code to enter elsewhere; browser: open one here; manual: print the URL only. */
  mode: 'browser' | 'device' | 'manual';
  /** Where messages for the person go (the sign-in URL, the device code message). */
  say: (text: string) => void;
  /** Opens a URL in the system browser; false when there is none. */
  openBrowser?: (url: string) => Promise<boolean>;
  /** Where a pasted redirect URL may come from (a terminal on a remote shell). */
  paste?: Readable;
  timeoutMs?: number;
}

const SUCCESS_PAGE = '<!doctype html><meta charset="utf-8"><title>mailbridge</title><p>Signed in. You can close this window and go back to mailbridge.</p>';

/** Resolves with the redirect's query once the browser comes back (or the person pastes it). */
function awaitRedirect(server: Server | undefined, expectedState: string, options: LoginOptions, timeoutMs: number): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new TokenError('unavailable', '', `no sign-in came back within ${timeoutMs / 60_000} minutes`)), timeoutMs);
    let paste: ReturnType<typeof createInterface> | undefined;
    let finished = false;
    const finish = (result: URLSearchParams | Error) => {
      // Once: closing the paste reader below emits its 'close', which must not count as input ending.
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      paste?.close();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const accept = (params: URLSearchParams): boolean => {
      if (!params.has('code') && !params.has('error')) return false;
      if (params.get('state') !== expectedState) {
        finish(
          new LoginError(
            'protocol',
            "the address pasted (or the browser's answer) belongs to another sign-in (its state does not match); nothing was stored. Run `mailbridge login` again and finish that sign-in in the browser it opens",
          ),
        );
        return true;
      }
      finish(params);
      return true;
    };
    server?.on('request', (req, res) => {
      const params = new URL(req.url ?? '/', 'http://localhost').searchParams;
      const done = accept(params);
      res.writeHead(done ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' }).end(done ? SUCCESS_PAGE : '');
    });
    if (options.paste) {
      paste = createInterface({ input: options.paste });
      paste.on('line', (line) => {
        const text = line.trim();
        if (!text) return;
        try {
          if (!accept(new URL(text).searchParams)) options.say('That URL has no code in it; paste the whole address the browser ended on.');
        } catch {
          options.say('That is not a URL; paste the whole address the browser ended on, from its address bar.');
        }
      });
      // Without a listener the pasted address is the only way back: input that ends ends the wait.
      if (!server) {
        paste.on('close', () =>
          finish(
            new LoginError(
              'cancelled',
              'standard input ended before the address the browser ended on was pasted; nothing was stored. Run `mailbridge login` in a terminal and paste it when asked',
            ),
          ),
        );
      }
    }
  });
}

async function listenLoopback(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

async function authorizationCode(
  loaded: LoadedConfig,
  grant: ResolvedGrant,
  options: LoginOptions,
): Promise<{ result: AuthenticationResult; msalCache: string }> {
  const app = await msalApp(loaded, grant.appName, grant.app, grant.cloud);
  const scopes = signInScopes(grant.cloud, grant.mailbox);
  // A web app (a credential and its own redirect URI, as init's web-app scenario writes) signs in
  // at exactly that URI, which mailbridge does not serve: the person pastes where the browser ended.
  const webRedirect = grant.app.redirectUri !== undefined && (grant.app.clientSecret !== undefined || grant.app.certificate !== undefined);
  if (webRedirect && !options.paste)
    throw new TokenError(
      'broken_configuration',
      grant.address,
      `${grant.appName} signs in at ${grant.app.redirectUri}: the address the browser ends on must be pasted`,
    );
  const { server, port } = webRedirect ? { server: undefined, port: 0 } : await listenLoopback();
  try {
    // Entra ignores the port of a loopback redirect URI, so any free port matches `http://localhost`.
    const redirectUri = webRedirect
      ? grant.app.redirectUri!
      : grant.app.redirectUri && new URL(grant.app.redirectUri).hostname === 'localhost'
        ? Object.assign(new URL(grant.app.redirectUri), { port: String(port) }).toString()
        : `http://localhost:${port}`;
    const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
    const state = randomBytes(16).toString('base64url');
    const url = await app.getAuthCodeUrl({
      scopes,
      redirectUri,
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
      state,
      // No prompt=select_account: msal-node leaves login_hint out with it, and the hint is what
      // takes the person straight to the right account (another one stays a click away).
      loginHint: grant.mailbox.signInAs ?? grant.address,
    });
    const opened = options.mode === 'browser' && options.openBrowser ? await options.openBrowser(url) : false;
    const who = grant.mailbox.signInAs ?? grant.address;
    options.say(
      webRedirect
        ? `${opened ? `Sign in as ${who} in the browser window that opened. If none did, open this URL:` : `Open this URL in a browser and sign in as ${who}:`}\n${url}\nThe browser then goes to ${redirectUri} (the web app's address; the page may not load). Paste the whole address it ended on here, from the address bar:`
        : opened
          ? `Sign in in the browser window that opened. If none did, open this URL:\n${url}`
          : `Open this URL in a browser and sign in as ${who}:\n${url}\nWhen the browser ends on a page that does not load (on another machine), paste its address here.`,
    );
    const params = await awaitRedirect(server, state, options, options.timeoutMs ?? 10 * 60_000);
    const error = params.get('error');
    if (error) {
      const aadsts = aadstsCodeOf(params.get('error_description') ?? '');
      if (aadsts === 65004) throw consentDeclined(grant);
      const explanation =
        aadsts === undefined ? undefined : explainAadsts(aadsts, { clientId: grant.app.clientId, tenant: grant.app.tenant, mailbox: grant.address });
      throw new TokenError(
        explanation?.health === 'needs_sign_in' ? 'needs_sign_in' : 'broken_configuration',
        grant.address,
        `sign-in failed: ${error}${explanation ? `: AADSTS${aadsts}: ${explanation.title}. ${explanation.fix}` : ''}`,
        explanation,
      );
    }
    const result = await app.acquireTokenByCode({ code: params.get('code')!, scopes, redirectUri, codeVerifier: verifier });
    return { result, msalCache: app.getTokenCache().serialize() };
  } finally {
    server?.close();
  }
}

async function deviceCode(loaded: LoadedConfig, grant: ResolvedGrant, options: LoginOptions): Promise<{ result: AuthenticationResult; msalCache: string }> {
  const app = await msalApp(loaded, grant.appName, grant.app, grant.cloud);
  if (!('acquireTokenByDeviceCode' in app)) {
    throw new TokenError(
      'broken_configuration',
      grant.address,
      `device code sign-in needs a public client app; ${grant.appName} has a credential. Use authorization_code, or an app with "Allow public client flows" and no secret`,
    );
  }
  const result = await app.acquireTokenByDeviceCode({
    scopes: signInScopes(grant.cloud, grant.mailbox),
    deviceCodeCallback: (response) => options.say(response.message),
  });
  if (!result) throw new TokenError('unavailable', grant.address, 'the device code sign-in ended without a token');
  return { result, msalCache: app.getTokenCache().serialize() };
}

async function clientCredentials(loaded: LoadedConfig, grant: ResolvedGrant): Promise<AuthenticationResult> {
  const app = await msalApp(loaded, grant.appName, grant.app, grant.cloud);
  if (!('acquireTokenByClientCredential' in app))
    throw new TokenError('broken_configuration', grant.address, `client credentials need a clientSecret or certificate on ${grant.appName}`);
  const result = await app.acquireTokenByClientCredential({ scopes: signInScopes(grant.cloud, grant.mailbox), skipCache: true });
  if (!result) throw new TokenError('unavailable', grant.address, 'the identity platform returned no token');
  return result;
}

/** Signs the mailbox's grant in and stores it; returns the stored metadata. */
export async function login(loaded: LoadedConfig, store: TokenStore, address: string, options: LoginOptions): Promise<GrantMeta> {
  const grant = resolveGrant(loaded, address);
  let result: AuthenticationResult;
  let msalCache: string | undefined;
  try {
    if (!grant.delegated) result = await clientCredentials(loaded, grant);
    else if (options.mode === 'device' || grant.mailbox.grant === 'device_code') ({ result, msalCache } = await deviceCode(loaded, grant, options));
    else ({ result, msalCache } = await authorizationCode(loaded, grant, options));
  } catch (err) {
    if (err instanceof TokenError || err instanceof LoginError) throw err;
    if (isDeclined(err)) throw consentDeclined(grant);
    const failure = await classifyFailure(err, explanationContextOf(grant));
    throw new TokenError(
      failure.transient ? 'unavailable' : 'broken_configuration',
      grant.address,
      `${grant.address}: ${failure.summary}.${failure.explanation ? ` ${failure.explanation.fix}` : ''}`,
      failure.explanation,
    );
  }
  const expected = (grant.mailbox.signInAs ?? grant.address).toLowerCase();
  if (grant.delegated && result.account && result.account.username.toLowerCase() !== expected) {
    throw new TokenError(
      'broken_configuration',
      grant.address,
      `signed in as ${result.account.username}, but ${grant.address} needs ${expected}${grant.mailbox.signInAs ? '' : ' (for a shared mailbox, set "signInAs" to a user with FullAccess)'}; nothing was saved`,
    );
  }
  const expiresOnMs = result.expiresOn?.getTime() ?? Date.now() + 3_600_000;
  const now = Date.now();
  // A record we cannot decrypt (wrong key) is not overwritten: get() throws and nothing changes.
  const existing = await store.get(grant.address);
  const meta: GrantMeta = {
    mailbox: grant.address,
    app: grant.appName,
    clientId: grant.app.clientId,
    tenant: grant.app.tenant,
    grant: grant.mailbox.grant,
    status: 'ok',
    createdAt: now,
    refreshedAt: now,
    ...(result.account
      ? { account: { homeAccountId: result.account.homeAccountId, username: result.account.username, tenantId: result.account.tenantId } }
      : {}),
    // One token covers every protocol: the scopes were all for the same (Exchange) resource.
    accessTokenExpiry: Object.fromEntries(grant.mailbox.protocols.map((p) => [p, expiresOnMs])),
  };
  const secrets: GrantSecrets = {
    ...(msalCache ? { msalCache } : {}),
    accessTokens: Object.fromEntries(grant.mailbox.protocols.map((p) => [p, { token: result.accessToken, expiresOnMs }])),
  };
  let version = existing?.version ?? 0;
  for (let i = 0; i < 5; i++) {
    if ((await store.put(meta, secrets, version)) !== undefined) return meta;
    version = (await store.get(grant.address))?.version ?? 0;
  }
  throw new TokenError('unavailable', grant.address, 'could not save the new grant: the store kept changing');
}
