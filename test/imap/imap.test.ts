// openImap against real servers: the emulated Exchange (delegated and app-only mailboxes) and a
// real Dovecot taking the emulator's tokens (implicit TLS and STARTTLS). A fresh token per
// connect; a token the server refuses is invalidated and refreshed once, then the failure is an
// ImapError with the server's reply and no token; certificates are always verified.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { ImapFlow } from 'imapflow';
import type { LoadedConfig } from '../../src/config/load.ts';
import { ImapError, openImap } from '../../src/imap/index.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import type { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import type { TestConfig } from '../helpers/identity-config.ts';
import { seedMaildir, startDovecot, type Dovecot } from '../peers/dovecot.ts';
import { DOVECOT_ISSUER, message, openStore, peerTls, signInMailbox, writeMailConfig } from './mail-context.ts';
import { needPeers } from '../helpers/peers.ts';

const ALICE = 'alice@contoso.com';
const SUPPORT = 'support@contoso.com';
const HOUR = 3_600_000;

async function counters(emu: TestEmulator): Promise<{ imapOk: number; imapFailed: number; refreshes: number; clientCredentials: number }> {
  const c = await emu.counters();
  return {
    imapOk: c.imap?.auth_ok ?? 0,
    imapFailed: c.imap?.auth_failed ?? 0,
    refreshes: c.token?.refresh_token ?? 0,
    clientCredentials: c.token?.client_credentials ?? 0,
  };
}

/** INBOX is listed; the message with `subject` is fetched by UID with its body intact. */
async function readBack(client: ImapFlow, subject: string, body: string): Promise<number> {
  const list = await client.list();
  assert.ok(
    list.some((m) => m.path === 'INBOX'),
    list.map((m) => m.path).join(', '),
  );
  const lock = await client.getMailboxLock('INBOX');
  try {
    const uids = (await client.search({ subject }, { uid: true })) || [];
    assert.equal(uids.length, 1, `one message with subject ${subject}`);
    const found = await client.fetchOne(String(uids[0]), { envelope: true, source: true }, { uid: true });
    assert.ok(found && found.envelope && found.source);
    assert.equal(found.envelope.subject, subject);
    assert.ok(found.source.toString('utf8').replace(/\r\n/g, '\n').includes(`\n\n${body}`));
    return uids[0]!;
  } finally {
    lock.release();
  }
}

