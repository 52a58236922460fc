// Hostile input for the IMAP server: over 100,000 random and mutated command lines (truncated,
// byte-flipped, huge numbers, bad and huge literals, unbalanced parentheses, NULs, 8-bit bytes,
// over-long lines), pipelined over several connections before and after login. The server must
// answer with protocol errors, never crash or hang, keep its memory bounded, and afterwards still
// serve a well-formed session.
//
// The bulk runs against extra server instances on the same emulator context with the
// "third BAD closes the session" rule lifted (otherwise every connection would end after three
// lines and the parser would barely be exercised); the real ports, with Exchange's rule, get a
// smaller run of their own.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { settledMemoryBytes } from '../../helpers/memory.ts';
import type { RunningLineServer } from '../../../src/net/line-server.ts';
import { generatedMessage } from '../../../src/emulator/exchange/mail-store.ts';
import { encodeXoauth2 } from '../../../src/net/sasl-xoauth2.ts';
import { startImapServer } from '../../../src/emulator/exchange/imap/server.ts';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { mutatedLine, pick, prng, type Rand } from '../../helpers/fuzz.ts';
import { SCOPES, userToken } from '../../helpers/mail-tokens.ts';

const MAX_LINE = 32 * 1024;

const PRE_LOGIN = [
  'a1 CAPABILITY',
  'a2 NOOP',
  'a3 ID NIL',
  'a4 ID ("name" "fuzz" "version" "1.0")',
  'a5 LOGIN bob@contoso.com secret',
  'a6 AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=',
  'a7 AUTHENTICATE XOAUTH2 dXNlcj1ib2JAY29udG9zby5jb20BYXV0aD1CZWFyZXIgeAEB',
  'a8 SELECT INBOX',
  'a9 LIST "" "*"',
  'b1 FETCH 1:* (FLAGS)',
  'b2 STARTTLS',
  'b3 UID FETCH 1 BODY[]',
  'b4 LOGIN {3}',
  'b5 LOGIN {3+}',
  'DONE',
  '* OK',
  '+',
];

const POST_LOGIN = [
  'c1 SELECT INBOX',
  'c2 EXAMINE INBOX',
  'c3 LIST "" "*"',
  'c4 LIST "" "%/%"',
  'c5 LSUB "" "*"',
  'c6 STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT)',
  'c7 FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)',
  'c8 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[TEXT]<0.20>)',
  'c9 UID FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)',
  'd1 FETCH 2 (BODY[1.MIME] BODY[1]<3.7> RFC822.HEADER)',
  'd2 FETCH 1:3 ALL',
  'd3 SEARCH OR FROM sender1 TO bob NOT (SEEN FLAGGED) SINCE 1-Jan-2026',
  'd4 UID SEARCH 1:* UNDELETED LARGER 10 SMALLER 999999',
  'd5 SEARCH CHARSET UTF-8 TEXT "quick brown" HEADER Subject Generated',
  'd6 STORE 1 +FLAGS (\\Flagged \\Seen)',
  'd7 UID STORE 1:* -FLAGS.SILENT (\\Seen)',
  'd8 COPY 1 Archive',
  'd9 UID COPY 2 "Deleted Items"',
  'e1 CREATE fuzz/child',
  'e2 DELETE fuzz/child',
  'e3 RENAME fuzz fuzz2',
  'e4 SUBSCRIBE Archive',
  'e5 UNSUBSCRIBE Archive',
  'e6 APPEND Drafts (\\Draft) {12+}',
  '0123456789ab',
  'e7 APPEND Drafts {5}',
  'e8 NOOP',
  'e9 CHECK',
  'f1 IDLE',
  'DONE',
  'f2 NAMESPACE',
  'f3 UID EXPUNGE 999999',
  'f4 MOVE 1 Archive',
  'f5 CLOSE',
  'f6 UNSELECT',
  'f7 ID NIL',
  'f8 FETCH 4294967295 (FLAGS)',
  'f9 SEARCH UID 1:4294967295',
];

/** An IMAP-flavoured mutation on top of the shared ones (no over-long lines: see below). */
function imapLine(rand: Rand, valid: readonly string[]): Buffer {
  const base = pick(rand, valid);
  const r = rand();
  if (r < 0.05) return Buffer.from(`${base} {999999999}`, 'latin1');
  if (r < 0.08) return Buffer.from(`${base} {${Math.floor(rand() * 200)}+}`, 'latin1');
  if (r < 0.1) return Buffer.from(`${base} {${Math.floor(rand() * 50)}}`, 'latin1');
  if (r < 0.14) return Buffer.from(`${base.replace(/\)/g, '')} ((((`, 'latin1');
  if (r < 0.17) return Buffer.from(`${base} ))))`, 'latin1');
  if (r < 0.2) return Buffer.from(`${base} ${'('.repeat(100)}`, 'latin1');
  if (r < 0.23)
    return Buffer.from(
      base.replace(/\d+/g, () => String(Math.floor(rand() * 1e12))),
      'latin1',
    );
  if (r < 0.26) return Buffer.from(`${base} "unterminated`, 'latin1');
  if (r < 0.29) return Buffer.concat([Buffer.from(base, 'latin1'), Buffer.from([0xc3, 0xa9, 0x00, 0xff])]);
  // The shared mutations, with over-long lines made rare: each one closes the session, and
  // re-opening a TLS session and logging in for every one would dominate the run.
  return mutatedLine(rand, valid, rand() < 0.02 ? MAX_LINE : 64);
}

