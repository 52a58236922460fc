// openPop3ForMailbox (the POP3 login fetch and Pop3Source use) behaves as openImap does: a token
// the server refuses is invalidated, refreshed once and the login retried; refused again, it is a
// Pop3Error 'auth_rejected' that says a fresh token was refused too, after exactly two logins.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { LoadedConfig } from '../../src/config/load.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import { Pop3Error } from '../../src/pop3/errors.ts';
import { openPop3ForMailbox } from '../../src/pop3/login.ts';
import type { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import type { TestConfig } from '../helpers/identity-config.ts';
import { openStore, signInMailbox, writeMailConfig } from '../imap/mail-context.ts';

const ALICE = 'alice@contoso.com';

async function counters(emu: TestEmulator): Promise<{ ok: number; failed: number; refreshes: number }> {
  const c = await emu.counters();
  return { ok: c.pop?.auth_ok ?? 0, failed: c.pop?.auth_failed ?? 0, refreshes: c.token?.refresh_token ?? 0 };
}

describe('openPop3ForMailbox: one refresh-and-retry', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let loaded: LoadedConfig;
  let store: SqliteTokenStore;
  before(async () => {
    emu = await startTestEmulator();
    ({ cfg, loaded } = await writeMailConfig(emu));
    store = await openStore(loaded);
    await signInMailbox(emu, loaded, store, ALICE);
  });
  after(async () => {
    await store?.close();
    await emu?.close();
    if (cfg) await rm(cfg.dir, { recursive: true, force: true });
  });

  it('a token the server refuses is invalidated, refreshed once and the login retried', async () => {
    // The provider's clock stays; the server's moves 2 hours on: the cached token is still fresh
    // to the provider, expired to the server.
    const provider = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
    const stale = await provider.getAccessToken(ALICE, 'pop');
    await emu.admin('POST', '/clock', { advanceSeconds: 2 * 3600 });
    try {
      const before = await counters(emu);
      const client = await openPop3ForMailbox({ loaded, provider }, ALICE, { retryPauseMs: 1 });
      assert.equal(typeof (await client.stat()).count, 'number', 'logged in');
      await client.quit();
      const after = await counters(emu);
      assert.equal(after.failed - before.failed, 1, 'the stale token was refused once');
      assert.equal(after.refreshes - before.refreshes, 1, 'one refresh');
      assert.equal(after.ok - before.ok, 1, 'the fresh token was accepted');
      assert.notEqual(await provider.getAccessToken(ALICE, 'pop'), stale);
      await provider.settled();
    } finally {
      await emu.admin('POST', '/clock', { reset: true });
    }
  });

  it('refused again after the refresh: Pop3Error auth_rejected with the server reply, no token, after exactly two logins', async () => {
    // POP3 switched off for the mailbox (Set-CASMailbox -PopEnabled $false): every token is refused.
    assert.equal((await emu.admin('PATCH', `/mailboxes/${ALICE}`, { popEnabled: false })).status, 200);
    const provider = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
    try {
      const before = await counters(emu);
      const err = await openPop3ForMailbox({ loaded, provider }, ALICE, { retryPauseMs: 1 }).then(
        () => assert.fail('the login should have been refused'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof Pop3Error, String(err));
      assert.equal(err.code, 'auth_rejected');
      assert.match(err.message, /freshly refreshed/);
      assert.ok(err.reply && err.message.includes(err.reply), 'the server reply is kept');
      const after = await counters(emu);
      assert.equal(after.failed - before.failed, 2, 'two logins, no more');
      const token = await provider.getAccessToken(ALICE, 'pop');
      assert.ok(!err.message.includes(token) && !(err.reply ?? '').includes(token), 'no token in the error');
      await provider.settled();
    } finally {
      await emu.admin('PATCH', `/mailboxes/${ALICE}`, { popEnabled: true });
    }
  });
});
