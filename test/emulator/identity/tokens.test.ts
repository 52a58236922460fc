// What the token endpoint hands out, as Microsoft shapes it (reference sections 2.5, 2.8, 5.1, 6
// and 7): v1 Exchange access tokens signed by the key the JWKS publishes, v2 ID tokens,
// client_info, scope-to-resource rules, and refresh tokens that replace themselves.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { startTestEmulator, userByUpn, TENANT, type TestEmulator } from '../../helpers/emulator.ts';
import { httpsRequest } from '../../helpers/https.ts';

const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';
const SMTP = 'https://outlook.office.com/SMTP.Send';
const GRAPH_MAIL = 'https://graph.microsoft.com/Mail.Read';
const GRAPH = '00000003-0000-0000-c000-000000000000';

describe('tokens as Microsoft issues them', () => {
  let emu: TestEmulator;
  let password: string;
  before(async () => {
    emu = await startTestEmulator((s) => {
      s.consents!.push({
        clientId: DEFAULT_IDS.desktopApp,
        tenant: DEFAULT_IDS.tenant,
        user: 'alice@contoso.com',
        scopes: [IMAP, SMTP, GRAPH_MAIL, 'https://graph.microsoft.com/IMAP.AccessAsUser.All', 'https://outlook.office.com/Mail.Read'],
      });
    });
    password = userByUpn(emu, 'alice@contoso.com').password;
  });
  after(() => emu.close());

  const ropc = (scope: string, extra: Record<string, string> = {}) =>
    emu.token({ grant_type: 'password', client_id: DEFAULT_IDS.desktopApp, username: 'alice@contoso.com', password, scope, ...extra });
  const refresh = (refresh_token: string, scope: string) => emu.token({ grant_type: 'refresh_token', client_id: DEFAULT_IDS.desktopApp, refresh_token, scope });

  it('a delegated Exchange token: v1 claims, signed by the key in the published JWKS', async () => {
    const res = await ropc(`${IMAP} ${SMTP} offline_access openid profile email`, { client_info: '1' });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['cache-control']), /no-store/);
    const body = res.json<Record<string, unknown>>();
    assert.deepEqual(Object.keys(body), ['token_type', 'scope', 'expires_in', 'ext_expires_in', 'access_token', 'refresh_token', 'id_token', 'client_info']);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.scope, `${IMAP} ${SMTP}`);
    assert.equal(body.expires_in, 3600);
    assert.equal(typeof body.ext_expires_in, 'number');

    const discovery = (await httpsRequest(`${emu.url}/${TENANT}/v2.0/.well-known/openid-configuration`, { caPem: emu.caPem })).json<{
      jwks_uri: string;
      issuer: string;
    }>();
    assert.equal(discovery.issuer, `${emu.url}/${DEFAULT_IDS.tenant}/v2.0`);
    const jwks = (await httpsRequest(discovery.jwks_uri, { caPem: emu.caPem })).json<{ keys: (JWK & { x5t: string })[] }>();
    const header = decodeProtectedHeader(String(body.access_token));
    assert.equal(header.typ, 'JWT');
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    assert.ok(jwk, 'the token is signed by a key the JWKS publishes');
    assert.equal(jwk.x5t, header.kid);
    const { payload } = await jwtVerify(String(body.access_token), await importJWK(jwk, 'RS256'));
    assert.equal(payload.aud, 'https://outlook.office.com');
    assert.equal(payload.iss, `https://sts.windows.net/${DEFAULT_IDS.tenant}/`);
    assert.equal(payload.ver, '1.0');
    assert.equal(payload.scp, 'IMAP.AccessAsUser.All SMTP.Send');
    assert.equal(payload.upn, 'alice@contoso.com');
    assert.equal(payload.unique_name, 'alice@contoso.com');
    assert.equal(payload.oid, DEFAULT_IDS.alice);
    assert.equal(payload.tid, DEFAULT_IDS.tenant);
    assert.equal(payload.appid, DEFAULT_IDS.desktopApp);
    assert.equal(payload.idtyp, 'user');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 3600);

    const id = decodeJwt(String(body.id_token));
    assert.equal(id.ver, '2.0');
    assert.equal(id.aud, DEFAULT_IDS.desktopApp);
    assert.equal(id.iss, `${emu.url}/${DEFAULT_IDS.tenant}/v2.0`);
    assert.equal(id.preferred_username, 'alice@contoso.com');
    assert.equal(id.email, 'alice@contoso.com');
    assert.deepEqual(JSON.parse(Buffer.from(String(body.client_info), 'base64url').toString()), { uid: DEFAULT_IDS.alice, utid: DEFAULT_IDS.tenant });
  });

  it('no refresh token without offline_access, no ID token without openid', async () => {
    const body = (await ropc(IMAP)).json<Record<string, unknown>>();
    assert.equal(body.refresh_token, undefined);
    assert.equal(body.id_token, undefined);
  });

  it('unprefixed scopes give a Graph token, which Exchange would refuse', async () => {
    const body = (await ropc('IMAP.AccessAsUser.All offline_access')).json<{ access_token: string; scope: string }>();
    assert.equal(decodeJwt(body.access_token).aud, GRAPH);
    assert.equal(body.scope, 'https://graph.microsoft.com/IMAP.AccessAsUser.All');
  });

  it('the office365.com prefix is an alias that keeps its own audience', async () => {
    const body = (await ropc('https://outlook.office365.com/IMAP.AccessAsUser.All')).json<{ access_token: string }>();
    assert.equal(decodeJwt(body.access_token).aud, 'https://outlook.office365.com');
  });

  it('on refresh, the first scope decides the resource (section 6.2 scope-order quirk)', async () => {
    const rt = (await ropc(`${IMAP} offline_access`)).json<{ refresh_token: string }>().refresh_token;
    const outlookFirst = (await refresh(rt, `offline_access ${SMTP} Mail.Read`)).json<{ access_token: string }>();
    assert.equal(decodeJwt(outlookFirst.access_token).aud, 'https://outlook.office.com');
    assert.equal(decodeJwt(outlookFirst.access_token).scp, 'SMTP.Send Mail.Read');
    const graphFirst = (await refresh(rt, `offline_access Mail.Read ${SMTP}`)).json<{ access_token: string }>();
    assert.equal(decodeJwt(graphFirst.access_token).aud, GRAPH, 'a Graph token, which SMTP answers with 535 5.7.3');
  });

  it('a refresh token replaces itself; the old one stays valid unless the scenario revokes on use', async () => {
    const rt1 = (await ropc(`${IMAP} offline_access`)).json<{ refresh_token: string }>().refresh_token;
    const rt2 = (await refresh(rt1, IMAP)).json<{ refresh_token: string }>().refresh_token;
    assert.ok(rt2 && rt2 !== rt1);
    assert.equal((await refresh(rt1, IMAP)).status, 200, 'Microsoft keeps old refresh tokens valid');

    await emu.admin('PATCH', '/settings', { refreshTokenReuse: 'revoke' });
    try {
      const rt3 = (await refresh(rt2, IMAP)).json<{ refresh_token: string }>().refresh_token;
      const reused = await refresh(rt2, IMAP);
      assert.equal(reused.status, 400);
      assert.equal(reused.json<{ error: string }>().error, 'invalid_grant');
      assert.equal((await refresh(rt3, IMAP)).status, 200, 'the newest one works');
    } finally {
      await emu.admin('PATCH', '/settings', { refreshTokenReuse: 'keep' });
    }
  });

  it('an app-only token has roles, the service principal as oid and sub, and no user claims', async () => {
    const service = emu.scenario.apps.find((a) => a.clientId === DEFAULT_IDS.serviceApp)!;
    const body = (
      await emu.token({
        grant_type: 'client_credentials',
        client_id: service.clientId,
        client_secret: service.secrets[0]!.value,
        scope: 'https://ps.outlook.com/.default',
      })
    ).json<Record<string, unknown>>();
    assert.deepEqual(Object.keys(body), ['token_type', 'expires_in', 'ext_expires_in', 'access_token']);
    const claims = decodeJwt(String(body.access_token));
    assert.equal(claims.aud, 'https://ps.outlook.com');
    assert.equal(claims.sub, claims.oid);
    assert.equal(claims.scp, undefined);
  });

  it('an access token lifetime is random between 60 and 90 minutes by default', async () => {
    await emu.admin('PATCH', '/settings', { accessTokenLifetime: { min: 3600, max: 5400 } });
    try {
      const lifetimes = new Set<number>();
      for (let i = 0; i < 5; i++) lifetimes.add((await ropc(IMAP)).json<{ expires_in: number }>().expires_in);
      for (const l of lifetimes) assert.ok(l >= 3600 && l < 5400, String(l));
      assert.ok(lifetimes.size > 1, 'lifetimes vary');
    } finally {
      await emu.admin('PATCH', '/settings', { accessTokenLifetime: 3600 });
    }
  });
});
