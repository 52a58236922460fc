// Hostile input against the emulated SMTP front end: over 100,000 random and mutated lines
// (mutations of valid commands, truncated and oversized lines, NULs and other bytes, bad base64,
// DATA and BDAT with garbage, everything pipelined) over many connections, before STARTTLS,
// after it, and after AUTH. The server must answer or close, never crash or hang, and keep its
// memory bounded; afterwards a well-formed session still authenticates and sends.
// The seed is printed; FUZZ_SEED=<n> replays a run.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { LineReader } from '../../../src/net/line-reader.ts';
import type { RunningLineServer } from '../../../src/net/line-server.ts';
import { startSmtpServer } from '../../../src/emulator/exchange/smtp/server.ts';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { prng } from '../../helpers/fuzz.ts';
import { settledMemoryBytes } from '../../helpers/memory.ts';
import { userToken } from '../../helpers/mail-tokens.ts';
import { encodeXoauth2 as xoauth2 } from '../../../src/net/sasl-xoauth2.ts';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';
const TOTAL_LINES = 100_000;
// A fixed seed keeps CI repeatable; FUZZ_SEED=<n> explores others.
const SEED = Number(process.env.FUZZ_SEED ?? 20261121);

type Mode = 'plain' | 'tls' | 'auth';

class Fuzzer {
  readonly #random: () => number;
  readonly #valid: string[];

