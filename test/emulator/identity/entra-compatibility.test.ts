// Requests that clients written for the real Entra send, sent byte for byte by a raw HTTPS client,
// and answered as Entra answers them (reference sections 3.1, 4.3 and 5.4; issue 12).
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { appById, startTestEmulator, TENANT, type TestEmulator } from '../../helpers/emulator.ts';
import { httpsRequest, postForm } from '../../helpers/https.ts';

const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('the emulator answers as Entra does', () => {
  let emu: TestEmulator;
  const desktop = DEFAULT_IDS.desktopApp;
  const service = DEFAULT_IDS.serviceApp;

  before(async () => {
    emu = await startTestEmulator((s) => {
      s.users!.push({
        id: '3d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f6a',
        tenant: DEFAULT_IDS.tenant,
        userPrincipalName: 'erin@contoso.com',
        displayName: 'Erin Refreshes',
        password: 'erin-password',
      });
      s.consents!.push({ clientId: desktop, tenant: DEFAULT_IDS.tenant, user: 'erin@contoso.com', scopes: [IMAP] });
    });
  });
  after(() => emu.close());

  describe('device code requested with GET (section 3.1)', () => {
    it('answers GET /devicecode with the query string as it answers the POST', async () => {
      const query = new URLSearchParams({ client_id: desktop, scope: `${IMAP} offline_access` }).toString();
      const res = await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/devicecode?${query}`, { method: 'GET', caPem: emu.caPem });
      assert.equal(res.status, 200, res.text);
      const body = res.json<{ user_code: string; device_code: string; verification_uri: string; expires_in: number; interval: number; message: string }>();
      assert.match(body.user_code, /^[A-Z2-9]{9}$/);
      assert.ok(body.device_code.length > 20);
      assert.equal(body.verification_uri, `${emu.url}/devicelogin`);
      assert.equal(body.expires_in, 900);
      assert.match(body.message, new RegExp(`enter the code ${body.user_code} to authenticate\\.$`));
      // The device code it gave is a real one: polling it says "pending", not "unknown code".
      const poll = await emu.token({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: desktop, device_code: body.device_code });
      assert.equal(poll.json<{ error: string }>().error, 'authorization_pending');
    });

    it('checks a GET request as it checks a POST (a missing scope is AADSTS900144)', async () => {
      const res = await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/devicecode?client_id=${desktop}`, { caPem: emu.caPem });
      assert.equal(res.status, 400);
      assert.deepEqual(res.json<{ error_codes: number[] }>().error_codes, [900144]);
    });

    it('still refuses GET on /token (AADSTS900561)', async () => {
      const res = await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/token?grant_type=client_credentials`, { caPem: emu.caPem });
      assert.equal(res.status, 400);
      assert.deepEqual(res.json<{ error_codes: number[] }>().error_codes, [900561]);
    });
  });

  describe('certificate thumbprints with base64 padding (section 4.3)', () => {
    function der(): Buffer {
      return new X509Certificate(appById(emu, service).certificates[0]!.certPem!).raw;
    }
    async function assertionWith(alg: 'RS256' | 'PS256', header: Record<string, string>): Promise<string> {
      const cert = appById(emu, service).certificates[0]!;
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ aud: `${emu.url}/${TENANT}/oauth2/v2.0/token`, iss: service, sub: service, jti: crypto.randomUUID(), nbf: now, exp: now + 600 })
        .setProtectedHeader({ alg, typ: 'JWT', ...header })
        .sign(createPrivateKey(cert.keyPem!));
    }
    const token = (assertion: string) =>
      postForm(
        `${emu.url}/${TENANT}/oauth2/v2.0/token`,
        {
          client_id: service,
          scope: 'https://outlook.office365.com/.default',
          grant_type: 'client_credentials',
          client_assertion_type: JWT_BEARER,
          client_assertion: assertion,
        },
        { caPem: emu.caPem },
      );
    const sha256Padded = () => createHash('sha256').update(der()).digest('base64');
    const sha1Padded = () => createHash('sha1').update(der()).digest('base64');

    for (const [alg, name, thumbprint] of [
      ['RS256', 'x5t', sha1Padded],
      ['PS256', 'x5t', sha1Padded],
      ['RS256', 'x5t#S256', sha256Padded],
      ['PS256', 'x5t#S256', sha256Padded],
    ] as const) {
      it(`accepts ${alg} with a padded ${name} naming the registered certificate`, async () => {
        const value = thumbprint();
        assert.ok(value.endsWith('='), 'the thumbprint under test carries padding');
        const res = await token(await assertionWith(alg, { [name]: value }));
        assert.equal(res.status, 200, res.text);
        assert.ok(res.json<{ access_token: string }>().access_token);
      });
    }

    it('still refuses a padded thumbprint of another certificate (AADSTS700027)', async () => {
      const other = new X509Certificate(appById(emu, DEFAULT_IDS.webApp).certificates[0]!.certPem!).raw;
      const res = await token(await assertionWith('PS256', { 'x5t#S256': createHash('sha256').update(other).digest('base64') }));
      assert.equal(res.status, 401, res.text);
      assert.deepEqual(res.json<{ error_codes: number[] }>().error_codes, [700027]);
    });
  });

  describe('AADSTS50173 (section 5.4)', () => {
    it('names the original sign-in time as the time the grant was issued, not the last refresh', async () => {
      await emu.admin('POST', '/clock', { reset: true });
      try {
        const signedIn = new Date((await emu.admin('GET', '/clock')).json<{ now: string }>().now);
        const first = await emu.token({
          grant_type: 'password',
          client_id: desktop,
          username: 'erin@contoso.com',
          password: 'erin-password',
          scope: `${IMAP} offline_access`,
        });
        assert.equal(first.status, 200, first.text);
        await emu.admin('POST', '/clock', { advanceSeconds: 3 * 3600 });
        const refreshed = await emu.token({
          grant_type: 'refresh_token',
          client_id: desktop,
          refresh_token: first.json<{ refresh_token: string }>().refresh_token,
          scope: `${IMAP} offline_access`,
        });
        assert.equal(refreshed.status, 200, refreshed.text);
        await emu.admin('POST', '/clock', { advanceSeconds: 3600 });
        await emu.admin('POST', '/users/erin@contoso.com/revoke');
        const refused = await emu.token({
          grant_type: 'refresh_token',
          client_id: desktop,
          refresh_token: refreshed.json<{ refresh_token: string }>().refresh_token,
          scope: `${IMAP} offline_access`,
        });
        const description = refused.json<{ error_description: string }>().error_description;
        const issuedOn = /The grant was issued on '([^']+)'/.exec(description)?.[1];
        assert.ok(issuedOn, description);
        // Sign-in happened within a second after the clock was read; the refresh was 3 hours later.
        const difference = Date.parse(issuedOn) - signedIn.getTime();
        assert.ok(difference >= 0 && difference < 60_000, `issued on ${issuedOn}, signed in at ${signedIn.toISOString()}`);
      } finally {
        await emu.admin('POST', '/clock', { reset: true });
      }
    });
  });
});
