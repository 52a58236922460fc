// One behaviour suite for every MailSource: POP3 and IMAP against the emulated Exchange and, when
// it is installed, against a real Dovecot taking the emulator's tokens. Mail is put in with IMAP
// APPEND (both servers, any folder), so what a source reads back can be compared byte for byte
// with what went in. Then the MailSender: the Message-ID it returns is the one the recipient's
// mailbox holds.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { openImap } from '../../src/imap/connect.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import type { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { TransportError } from '../../src/transport/errors.ts';
import { messageIdOf } from '../../src/transport/message-id.ts';
import { openMailSender, openMailSource, type MailContext } from '../../src/transport/open.ts';
import type { MailSource, SourceProtocol } from '../../src/transport/types.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import type { TestConfig } from '../helpers/identity-config.ts';
import { startDovecot, type Dovecot } from '../peers/dovecot.ts';
import { DOVECOT_ISSUER, openStore, peerTls, signInMailbox, until, writeMailConfig } from '../imap/mail-context.ts';
import { needPeers } from '../helpers/peers.ts';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';

/** A message with what tends to break byte-exactness: leading dots, 8-bit text, a 998-octet line. */
function rawMessage(subject: string): Buffer {
  return Buffer.from(
    [
      'From: <carol@fabrikam.example>',
      `To: <${ALICE}>`,
      `Subject: ${subject}`,
      `Message-ID: <${randomUUID()}@fabrikam.example>`,
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      '.a line that starts with a dot',
      '..and one with two',
      '.',
      'Grüße aus Köln',
      'x'.repeat(998),
      '',
    ].join('\r\n'),
  );
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A mail server the sources are run against. */
interface Peer {
  name: string;
  ctx: () => MailContext;
  /** Pollable sources here wait this long between looks. */
  pollIntervalMs: number;
}

/** An IMAP session beside the source under test (to put mail in and look at flags and folders). */
async function withImap<T>(peer: Peer, work: (client: ImapFlow) => Promise<T>): Promise<T> {
  const client = await openImap(peer.ctx(), ALICE);
  try {
    return await work(client);
  } finally {
    await client.logout().catch(() => client.close());
  }
}

async function deliver(peer: Peer, raw: Buffer, folder = 'INBOX'): Promise<void> {
  await withImap(peer, async (client) => {
    assert.ok(await client.append(folder, raw), `APPEND to ${folder}`);
  });
}

/** Empties INBOX, so each test sees only its own messages. */
async function emptyInbox(peer: Peer): Promise<void> {
  await withImap(peer, async (client) => {
    const box = await client.mailboxOpen('INBOX');
    if (box.exists > 0) await client.messageDelete('1:*');
  });
}

function open(peer: Peer, protocol: SourceProtocol, folder?: string): Promise<MailSource> {
  return openMailSource(peer.ctx(), ALICE, protocol, {
    pop: { pollIntervalMs: peer.pollIntervalMs },
    imap: { ...(folder ? { folder } : {}), watcher: { checkIntervalMs: 50, backoff: { initialMs: 50, maxMs: 500 } } },
  });
}

async function contentsById(source: MailSource, ids: string[]): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  await source.readEach(ids, async (id, message) => void found.set(id, await bytesOf(message)));
  return found;
}

