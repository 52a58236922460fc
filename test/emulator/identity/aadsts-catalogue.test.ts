// Every AADSTS code of reference section 5.4, produced the way a real tenant produces it, each
// checked for `error`, `error_codes`, HTTP status and the first line of `error_description`
// against the reference text.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createPrivateKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { thumbprints } from '../../../src/tls/certificates.ts';
import { appById, startTestEmulator, userByUpn, TENANT, type TestEmulator } from '../../helpers/emulator.ts';
import type { HttpsResponse } from '../../helpers/https.ts';
import { httpsRequest } from '../../helpers/https.ts';
import { signIn } from '../../helpers/browserless.ts';

// The codes of section 5.4; the last test checks that each one was produced here.
const SECTION_5_4 = [
  70008, 700082, 700084, 50173, 70000, 54005, 9002313, 501481, 500112, 50076, 50079, 65001, 7000215, 7000222, 7000218, 700025, 700016, 90002, 70011, 1002012,
  28000, 28003, 500011, 50020, 50126, 50034, 50057, 53003, 700027, 700024, 7000012, 70016, 70019, 70018, 90014, 900144, 70003, 900561, 50196, 90055,
];
const produced = new Set<number>();

const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';
const SMTP = 'https://outlook.office.com/SMTP.Send';
const FABRIKAM = 'f1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8';
const SPA_REDIRECT = 'http://localhost:3000/spa';
const WEB_REDIRECT = 'http://localhost/auth/callback';

