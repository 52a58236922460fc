// Real @azure/msal-node, over HTTPS, against the emulator, for the grants a person takes part in:
// authorization code with PKCE (the test plays the browser on the sign-in and consent pages),
// device code (the test enters the code on the verification page), and a silent refresh.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfidentialClientApplication, CryptoProvider, PublicClientApplication } from '@azure/msal-node';
import { decodeJwt } from 'jose';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { appById, startTestEmulator, userByUpn, type TestEmulator } from '../../helpers/emulator.ts';
import { completeDeviceCode, signIn } from '../../helpers/browserless.ts';

const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';
const SMTP = 'https://outlook.office.com/SMTP.Send';

describe('msal-node user flows against the emulator', () => {
  let emu: TestEmulator;
  before(async () => {
    emu = await startTestEmulator();
  });
  after(() => emu.close());

  const publicApp = () =>
    new PublicClientApplication({
      auth: { clientId: DEFAULT_IDS.desktopApp, ...emu.authority() },
      system: { networkClient: emu.networkClient() },
    });

  it('authorization code with PKCE, then a silent refresh', async () => {
    const pca = publicApp();
    const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
    const redirectUri = 'http://localhost:53682/';
    const url = await pca.getAuthCodeUrl({
      scopes: [IMAP, SMTP],
      redirectUri,
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
      state: 'xyz',
      loginHint: 'alice@contoso.com',
    });
    const landed = await signIn(url, {
      caPem: emu.caPem,
      username: 'alice@contoso.com',
      password: userByUpn(emu, 'alice@contoso.com').password,
      consent: 'accept',
    });
    assert.equal(landed.origin + landed.pathname, 'http://localhost:53682/');
    assert.equal(landed.searchParams.get('state'), 'xyz');
    const code = landed.searchParams.get('code');
    assert.ok(code);

    const result = await pca.acquireTokenByCode({ code, scopes: [IMAP, SMTP], redirectUri, codeVerifier: verifier });
    const claims = decodeJwt(result.accessToken);
    assert.equal(claims.aud, 'https://outlook.office.com');
    assert.equal(claims.scp, 'IMAP.AccessAsUser.All SMTP.Send');
    assert.equal(claims.upn, 'alice@contoso.com');
    assert.equal(claims.appidacr, '0');
    assert.equal(result.account?.username, 'alice@contoso.com');
    assert.equal(result.account?.tenantId, DEFAULT_IDS.tenant);

    // The access token is still fresh, so a silent call is answered from MSAL's cache...
    const cached = await pca.acquireTokenSilent({ account: result.account, scopes: [IMAP] });
    assert.equal(cached.accessToken, result.accessToken);
    // ...and a forced one redeems the refresh token MSAL keeps in its cache.
    const before = (await emu.counters()).token?.refresh_token ?? 0;
    const refreshed = await pca.acquireTokenSilent({ account: result.account, scopes: [IMAP], forceRefresh: true });
    assert.notEqual(refreshed.accessToken, result.accessToken);
    assert.equal(decodeJwt(refreshed.accessToken).upn, 'alice@contoso.com');
    assert.equal((await emu.counters()).token?.refresh_token, before + 1);
  });

  it('device code: the person enters the code on the verification page', async () => {
    const pca = publicApp();
    let message = '';
    const result = await pca.acquireTokenByDeviceCode({
      scopes: [IMAP],
      deviceCodeCallback: (response) => {
        message = response.message;
        void completeDeviceCode(response.verificationUri, response.userCode, {
          caPem: emu.caPem,
          username: 'bob@contoso.com',
          password: userByUpn(emu, 'bob@contoso.com').password,
          consent: 'accept',
        });
      },
    });
    assert.match(
      message,
      /^To sign in, use a web browser to open the page https:\/\/localhost:\d+\/devicelogin and enter the code [A-Z0-9]{9} to authenticate\.$/,
    );
    assert.ok(result);
    assert.equal(decodeJwt(result.accessToken).upn, 'bob@contoso.com');
    assert.equal(result.account?.username, 'bob@contoso.com');
  });

  it('a confidential web app: authorization code with its secret, admin-consented', async () => {
    const web = appById(emu, DEFAULT_IDS.webApp);
    const cca = new ConfidentialClientApplication({
      auth: { clientId: web.clientId, clientSecret: web.secrets[0]!.value, ...emu.authority() },
      system: { networkClient: emu.networkClient() },
    });
    const redirectUri = 'http://localhost/auth/callback';
    const url = await cca.getAuthCodeUrl({ scopes: [IMAP], redirectUri, state: 'web1' });
    // Bob never consented himself; the admin consent in the scenario covers him (no consent page).
    const landed = await signIn(url, { caPem: emu.caPem, username: 'bob@contoso.com', password: userByUpn(emu, 'bob@contoso.com').password });
    const code = landed.searchParams.get('code');
    assert.ok(code, landed.toString());
    const result = await cca.acquireTokenByCode({ code, scopes: [IMAP], redirectUri });
    assert.equal(decodeJwt(result.accessToken).appidacr, '1');
  });

  it('a personal Outlook.com account gets an opaque access token', async () => {
    const pca = new PublicClientApplication({
      auth: { clientId: DEFAULT_IDS.desktopApp, ...emu.authority('consumers') },
      system: { networkClient: emu.networkClient() },
    });
    const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
    const redirectUri = 'http://localhost:53683/';
    const url = await pca.getAuthCodeUrl({ scopes: [IMAP], redirectUri, codeChallenge: challenge, codeChallengeMethod: 'S256' });
    const landed = await signIn(url, {
      caPem: emu.caPem,
      username: 'carol@outlook.com',
      password: userByUpn(emu, 'carol@outlook.com').password,
      consent: 'accept',
    });
    const result = await pca.acquireTokenByCode({ code: landed.searchParams.get('code')!, scopes: [IMAP], redirectUri, codeVerifier: verifier });
    assert.match(result.accessToken, /^EwB/);
    assert.equal(result.account?.tenantId, '9188040d-6c67-4c5b-b112-36a304b66dad');
  });
});
