// ImapWatcher against the emulated Exchange: an IDLE session outlives its token. The watcher's
// clock and the provider's are shifted together with the emulator's; when they move past the
// token's expiry the watcher reconnects with a fresh token before anything is refused, and new
// mail keeps arriving as 'message' events, each UID once. The old token is then refused by the
// server (a raw AUTHENTICATE shows it). Dropped connections are survived too: reconnect with
// backoff, and what arrived in between is reported after the reconnect, without gaps.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import type { LoadedConfig } from '../../src/config/load.ts';
import { ImapWatcher } from '../../src/imap/index.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import type { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import type { TestConfig } from '../helpers/identity-config.ts';
import { imapLogin } from '../helpers/xoauth2-login.ts';
import { message, openStore, signInMailbox, until, writeMailConfig } from './mail-context.ts';

const ALICE = 'alice@contoso.com';
const HOUR = 3_600_000;

interface Recorded {
  events: string[];
  uids: number[];
  errors: Error[];
}

function record(watcher: ImapWatcher): Recorded {
  const r: Recorded = { events: [], uids: [], errors: [] };
  watcher.on('message', ({ uid }) => {
    r.uids.push(uid);
    r.events.push(`message ${uid}`);
  });
  watcher.on('reconnect', ({ reason }) => r.events.push(`reconnect ${reason}`));
  watcher.on('error', (err) => r.errors.push(err));
  return r;
}

async function deliver(emu: TestEmulator, subject: string): Promise<number> {
  const res = await emu.admin('POST', `/mailboxes/${ALICE}/messages`, { raw: message('carol@fabrikam.example', ALICE, subject, `Body of ${subject}.`) });
  assert.equal(res.status, 201, res.text);
  return res.json<{ uid: number }>().uid;
}

describe('ImapWatcher: an IDLE session outlives its token', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let loaded: LoadedConfig;
  let store: SqliteTokenStore;
  /** Simulated time: the emulator's clock, the provider's and the watcher's move together. */
  let offsetMs = 0;
  const now = () => Date.now() + offsetMs;

  async function advance(ms: number): Promise<void> {
    offsetMs += ms;
    await emu.admin('POST', '/clock', { advanceSeconds: ms / 1000 });
  }

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

  it("keeps receiving new-mail events across transparent reconnects as the clocks pass the token's expiry", async () => {
    const provider = new TokenProvider({ loaded, store, now, retryBaseDelayMs: 10 });
    const watcher = new ImapWatcher({ loaded, provider }, ALICE, { now, checkIntervalMs: 50, backoff: { initialMs: 100, maxMs: 1000 } });
    const seen = record(watcher);
    const renewals = () => seen.events.filter((e) => e === 'reconnect token-expiry').length;
    await watcher.start();
    try {
      const firstToken = await provider.getAccessToken(ALICE, 'imap'); // the one the watcher logged in with
      assert.equal(await imapLogin(emu.running.mailPorts.imaps, ALICE, firstToken, emu.caPem), 'a1 OK AUTHENTICATE completed.');

      const first = await deliver(emu, `First ${randomUUID()}`);
      await until('the first message event', () => seen.uids.includes(first));
      assert.deepEqual(seen.events, [`message ${first}`]);

      // Ahead of expiry: 2 minutes before the token runs out (inside the 3-minute window) the
      // watcher has moved to a new session while the old token would still be accepted.
      const exp = decodeJwt(firstToken).exp! * 1000;
      await advance(exp - now() - 2 * 60_000);
      await until('the reconnect ahead of expiry', () => renewals() === 1);
      assert.equal(
        await imapLogin(emu.running.mailPorts.imaps, ALICE, firstToken, emu.caPem),
        'a1 OK AUTHENTICATE completed.',
        'still valid: the reconnect came first',
      );
      const secondToken = await provider.getAccessToken(ALICE, 'imap');
      assert.notEqual(secondToken, firstToken);
      const second = await deliver(emu, `Second ${randomUUID()}`);
      await until('the second message event', () => seen.uids.includes(second));
      assert.deepEqual(seen.events, [`message ${first}`, 'reconnect token-expiry', `message ${second}`]);

      // Two hours on, at once: every token so far has expired and is refused; the watcher
      // reconnects with a fresh one the moment it sees the clock.
      await advance(2 * HOUR);
      await until('the reconnect after expiry', () => renewals() === 2);
      assert.equal(await imapLogin(emu.running.mailPorts.imaps, ALICE, firstToken, emu.caPem), 'a1 NO AUTHENTICATE failed.', 'the old token is refused now');
      assert.equal(await imapLogin(emu.running.mailPorts.imaps, ALICE, secondToken, emu.caPem), 'a1 NO AUTHENTICATE failed.');
      const thirdToken = await provider.getAccessToken(ALICE, 'imap');
      assert.equal(
        await imapLogin(emu.running.mailPorts.imaps, ALICE, thirdToken, emu.caPem),
        'a1 OK AUTHENTICATE completed.',
        "the new session's token is accepted",
      );

      const third = await deliver(emu, `Third ${randomUUID()}`);
      await until('the third message event', () => seen.uids.includes(third));
      assert.deepEqual(seen.events, [`message ${first}`, 'reconnect token-expiry', `message ${second}`, 'reconnect token-expiry', `message ${third}`]);
      assert.deepEqual(seen.uids, [first, second, third], 'each UID once, in order');
      assert.equal(watcher.lastUid, third);
      assert.deepEqual(seen.errors, []);
    } finally {
      await watcher.stop();
    }
  });

  it('reconnects at once when the clock jumps right past expiry, and a message delivered in between is not lost', async () => {
    const provider = new TokenProvider({ loaded, store, now, retryBaseDelayMs: 10 });
    // A long check interval: the renewal is noticed late, after mail has arrived meanwhile.
    const watcher = new ImapWatcher({ loaded, provider }, ALICE, { now, checkIntervalMs: 1500, backoff: { initialMs: 100 } });
    const seen = record(watcher);
    await watcher.start();
    try {
      await advance(2 * HOUR);
      const during = await deliver(emu, `During ${randomUUID()}`);
      await until('the reconnect', () => seen.events.includes('reconnect token-expiry'));
      await until('the message delivered around the reconnect', () => seen.uids.includes(during));
      const afterwards = await deliver(emu, `After ${randomUUID()}`);
      await until('the next message', () => seen.uids.includes(afterwards));
      assert.deepEqual(seen.uids, [during, afterwards]);
    } finally {
      await watcher.stop();
    }
  });

  it('stop() ends everything: no events afterwards', async () => {
    const provider = new TokenProvider({ loaded, store, now, retryBaseDelayMs: 10 });
    const watcher = new ImapWatcher({ loaded, provider }, ALICE, { now, checkIntervalMs: 50 });
    const seen = record(watcher);
    await watcher.start();
    assert.equal(watcher.connected, true);
    await watcher.stop();
    assert.equal(watcher.connected, false);
    await deliver(emu, `Unseen ${randomUUID()}`);
    await advance(2 * HOUR);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(seen.events, []);
  });
});