function sourceSuite(peer: Peer, protocol: SourceProtocol): void {
  describe(`${protocol} source against ${peer.name}`, () => {
    it('lists what is new (since a checkpoint, beyond the known ids) and streams it byte for byte', async () => {
      await emptyInbox(peer);
      const first = [rawMessage(`One ${randomUUID()}`), rawMessage(`Two ${randomUUID()}`)];
      for (const raw of first) await deliver(peer, raw);
      const source = await open(peer, protocol);
      try {
        const listed = await source.listNew();
        assert.equal(listed.reset, false);
        assert.equal(listed.messages.length, 2);
        const ids = listed.messages.map((m) => m.id);
        assert.equal(new Set(ids).size, 2, 'ids are distinct');
        const contents = await contentsById(source, ids);
        assert.deepEqual(
          ids.map((id) => contents.get(id)),
          first,
          'readEach gives every message exactly as it went in, in order',
        );
        assert.deepEqual(await bytesOf(await source.read(ids[1]!)), first[1], 'read gives the same bytes');
        if (protocol === 'imap') {
          assert.deepEqual(listed.checkpoint?.kind, 'imap');
          assert.match(ids[0]!, new RegExp(`^${listed.checkpoint?.uidValidity}:\\d+$`));
          assert.equal(listed.messages[0]!.folder, 'INBOX');
        } else {
          assert.equal(listed.checkpoint, undefined, 'POP3 has no order, so no checkpoint');
        }

        const known = new Set(ids);
        assert.deepEqual((await source.listNew({ known })).messages, [], 'nothing new beyond the known ids');
        const third = rawMessage(`Three ${randomUUID()}`);
        await deliver(peer, third);
        // A new listing sees what arrived since (POP3: in a new session).
        const since = protocol === 'imap' ? { since: listed.checkpoint! } : { known };
        const next = await source.listNew(since);
        assert.equal(next.messages.length, 1, JSON.stringify(next.messages));
        assert.ok(!known.has(next.messages[0]!.id));
        assert.deepEqual(await bytesOf(await source.read(next.messages[0]!.id)), third);
        if (protocol === 'pop')
          assert.deepEqual(new Set((await source.listNew()).messages.map((m) => m.id)), new Set([...ids, next.messages[0]!.id]), 'UIDLs stay');
        else {
          assert.deepEqual((await source.listNew({ since: next.checkpoint! })).messages, [], 'nothing after the newer checkpoint');
          assert.equal(next.checkpoint!.uidValidity, listed.checkpoint!.uidValidity);
        }
      } finally {
        await source.close();
      }
    });

    it('markDone delete: the messages are gone once the source is closed', async () => {
      await emptyInbox(peer);
      await deliver(peer, rawMessage(`Delete me ${randomUUID()}`));
      await deliver(peer, rawMessage(`Keep me ${randomUUID()}`));
      const source = await open(peer, protocol);
      let kept: string;
      try {
        const [gone, stays] = (await source.listNew()).messages;
        kept = stays!.id;
        await source.markDone([gone!.id], { kind: 'delete' });
      } finally {
        await source.close();
      }
      const again = await open(peer, protocol);
      try {
        assert.deepEqual(
          (await again.listNew()).messages.map((m) => m.id),
          [kept],
        );
      } finally {
        await again.close();
      }
    });

    it('watch wakes on new mail and ends when aborted', async () => {
      const source = await open(peer, protocol);
      try {
        const controller = new AbortController();
        let ready = false;
        let wakes = 0;
        const errors: Error[] = [];
        const watching = source.watch({
          signal: controller.signal,
          onReady: () => (ready = true),
          onNewMail: () => wakes++,
          onError: (err) => errors.push(err),
        });
        await until('the watch is ready', () => ready || undefined, 30_000);
        assert.equal(wakes, 0, 'nothing new yet');
        await deliver(peer, rawMessage(`Wake up ${randomUUID()}`));
        await until('the watch wakes', () => wakes > 0 || undefined, 30_000);
        controller.abort();
        await watching;
        assert.deepEqual(errors, []);
      } finally {
        await source.close();
      }
    });

    if (protocol === 'pop') {
      it('POP3 refuses to flag or move, and an IMAP checkpoint', async () => {
        await emptyInbox(peer);
        await deliver(peer, rawMessage(`Only delete ${randomUUID()}`));
        const source = await open(peer, 'pop');
        try {
          assert.deepEqual([...source.doneActions], ['delete']);
          const [message] = (await source.listNew()).messages;
          const refused = (code: string) => (err: unknown) => err instanceof TransportError && err.code === code;
          await assert.rejects(source.markDone([message!.id], { kind: 'flag', flag: '\\Seen' }), refused('unsupported'));
          await assert.rejects(source.markDone([message!.id], { kind: 'move', folder: 'Archive' }), refused('unsupported'));
          await assert.rejects(source.listNew({ since: { kind: 'imap', folder: 'INBOX', uidValidity: '1', lastUid: 0 } }), refused('checkpoint_mismatch'));
          await assert.rejects(source.read('no-such-uidl'), refused('unknown_message'));
        } finally {
          await source.close();
        }
      });
    }

    if (protocol === 'imap') {
      it('markDone flag keeps the message and sets the flag; move takes it to the other folder', async () => {
        await emptyInbox(peer);
        const folder = `Moved ${randomUUID().slice(0, 8)}`;
        await withImap(peer, (client) => client.mailboxCreate(folder));
        const moved = rawMessage(`Move me ${randomUUID()}`);
        await deliver(peer, rawMessage(`Flag me ${randomUUID()}`));
        await deliver(peer, moved);
        const source = await open(peer, 'imap');
        try {
          const [flagged, moving] = (await source.listNew()).messages;
          await source.markDone([flagged!.id], { kind: 'flag', flag: '\\Flagged' });
          await source.markDone([moving!.id], { kind: 'move', folder });
          const left = (await source.listNew()).messages.map((m) => m.id);
          assert.deepEqual(left, [flagged!.id], 'the moved message left INBOX, the flagged one stayed');
          const uid = flagged!.id.split(':')[1]!;
          const flags = await withImap(peer, async (client): Promise<Set<string>> => {
            await client.mailboxOpen('INBOX');
            const fetched = await client.fetchOne(uid, { flags: true }, { uid: true });
            return (fetched && fetched.flags) || new Set();
          });
          assert.ok(flags.has('\\Flagged'), `flags: ${[...flags].join(' ')}`);
        } finally {
          await source.close();
        }
        const there = await open(peer, 'imap', folder);
        try {
          const [message] = (await there.listNew()).messages;
          assert.equal(message!.folder, folder);
          assert.deepEqual(await bytesOf(await there.read(message!.id)), moved);
        } finally {
          await there.close();
        }
      });

      it('a UIDVALIDITY change is reported as a reset, and ids from before it are refused', async () => {
        const folder = `Renumbered ${randomUUID().slice(0, 8)}`;
        await withImap(peer, (client) => client.mailboxCreate(folder));
        await deliver(peer, rawMessage(`Before ${randomUUID()}`), folder);
        const source = await open(peer, 'imap', folder);
        try {
          const before = await source.listNew();
          assert.equal(before.messages.length, 1);
          // The folder is deleted and created again under the same name: its UIDs start over.
          await withImap(peer, async (client) => {
            await client.mailboxDelete(folder);
            await client.mailboxCreate(folder);
          });
          const after = rawMessage(`After ${randomUUID()}`);
          await deliver(peer, after, folder);
          const next = await source.listNew({ since: before.checkpoint! });
          assert.equal(next.reset, true, 'the caller is told');
          assert.notEqual(next.checkpoint!.uidValidity, before.checkpoint!.uidValidity);
          assert.equal(next.messages.length, 1, 'everything there is new again');
          assert.deepEqual(await bytesOf(await source.read(next.messages[0]!.id)), after);
          await assert.rejects(
            source.markDone([before.messages[0]!.id], { kind: 'delete' }),
            (err: unknown) => err instanceof TransportError && err.code === 'stale_message',
          );
          assert.equal((await source.listNew({ since: next.checkpoint! })).reset, false);
        } finally {
          await source.close();
        }
      });
    }
  });
}