describe('openImap', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let loaded: LoadedConfig;
  let store: SqliteTokenStore;
  let provider: TokenProvider;
  const extra: TestConfig[] = [];

  before(async () => {
    emu = await startTestEmulator();
    ({ cfg, loaded } = await writeMailConfig(emu));
    store = await openStore(loaded);
    await signInMailbox(emu, loaded, store, ALICE);
    provider = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
  });
  after(async () => {
    await store?.close();
    await emu?.close();
    for (const c of [cfg, ...extra]) if (c) await rm(c.dir, { recursive: true, force: true });
  });

  describe('against the emulated Exchange', () => {
    it('logs alice in over verified TLS, lists INBOX and fetches a delivered message', async () => {
      const subject = `Delivered ${randomUUID()}`;
      const res = await emu.admin('POST', `/mailboxes/${ALICE}/messages`, { raw: message('carol@fabrikam.example', ALICE, subject, 'Hello over IMAP.') });
      assert.equal(res.status, 201, res.text);
      const delivered = res.json<{ uid: number }>().uid;
      const client = await openImap({ loaded, provider }, ALICE);
      try {
        assert.equal(client.secureConnection, true);
        assert.equal(client.tls && client.tls.authorized, true, 'the certificate was verified');
        assert.equal(await readBack(client, subject, 'Hello over IMAP.'), delivered);
      } finally {
        await client.logout();
      }
    });

    it('an app-only mailbox (support@, the service app with a certificate) works the same way', async () => {
      const subject = `App-only ${randomUUID()}`;
      assert.equal((await emu.admin('POST', `/mailboxes/${SUPPORT}/messages`, { raw: message(ALICE, SUPPORT, subject, 'For the support desk.') })).status, 201);
      const client = await openImap({ loaded, provider }, SUPPORT);
      try {
        await readBack(client, subject, 'For the support desk.');
      } finally {
        await client.logout();
      }
    });

    it('a token the server refuses is invalidated, refreshed once and the login retried', async () => {
      // The provider's clock stays; the server's moves 2 hours on: the cached token is still
      // fresh to the provider, expired to the server.
      const p = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
      const stale = await p.getAccessToken(ALICE, 'imap');
      await emu.admin('POST', '/clock', { advanceSeconds: 2 * 3600 });
      try {
        const before = await counters(emu);
        const client = await openImap({ loaded, provider: p }, ALICE);
        await client.logout();
        const after = await counters(emu);
        assert.equal(after.imapFailed - before.imapFailed, 1, 'the stale token was refused once');
        assert.equal(after.refreshes - before.refreshes, 1, 'one refresh');
        assert.equal(after.imapOk - before.imapOk, 1, 'the fresh token was accepted');
        assert.notEqual(await p.getAccessToken(ALICE, 'imap'), stale);
      } finally {
        await emu.admin('POST', '/clock', { reset: true });
      }
    });

    it('refused again after the refresh: an ImapError with the server reply, no token, after exactly two logins', async () => {
      // Without its service principal in Exchange, every app-only token is refused at AUTHENTICATE.
      const sps = emu.scenario.exchange.servicePrincipals;
      const saved = sps.map((sp) => ({ ...sp }));
      for (const sp of saved) assert.equal((await emu.admin('DELETE', `/exchange/service-principals/${sp.objectId}`)).status, 200);
      const p = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
      try {
        const before = await counters(emu);
        const err = await openImap({ loaded, provider: p }, SUPPORT).then(
          () => assert.fail('the login should have been refused'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof ImapError, inspect(err));
        assert.equal(err.code, 'auth_rejected');
        assert.equal(err.mailbox, SUPPORT);
        assert.equal(err.response, 'NO AUTHENTICATE failed.');
        assert.match(err.message, /refused the access token \("NO AUTHENTICATE failed\."\), also a freshly refreshed one/);
        const after = await counters(emu);
        assert.equal(after.imapFailed - before.imapFailed, 2, 'two logins, no more');
        assert.equal(after.clientCredentials - before.clientCredentials, 1, 'the stored token first, then exactly one new one after invalidate');
        const token = await p.getAccessToken(SUPPORT, 'imap');
        assert.ok(!inspect(err, { depth: 10 }).includes(token), 'no token anywhere in the error');
      } finally {
        for (const sp of saved) await emu.admin('POST', '/exchange/service-principals', sp);
      }
      const client = await openImap({ loaded, provider: p }, SUPPORT);
      await client.logout();
    });

    it('"authenticated but not connected" is its own error, and not retried with a new token', async () => {
      await emu.admin('PATCH', `/mailboxes/${ALICE}`, { imapEnabled: false });
      try {
        const before = await counters(emu);
        await assert.rejects(openImap({ loaded, provider }, ALICE), (err: unknown) => {
          assert.ok(err instanceof ImapError, inspect(err));
          assert.equal(err.code, 'not_connected');
          assert.match(err.response ?? '', /User is authenticated but not connected/);
          return true;
        });
        assert.equal((await counters(emu)).refreshes - before.refreshes, 0);
      } finally {
        await emu.admin('PATCH', `/mailboxes/${ALICE}`, { imapEnabled: true });
      }
    });

    it('verifies certificates: without the emulator CA the connection fails with a tls error', async () => {
      const other = await writeMailConfig(emu, { caFile: null });
      extra.push(other.cfg);
      await assert.rejects(openImap({ loaded: other.loaded, provider: new TokenProvider({ loaded: other.loaded, store }) }, ALICE), (err: unknown) => {
        assert.ok(err instanceof ImapError, inspect(err));
        assert.equal(err.code, 'tls');
        assert.match(err.message, /certificate/i);
        return true;
      });
    });
  });

  describe("against Dovecot with the emulator's tokens", { skip: needPeers('dovecot') }, () => {
    let dovecot: Dovecot;
    let implicit: LoadedConfig;
    let starttls: LoadedConfig;
    const subject = `Seeded ${randomUUID()}`;

    before(async () => {
      dovecot = await startDovecot({ issuer: DOVECOT_ISSUER, keysDir: emu.running.dovecotKeysDir, tls: await peerTls(emu) });
      await seedMaildir(dovecot, ALICE, [Buffer.from(message('carol@fabrikam.example', ALICE, subject, 'Hello from Dovecot.'))]);
      const a = await writeMailConfig(emu, { imap: `imaps://localhost:${dovecot.imapsPort}` });
      const b = await writeMailConfig(emu, { imap: `imap://localhost:${dovecot.imapPort}` });
      extra.push(a.cfg, b.cfg);
      implicit = a.loaded;
      starttls = b.loaded;
    });
    after(async () => {
      await dovecot?.stop();
    });

    for (const [label, config] of [
      ['implicit TLS (imaps)', () => implicit],
      ['STARTTLS', () => starttls],
    ] as const) {
      it(`logs alice in with ${label}, lists INBOX and fetches the message`, async () => {
        // The same token store as the emulator tests: the grant is the same, only the server differs.
        const client = await openImap({ loaded: config(), provider: new TokenProvider({ loaded: config(), store }) }, ALICE);
        try {
          assert.equal(client.secureConnection, true);
          assert.equal(client.tls && client.tls.authorized, true);
          await readBack(client, subject, 'Hello from Dovecot.');
        } finally {
          await client.logout();
        }
      });
    }

    it("a token Dovecot refuses, refreshed and refused again: ImapError with Dovecot's reply", async () => {
      // Tokens issued 2 hours in the (emulator's) past are expired for Dovecot, which uses the
      // real clock; the provider, 2 hours behind too, takes them as fresh.
      await emu.admin('POST', '/clock', { advanceSeconds: -2 * 3600 });
      const p = new TokenProvider({ loaded: implicit, store, now: () => Date.now() - 2 * HOUR, retryBaseDelayMs: 10 });
      try {
        p.invalidate(ALICE, 'imap');
        await p.getAccessToken(ALICE, 'imap'); // the stored (valid) one, now in memory
        p.invalidate(ALICE, 'imap'); // so the next one comes from the past-clock emulator
        const before = await counters(emu);
        const err = await openImap({ loaded: implicit, provider: p }, ALICE).then(
          () => assert.fail('Dovecot should have refused'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof ImapError, inspect(err));
        assert.equal(err.code, 'auth_rejected');
        assert.equal(err.response, 'NO [AUTHENTICATIONFAILED] Authentication failed.');
        assert.equal((await counters(emu)).refreshes - before.refreshes, 2, 'a token, then one more after invalidate');
        assert.match(await dovecot.log(), /expired/i);
      } finally {
        await emu.admin('POST', '/clock', { reset: true });
      }
    });
  });
});