function expectAad(res: HttpsResponse, code: number, error: string, status: number, firstLine: string | RegExp): void {
  const body = res.json<{ error: string; error_codes: number[]; error_description: string; error_uri: string }>();
  assert.equal(res.status, status, `HTTP status for AADSTS${code}: ${res.text}`);
  assert.equal(body.error, error);
  assert.equal(body.error_codes.at(-1), code);
  const line = body.error_description.split('\r\n')[0] ?? '';
  if (typeof firstLine === 'string') assert.equal(line, `AADSTS${code}: ${firstLine}`);
  else assert.match(line, firstLine);
  assert.match(body.error_description, /\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  assert.ok(body.error_uri.endsWith(`/error?code=${code}`));
  assert.match(String(res.headers['content-type']), /^application\/json; charset=utf-8/);
  produced.add(code);
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

describe('AADSTS catalogue (reference section 5.4)', () => {
  let emu: TestEmulator;
  let alicePassword: string;
  const desktop = DEFAULT_IDS.desktopApp;
  const service = DEFAULT_IDS.serviceApp;

  before(async () => {
    emu = await startTestEmulator((s) => {
      s.tenants.push({ id: FABRIKAM, displayName: 'Fabrikam', domains: ['fabrikam.com'] });
      s.consents!.push({ clientId: desktop, tenant: DEFAULT_IDS.tenant, user: 'alice@contoso.com', scopes: [IMAP, SMTP] });
      // Revocation cannot be undone, so it gets a user of its own.
      s.users!.push({
        id: '2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f',
        tenant: DEFAULT_IDS.tenant,
        userPrincipalName: 'dave@contoso.com',
        displayName: 'Dave Revoked',
        password: 'dave-password',
      });
      s.consents!.push({ clientId: desktop, tenant: DEFAULT_IDS.tenant, user: 'dave@contoso.com', scopes: [IMAP] });
      const desktopApp = s.apps!.find((a) => a.clientId === desktop)!;
      desktopApp.redirectUris = { ...desktopApp.redirectUris, spa: [SPA_REDIRECT] };
    });
    alicePassword = userByUpn(emu, 'alice@contoso.com').password;
  });
  after(() => emu.close());

  const resetClock = () => emu.admin('POST', '/clock', { reset: true });

  function ropc(username: string, password: string, scope = `${IMAP} offline_access openid profile`, extra: Record<string, string> = {}, tenant = TENANT) {
    return emu.token({ grant_type: 'password', client_id: desktop, username, password, scope, ...extra }, tenant);
  }

  async function refreshToken(): Promise<string> {
    const res = await ropc('alice@contoso.com', alicePassword);
    assert.equal(res.status, 200, res.text);
    return res.json<{ refresh_token: string }>().refresh_token;
  }

  function refresh(token: string, tenant = TENANT) {
    return emu.token({ grant_type: 'refresh_token', client_id: desktop, refresh_token: token, scope: `${IMAP} offline_access` }, tenant);
  }

  /** An authorization code for alice through the sign-in page, with PKCE. */
  async function code(redirectUri = 'http://localhost:5123/', clientId: string = desktop): Promise<{ code: string; verifier: string; redirectUri: string }> {
    const { verifier, challenge } = pkce();
    const url = new URL(`${emu.url}/${TENANT}/oauth2/v2.0/authorize`);
    url.search = new URLSearchParams({
      client_id: clientId,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: `${IMAP} offline_access openid`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 's1',
    }).toString();
    const landed = await signIn(url.toString(), { caPem: emu.caPem, username: 'alice@contoso.com', password: alicePassword, consent: 'accept' });
    const value = landed.searchParams.get('code');
    assert.ok(value, `no code in ${landed.href}`);
    return { code: value, verifier, redirectUri };
  }

  function redeem(c: { code: string; verifier: string; redirectUri: string }, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
    return emu.token(
      {
        grant_type: 'authorization_code',
        client_id: desktop,
        code: c.code,
        redirect_uri: c.redirectUri,
        code_verifier: c.verifier,
        scope: `${IMAP} offline_access`,
        ...extra,
      },
      TENANT,
      headers,
    );
  }

  async function assertion(claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
    const cert = appById(emu, service).certificates[0]!;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'PS256', typ: 'JWT', 'x5t#S256': thumbprints(cert.certPem!).x5tS256, ...header })
      .sign(createPrivateKey(cert.keyPem!));
  }

  describe('authorization codes', () => {
    it('70008: a code redeemed after it expired', async () => {
      const c = await code();
      await emu.admin('POST', '/clock', { advanceSeconds: 11 * 60 });
      try {
        expectAad(
          await redeem(c),
          70008,
          'invalid_grant',
          400,
          'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
        );
      } finally {
        await resetClock();
      }
    });
    it('54005: a code redeemed twice (error_codes [70002, 54005])', async () => {
      const c = await code();
      assert.equal((await redeem(c)).status, 200);
      const res = await redeem(c);
      expectAad(
        res,
        54005,
        'invalid_grant',
        400,
        'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
      );
      assert.deepEqual(res.json<{ error_codes: number[] }>().error_codes, [70002, 54005]);
    });
    it('9002313: a made-up code', async () => {
      expectAad(
        await redeem({ code: '1.AXoAmadeup', verifier: 'x'.repeat(43), redirectUri: 'http://localhost:5123/' }),
        9002313,
        'invalid_grant',
        400,
        'Invalid request. Request is malformed or invalid.',
      );
    });
    it('501481: the wrong PKCE verifier', async () => {
      const c = await code();
      expectAad(
        await redeem({ ...c, verifier: pkce().verifier }),
        501481,
        'invalid_grant',
        400,
        'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
      );
    });
    it('500112: a redirect URI other than the one the code was issued for', async () => {
      const c = await code();
      expectAad(
        await redeem({ ...c, redirectUri: 'http://localhost:5999/other' }),
        500112,
        'invalid_grant',
        400,
        "The reply address 'http://localhost:5999/other' does not match the reply address 'http://localhost:5123/' provided when requesting Authorization code.",
      );
    });
    it('9002327: a single-page app code redeemed without an Origin (not from a browser)', async () => {
      expectAad(
        await redeem(await code(SPA_REDIRECT)),
        9002327,
        'invalid_request',
        400,
        "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
      );
    });
    it('9002326: a web-app code redeemed cross-origin', async () => {
      const c = await code(WEB_REDIRECT, DEFAULT_IDS.webApp);
      const web = appById(emu, DEFAULT_IDS.webApp);
      const res = await emu.token(
        {
          grant_type: 'authorization_code',
          client_id: web.clientId,
          client_secret: web.secrets[0]!.value,
          code: c.code,
          redirect_uri: c.redirectUri,
          code_verifier: c.verifier,
        },
        TENANT,
        { origin: 'https://evil.example' },
      );
      expectAad(
        res,
        9002326,
        'invalid_request',
        400,
        "Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: 'https://evil.example'.",
      );
    });
    it('28003: an empty scope at redemption', async () => {
      const c = await code();
      expectAad(
        await redeem(c, { scope: '' }),
        28003,
        'invalid_request',
        400,
        'Provided value for the input parameter scope cannot be empty when requesting an access token using the provided authorization code. Please specify a valid scope.',
      );
    });
  });

  describe('refresh tokens', () => {
    it('700082: a refresh token left unused for more than 90 days', async () => {
      const rt = await refreshToken();
      await emu.admin('POST', '/clock', { advanceSeconds: 91 * 86_400 });
      try {
        expectAad(
          await refresh(rt),
          700082,
          'invalid_grant',
          400,
          /^AADSTS700082: The refresh token has expired due to inactivity\. The token was issued on \d{4}-\d\d-\d\dT[\d:.]+Z and was inactive for 90\.00:00:00\.$/,
        );
      } finally {
        await resetClock();
      }
    });
    it('700084: a single-page app refresh token after 24 hours', async () => {
      const c = await code(SPA_REDIRECT);
      const first = await redeem(c, {}, { origin: 'http://localhost:3000' });
      assert.equal(first.status, 200, first.text);
      await emu.admin('POST', '/clock', { advanceSeconds: 25 * 3600 });
      try {
        const res = await emu.token(
          { grant_type: 'refresh_token', client_id: desktop, refresh_token: first.json<{ refresh_token: string }>().refresh_token, scope: IMAP },
          TENANT,
          { origin: 'http://localhost:3000' },
        );
        expectAad(
          res,
          700084,
          'invalid_grant',
          400,
          /^AADSTS700084: The refresh token was issued to a single page app \(SPA\), and therefore has a fixed, limited lifetime of 1\.00:00:00, which can't be extended\. It is now expired and a new sign in request must be sent by the SPA to the sign in page\. The token was issued on .+\.$/,
        );
      } finally {
        await resetClock();
      }
    });
    it('50173: a grant revoked (password reset, "revoke sessions")', async () => {
      const issued = await ropc('dave@contoso.com', 'dave-password');
      const rt = issued.json<{ refresh_token: string }>().refresh_token;
      await emu.admin('POST', '/clock', { advanceSeconds: 60 });
      await emu.admin('POST', '/users/dave@contoso.com/revoke');
      try {
        expectAad(
          await refresh(rt),
          50173,
          'invalid_grant',
          400,
          /^AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed\. The user might have changed or reset their password\. The grant was issued on '.+' and the TokensValidFrom date \(before which tokens are not valid\) for this user is '.+'\.$/,
        );
      } finally {
        await resetClock();
      }
    });
    it('70000: a refresh token that is not one', async () => {
      expectAad(
        await refresh('1.Agarbled'),
        70000,
        'invalid_grant',
        400,
        "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.",
      );
    });
    it('7000012: a refresh token redeemed at another tenant', async () => {
      expectAad(await refresh(await refreshToken(), 'fabrikam.com'), 7000012, 'invalid_grant', 400, 'The grant was obtained for a different tenant.');
    });
    it('50076: MFA now required for a grant that was signed in without it (suberror basic_action)', async () => {
      const rt = await refreshToken();
      await emu.admin('PATCH', '/users/alice@contoso.com', { mfa: 'required' });
      try {
        const res = await refresh(rt);
        expectAad(
          res,
          50076,
          'invalid_grant',
          400,
          "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.",
        );
        assert.equal(res.json<{ suberror: string }>().suberror, 'basic_action');
      } finally {
        await emu.admin('PATCH', '/users/alice@contoso.com', { mfa: 'off' });
      }
    });
    it('50079: MFA registration required', async () => {
      const rt = await refreshToken();
      await emu.admin('PATCH', '/users/alice@contoso.com', { mfa: 'enroll' });
      try {
        expectAad(
          await refresh(rt),
          50079,
          'invalid_grant',
          400,
          "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.",
        );
      } finally {
        await emu.admin('PATCH', '/users/alice@contoso.com', { mfa: 'off' });
      }
    });
  });

  describe('users and consent', () => {
    it('65001: no consent for this user and app (suberror consent_required)', async () => {
      const bob = userByUpn(emu, 'bob@contoso.com');
      const res = await ropc('bob@contoso.com', bob.password);
      expectAad(
        res,
        65001,
        'invalid_grant',
        400,
        `The user or administrator has not consented to use the application with ID '${desktop}' named 'mailbridge desktop'. Send an interactive authorization request for this user and resource.`,
      );
      assert.equal(res.json<{ suberror: string }>().suberror, 'consent_required');
    });
    it('50126: a wrong password', async () => {
      expectAad(await ropc('alice@contoso.com', 'wrong'), 50126, 'invalid_grant', 400, 'Error validating credentials due to invalid username or password.');
    });
    it('50034: a user the directory does not have', async () => {
      expectAad(
        await ropc('nobody@contoso.com', 'x'),
        50034,
        'invalid_grant',
        400,
        'The user account n*****@contoso.com does not exist in the contoso.onmicrosoft.com directory. To sign into this application, the account must be added to the directory.',
      );
    });
    it('50020: a personal account at a work tenant', async () => {
      const carol = userByUpn(emu, 'carol@outlook.com');
      expectAad(
        await ropc('carol@outlook.com', carol.password),
        50020,
        'invalid_grant',
        400,
        /^AADSTS50020: User account 'carol@outlook\.com' from identity provider 'live\.com' does not exist in tenant 'c5a7e2b4-1f3d-4c8e-9a6b-2d7f0e1c3b5a' and cannot access the application '4f2d8a1c-7b3e-4d9f-a6c5-1e8b2f7d3a90'\(mailbridge desktop\) in that tenant\./,
      );
    });
    it('50057: a disabled account', async () => {
      await emu.admin('PATCH', '/users/alice@contoso.com', { accountEnabled: false });
      try {
        expectAad(await ropc('alice@contoso.com', alicePassword), 50057, 'invalid_grant', 400, 'The user account is disabled.');
      } finally {
        await emu.admin('PATCH', '/users/alice@contoso.com', { accountEnabled: true });
      }
    });
    it('53003: blocked by Conditional Access', async () => {
      await emu.admin('PATCH', '/users/alice@contoso.com', { blockedByConditionalAccess: true });
      try {
        expectAad(
          await ropc('alice@contoso.com', alicePassword),
          53003,
          'invalid_grant',
          400,
          'Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.',
        );
      } finally {
        await emu.admin('PATCH', '/users/alice@contoso.com', { blockedByConditionalAccess: false });
      }
    });
  });

  describe('scopes and resources', () => {
    it('70011: a permission the resource does not have', async () => {
      expectAad(
        await ropc('alice@contoso.com', alicePassword, 'https://outlook.office.com/Bogus.Permission offline_access'),
        70011,
        'invalid_scope',
        400,
        "The provided value for the input parameter 'scope' is not valid. The scope https://outlook.office.com/Bogus.Permission is not valid.",
      );
    });
    it('28000: scopes of two resources in one token request', async () => {
      expectAad(
        await ropc('alice@contoso.com', alicePassword, `${IMAP} https://graph.microsoft.com/Mail.Read`),
        28000,
        'invalid_scope',
        400,
        /^AADSTS28000: Provided value for the input parameter scope is not valid because it contains more than one resource\./,
      );
    });
    it('1002012: client credentials without /.default', async () => {
      const secret = appById(emu, service).secrets[0]!.value;
      expectAad(
        await emu.token({
          grant_type: 'client_credentials',
          client_id: service,
          client_secret: secret,
          scope: 'https://outlook.office365.com/IMAP.AccessAsApp',
        }),
        1002012,
        'invalid_scope',
        400,
        'The provided value for scope https://outlook.office365.com/IMAP.AccessAsApp is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).',
      );
    });
    it('500011: a resource the tenant does not have', async () => {
      const secret = appById(emu, service).secrets[0]!.value;
      expectAad(
        await emu.token({ grant_type: 'client_credentials', client_id: service, client_secret: secret, scope: 'https://api.example.com/.default' }),
        500011,
        'invalid_resource',
        400,
        /^AADSTS500011: The resource principal named https:\/\/api\.example\.com was not found in the tenant named c5a7e2b4-1f3d-4c8e-9a6b-2d7f0e1c3b5a\. This can happen if the application has not been installed/,
      );
    });
  });

  describe('clients and tenants', () => {
    const cc = (fields: Record<string, string>, tenant = TENANT) =>
      emu.token({ grant_type: 'client_credentials', scope: 'https://outlook.office365.com/.default', ...fields }, tenant);
    it('7000215: the Secret ID sent instead of the secret value', async () => {
      const secret = appById(emu, service).secrets[0]!;
      expectAad(
        await cc({ client_id: service, client_secret: secret.id }),
        7000215,
        'invalid_client',
        401,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${service}'.`,
      );
    });
    it('7000222: an expired secret (also through HTTP Basic)', async () => {
      const web = appById(emu, DEFAULT_IDS.webApp);
      const secret = web.secrets[0]!;
      await emu.admin('POST', `/apps/${web.clientId}/secrets/${secret.id}/expire`);
      const basic = Buffer.from(`${web.clientId}:${encodeURIComponent(secret.value)}`).toString('base64');
      expectAad(
        await emu.token({ grant_type: 'client_credentials', scope: 'https://outlook.office365.com/.default' }, TENANT, { authorization: `Basic ${basic}` }),
        7000222,
        'invalid_client',
        401,
        `The provided client secret keys for app '${web.clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
      );
    });
    it('7000218: a confidential client without a credential', async () => {
      expectAad(
        await cc({ client_id: service }),
        7000218,
        'invalid_client',
        401,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      );
    });
    it('700025: a public client that sends a secret', async () => {
      expectAad(
        await ropc('alice@contoso.com', alicePassword, IMAP, { client_secret: 'anything' }),
        700025,
        'invalid_client',
        400,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
      );
    });
    it('700016: an application the directory does not have', async () => {
      expectAad(
        await cc({ client_id: '11111111-2222-4333-8444-555555555555', client_secret: 'x' }),
        700016,
        'unauthorized_client',
        400,
        "Application with identifier '11111111-2222-4333-8444-555555555555' was not found in the directory 'c5a7e2b4-1f3d-4c8e-9a6b-2d7f0e1c3b5a'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
      );
    });
    it('90002: a tenant that does not exist', async () => {
      expectAad(
        await cc({ client_id: service, client_secret: 'x' }, 'nosuchtenant.example'),
        90002,
        'invalid_request',
        400,
        "Tenant 'nosuchtenant.example' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
      );
    });
    it('700027: an assertion signed with a certificate the app does not hold', async () => {
      const other = appById(emu, DEFAULT_IDS.webApp).certificates[0]!;
      const jwt = await assertion(
        { aud: `${emu.url}/${TENANT}/oauth2/v2.0/token`, iss: service, sub: service, exp: Math.floor(Date.now() / 1000) + 600 },
        { 'x5t#S256': thumbprints(other.certPem!).x5tS256 },
      );
      expectAad(
        await cc({ client_id: service, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt }),
        700027,
        'invalid_client',
        401,
        /^AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application\. \[Reason - The key was not found\., Thumbprint of key used by client: '[0-9A-F]{64}'/,
      );
    });
    it('700024: an assertion outside its valid time range', async () => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await assertion({ aud: `${emu.url}/${TENANT}/oauth2/v2.0/token`, iss: service, sub: service, nbf: now - 7200, exp: now - 3600 });
      expectAad(
        await cc({ client_id: service, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt }),
        700024,
        'invalid_client',
        401,
        /^AADSTS700024: Client assertion is not within its valid time range\. Current time: .+, assertion valid from .+, expiry time of assertion .+\./,
      );
    });
    it('90014: an assertion missing a required claim', async () => {
      const jwt = await assertion({ aud: `${emu.url}/${TENANT}/oauth2/v2.0/token`, iss: service, exp: Math.floor(Date.now() / 1000) + 600 });
      expectAad(
        await cc({ client_id: service, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt }),
        90014,
        'invalid_request',
        400,
        "The required field 'sub' is missing from the credential. Ensure that you have all the necessary parameters for the login request.",
      );
    });
  });

  describe('device code polling', () => {
    async function deviceCode(): Promise<string> {
      const res = await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/devicecode`, {
        method: 'POST',
        caPem: emu.caPem,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: desktop, scope: `${IMAP} offline_access` }).toString(),
      });
      assert.equal(res.status, 200, res.text);
      return res.json<{ device_code: string }>().device_code;
    }
    const poll = (device_code: string) => emu.token({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: desktop, device_code });
    it('70016: authorization pending', async () => {
      expectAad(
        await poll(await deviceCode()),
        70016,
        'authorization_pending',
        400,
        'OAuth 2.0 device flow error. Authorization is pending. Continue polling.',
      );
    });
    it('70019: the device code expired', async () => {
      const dc = await deviceCode();
      await emu.admin('POST', '/clock', { advanceSeconds: 16 * 60 });
      try {
        expectAad(await poll(dc), 70019, 'expired_token', 400, 'Verification code expired.');
      } finally {
        await resetClock();
      }
    });
    it('70018: a device code the service never issued', async () => {
      expectAad(
        await poll('DAQABnotissued'),
        70018,
        'bad_verification_code',
        400,
        'Invalid verification code due to User typing in wrong user code for device code flow.',
      );
    });
  });

  describe('malformed requests', () => {
    it('900144: a required parameter missing', async () => {
      expectAad(
        await emu.token({ client_id: desktop }),
        900144,
        'invalid_request',
        400,
        "The request body must contain the following parameter: 'grant_type'.",
      );
    });
    it('70003: an unsupported grant type', async () => {
      expectAad(
        await emu.token({ grant_type: 'magic', client_id: desktop }),
        70003,
        'unsupported_grant_type',
        400,
        "The app requested an unsupported grant type 'magic'.",
      );
    });
    it('900561: GET on the token endpoint', async () => {
      expectAad(
        await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/token`, { caPem: emu.caPem }),
        900561,
        'invalid_request',
        400,
        'The endpoint only accepts POST requests. Received a GET request.',
      );
    });
  });

  describe('failures injected through the admin API', () => {
    it('50196: a client request loop, once', async () => {
      await emu.admin('POST', '/failures', { aadsts: 50196, grantType: 'password', times: 1 });
      expectAad(
        await ropc('alice@contoso.com', alicePassword),
        50196,
        'invalid_grant',
        400,
        'The server terminated an operation because it encountered a client request loop. Please contact your app vendor.',
      );
      assert.equal((await ropc('alice@contoso.com', alicePassword)).status, 200, 'the failure was armed for one request only');
    });
    it('90055: the tenant is throttled (429 with Retry-After)', async () => {
      await emu.admin('POST', '/failures', { aadsts: 90055, times: 1, params: { tenant: DEFAULT_IDS.tenant } });
      const res = await ropc('alice@contoso.com', alicePassword);
      expectAad(
        res,
        90055,
        'temporarily_unavailable',
        429,
        `TenantThrottlingError - There are too many incoming requests. This indicates that the tenant ${DEFAULT_IDS.tenant} has been throttled.`,
      );
      assert.equal(res.headers['retry-after'], '30');
    });
    it('any catalogue code can be armed for one user only', async () => {
      await emu.admin('POST', '/failures', { aadsts: 53003, user: 'bob@contoso.com', times: 1 });
      assert.equal((await ropc('alice@contoso.com', alicePassword)).status, 200);
      await emu.admin('DELETE', '/failures');
    });
    it('an unknown code is refused by the admin API', async () => {
      const res = await emu.admin('POST', '/failures', { aadsts: 12345 });
      assert.equal(res.status, 400);
      assert.match(res.json<{ message: string }>().message, /AADSTS12345 is not in the emulator's catalogue/);
    });
  });

  it('produced every code of section 5.4', () => {
    const missing = SECTION_5_4.filter((c) => !produced.has(c));
    assert.deepEqual(missing, [], `not produced: ${missing.join(', ')}`);
  });
});