describe('ImapWatcher: dropped connections', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let loaded: LoadedConfig;
  let store: SqliteTokenStore;

  before(async () => {
    // The server closes a connection silent for 1 s: IDLE sessions keep being dropped.
    emu = await startTestEmulator((s) => {
      s.settings = { ...s.settings, mail: { ...s.settings?.mail, idleTimeoutSeconds: 1 } };
    });
    ({ cfg, loaded } = await writeMailConfig(emu));
    store = await openStore(loaded);
    await signInMailbox(emu, loaded, store, ALICE);
  });
  after(async () => {
    await store?.close();
    await emu?.close();
    if (cfg) await rm(cfg.dir, { recursive: true, force: true });
  });

  it('reconnects with backoff after each drop; mail that came while disconnected is reported after the reconnect, each UID once', async () => {
    const provider = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
    const watcher = new ImapWatcher({ loaded, provider }, ALICE, { backoff: { initialMs: 400, maxMs: 800 } });
    const seen = record(watcher);
    const drops = () => seen.events.filter((e) => e === 'reconnect connection-lost').length;
    await watcher.start();
    try {
      const delivered: number[] = [];
      for (let round = 1; round <= 3; round++) {
        // The server drops the silent IDLE session after 1 s; the watcher waits its backoff.
        await until('the drop', () => !watcher.connected, 5_000);
        delivered.push(await deliver(emu, `While disconnected ${round} ${randomUUID()}`));
        await until('the reconnect', () => drops() === round, 5_000);
        await until('the message that came in between', () => seen.uids.includes(delivered.at(-1)!));
        delivered.push(await deliver(emu, `While connected ${round} ${randomUUID()}`));
        await until('the message pushed during IDLE', () => seen.uids.includes(delivered.at(-1)!));
      }
      assert.deepEqual(seen.uids, delivered, 'each UID once, in order, none lost while disconnected');
      assert.deepEqual(seen.errors, []);
    } finally {
      await watcher.stop();
    }
  });
});
