// /authorize and the interactive pages, as a user (and an app) meets them: which errors are a page
// and which are sent back to the app, the three response modes, PKCE, prompt values, the session
// cookie, consent, admin approval, MFA, the device code page, admin consent, logout and /error.
// Real HTTPS against an emulator started in this process; the "browser" is test/helpers/browserless.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { AadError } from '../../../src/emulator/identity/aad-error.ts';
import { hashToken } from '../../../src/emulator/identity/state.ts';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import type { User } from '../../../src/emulator/scenario/schema.ts';
import { Browser, completeDeviceCode, pageText, parseForms, signIn, type Visit } from '../../helpers/browserless.ts';
import { startTestEmulator, TENANT, type TestEmulator } from '../../helpers/emulator.ts';
import { httpsRequest, postForm, type HttpsResponse } from '../../helpers/https.ts';

const DESKTOP = DEFAULT_IDS.desktopApp;
const WEB = DEFAULT_IDS.webApp;
const CONTOSO = DEFAULT_IDS.tenant;
const FABRIKAM = 'f1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f9';
const HYBRID = '2c4e6a8b-1d3f-4a5b-8c7d-9e0f1a2b3c4e';
const NO_REPLY = '3d5f7b9c-2e4a-4b6c-9d8e-0f1a2b3c4d5f';
const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';
const SMTP = 'https://outlook.office.com/SMTP.Send';
const USER_READ_ALL = 'https://graph.microsoft.com/User.Read.All';
const REDIRECT = 'http://localhost:5123';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DESCRIPTION_TAIL = /\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [\w-]+\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/;

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The fields the app received, from the query or the fragment of where it was sent. */
function received(location: string | URL): URLSearchParams {
  const url = new URL(location);
  return url.hash ? new URLSearchParams(url.hash.slice(1)) : url.searchParams;
}

