// Real @azure/msal-node, over HTTPS, against the emulator: app-only tokens with a secret and with
// a certificate (SHA-256 thumbprint → PS256 + x5t#S256; SHA-1 → RS256 + x5t).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { thumbprints } from '../../../src/tls/certificates.ts';
import { appById, startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';

const SCOPE = ['https://outlook.office365.com/.default'];

describe('msal-node client credentials against the emulator', () => {
  let emu: TestEmulator;
  before(async () => {
    emu = await startTestEmulator();
  });
  after(() => emu.close());

  function app(credential: ConstructorParameters<typeof ConfidentialClientApplication>[0]['auth']) {
    return new ConfidentialClientApplication({
      auth: { ...emu.authority(), ...credential },
      system: { networkClient: emu.networkClient() },
    });
  }

  it('gets an Exchange app-only token with a client secret', async () => {
    const service = appById(emu, DEFAULT_IDS.serviceApp);
    const result = await app({ clientId: service.clientId, clientSecret: service.secrets[0]!.value }).acquireTokenByClientCredential({ scopes: SCOPE });
    assert.ok(result?.accessToken);
    const claims = decodeJwt(result.accessToken);
    assert.equal(claims.aud, 'https://outlook.office365.com');
    assert.equal(claims.iss, `https://sts.windows.net/${DEFAULT_IDS.tenant}/`);
    assert.deepEqual(claims.roles, ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp']);
    assert.equal(claims.idtyp, 'app');
    assert.equal(claims.appidacr, '1');
    assert.equal(claims.oid, service.servicePrincipals[DEFAULT_IDS.tenant]);
    assert.equal(claims.ver, '1.0');
    assert.equal(claims.upn, undefined);
  });

  it('signs with a certificate by SHA-256 thumbprint (PS256, x5t#S256)', async () => {
    const service = appById(emu, DEFAULT_IDS.serviceApp);
    const cert = service.certificates[0]!;
    const before = (await emu.counters()).token?.client_credentials ?? 0;
    const result = await app({
      clientId: service.clientId,
      clientCertificate: { thumbprintSha256: thumbprints(cert.certPem!).sha256Hex, privateKey: cert.keyPem! },
    }).acquireTokenByClientCredential({ scopes: SCOPE });
    assert.ok(result?.accessToken);
    assert.equal(decodeJwt(result.accessToken).appidacr, '2');
    assert.equal((await emu.counters()).token?.client_credentials, before + 1);
  });

  it('signs with a certificate by SHA-1 thumbprint (RS256, x5t)', async () => {
    const service = appById(emu, DEFAULT_IDS.serviceApp);
    const cert = service.certificates[0]!;
    const result = await app({
      clientId: service.clientId,
      clientCertificate: { thumbprint: thumbprints(cert.certPem!).sha1Hex, privateKey: cert.keyPem! },
    }).acquireTokenByClientCredential({ scopes: SCOPE });
    assert.ok(result?.accessToken);
    assert.equal(decodeProtectedHeader(result.accessToken).alg, 'RS256');
    assert.equal(decodeJwt(result.accessToken).appidacr, '2');
  });

  it('refuses a certificate the app registration does not hold (AADSTS700027)', async () => {
    const service = appById(emu, DEFAULT_IDS.serviceApp);
    const other = appById(emu, DEFAULT_IDS.webApp).certificates[0]!;
    await assert.rejects(
      app({
        clientId: service.clientId,
        clientCertificate: { thumbprintSha256: thumbprints(other.certPem!).sha256Hex, privateKey: other.keyPem! },
      }).acquireTokenByClientCredential({ scopes: SCOPE }),
      (err: { errorCode?: string; errorMessage?: string }) => {
        assert.equal(err.errorCode, 'invalid_client');
        assert.match(
          err.errorMessage ?? '',
          /AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application/,
        );
        return true;
      },
    );
  });

  it('names the Secret ID mistake (AADSTS7000215) when the secret id is sent as the secret', async () => {
    const service = appById(emu, DEFAULT_IDS.serviceApp);
    await assert.rejects(
      app({ clientId: service.clientId, clientSecret: service.secrets[0]!.id }).acquireTokenByClientCredential({ scopes: SCOPE }),
      (err: { errorCode?: string; errorMessage?: string }) => {
        assert.equal(err.errorCode, 'invalid_client');
        assert.match(err.errorMessage ?? '', /AADSTS7000215: Invalid client secret provided/);
        return true;
      },
    );
  });
});