interface Stats {
  linesSent: number;
  replies: number;
  bad: number;
  byes: number;
  connections: number;
}

/**
 * Sends `count` lines from `next` in pipelined batches (of 50), one connection at a time,
 * reconnecting whenever the server closes one, and reads (and counts) everything it answers.
 * Each batch ends with a `NOOP` sentinel; the next batch waits for its answer (or, when a
 * literal or IDLE swallowed it, for the server to fall quiet), so the client never runs far
 * ahead of the server. A batch counts as sent only if the connection was still open after it.
 */
async function blast(
  open: () => Promise<net.Socket | tls.TLSSocket>,
  prelude: (s: net.Socket | tls.TLSSocket) => Promise<void>,
  count: number,
  next: () => Buffer,
  stats: Stats,
  batchSize = 50,
): Promise<void> {
  let remaining = count;
  let sentinel = 0;
  // A run that never gets a batch through must fail, not spin.
  let connections = 0;
  while (remaining > 0 && connections++ < count) {
    const socket = await open();
    stats.connections++;
    let closed = false;
    let tail = '';
    let lastSentinel = 0;
    let wake: (() => void) | undefined;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      poke();
    });
    socket.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1');
      const lines = text.split('\r\n');
      tail = lines.pop() ?? '';
      if (tail.length > 4096) tail = tail.slice(-4096);
      for (const l of lines) {
        const m = /^zz(\d+) /.exec(l);
        if (m) lastSentinel = Number(m[1]);
        else if (/^\S+ (OK|NO|BAD) /.test(l)) {
          stats.replies++;
          if (/^\S+ BAD /.test(l)) stats.bad++;
        }
        if (l.startsWith('* BYE ')) stats.byes++;
      }
      poke();
    });
    await prelude(socket);
    while (remaining > 0 && !closed) {
      const n = Math.min(batchSize, remaining);
      const id = ++sentinel;
      const batch: Buffer[] = [];
      for (let i = 0; i < n; i++) batch.push(next(), Buffer.from('\r\n'));
      batch.push(Buffer.from(`zz${id} NOOP\r\n`));
      socket.write(Buffer.concat(batch));
      // Until the sentinel is answered, the connection closes, or nothing arrives for 100 ms.
      // The quiet is confirmed after one more pass of the event loop's I/O (setImmediate runs
      // after it): on a busy machine the process may be paused past the 100 ms while answers
      // wait unread, and an expired timer runs before the reads of the same loop turn.
      while (!closed && lastSentinel < id) {
        const heard = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => setImmediate(() => resolve(false)), 100);
          wake = () => {
            clearTimeout(timer);
            resolve(true);
          };
        });
        if (!heard) break;
      }
      if (closed) break;
      remaining -= n;
      stats.linesSent += n;
    }
    if (!closed) {
      socket.end();
      await new Promise<void>((resolve) => (closed ? resolve() : socket.once('close', () => resolve())));
    }
  }
}