describe('MailSource and MailSender', () => {
  let emu: TestEmulator;
  let store: SqliteTokenStore;
  const configs: TestConfig[] = [];
  const emulatorPeer: Peer & { loaded?: MailContext['loaded'] } = {
    name: 'the emulator',
    pollIntervalMs: 50,
    ctx: () => ({ loaded: emulatorPeer.loaded!, provider: emulatorProvider! }),
  };
  let emulatorProvider: TokenProvider | undefined;

  before(async () => {
    emu = await startTestEmulator();
    const { cfg, loaded } = await writeMailConfig(emu);
    configs.push(cfg);
    store = await openStore(loaded);
    await signInMailbox(emu, loaded, store, ALICE);
    emulatorPeer.loaded = loaded;
    emulatorProvider = new TokenProvider({ loaded, store });
  });
  after(async () => {
    await emulatorProvider?.settled();
    await store?.close();
    await emu?.close();
    for (const cfg of configs) await rm(cfg.dir, { recursive: true, force: true });
  });

  for (const protocol of ['pop', 'imap'] as const) sourceSuite(emulatorPeer, protocol);

  describe('against Dovecot', { skip: needPeers('dovecot') }, () => {
    let dovecot: Dovecot | undefined;
    let provider: TokenProvider | undefined;
    const peer: Peer & { loaded?: MailContext['loaded'] } = {
      name: "Dovecot (the emulator's tokens)",
      pollIntervalMs: 50,
      ctx: () => ({ loaded: peer.loaded!, provider: provider! }),
    };
    before(async () => {
      dovecot = await startDovecot({ issuer: DOVECOT_ISSUER, keysDir: emu.running.dovecotKeysDir, tls: await peerTls(emu) });
      const { cfg, loaded } = await writeMailConfig(emu, { imap: `imaps://localhost:${dovecot.imapsPort}`, pop: `pop3s://localhost:${dovecot.pop3sPort}` });
      configs.push(cfg);
      peer.loaded = loaded;
      // The grant is the same as with the emulator's servers: the same token store.
      provider = new TokenProvider({ loaded, store });
    });
    after(async () => {
      await provider?.settled();
      await dovecot?.stop();
    });
    for (const protocol of ['pop', 'imap'] as const) sourceSuite(peer, protocol);
  });

  describe('SMTP sender against the emulator', () => {
    async function lastInBob(): Promise<Buffer> {
      const data = await emu.running.exchange.store.open(BOB);
      const folder = data.requireFolder('INBOX');
      return data.read(folder, folder.messages.at(-1)!.uid);
    }

    it('a message without a Message-ID gets one first: the id returned is the one stored', async () => {
      const sender = openMailSender(emulatorPeer.ctx(), ALICE);
      assert.equal(sender.mailbox, ALICE);
      const raw = `From: <${ALICE}>\r\nTo: <${BOB}>\r\nSubject: No id ${randomUUID()}\r\n\r\nHello.\r\n`;
      const sent = await sender.send(raw, { to: [BOB] });
      assert.match(sent.messageId, /^<[^<>@\s]+@contoso\.com>$/);
      assert.deepEqual(sent.accepted, [BOB]);
      assert.deepEqual(sent.rejected, []);
      const stored = await lastInBob();
      assert.equal(messageIdOf(stored), sent.messageId, "bob's copy carries the returned Message-ID");
      assert.ok(stored.toString('utf8').endsWith(raw), 'the rest of the message is as it was');
    });

    it("a message's own Message-ID is kept and returned", async () => {
      const sender = openMailSender(emulatorPeer.ctx(), ALICE);
      const id = `<${randomUUID()}@fabrikam.example>`;
      const raw = Buffer.from(`From: <${ALICE}>\r\nTo: <${BOB}>\r\nMessage-Id:\r\n ${id}\r\nSubject: With id\r\n\r\nHello.\r\n`);
      const sent = await sender.send(raw, { to: [BOB] });
      assert.equal(sent.messageId, id, 'a folded header is read too');
      assert.equal(messageIdOf(await lastInBob()), id);
    });
  });
});