  constructor(seed: number, token: string) {
    this.#random = prng(seed);
    const good = xoauth2(ALICE, token);
    this.#valid = [
      'EHLO fuzz.example',
      'HELO fuzz.example',
      'EHLO [127.0.0.1]',
      'NOOP',
      'RSET',
      'HELP',
      'VRFY alice',
      'EXPN staff',
      'MAIL FROM:<alice@contoso.com>',
      'MAIL FROM:<alice@contoso.com> SIZE=1000 BODY=8BITMIME SMTPUTF8',
      'MAIL FROM:<bob@contoso.com> RET=HDRS ENVID=abc',
      'MAIL FROM:<>',
      'MAIL FROM: <"quoted local"@contoso.com>',
      'RCPT TO:<bob@contoso.com>',
      'RCPT TO:<someone@fabrikam.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;someone@fabrikam.example',
      'RCPT TO:<@relay.example:nobody@fabrikam.example>',
      'DATA',
      'BDAT 12',
      'BDAT 0 LAST',
      'AUTH XOAUTH2',
      `AUTH XOAUTH2 ${good}`,
      'AUTH XOAUTH2 =',
      'AUTH LOGIN',
      `AUTH LOGIN ${Buffer.from(ALICE).toString('base64')}`,
      'AUTH PLAIN AGFsaWNlAHg=',
      '*',
      good,
      `${good.slice(0, good.length >> 1)}`,
      Buffer.from(`user=${ALICE}\x01auth=Bearer not.a.token\x01\x01`).toString('base64'),
      Buffer.from('user=\x01\x01\x01').toString('base64'),
      '.',
      'From: <bob@contoso.com>',
      'Subject: fuzz',
    ];
  }

  #int(n: number): number {
    return Math.floor(this.#random() * n);
  }

  #pick<T>(items: readonly T[]): T {
    return items[this.#int(items.length)]!;
  }

  #bytes(n: number, printable: boolean): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = printable ? 0x20 + this.#int(95) : this.#int(256);
    // No line ends inside: they would just make more (shorter) lines.
    for (let i = 0; i < n; i++) if (b[i] === 0x0a) b[i] = 0x0b;
    return b;
  }

  #mutate(line: string): Buffer {
    let b = Buffer.from(line, 'utf8');
    const interesting = [0x00, 0x0d, 0xff, 0x80, 0xc3, 0x3c, 0x3e, 0x3a, 0x3d, 0x20, 0x22, 0x5c, 0x40, 0x2e, 0x2a, 0x09, 0x01];
    for (let k = 1 + this.#int(3); k > 0; k--) {
      const at = this.#int(b.length + 1);
      switch (this.#int(9)) {
        case 0: // flip a byte
          if (b.length > 0) {
            const i = Math.min(at, b.length - 1);
            b[i] = b[i]! ^ (1 << this.#int(8));
          }
          break;
        case 1: // insert an interesting byte
          b = Buffer.concat([b.subarray(0, at), Buffer.from([this.#pick(interesting)]), b.subarray(at)]);
          break;
        case 2: // delete a run
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + this.#int(8))]);
          break;
        case 3: // truncate
          b = b.subarray(0, at);
          break;
        case 4: // duplicate a run
          b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 1 + this.#int(20)), b.subarray(at)]);
          break;
        case 5: // change case
          b = Buffer.from(this.#random() < 0.5 ? b.toString('latin1').toLowerCase() : b.toString('latin1').toUpperCase(), 'latin1');
          break;
        case 6: // a long run, now and then past the 32 KiB line bound
          b = Buffer.concat([
            b.subarray(0, at),
            Buffer.alloc(this.#random() < 0.9 ? 100 + this.#int(3000) : 33_000 + this.#int(4000), this.#pick([0x41, 0x00, 0x20, 0x3c])),
            b.subarray(at),
          ]);
          break;
        case 7: // numbers become absurd
          b = Buffer.from(b.toString('latin1').replace(/\d+/, this.#pick(['99999999999999999999999', '-1', '0', '18446744073709551616', '1e9'])), 'latin1');
          break;
        default: // random bytes in the middle
          b = Buffer.concat([b.subarray(0, at), this.#bytes(1 + this.#int(16), this.#random() < 0.5), b.subarray(at)]);
      }
    }
    for (let i = 0; i < b.length; i++) if (b[i] === 0x0a) b[i] = 0x0b;
    return b;
  }

  /** One line (without its line end) and how it ends. */
  line(): Buffer {
    const r = this.#random();
    if (r < 0.3) return Buffer.from(this.#pick(this.#valid));
    if (r < 0.75) return this.#mutate(this.#pick(this.#valid));
    if (r < 0.9) return this.#bytes(this.#int(120), true);
    if (r < 0.995) return this.#bytes(this.#int(200), false);
    return this.#bytes(33_000 + this.#int(8_000), this.#random() < 0.5);
  }

  /** A stream of `count` lines: single lines, DATA blocks of garbage, BDAT chunks of garbage. */
  stream(count: number): { data: Buffer; lines: number } {
    const parts: Buffer[] = [];
    let lines = 0;
    const ending = () => this.#pick([Buffer.from('\r\n'), Buffer.from('\r\n'), Buffer.from('\r\n'), Buffer.from('\n'), Buffer.from('\r\r\n')]);
    while (lines < count) {
      const r = this.#random();
      if (r < 0.03) {
        // A transaction with a garbage message, usually as someone alice may not send as.
        const from = this.#random() < 0.85 ? 'bob@contoso.com' : 'alice@contoso.com';
        const to = this.#random() < 0.9 ? 'x@fabrikam.example' : BOB;
        parts.push(Buffer.from(`MAIL FROM:<${from}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`));
        const n = 1 + this.#int(40);
        for (let i = 0; i < n; i++) parts.push(this.line(), ending());
        if (this.#random() < 0.8) parts.push(Buffer.from('.\r\n'));
        lines += n + 4;
      } else if (r < 0.05) {
        // BDAT with a payload of the announced size, or a lie about it.
        const payload = this.#bytes(this.#int(300), this.#random() < 0.5);
        const announced = this.#random() < 0.8 ? payload.length : this.#int(400);
        parts.push(Buffer.from(`BDAT ${announced}${this.#random() < 0.5 ? ' LAST' : ''}\r\n`), payload);
        lines += 1;
      } else {
        parts.push(this.line(), ending());
        lines += 1;
      }
    }
    return { data: Buffer.concat(parts), lines };
  }
}

/** Reads whole replies during the set-up of a connection. */
async function reply(reader: LineReader): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const raw = await reader.readLine();
    if (raw === null) throw new Error(`closed during set-up: ${lines.join(' | ')}`);
    const line = raw.toString('latin1');
    lines.push(line);
    if (line[3] === ' ') return lines;
  }
}

/** A connection brought to `mode` (plain, after STARTTLS, after AUTH). */
async function prepare(port: number, mode: Mode, ca: string, token: string): Promise<net.Socket | tls.TLSSocket> {
  const plain = net.connect({ host: '127.0.0.1', port });
  plain.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    plain.once('connect', () => resolve());
    plain.once('error', reject);
  });
  let reader = new LineReader(plain, { maxLineBytes: 1 << 20 });
  await reply(reader);
  if (mode === 'plain') {
    reader.detach();
    return plain;
  }
  plain.write('EHLO fuzz.example\r\nSTARTTLS\r\n');
  await reply(reader);
  assert.equal((await reply(reader))[0], '220 2.0.0 SMTP server ready');
  reader.detach();
  const secure = tls.connect({ socket: plain, ca, servername: 'localhost' });
  secure.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  reader = new LineReader(secure, { maxLineBytes: 1 << 20 });
  secure.write('EHLO fuzz.example\r\n');
  await reply(reader);
  if (mode === 'auth') {
    secure.write(`AUTH XOAUTH2 ${xoauth2(ALICE, token)}\r\n`);
    assert.equal((await reply(reader))[0], '235 2.7.0 Authentication successful');
  }
  reader.detach();
  return secure;
}

interface Blast {
  /** The server closed before the client had sent everything. */
  closedEarly: boolean;
  replyBytes: number;
}

/** How often each kind of reply came back (code and enhanced code), across all connections. */
const replyKinds = new Map<string, number>();

function countReplies(text: string): void {
  for (const line of text.split('\r\n')) {
    const kind = /^(\d{3}[ -](?:\d\.\d{1,3}\.\d{1,3})?)/.exec(line)?.[1]?.replace('-', ' ').trim();
    if (kind) replyKinds.set(kind, (replyKinds.get(kind) ?? 0) + 1);
  }
}

/** Sends everything (respecting backpressure), ends, and reads until the server closes. */
async function blast(socket: net.Socket | tls.TLSSocket, data: Buffer, limitMs: number): Promise<Blast> {
  let replyBytes = 0;
  let closed = false;
  let partial = '';
  socket.on('data', (chunk: Buffer) => {
    replyBytes += chunk.length;
    const text = partial + chunk.toString('latin1');
    const cut = text.lastIndexOf('\r\n');
    countReplies(text.slice(0, cut + 2));
    partial = text.slice(cut + 2).slice(-4096);
  });
  const done = new Promise<void>((resolve) => {
    socket.once('close', () => {
      closed = true;
      resolve();
    });
  });
  const timer = setTimeout(() => socket.destroy(new Error('hang')), limitMs);
  let hung = false;
  socket.once('error', (err: Error) => {
    if (err.message === 'hang') hung = true;
  });
  for (let at = 0; at < data.length && !closed; at += 16 * 1024) {
    if (!socket.write(data.subarray(at, at + 16 * 1024))) {
      await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), done]);
    }
  }
  const sentAll = !closed;
  if (!closed) socket.end();
  await done;
  clearTimeout(timer);
  assert.ok(!hung, `the server neither answered nor closed within ${limitMs} ms`);
  return { closedEarly: !sentAll, replyBytes };
}

describe('SMTP front end under hostile input', { timeout: 180_000 }, () => {
  let emu: TestEmulator;
  let token: string;
  /** The same emulator's SMTP service without the error limit, so streams go deep into sessions. */
  let deep: RunningLineServer;

  before(async () => {
    emu = await startTestEmulator();
    token = await userToken(emu, ALICE);
    deep = await startSmtpServer(emu.running.exchange, {
      host: '127.0.0.1',
      port: 0,
      implicitTls: false,
      limits: { maxProtocolErrors: Number.MAX_SAFE_INTEGER },
    });
  });
  after(async () => {
    await deep.close();
    await emu.close();
  });

  it(`survives ${TOTAL_LINES.toLocaleString('en')} random and mutated lines (seed ${SEED})`, async (t) => {
    t.diagnostic(`FUZZ_SEED=${SEED}`);
    const fuzz = new Fuzzer(SEED, token);
    const started = Date.now();
    const settledBefore = settledMemoryBytes();
    const baseline = process.memoryUsage();
    let peakRss = baseline.rss;
    let peakHeap = baseline.heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 25);
    const modes: Mode[] = ['plain', 'tls', 'auth'];
    let deepLines = 0;
    let limitedLines = 0;
    let connections = 0;
    let closedEarly = 0;
    try {
      // Deep streams: every line is read by one long session.
      let deepCount = 0;
      const deepWorker = async () => {
        while (deepLines < TOTAL_LINES) {
          const mode = modes[deepCount++ % modes.length]!;
          const { data, lines } = fuzz.stream(1000 + (deepCount % 7) * 300);
          const socket = await prepare(deep.port, mode, emu.caPem, token);
          const result = await blast(socket, data, 20_000);
          connections++;
          if (result.closedEarly) closedEarly++;
          deepLines += lines;
        }
      };
      // The emulator's own port with Exchange's limits: short sessions that end in 421 4.7.0.
      const limitedWorker = async () => {
        for (let i = 0; i < 150; i++) {
          const { data, lines } = fuzz.stream(40);
          const socket = await prepare(emu.running.mailPorts.smtp, modes[i % modes.length]!, emu.caPem, token);
          await blast(socket, data, 20_000);
          connections++;
          limitedLines += lines;
        }
      };
      await Promise.all([deepWorker(), deepWorker(), deepWorker(), limitedWorker()]);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - started) / 1000;
    const mb = (n: number) => Math.round(n / 1024 / 1024);
    t.diagnostic(
      `${deepLines + limitedLines} lines (${deepLines} deep, ${limitedLines} limited) over ${connections} connections in ${seconds.toFixed(1)} s; ` +
        `${closedEarly} deep sessions ended early; peak rss +${mb(peakRss - baseline.rss)} MB, peak heap +${mb(peakHeap - baseline.heapUsed)} MB`,
    );
    t.diagnostic(
      `replies: ${[...replyKinds]
        .sort()
        .map(([k, n]) => `${k}×${n}`)
        .join(', ')}`,
    );
    assert.ok(deepLines + limitedLines >= TOTAL_LINES);
    // The streams reached every state: commands, AUTH, transactions, DATA, limits, the error cap.
    for (const kind of ['354', '500 5.3.3', '500 5.5.2', '501 5.5.4', '503 5.5.2', '504 5.7.4', '530 5.7.57', '535 5.7.3', '554 5.2.252', '421 4.7.0']) {
      assert.ok((replyKinds.get(kind) ?? 0) > 0, `no ${kind} reply came back`);
    }
    // Client and server share this process; both together must stay far from unbounded.
    assert.ok(peakHeap - baseline.heapUsed < 400 * 1024 * 1024, `heap grew by ${mb(peakHeap - baseline.heapUsed)} MB`);
    // After garbage collection, what the fuzzing left behind: nothing unbounded may remain.
    const settledGrowth = settledMemoryBytes() - settledBefore;
    assert.ok(settledGrowth < 30 * 1024 * 1024, `heap and buffers grew by ${mb(settledGrowth)} MB`);
    // Every session has ended.
    for (let i = 0; i < 100 && deep.sessionCount > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(deep.sessionCount, 0);
  });

  it('keeps memory bounded against a line that never ends and a message that never ends', async () => {
    const before = process.memoryUsage().heapUsed;
    const socket = await prepare(emu.running.mailPorts.smtp, 'plain', emu.caPem, token);
    const chunk = Buffer.alloc(1024 * 1024, 0x41);
    let replies = '';
    socket.on('data', (c: Buffer) => {
      replies += c.toString('latin1');
    });
    for (let i = 0; i < 64; i++) {
      if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
    }
    socket.write('\r\nNOOP\r\n');
    for (let i = 0; i < 200 && !replies.includes('250 2.0.0 OK'); i++) await new Promise((r) => setTimeout(r, 25));
    assert.match(replies, /^500 5\.5\.2 Command too long \[/m);
    assert.match(replies, /^250 2\.0\.0 OK\r$/m);
    socket.destroy();
    const grew = process.memoryUsage().heapUsed - before;
    assert.ok(grew < 64 * 1024 * 1024, `heap grew by ${Math.round(grew / 1024 / 1024)} MB for 64 MB sent`);
  });

  it('still authenticates and sends a well-formed message afterwards', async () => {
    for (const port of [emu.running.mailPorts.smtp, deep.port]) {
      const socket = await prepare(port, 'auth', emu.caPem, token);
      const reader = new LineReader(socket, { maxLineBytes: 1 << 20 });
      const subject = `after the fuzz ${port}`;
      const raw = `From: <${ALICE}>\r\nTo: <${BOB}>\r\nSubject: ${subject}\r\nMessage-ID: <after-${port}@fuzz.example>\r\nDate: Tue, 3 Mar 2026 09:30:00 +0000\r\n\r\nStill here.\r\n`;
      socket.write(`MAIL FROM:<${ALICE}>\r\nRCPT TO:<${BOB}>\r\nDATA\r\n`);
      assert.deepEqual(await reply(reader), ['250 2.1.0 Sender OK']);
      assert.deepEqual(await reply(reader), ['250 2.1.5 Recipient OK']);
      assert.deepEqual(await reply(reader), ['354 Start mail input; end with <CRLF>.<CRLF>']);
      socket.write(`${raw}.\r\nQUIT\r\n`);
      assert.match((await reply(reader))[0]!, new RegExp(`^250 2\\.0\\.0 OK <after-${port}@fuzz\\.example> \\[Hostname=`));
      assert.deepEqual(await reply(reader), ['221 2.0.0 Service closing transmission channel']);
      const bob = await emu.running.exchange.store.open(BOB);
      const inbox = bob.requireFolder('INBOX');
      const last = await bob.read(inbox, inbox.messages.at(-1)!.uid);
      assert.ok(last.toString('utf8').endsWith(raw));
      socket.destroy();
    }
  });
});