describe('/authorize and the sign-in pages', () => {
  let emu: TestEmulator;
  let counter = 0;

  before(async () => {
    emu = await startTestEmulator((s) => {
      s.tenants.push({ id: FABRIKAM, displayName: 'Fabrikam', domains: ['fabrikam.com'] });
      s.apps!.push(
        {
          clientId: HYBRID,
          displayName: 'hybrid web app',
          objectId: randomUUID(),
          homeTenant: CONTOSO,
          signInAudience: 'AzureADMyOrg',
          idTokenIssuance: true,
          publicClient: true,
          redirectUris: { web: ['https://app.contoso.com'], spa: ['http://localhost:3000/spa'] },
        },
        { clientId: NO_REPLY, displayName: 'no reply app', objectId: randomUUID(), homeTenant: CONTOSO, publicClient: true },
      );
    });
  });
  after(() => emu.close());

  const tenantOf = (upn: string) => (upn.endsWith('@fabrikam.com') ? FABRIKAM : CONTOSO);

  /** A fresh user in the live scenario, so tests never share consents or sessions. */
  function addUser(props: Partial<User> & { domain?: string } = {}): User {
    const n = ++counter;
    const { domain = 'contoso.com', ...rest } = props;
    const upn = `user${n}.${randomBytes(3).toString('hex')}@${domain}`;
    const user: User = {
      id: randomUUID(),
      tenant: tenantOf(upn),
      userPrincipalName: upn,
      displayName: `Test User${n}`,
      password: `Pw-${randomBytes(8).toString('base64url')}`,
      mfa: 'off',
      accountEnabled: true,
      locked: false,
      admin: false,
      blockedByConditionalAccess: false,
      ...rest,
    };
    emu.scenario.users.push(user);
    return user;
  }

  function consentFor(user: User, scopes = [IMAP], clientId: string = DESKTOP): void {
    emu.scenario.consents.push({ clientId, tenant: user.tenant, user: user.userPrincipalName, scopes });
  }

  function creds(user: User, extra: { consent?: 'accept' | 'cancel'; approveMfa?: boolean } = {}) {
    return { caPem: emu.caPem, username: user.userPrincipalName, password: user.password, ...extra };
  }

  function authorizeUrl(params: Record<string, string>, tenant = TENANT): string {
    const url = new URL(`${emu.url}/${tenant}/oauth2/v2.0/authorize`);
    url.search = new URLSearchParams({
      client_id: DESKTOP,
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: `${IMAP} offline_access openid profile`,
      state: 'st-1',
      ...params,
    }).toString();
    return url.href;
  }

  /** One request, no redirect following. */
  function get(url: string): Promise<HttpsResponse> {
    return httpsRequest(url, { caPem: emu.caPem });
  }

  function assertErrorPage(res: HttpsResponse, err: AadError): void {
    assert.equal(res.status, 400, res.text);
    assert.equal(res.headers.location, undefined);
    assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.ok(pageText(res.text).includes(err.message), `page should contain "${err.message}":\n${pageText(res.text)}`);
  }

  function assertRedirectError(location: string | URL, error: string, code: number, state: string | undefined = 'st-1'): URLSearchParams {
    const fields = received(location);
    assert.equal(fields.get('error'), error, `fields: ${fields.toString()}`);
    const description = fields.get('error_description') ?? '';
    assert.match(description, new RegExp(`^AADSTS${code}: `));
    assert.match(description, DESCRIPTION_TAIL);
    assert.ok(fields.get('error_uri')?.endsWith(`/error?code=${code}`));
    assert.equal(fields.get('state'), state ?? null);
    assert.equal(fields.get('code'), null);
    return fields;
  }

  async function redirectedError(params: Record<string, string>, error: string, code: number, tenant = TENANT): Promise<URLSearchParams> {
    const res = await get(authorizeUrl(params, tenant));
    assert.equal(res.status, 302, res.text);
    const location = String(res.headers.location);
    assert.ok(location.startsWith(`${REDIRECT}/`), location);
    return assertRedirectError(location, error, code, params.state ?? 'st-1');
  }

  function redeem(fields: Record<string, string>, tenant = TENANT) {
    return emu.token({ grant_type: 'authorization_code', client_id: DESKTOP, redirect_uri: REDIRECT, scope: `${IMAP} offline_access`, ...fields }, tenant);
  }

  // -------------------------------------------------------------------------------------------
  describe('errors shown as a page (the redirect URI is not trusted yet)', () => {
    it('unknown tenant: AADSTS90002', async () => {
      assertErrorPage(await get(authorizeUrl({}, 'nowhere.example')), new AadError(90002, { tenant: 'nowhere.example' }));
    });
    it('unknown client_id: AADSTS700016', async () => {
      const clientId = randomUUID();
      assertErrorPage(await get(authorizeUrl({ client_id: clientId })), new AadError(700016, { appId: clientId, tenant: CONTOSO }));
    });
    it('missing client_id: AADSTS900144', async () => {
      const url = new URL(authorizeUrl({}));
      url.searchParams.delete('client_id');
      assertErrorPage(await get(url.href), new AadError(900144, { name: 'client_id' }));
    });
    it('repeated client_id: AADSTS90015 as a page', async () => {
      assertErrorPage(await get(`${authorizeUrl({})}&client_id=${DESKTOP}`), new AadError(90015, { name: 'client_id' }));
    });
    it('redirect URI not registered: AADSTS50011', async () => {
      for (const uri of ['http://localhost:5123/other', 'https://evil.example/', 'http://[::1]:5123/', 'http://localhost/#frag']) {
        assertErrorPage(await get(authorizeUrl({ redirect_uri: uri })), new AadError(50011, { uri, appId: DESKTOP }));
      }
    });
    it('no redirect URI in the request: AADSTS900971', async () => {
      const url = new URL(authorizeUrl({}));
      url.searchParams.delete('redirect_uri');
      assertErrorPage(await get(url.href), new AadError(900971));
    });
    it('an app with no reply address registered: AADSTS500113', async () => {
      assertErrorPage(await get(authorizeUrl({ client_id: NO_REPLY })), new AadError(500113));
    });
    it('a body that is not a form on POST reads as empty (AADSTS900144), never a 500', async () => {
      const res = await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/authorize`, {
        caPem: emu.caPem,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: DESKTOP }),
      });
      assertErrorPage(res, new AadError(900144, { name: 'client_id' }));
    });
    it('a page has a Content-Security-Policy, no framing, and escapes what it shows', async () => {
      const uri = 'https://evil.example/<script>alert(1)</script>';
      const res = await get(authorizeUrl({ redirect_uri: uri }));
      assert.equal(res.status, 400);
      assert.ok(!res.text.includes('<script>alert(1)'));
      assert.ok(res.text.includes('&#60;script&#62;alert(1)'));
      assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
      assert.equal(res.headers['x-frame-options'], 'DENY');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('errors redirected to the app', () => {
    it('missing response_type: invalid_request AADSTS900144', async () => {
      const url = new URL(authorizeUrl({}));
      url.searchParams.delete('response_type');
      const res = await get(url.href);
      assertRedirectError(String(res.headers.location), 'invalid_request', 900144);
    });
    it('response_type without code, or with token: unsupported_response_type', async () => {
      await redirectedError({ response_type: 'token', response_mode: 'query' }, 'unsupported_response_type', 700051);
      await redirectedError({ response_type: 'code token', response_mode: 'query' }, 'unsupported_response_type', 700051);
    });
    it('code id_token when the app does not issue ID tokens: unsupported_response_type AADSTS700054', async () => {
      const res = await get(authorizeUrl({ response_type: 'code id_token', nonce: 'n' }));
      const location = String(res.headers.location);
      assert.ok(location.startsWith(`${REDIRECT}/#`), 'hybrid responses default to the fragment');
      const fields = assertRedirectError(location, 'unsupported_response_type', 700054);
      assert.equal(fields.get('error_description')?.split('\r\n')[0], new AadError(700054).message);
    });
    it('an unknown scope or resource: invalid_scope AADSTS70011', async () => {
      await redirectedError({ scope: 'Not.AScope' }, 'invalid_scope', 70011);
      await redirectedError({ scope: 'https://unknown.example.com/Foo.Read' }, 'invalid_scope', 70011);
    });
    it('missing scope: invalid_request AADSTS900144', async () => {
      await redirectedError({ scope: '' }, 'invalid_request', 900144);
    });
    it('PKCE: an unknown method is AADSTS50147, a challenge of the wrong size AADSTS501491', async () => {
      const { challenge } = pkce();
      await redirectedError({ code_challenge: challenge, code_challenge_method: 'S512' }, 'invalid_request', 50147);
      await redirectedError({ code_challenge: challenge.slice(1), code_challenge_method: 'S256' }, 'invalid_request', 501491);
      await redirectedError({ code_challenge: 'short-plain' }, 'invalid_request', 501491);
      await redirectedError({ code_challenge: 'x'.repeat(129), code_challenge_method: 'plain' }, 'invalid_request', 501491);
    });
    it('a repeated parameter: invalid_request AADSTS90015', async () => {
      const res = await get(`${authorizeUrl({})}&scope=openid`);
      const fields = assertRedirectError(String(res.headers.location), 'invalid_request', 90015);
      assert.match(fields.get('error_description') ?? '', /^AADSTS90015: Requested parameter 'scope' is duplicated\./);
    });
    it('prompt=select_account with a login_hint, and an unknown prompt, are refused', async () => {
      await redirectedError({ prompt: 'select_account', login_hint: 'bob@contoso.com' }, 'invalid_request', 90024);
      await redirectedError({ prompt: 'select_account consent' }, 'invalid_request', 90023);
    });
    it('state comes back verbatim; client-request-id is the correlation id', async () => {
      const state = 'a b&c=d/é?<x>"\'%20';
      const correlation = randomUUID();
      const fields = await redirectedError({ state, scope: 'Nope.Nope', 'client-request-id': correlation }, 'invalid_scope', 70011);
      assert.equal(fields.get('state'), state);
      assert.match(fields.get('error_description') ?? '', new RegExp(`Correlation ID: ${correlation}`));
    });
    it('errors follow response_mode: fragment, and form_post as an auto-submitting form', async () => {
      const frag = await get(authorizeUrl({ scope: 'Nope.Nope', response_mode: 'fragment' }));
      assert.ok(String(frag.headers.location).startsWith(`${REDIRECT}/#error=invalid_scope&`));
      const post = await get(authorizeUrl({ scope: 'Nope.Nope', response_mode: 'form_post' }));
      assert.equal(post.status, 200);
      const form = parseForms(post.text, new URL(emu.url))[0]!;
      assert.equal(form.method, 'POST');
      assert.equal(form.action.href, `${REDIRECT}/`);
      assert.ok(post.text.includes(`action="${REDIRECT}"`), 'form_post posts to the URI exactly as sent');
      const values = Object.fromEntries(form.fields.filter((f) => f.tag === 'input').map((f) => [f.name ?? '', f.value] as const));
      assert.equal(values.error, 'invalid_scope');
      assert.equal(values.state, 'st-1');
      assert.match(values.error_description ?? '', /^AADSTS70011: /);
      assert.match(post.text, /<script>document\.forms\[0\]\.submit\(\);<\/script>/);
      assert.match(String(post.headers['content-security-policy']), /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    });
    it('an armed authorize failure is redirected once the user is known', async () => {
      const user = addUser();
      consentFor(user);
      const armed = await emu.admin('POST', '/failures', { aadsts: 53003, endpoint: 'authorize', user: user.userPrincipalName, times: 1 });
      assert.equal(armed.status, 201, armed.text);
      const landed = await signIn(authorizeUrl({}), creds(user));
      assertRedirectError(landed, 'invalid_grant', 53003);
      // Spent: the next sign-in works.
      assert.ok((await signIn(authorizeUrl({}), creds(user))).searchParams.get('code'));
    });
    it('counts every /authorize request', async () => {
      const before = (await emu.counters()).authorize?.total ?? 0;
      await get(authorizeUrl({ scope: 'Nope.Nope' }));
      await get(authorizeUrl({}, 'nowhere.example'));
      assert.equal((await emu.counters()).authorize?.total, before + 2);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('codes and response modes', () => {
    it('query: code, state, session_state and client_info; the URI without a path gets its "/"; the code redeems', async () => {
      const user = addUser();
      consentFor(user);
      const { verifier, challenge } = pkce();
      const landed = await signIn(
        authorizeUrl({
          code_challenge: challenge,
          code_challenge_method: 'S256',
          client_info: '1',
          'x-client-SKU': 'msal.js.node',
          'x-client-VER': '3.0.0',
          'client-request-id': randomUUID(),
          claims: '{}',
        }),
        creds(user),
      );
      assert.equal(`${landed.origin}${landed.pathname}`, `${REDIRECT}/`);
      assert.deepEqual([...landed.searchParams.keys()], ['code', 'client_info', 'state', 'session_state']);
      assert.equal(landed.searchParams.get('state'), 'st-1');
      assert.match(landed.searchParams.get('session_state') ?? '', GUID);
      assert.match(landed.searchParams.get('code') ?? '', /^1\.AXoA[\w-]{100,}$/);
      const info: unknown = JSON.parse(Buffer.from(landed.searchParams.get('client_info')!, 'base64url').toString());
      assert.deepEqual(info, { uid: user.id, utid: CONTOSO });
      const res = await redeem({ code: landed.searchParams.get('code')!, code_verifier: verifier });
      assert.equal(res.status, 200, res.text);
      const at = decodeJwt(res.json<{ access_token: string }>().access_token);
      assert.equal(at.upn, user.userPrincipalName);
      assert.equal(at.scp, 'IMAP.AccessAsUser.All');
      assert.deepEqual(at.amr, ['pwd']);
      // The redirect URI must be repeated exactly as sent (no trailing slash added).
      const again = await signIn(authorizeUrl({}), creds(user));
      const mismatch = await redeem({ code: again.searchParams.get('code')!, redirect_uri: `${REDIRECT}/` });
      assert.equal(mismatch.json().error, 'invalid_grant');
      assert.match(String(mismatch.json().error_description), /^AADSTS500112: /);
    });
    it('fragment: the response after #', async () => {
      const user = addUser();
      consentFor(user);
      const landed = await signIn(authorizeUrl({ response_mode: 'fragment' }), creds(user));
      assert.equal(landed.search, '');
      assert.ok(received(landed).get('code'));
      assert.equal(received(landed).get('state'), 'st-1');
    });
    it('form_post: the response arrives as posted fields', async () => {
      const user = addUser();
      consentFor(user);
      const landed = await signIn(authorizeUrl({ response_mode: 'form_post' }), creds(user));
      assert.equal(`${landed.origin}${landed.pathname}`, `${REDIRECT}/`);
      assert.ok(landed.searchParams.get('code'));
      assert.match(landed.searchParams.get('session_state') ?? '', GUID);
    });
    it('PKCE plain (method omitted) is checked at redemption; nonce reaches the ID token', async () => {
      const user = addUser();
      consentFor(user);
      const verifier = randomBytes(40).toString('base64url');
      const landed = await signIn(authorizeUrl({ code_challenge: verifier, nonce: 'nonce-123' }), creds(user));
      const wrong = await redeem({ code: landed.searchParams.get('code')!, code_verifier: `${verifier}x` });
      assert.match(String(wrong.json().error_description), /^AADSTS501481: /);
      const again = await signIn(authorizeUrl({ code_challenge: verifier, nonce: 'nonce-123' }), creds(user));
      const res = await redeem({ code: again.searchParams.get('code')!, code_verifier: verifier });
      assert.equal(res.status, 200, res.text);
      assert.equal(decodeJwt(res.json<{ id_token: string }>().id_token).nonce, 'nonce-123');
    });
    it('code id_token (app with ID token issuance): fragment by default, nonce required, ID token in the response', async () => {
      const user = addUser();
      consentFor(user, [IMAP], HYBRID);
      const base = { client_id: HYBRID, redirect_uri: 'https://app.contoso.com', response_type: 'code id_token', scope: `openid ${IMAP}` };
      const missing = await get(authorizeUrl(base));
      assertRedirectError(String(missing.headers.location), 'invalid_request', 900144);
      assert.match(received(String(missing.headers.location)).get('error_description') ?? '', /'nonce'/);
      const landed = await signIn(authorizeUrl({ ...base, nonce: 'n-1' }), creds(user));
      assert.equal(landed.href.split('#')[0], 'https://app.contoso.com/');
      const fields = received(landed);
      assert.ok(fields.get('code'));
      const claims = decodeJwt(fields.get('id_token')!);
      assert.equal(claims.nonce, 'n-1');
      assert.equal(claims.aud, HYBRID);
      assert.equal(claims.preferred_username, user.userPrincipalName);
    });
    it('a spa redirect URI marks the code as a SPA code', async () => {
      const user = addUser();
      consentFor(user, [IMAP], HYBRID);
      const { verifier, challenge } = pkce();
      const landed = await signIn(
        authorizeUrl({ client_id: HYBRID, redirect_uri: 'http://localhost:3000/spa', code_challenge: challenge, code_challenge_method: 'S256' }),
        creds(user),
      );
      const code = landed.searchParams.get('code')!;
      const record = emu.running.state.codes.get(hashToken(code))!;
      assert.equal(record.spa, true);
      assert.equal(record.redirectUri, 'http://localhost:3000/spa');
      assert.equal(record.codeChallengeMethod, 'S256');
      assert.equal(record.tenantId, CONTOSO);
      const res = await emu.token(
        { grant_type: 'authorization_code', client_id: HYBRID, code, redirect_uri: 'http://localhost:3000/spa', code_verifier: verifier, scope: IMAP },
        TENANT,
        { origin: 'http://localhost:3000' },
      );
      assert.equal(res.status, 200, res.text);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('the sign-in page', () => {
    it('has labelled login and password fields, the Microsoft ids, the request kept server-side, and login_hint prefilled', async () => {
      const res = await get(authorizeUrl({ login_hint: 'someone@contoso.com' }));
      assert.equal(res.status, 200);
      const form = parseForms(res.text, new URL(emu.url))[0]!;
      assert.equal(form.method, 'POST');
      const byName = (n: string) => form.fields.find((f) => f.name === n);
      assert.equal(byName('login')?.id, 'login');
      assert.equal(byName('login')?.value, 'someone@contoso.com');
      assert.equal(byName('passwd')?.id, 'passwd');
      assert.equal(byName('passwd')?.type, 'password');
      assert.match(byName('ctx')?.value ?? '', /^[\w-]{40,}$/);
      assert.ok(form.fields.some((f) => f.id === 'idSIButton9'));
      assert.match(res.text, /<label for="login">/);
      assert.match(res.text, /<label for="passwd">/);
      assert.ok(!res.text.includes('st-1'), 'the request itself is not in the page');
      assert.ok(!/https?:\/\/(?!localhost)[^"'\s]*\.(css|js|png|svg)/.test(res.text), 'no external resources');
      const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('buid='));
      assert.match(cookie ?? '', /HttpOnly/i);
    });
    it('wrong password: the page again with "Your account or password is incorrect." and AADSTS50126', async () => {
      const user = addUser();
      await assert.rejects(signIn(authorizeUrl({}), { ...creds(user), password: 'wrong' }), (err: Error) => {
        assert.match(err.message, /Your account or password is incorrect\./);
        assert.ok(err.message.includes(new AadError(50126).message));
        return true;
      });
    });
    it('unknown user: AADSTS50034', async () => {
      await assert.rejects(signIn(authorizeUrl({}), { caPem: emu.caPem, username: 'nobody@contoso.com', password: 'x' }), (err: Error) => {
        assert.ok(err.message.includes(new AadError(50034, { EmailHidden: 'n*****@contoso.com', tenant: 'contoso.onmicrosoft.com' }).message), err.message);
        return true;
      });
    });
    it('disabled (AADSTS50057) and locked (AADSTS50053) accounts', async () => {
      const disabled = addUser({ accountEnabled: false });
      await assert.rejects(signIn(authorizeUrl({}), creds(disabled)), (err: Error) => err.message.includes(new AadError(50057).message));
      const locked = addUser({ locked: true });
      await assert.rejects(signIn(authorizeUrl({}), creds(locked)), (err: Error) => err.message.includes(new AadError(50053).message));
    });
    it('a user of another tenant through a tenant authority: the AADSTS50020 page', async () => {
      const zoe = addUser({ domain: 'fabrikam.com' });
      await assert.rejects(signIn(authorizeUrl({}), creds(zoe)), (err: Error) => {
        assert.match(err.message, /HTTP 400/);
        assert.ok(
          err.message.includes(
            new AadError(50020, {
              email: zoe.userPrincipalName,
              idp: `https://sts.windows.net/${FABRIKAM}/`,
              tenant: CONTOSO,
              appId: DESKTOP,
              appName: 'mailbridge desktop',
            }).message,
          ),
          err.message,
        );
        return true;
      });
    });
    it('CSRF: a post without the browser cookie, or with a made-up ctx, continues nothing', async () => {
      const user = addUser();
      consentFor(user);
      const res = await get(authorizeUrl({}));
      const form = parseForms(res.text, new URL(emu.url))[0]!;
      const ctx = form.fields.find((f) => f.name === 'ctx')!.value;
      for (const body of [
        { ctx, login: user.userPrincipalName, passwd: user.password },
        { ctx: 'made-up', login: user.userPrincipalName, passwd: user.password },
      ]) {
        const posted = await postForm(form.action.href, body, { caPem: emu.caPem });
        assert.equal(posted.status, 400);
        assert.equal(posted.headers.location, undefined);
        assert.match(pageText(posted.text), /no longer valid/);
      }
      const reload = await get(form.action.href);
      assert.equal(reload.status, 400);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('MFA', () => {
    it('mfa required: "Approve sign in request", then the code carries amr pwd+mfa', async () => {
      const user = addUser({ mfa: 'required' });
      consentFor(user);
      const browser = new Browser(emu.caPem);
      const first = await browser.go('GET', new URL(authorizeUrl({})));
      const afterPassword = await browser.submit(parseForms((first as { html: string }).html, first.url)[0]!, {
        login: user.userPrincipalName,
        passwd: user.password,
      });
      assert.equal(afterPassword.kind, 'page');
      const text = pageText((afterPassword as { html: string }).html);
      assert.match(text, /Approve sign in request/);
      const form = parseForms((afterPassword as { html: string }).html, afterPassword.url)[0]!;
      const approve = form.fields.find((f) => f.value === 'approve')!;
      assert.equal(approve.text, 'Approve');
      const landed = await browser.submit(form, {}, approve);
      assert.equal(landed.kind, 'left');
      const code = (landed as { url: URL }).url.searchParams.get('code')!;
      const res = await redeem({ code });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(decodeJwt(res.json<{ access_token: string }>().access_token).amr, ['pwd', 'mfa']);
    });
    it('declining the MFA request ends on a page, not at the app', async () => {
      const user = addUser({ mfa: 'required' });
      consentFor(user);
      await assert.rejects(signIn(authorizeUrl({}), creds(user, { approveMfa: false })), /Request denied/);
    });
    it('mfa enroll: the AADSTS50079 page with Register, which completes enrolment and goes on to the approval', async () => {
      const user = addUser({ mfa: 'enroll' });
      consentFor(user);
      const browser = new Browser(emu.caPem);
      const first = (await browser.go('GET', new URL(authorizeUrl({})))) as Extract<Visit, { kind: 'page' }>;
      const enroll = (await browser.submit(parseForms(first.html, first.url)[0]!, { login: user.userPrincipalName, passwd: user.password })) as Extract<
        Visit,
        { kind: 'page' }
      >;
      const text = pageText(enroll.html);
      assert.match(text, /More information required/);
      assert.ok(text.includes(new AadError(50079, { resource: '00000002-0000-0ff1-ce00-000000000000' }).message), text);
      const form = parseForms(enroll.html, enroll.url)[0]!;
      const register = form.fields.find((f) => f.text === 'Register')!;
      const approvePage = (await browser.submit(form, {}, register)) as Extract<Visit, { kind: 'page' }>;
      assert.match(pageText(approvePage.html), /Approve sign in request/);
      assert.equal(user.mfa, 'required');
      const landed = await browser.drive(approvePage, creds(user), new URL(emu.url).origin);
      assert.equal(landed.kind, 'left');
      assert.ok((landed as { url: URL }).url.searchParams.get('code'));
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('the session cookie and prompt', () => {
    it('sets a HttpOnly, Secure, SameSite=None session cookie; a second /authorize skips the password', async () => {
      const user = addUser();
      consentFor(user);
      const browser = new Browser(emu.caPem);
      await browser.signIn(authorizeUrl({}), creds(user));
      const host = new URL(emu.url).host;
      assert.ok(browser.cookies(host).get('ESTSAUTH'));
      assert.equal(browser.history.length, 2, 'the authorize page and the sign-in post');
      const res = await httpsRequest(authorizeUrl({}), { caPem: emu.caPem, headers: { cookie: `ESTSAUTH=${browser.cookies(host).get('ESTSAUTH')}` } });
      assert.equal(res.status, 302, 'no page at all the second time');
      assert.ok(received(String(res.headers.location)).get('code'));
      // The attributes, from a fresh sign-in's response.
      const fresh = new Browser(emu.caPem);
      const page = (await fresh.go('GET', new URL(authorizeUrl({})))) as Extract<Visit, { kind: 'page' }>;
      const form = parseForms(page.html, page.url)[0]!;
      const raw = await fresh.fetch(
        'POST',
        form.action,
        new URLSearchParams({ ctx: form.fields.find((f) => f.name === 'ctx')!.value, login: user.userPrincipalName, passwd: user.password }).toString(),
      );
      const session = ([] as string[]).concat(raw.headers['set-cookie'] ?? []).find((c) => c.startsWith('ESTSAUTH='));
      assert.ok(session, 'session cookie set after sign-in');
      assert.match(session, /; HttpOnly/i);
      assert.match(session, /; secure/i);
      assert.match(session, /; SameSite=None/i);
      assert.match(session, /; path=\//i);
    });
    it('prompt=none: a code from the session; login_required AADSTS50058 without one', async () => {
      await redirectedError({ prompt: 'none' }, 'login_required', 50058);
      const user = addUser();
      consentFor(user);
      const browser = new Browser(emu.caPem);
      await browser.signIn(authorizeUrl({}), creds(user));
      const silent = await browser.go('GET', new URL(authorizeUrl({ prompt: 'none', state: 'silent' })));
      assert.equal(silent.kind, 'left');
      assert.ok((silent as { url: URL }).url.searchParams.get('code'));
      assert.equal((silent as { url: URL }).url.searchParams.get('state'), 'silent');
    });
    it('prompt=none needing consent is consent_required (65001); needing MFA is interaction_required (50076)', async () => {
      const user = addUser();
      consentFor(user);
      const browser = new Browser(emu.caPem);
      await browser.signIn(authorizeUrl({}), creds(user));
      const consent = (await browser.go('GET', new URL(authorizeUrl({ prompt: 'none', scope: SMTP })))) as { url: URL };
      assertRedirectError(consent.url, 'consent_required', 65001);
      user.mfa = 'required';
      const mfa = (await browser.go('GET', new URL(authorizeUrl({ prompt: 'none' })))) as { url: URL };
      assertRedirectError(mfa.url, 'interaction_required', 50076);
    });
    it('prompt=login asks for the password again; prompt=select_account shows the picker', async () => {
      const user = addUser();
      consentFor(user);
      const browser = new Browser(emu.caPem);
      await browser.signIn(authorizeUrl({}), creds(user));
      const login = (await browser.go('GET', new URL(authorizeUrl({ prompt: 'login' })))) as Extract<Visit, { kind: 'page' }>;
      assert.equal(login.kind, 'page');
      assert.ok(parseForms(login.html, login.url)[0]!.fields.some((f) => f.name === 'passwd'));
      const picker = (await browser.go('GET', new URL(authorizeUrl({ prompt: 'select_account' })))) as Extract<Visit, { kind: 'page' }>;
      const text = pageText(picker.html);
      assert.match(text, /Pick an account/);
      assert.ok(text.includes(user.userPrincipalName));
      assert.match(text, /Use another account/);
      const form = parseForms(picker.html, picker.url)[0]!;
      const tile = form.fields.find((f) => f.value === user.userPrincipalName)!;
      const landed = await browser.submit(form, {}, tile);
      assert.equal(landed.kind, 'left', 'picking a signed-in account needs no password');
      assert.ok((landed as { url: URL }).url.searchParams.get('code'));
      // "Use another account" leads to the sign-in form, and a second account joins the session.
      const other = addUser();
      consentFor(other);
      const picker2 = (await browser.go('GET', new URL(authorizeUrl({ prompt: 'select_account' })))) as Extract<Visit, { kind: 'page' }>;
      const form2 = parseForms(picker2.html, picker2.url)[0]!;
      const signInPage = (await browser.submit(
        form2,
        {},
        form2.fields.find((f) => f.id === 'otherTile'),
      )) as Extract<Visit, { kind: 'page' }>;
      assert.ok(parseForms(signInPage.html, signInPage.url)[0]!.fields.some((f) => f.name === 'passwd'));
      await browser.drive(signInPage, creds(other), new URL(emu.url).origin);
      // Two accounts and no hint: the picker; a login_hint picks one silently.
      const both = (await browser.go('GET', new URL(authorizeUrl({})))) as Extract<Visit, { kind: 'page' }>;
      assert.match(pageText(both.html), new RegExp(`${user.userPrincipalName}[\\s\\S]*${other.userPrincipalName}`));
      const hinted = await browser.go('GET', new URL(authorizeUrl({ login_hint: other.userPrincipalName })));
      assert.equal(hinted.kind, 'left');
      const code = (hinted as { url: URL }).url.searchParams.get('code')!;
      const res = await redeem({ code });
      assert.equal(decodeJwt(res.json<{ access_token: string }>().access_token).upn, other.userPrincipalName);
    });
    it('logout clears the session cookie and the session; a registered post_logout_redirect_uri is followed', async () => {
      const user = addUser();
      consentFor(user);
      const browser = new Browser(emu.caPem);
      await browser.signIn(authorizeUrl({}), creds(user));
      const host = new URL(emu.url).host;
      const cookie = browser.cookies(host).get('ESTSAUTH')!;
      const out = await browser.go(
        'GET',
        new URL(`${emu.url}/${TENANT}/oauth2/v2.0/logout?post_logout_redirect_uri=${encodeURIComponent(REDIRECT)}&state=bye`),
      );
      assert.equal(out.kind, 'left');
      assert.equal((out as { url: URL }).url.href, `${REDIRECT}/?state=bye`);
      assert.equal(browser.cookies(host).get('ESTSAUTH'), undefined);
      assert.equal(emu.running.state.sessions.has(cookie), false);
      assertRedirectError(((await browser.go('GET', new URL(authorizeUrl({ prompt: 'none' })))) as { url: URL }).url, 'login_required', 50058);
      const page = await get(`${emu.url}/common/oauth2/v2.0/logout?post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`);
      assert.equal(page.status, 200);
      assert.match(pageText(page.text), /You signed out of your account/);
      assert.match(String(page.headers['set-cookie']), /ESTSAUTH=; .*Max-Age=0/);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('consent', () => {
    it('lists the permissions; Accept records the user consent (fully qualified) and continues', async () => {
      const user = addUser();
      const browser = new Browser(emu.caPem);
      const first = (await browser.go('GET', new URL(authorizeUrl({ scope: `${IMAP} ${SMTP} offline_access` })))) as Extract<Visit, { kind: 'page' }>;
      const consent = (await browser.submit(parseForms(first.html, first.url)[0]!, { login: user.userPrincipalName, passwd: user.password })) as Extract<
        Visit,
        { kind: 'page' }
      >;
      const text = pageText(consent.html);
      assert.match(text, /Permissions requested/);
      assert.match(text, /mailbridge desktop/);
      assert.match(text, /Read and write access to mailboxes via IMAP\./);
      assert.match(text, /Send emails from mailboxes using SMTP AUTH\./);
      assert.ok(text.includes(IMAP));
      assert.doesNotMatch(text, /Consent on behalf of your organization/, 'only administrators may consent for everyone');
      const form = parseForms(consent.html, consent.url)[0]!;
      assert.ok(form.fields.some((f) => f.id === 'idBtn_Back'));
      const landed = await browser.submit(
        form,
        {},
        form.fields.find((f) => f.id === 'idBtn_Accept'),
      );
      assert.equal(landed.kind, 'left');
      const recorded = emu.scenario.consents.filter((c) => c.user === user.userPrincipalName);
      assert.deepEqual(recorded, [{ clientId: DESKTOP, tenant: CONTOSO, user: user.userPrincipalName, scopes: [IMAP, SMTP] }]);
      const res = await redeem({ code: (landed as { url: URL }).url.searchParams.get('code')! });
      assert.equal(res.status, 200, res.text);
      // Consented now: no consent page the next time, unless prompt=consent.
      assert.ok((await signIn(authorizeUrl({}), creds(user))).searchParams.get('code'));
      const again = new Browser(emu.caPem);
      const p = (await again.go('GET', new URL(authorizeUrl({ prompt: 'consent' })))) as Extract<Visit, { kind: 'page' }>;
      const shown = (await again.submit(parseForms(p.html, p.url)[0]!, { login: user.userPrincipalName, passwd: user.password })) as Extract<
        Visit,
        { kind: 'page' }
      >;
      assert.match(pageText(shown.html), /Permissions requested/);
    });
    it('Cancel: access_denied AADSTS65004', async () => {
      const user = addUser();
      const landed = await signIn(authorizeUrl({}), creds(user, { consent: 'cancel' }));
      const fields = assertRedirectError(landed, 'access_denied', 65004);
      assert.match(fields.get('error_description') ?? '', /^AADSTS65004: User declined to consent to access the app\./);
    });
    it('an admin-only permission and a non-admin: "Need admin approval", leaving it is access_denied AADSTS90094', async () => {
      const user = addUser();
      const browser = new Browser(emu.caPem);
      const first = (await browser.go('GET', new URL(authorizeUrl({ scope: `${USER_READ_ALL} openid` })))) as Extract<Visit, { kind: 'page' }>;
      const wall = (await browser.submit(parseForms(first.html, first.url)[0]!, { login: user.userPrincipalName, passwd: user.password })) as Extract<
        Visit,
        { kind: 'page' }
      >;
      const text = pageText(wall.html);
      assert.match(text, /Need admin approval/);
      assert.match(text, /only an admin can grant/);
      assert.ok(text.includes(USER_READ_ALL));
      const landed = await browser.drive(wall, creds(user), new URL(emu.url).origin);
      assertRedirectError((landed as { url: URL }).url, 'access_denied', 90094);
    });
    it('an admin may consent on behalf of the organisation; then other users need no consent', async () => {
      const admin = addUser({ admin: true });
      const browser = new Browser(emu.caPem);
      const scope = `${USER_READ_ALL} openid`;
      const first = (await browser.go('GET', new URL(authorizeUrl({ scope })))) as Extract<Visit, { kind: 'page' }>;
      const consent = (await browser.submit(parseForms(first.html, first.url)[0]!, { login: admin.userPrincipalName, passwd: admin.password })) as Extract<
        Visit,
        { kind: 'page' }
      >;
      assert.match(pageText(consent.html), /Consent on behalf of your organization/);
      const form = parseForms(consent.html, consent.url)[0]!;
      const landed = await browser.submit(
        form,
        { orgConsent: 'true' },
        form.fields.find((f) => f.id === 'idBtn_Accept'),
      );
      assert.equal(landed.kind, 'left');
      const org = emu.scenario.consents.find((c) => c.clientId === DESKTOP && c.user === undefined && c.scopes.includes(USER_READ_ALL));
      assert.deepEqual(org, { clientId: DESKTOP, tenant: CONTOSO, scopes: [USER_READ_ALL] });
      const user = addUser();
      const plain = await signIn(authorizeUrl({ scope }), creds(user));
      assert.ok(plain.searchParams.get('code'), 'no consent page and no admin approval now');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('device code verification', () => {
    async function deviceCode(scope = `${IMAP} offline_access`): Promise<{ user_code: string; device_code: string; verification_uri: string }> {
      const res = await postForm(`${emu.url}/${TENANT}/oauth2/v2.0/devicecode`, { client_id: DESKTOP, scope }, { caPem: emu.caPem });
      assert.equal(res.status, 200, res.text);
      return res.json();
    }
    const poll = (device_code: string) => emu.token({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: DESKTOP, device_code });

    it('the code page, a wrong code (AADSTS70018), an expired one (AADSTS70019)', async () => {
      const dc = await deviceCode();
      const page = await get(dc.verification_uri);
      assert.equal(page.status, 200);
      const form = parseForms(page.text, new URL(dc.verification_uri))[0]!;
      assert.equal(form.fields.find((f) => f.name === 'otc')?.id, 'otc');
      assert.match(page.text, /<label for="otc">/);
      const user = addUser();
      const wrong = await completeDeviceCode(dc.verification_uri, 'ZZZZZZZZZ', creds(user));
      assert.ok(wrong.includes(new AadError(70018).message), wrong);
      const expiring = await deviceCode();
      emu.running.state.clock.advance(901);
      try {
        const expired = await completeDeviceCode(dc.verification_uri, expiring.user_code, creds(user));
        assert.ok(expired.includes(new AadError(70019).message), expired);
      } finally {
        emu.running.state.clock.reset();
      }
    });
    it('sign-in, MFA and consent through the same pages; the device is approved and its poll succeeds', async () => {
      const user = addUser({ mfa: 'required' });
      const dc = await deviceCode();
      assert.equal((await poll(dc.device_code)).json().error, 'authorization_pending');
      const typed = `${dc.user_code.slice(0, 3).toLowerCase()}-${dc.user_code.slice(3, 6)} ${dc.user_code.slice(6)}`;
      const text = await completeDeviceCode(dc.verification_uri, typed, creds(user));
      assert.ok(text.includes('You have signed in to the mailbridge desktop application on your device. You may now close this window.'), text);
      const record = emu.running.state.deviceCodes.get(dc.device_code)!;
      assert.equal(record.status, 'approved');
      assert.equal(record.signIn?.userId, user.id);
      assert.deepEqual(record.signIn?.amr, ['pwd', 'mfa']);
      const res = await poll(dc.device_code);
      assert.equal(res.status, 200, res.text);
      assert.equal(decodeJwt(res.json<{ access_token: string }>().access_token).upn, user.userPrincipalName);
      // Used codes cannot be entered again.
      const reused = await completeDeviceCode(dc.verification_uri, dc.user_code, creds(user));
      assert.ok(reused.includes(new AadError(90120).message), reused);
    });
    it('Cancel on the consent page declines the device code', async () => {
      const user = addUser();
      const dc = await deviceCode();
      const text = await completeDeviceCode(dc.verification_uri, dc.user_code, creds(user, { consent: 'cancel' }));
      assert.ok(text.includes(new AadError(65004).message), text);
      assert.equal(emu.running.state.deviceCodes.get(dc.device_code)?.status, 'declined');
      const res = await poll(dc.device_code);
      assert.equal(res.json().error, 'authorization_declined');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('admin consent', () => {
    const adminConsentUrl = (tenant: string, params: Record<string, string>, classic = false) => {
      const url = new URL(`${emu.url}/${tenant}/${classic ? '' : 'v2.0/'}adminconsent`);
      url.search = new URLSearchParams({ client_id: WEB, redirect_uri: 'https://localhost/auth/callback', state: 'ac-1', ...params }).toString();
      return url.href;
    };

    it('an admin of another tenant accepts: admin_consent=True, an org-wide consent and a service principal; client credentials then work there', async () => {
      const admin = addUser({ domain: 'fabrikam.com', admin: true });
      const scope = 'https://outlook.office365.com/.default';
      const app = emu.scenario.apps.find((a) => a.clientId === WEB)!;
      app.appRoles = { exchange: ['IMAP.AccessAsApp', 'SMTP.SendAsApp'] };
      assert.equal(app.servicePrincipals[FABRIKAM], undefined);
      const browser = new Browser(emu.caPem);
      const first = (await browser.go('GET', new URL(adminConsentUrl('fabrikam.com', { scope })))) as Extract<Visit, { kind: 'page' }>;
      const page = (await browser.submit(parseForms(first.html, first.url)[0]!, { login: admin.userPrincipalName, passwd: admin.password })) as Extract<
        Visit,
        { kind: 'page' }
      >;
      const text = pageText(page.html);
      assert.match(text, /Accept for your organization/);
      assert.match(text, /IMAP\.AccessAsApp/);
      assert.match(text, /SMTP\.SendAsApp/);
      const landed = (await browser.drive(page, creds(admin), new URL(emu.url).origin)) as { url: URL };
      assert.equal(`${landed.url.origin}${landed.url.pathname}`, 'https://localhost/auth/callback');
      assert.deepEqual(Object.fromEntries(landed.url.searchParams), { admin_consent: 'True', tenant: FABRIKAM, scope, state: 'ac-1' });
      assert.match(app.servicePrincipals[FABRIKAM] ?? '', GUID);
      assert.ok(emu.scenario.consents.some((c) => c.clientId === WEB && c.tenant === FABRIKAM && c.user === undefined && c.scopes.includes(scope)));
      const token = await emu.token({ grant_type: 'client_credentials', client_id: WEB, client_secret: app.secrets[0]!.value, scope }, 'fabrikam.com');
      assert.equal(token.status, 200, token.text);
      assert.equal(decodeJwt(token.json<{ access_token: string }>().access_token).tid, FABRIKAM);
    });
    it('the classic endpoint: admin_consent=True without scope', async () => {
      const admin = addUser({ admin: true });
      const landed = await signIn(adminConsentUrl(TENANT, {}, true), creds(admin));
      assert.deepEqual(Object.fromEntries(landed.searchParams), { admin_consent: 'True', tenant: CONTOSO, state: 'ac-1' });
    });
    it('a non-admin sees that admin approval is needed; Cancel by an admin is access_denied AADSTS65004', async () => {
      const user = addUser();
      const browser = new Browser(emu.caPem);
      const first = (await browser.go('GET', new URL(adminConsentUrl(TENANT, { scope: 'https://outlook.office365.com/.default' })))) as Extract<
        Visit,
        { kind: 'page' }
      >;
      const wall = (await browser.submit(parseForms(first.html, first.url)[0]!, { login: user.userPrincipalName, passwd: user.password })) as Extract<
        Visit,
        { kind: 'page' }
      >;
      assert.match(pageText(wall.html), /Need admin approval/);
      const back = (await browser.drive(wall, creds(user), new URL(emu.url).origin)) as { url: URL };
      assertRedirectError(back.url, 'access_denied', 90094, 'ac-1');
      const admin = addUser({ admin: true });
      const cancelled = await signIn(adminConsentUrl(TENANT, { scope: 'https://outlook.office365.com/.default' }), creds(admin, { consent: 'cancel' }));
      assertRedirectError(cancelled, 'access_denied', 65004, 'ac-1');
    });
    it('an unregistered redirect URI is a page (AADSTS50011), a missing scope is redirected (AADSTS900144)', async () => {
      assertErrorPage(
        await get(adminConsentUrl(TENANT, { redirect_uri: 'https://evil.example/' })),
        new AadError(50011, { uri: 'https://evil.example/', appId: WEB }),
      );
      const res = await get(adminConsentUrl(TENANT, {}));
      assertRedirectError(String(res.headers.location), 'invalid_request', 900144, 'ac-1');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('/error', () => {
    it('shows the catalogue text of a code', async () => {
      const res = await get(`${emu.url}/error?code=70011`);
      assert.equal(res.status, 200);
      assert.ok(pageText(res.text).includes("AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."));
      const unknown = await get(`${emu.url}/error?code=123`);
      assert.equal(unknown.status, 404);
      assert.match(pageText(unknown.text), /Error code 123 was not found/);
    });
  });
});
