// A real Dovecot accepts the emulator's access tokens: locally, with the signing key the emulator
// exports in Dovecot's key layout, and through introspection, where the emulator's clock decides
// expiry, so a token can be made to expire (and be refreshed) without anyone waiting.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PublicClientApplication } from '@azure/msal-node';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { startDovecot, type Dovecot } from '../../peers/dovecot.ts';
import { startTestEmulator, userByUpn, type TestEmulator } from '../../helpers/emulator.ts';
import { imapLogin, pop3Login } from '../../helpers/xoauth2-login.ts';
import { needPeers } from '../../helpers/peers.ts';

const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';
const POP = 'https://outlook.office.com/POP.AccessAsUser.All';
const ALICE = 'alice@contoso.com';
const ISSUER = `https://sts.windows.net/${DEFAULT_IDS.tenant}/`;

/** Dovecot puts its capability list in the OK; what matters here is the OK. */
function withoutCapability(line: string): string {
  return line.replace(/ \[CAPABILITY [^\]]*\]/, '');
}

async function aliceToken(emu: TestEmulator, scope = IMAP): Promise<string> {
  const res = await emu.token({
    grant_type: 'password',
    client_id: DEFAULT_IDS.desktopApp,
    username: ALICE,
    password: userByUpn(emu, ALICE).password,
    scope: `${scope} offline_access`,
  });
  assert.equal(res.status, 200, res.text);
  return res.json<{ access_token: string }>().access_token;
}

describe('Dovecot accepts emulator-issued tokens', { skip: needPeers('dovecot') }, () => {
  let emu: TestEmulator;
  before(async () => {
    emu = await startTestEmulator((s) => {
      s.consents!.push({ clientId: DEFAULT_IDS.desktopApp, tenant: DEFAULT_IDS.tenant, user: ALICE, scopes: [IMAP, POP] });
    });
  });
  after(() => emu.close());

  describe('local validation with the exported signing key', () => {
    let dovecot: Dovecot;
    before(async () => {
      dovecot = await startDovecot({ issuer: ISSUER, keysDir: emu.running.dovecotKeysDir });
    });
    after(() => dovecot.stop());

    it('logs in over IMAP and POP3 with a fresh token', async () => {
      const token = await aliceToken(emu);
      assert.equal(withoutCapability(await imapLogin(dovecot.imapPort, ALICE, token)), 'a1 OK Logged in', await dovecot.log());
      assert.match(await pop3Login(dovecot.pop3Port, ALICE, await aliceToken(emu, POP)), /^\+OK Logged in/);
    });

    it('refuses a token that expired, over IMAP and POP3', async () => {
      // Issue a token "two hours ago": its exp is an hour in the real past, which Dovecot checks.
      await emu.admin('POST', '/clock', { advanceSeconds: -7200 });
      const token = await aliceToken(emu);
      await emu.admin('POST', '/clock', { reset: true });
      assert.equal(await imapLogin(dovecot.imapPort, ALICE, token), 'a1 NO [AUTHENTICATIONFAILED] Authentication failed.');
      assert.equal(await pop3Login(dovecot.pop3Port, ALICE, token), '-ERR [AUTH] Authentication failed.');
      assert.match(await dovecot.log(), /Token has expired/);
    });

    it("refuses a token for another user than the login's", async () => {
      assert.equal(await imapLogin(dovecot.imapPort, 'bob@contoso.com', await aliceToken(emu)), 'a1 NO [AUTHENTICATIONFAILED] Authentication failed.');
    });
  });

  describe("introspection on the emulator's clock", () => {
    let dovecot: Dovecot;
    before(async () => {
      dovecot = await startDovecot({
        issuer: ISSUER,
        introspectionUrl: `https://127.0.0.1:${new URL(emu.url).port}/_emulator/introspect`,
        introspectionCaFile: join(emu.dataDir, 'ca.crt'),
      });
    });
    after(() => dovecot.stop());

    it('a token issued, the clock moved 2 hours: Dovecot refuses it, a refresh gets one it accepts', async () => {
      const pca = new PublicClientApplication({
        auth: { clientId: DEFAULT_IDS.desktopApp, ...emu.authority() },
        system: { networkClient: emu.networkClient() },
      });
      const first = await pca.acquireTokenByUsernamePassword({ scopes: [IMAP], username: ALICE, password: userByUpn(emu, ALICE).password });
      assert.ok(first?.account);
      assert.equal(withoutCapability(await imapLogin(dovecot.imapPort, ALICE, first.accessToken)), 'a1 OK Logged in');

      const started = Date.now();
      await emu.admin('POST', '/clock', { advanceSeconds: 2 * 3600 });
      try {
        assert.equal(await imapLogin(dovecot.imapPort, ALICE, first.accessToken), 'a1 NO [AUTHENTICATIONFAILED] Authentication failed.');
        const refreshesBefore = (await emu.counters()).token?.refresh_token ?? 0;
        const second = await pca.acquireTokenSilent({ account: first.account, scopes: [IMAP], forceRefresh: true });
        assert.notEqual(second.accessToken, first.accessToken);
        assert.equal((await emu.counters()).token?.refresh_token, refreshesBefore + 1);
        assert.equal(withoutCapability(await imapLogin(dovecot.imapPort, ALICE, second.accessToken)), 'a1 OK Logged in');
        assert.match(await pop3Login(dovecot.pop3Port, ALICE, second.accessToken), /^\+OK Logged in/);
      } finally {
        await emu.admin('POST', '/clock', { reset: true });
      }
      // Two simulated hours passed in well under a minute of real time (Dovecot delays failures 0.5 s).
      assert.ok(Date.now() - started < 30_000);
    });
  });
});