// The work is bounded by counts (lines, batches, connections); the time limit is only a hang guard
// for a loaded machine. How fast the server gets through it belongs in bench/, not here.
describe('IMAP under hostile input', { timeout: 600_000 }, () => {
  let emu: TestEmulator;
  let token: string;
  const extra: RunningLineServer[] = [];
  let plainPort = 0;
  let tlsPort = 0;
  before(async () => {
    emu = await startTestEmulator((s) => {
      const boxes = s.exchange!.mailboxes!;
      boxes.find((m) => m.address === 'bob@contoso.com')!.seed = { generate: { count: 6, sizeBytes: 1500 } };
      boxes.find((m) => m.address === 'alice@contoso.com')!.seed = { generate: { count: 2, sizeBytes: 1200 } };
      s.settings = { ...s.settings, mail: { maxLineBytes: MAX_LINE, maxMessageBytes: 256 * 1024, idleTimeoutSeconds: 1800, maxConnectionsPerMailbox: 50 } };
    });
    token = await userToken(emu, 'bob@contoso.com', [SCOPES.imap]);
    const plain = await startImapServer(emu.running.exchange, { host: '127.0.0.1', port: 0, implicitTls: false, maxInvalidCommands: Infinity });
    const secure = await startImapServer(emu.running.exchange, { host: '127.0.0.1', port: 0, implicitTls: true, maxInvalidCommands: Infinity });
    extra.push(plain, secure);
    plainPort = plain.port;
    tlsPort = secure.port;
  });
  after(async () => {
    await Promise.all(extra.map((s) => s.close()));
    await emu.close();
  });

  const connectPlain = (port: number) => () =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
  const connectTls = (port: number) => () =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: emu.caPem, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });

  /** Logs in (SASL-IR) and selects INBOX, waiting for both answers before the flood. */
  const login = async (socket: net.Socket | tls.TLSSocket) => {
    await new Promise<void>((resolve) => {
      let seen = '';
      const onData = (d: Buffer) => {
        seen += d.toString('latin1');
        if (/\r\nz2 (OK|NO|BAD)[^\r\n]*\r\n/.test(seen) || /^z1 (NO|BAD)/m.test(seen)) {
          socket.off('data', onData);
          resolve();
        }
      };
      socket.on('data', onData);
      socket.write(`z1 AUTHENTICATE XOAUTH2 ${encodeXoauth2('bob@contoso.com', token)}\r\nz2 SELECT INBOX\r\n`);
    });
  };

  it('survives 100,000+ hostile lines before and after login, bounded in memory, and still serves mail', async () => {
    const started = Date.now();
    const settledBefore = settledMemoryBytes();
    const rssBefore = process.memoryUsage().rss;
    let rssMax = rssBefore;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 50);
    const stats: Stats = { linesSent: 0, replies: 0, bad: 0, byes: 0, connections: 0 };
    const preValid = [...PRE_LOGIN, `a0 AUTHENTICATE XOAUTH2 ${encodeXoauth2('bob@contoso.com', token)}`];
    try {
      const jobs: Promise<void>[] = [];
      // Before login: plain connections (cheap to re-open), the shared mutations incl. long lines.
      for (let k = 0; k < 3; k++) {
        const rand = prng(1000 + k);
        jobs.push(
          blast(
            connectPlain(plainPort),
            async () => {},
            16_000,
            () => (rand() < 0.5 ? mutatedLine(rand, preValid, MAX_LINE) : imapLine(rand, PRE_LOGIN)),
            stats,
          ),
        );
      }
      // After login: TLS connections, logged in and with INBOX selected.
      for (let k = 0; k < 3; k++) {
        const rand = prng(2000 + k);
        jobs.push(blast(connectTls(tlsPort), login, 20_000, () => imapLine(rand, POST_LOGIN), stats));
      }
      // The real ports with Exchange's rule: the third BAD ends a session with BYE, so two lines
      // at a time (a third line would never get its batch through).
      const rand = prng(3000);
      jobs.push(
        blast(
          connectPlain(emu.running.mailPorts.imap),
          async () => {},
          400,
          () => mutatedLine(rand, PRE_LOGIN, MAX_LINE),
          stats,
          2,
        ),
      );
      jobs.push(blast(connectTls(emu.running.mailPorts.imaps), login, 400, () => imapLine(rand, POST_LOGIN), stats, 2));
      await Promise.all(jobs);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - started) / 1000;
    const grownMb = (rssMax - rssBefore) / 1024 / 1024;
    console.log(
      `# ${stats.linesSent} lines over ${stats.connections} connections in ${seconds.toFixed(1)} s: ${stats.replies} tagged replies (${stats.bad} BAD), ${stats.byes} BYE; rss +${grownMb.toFixed(0)} MB`,
    );

    assert.ok(stats.linesSent >= 100_000, String(stats.linesSent));
    // After garbage collection, what the fuzzing left behind: nothing unbounded may remain.
    const settledGrowthMb = (settledMemoryBytes() - settledBefore) / 1024 / 1024;
    assert.ok(settledGrowthMb < 30, `heap and buffers grew by ${settledGrowthMb.toFixed(1)} MB`);
    // Most lines are answered (literal bytes and AUTHENTICATE or IDLE continuations swallow some).
    assert.ok(stats.replies > stats.linesSent * 0.5, JSON.stringify(stats));
    assert.ok(stats.bad > stats.linesSent * 0.3, JSON.stringify(stats));
    assert.ok(stats.byes > 0);
    // Still alive: servers listening, a well-formed session logs in and reads a message.
    assert.equal(emu.running.exchange.store !== undefined, true);
    const alice = await userToken(emu, 'alice@contoso.com', [SCOPES.imap]);
    const socket = await connectTls(emu.running.mailPorts.imaps)();
    const transcript = await new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\nz OK LOGOUT completed.\r\n')) resolve(text);
      });
      socket.once('error', reject);
      socket.write(`x AUTHENTICATE XOAUTH2 ${encodeXoauth2('alice@contoso.com', alice)}\r\ny SELECT INBOX\r\nf UID FETCH 2 (BODY.PEEK[])\r\nz LOGOUT\r\n`);
    });
    socket.destroy();
    assert.match(transcript, /\r\nx OK AUTHENTICATE completed\.\r\n/);
    assert.match(transcript, /\r\ny OK \[READ-WRITE\] SELECT completed\.\r\n/);
    const raw = generatedMessage('alice@contoso.com', 2, 1200).toString('latin1');
    assert.ok(transcript.includes(`* 2 FETCH (BODY[] {${raw.length}}\r\n${raw} UID 2)\r\nf OK FETCH completed.\r\n`), transcript.slice(-2000));
  });
});
