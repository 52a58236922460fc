// What the proxy relays after login arrives byte for byte, both ways, when the client keeps
// stalling: the upstream's reads go through a few reused buffers (src/net/reusable-reads.ts), and a
// buffer handed back before its bytes were written would show here as a damaged message.
// Upstream: the emulator; the message is random, so no stretch of it repeats another.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { LineClient } from '../helpers/line-client.ts';
import { startTestProxy, type TestProxy } from '../helpers/proxy.ts';

const ALICE = 'alice@contoso.com';

/** A 4 MiB message of random base64 lines (none starts with a dot: nothing to stuff). */
function randomMessage(): Buffer {
  const body = randomBytes(3 * 1024 * 1024)
    .toString('base64')
    .replace(/.{76}/g, '$&\r\n');
  return Buffer.from(`From: <sender@fabrikam.example>\r\nTo: <${ALICE}>\r\nSubject: relay check\r\n\r\n${body}\r\n`, 'latin1');
}

/**
 * Reads 2 ms out of every 12, so the proxy's writes to it queue up and its reads from the server
 * stop and start again many times in one message. Returns how many times it stopped.
 */
function stall(client: LineClient): () => number {
  let stops = 0;
  let timer: NodeJS.Timeout;
  const stop = () => {
    client.socket.pause();
    stops++;
    timer = setTimeout(go, 10);
  };
  const go = () => {
    client.socket.resume();
    timer = setTimeout(stop, 2);
  };
  stop();
  return () => {
    clearTimeout(timer);
    client.socket.resume();
    return stops;
  };
}

describe('proxy relay: every byte, in order, through a stalling client', () => {
  let emu: TestEmulator;
  let proxy: TestProxy;
  let password: string;
  const message = randomMessage();
  let uid = '';

  before(async () => {
    emu = await startTestEmulator();
    proxy = await startTestProxy(emu, { listeners: [{ protocol: 'imap' }, { protocol: 'pop' }] });
    password = await proxy.addClient('relay', [ALICE]);
  });

  after(async () => {
    await proxy?.close();
    await emu?.close();
  });

  async function imap(): Promise<LineClient> {
    const c = await LineClient.connect({ port: proxy.port('imap'), timeoutMs: 30_000 });
    await c.line();
    c.send(`l LOGIN ${ALICE} ${password}`);
    assert.match((await c.untilTagged('l')).at(-1)!, /^l OK/);
    return c;
  }

  it('a message appended through the proxy (client to server) is stored as sent', async () => {
    const c = await imap();
    c.send(`a APPEND INBOX {${message.length}}`);
    assert.match((await c.line())!, /^\+ /);
    c.socket.write(message);
    c.send('');
    const answer = (await c.untilTagged('a')).at(-1)!;
    const appended = /\[APPENDUID \d+ (\d+)\]/.exec(answer);
    assert.ok(appended, `APPEND answered with its UID: ${answer}`);
    uid = appended[1]!;
    const stored = (await emu.admin('GET', `/mailboxes/${ALICE}/messages`)).json<unknown>() as { folder: string; messages: { uid: number; size: number }[] }[];
    const inbox = stored.find((f) => f.folder === 'INBOX')!;
    assert.equal(inbox.messages.find((m) => String(m.uid) === uid)?.size, message.length);
    c.send('z LOGOUT');
    await c.closed();
  });

  it('IMAP: the message fetched back is byte-identical', async () => {
    assert.ok(uid, 'the APPEND test ran first');
    const c = await imap();
    c.send('s EXAMINE INBOX');
    await c.untilTagged('s');
    c.send(`f UID FETCH ${uid} BODY.PEEK[]`);
    const resume = stall(c);
    const head = (await c.line())!;
    const literal = /\{(\d+)\}$/.exec(head);
    assert.ok(literal, `a literal follows: ${head}`);
    assert.equal(Number(literal[1]), message.length);
    const got = await c.bytes(message.length);
    assert.ok(resume() >= 3, 'the client stalled several times during the message');
    assert.ok(got && got.equals(message), 'the fetched bytes equal the appended ones');
    assert.match((await c.untilTagged('f')).at(-1)!, /^f OK/);
    c.send('z LOGOUT');
    await c.closed();
    const audit = await proxy.waitForAudit((a) => a.result === 'ok' && (a.bytesToClient as number) > message.length);
    assert.equal(audit.endedBy, 'server');
  });

  it('POP3: RETR of the same message is byte-identical', async () => {
    assert.ok(uid, 'the APPEND test ran first');
    const c = await LineClient.connect({ port: proxy.port('pop'), timeoutMs: 30_000 });
    await c.line();
    await c.ask(`USER ${ALICE}`);
    assert.match((await c.ask(`PASS ${password}`))!, /^\+OK/);
    c.send('LIST');
    assert.match((await c.line())!, /^\+OK/);
    const listed = await c.block();
    const n = listed.findIndex((l) => l.split(' ')[1] === String(message.length));
    assert.ok(n >= 0, `the message is listed: ${listed.join(' | ')}`);
    c.send(`RETR ${listed[n]!.split(' ')[0]}`);
    const resume = stall(c);
    assert.match((await c.line())!, /^\+OK/);
    const lines = await c.block();
    assert.ok(resume() >= 3, 'the client stalled several times during the message');
    assert.ok(Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1').equals(message), 'the retrieved bytes equal the appended ones');
    assert.match((await c.ask('QUIT'))!, /^\+OK/);
    await c.closed();
  });
});
