// The client side of the proxy fuzz (test/proxy/fuzz.test.ts), run in a worker thread so that
// it has a core of its own and the proxy, in the test's main thread, is the one under load: seeded
// hostile pre-login lines for POP3, IMAP and SMTP (mutations of valid commands, random bytes, CR,
// LF and NUL inside lines and credentials, lines around and over the 8192-byte bound, IMAP
// literals small, at the 4096-byte bound, huge and LITERAL+), pipelined over many parallel
// connections, and a check of every reply line against its protocol.
import net from 'node:net';
import tls from 'node:tls';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { mutatedLine, pick, prng, type Rand } from './fuzz.ts';

export type FuzzProtocol = 'pop' | 'imap' | 'smtp';
type Protocol = FuzzProtocol;

/** The proxy's bound on a pre-login line (src/proxy/server.ts) and on a literal (front/imap.ts). */
export const MAX_LINE = 8192;
export const MAX_LITERAL = 4096;
/** A connection must be closed by the proxy this long after its last byte was written. */
const HANG_MS = 10_000;
const ALICE = 'alice@contoso.com';
/** Shaped like an app password, with a client id that does not exist: refused without scrypt. */
const FAKE = 'mbp-zzzzzzzz-abcdefghijklmnopqrstuvwxyz';

const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');
const CRLF = Buffer.from('\r\n');

// ---------------------------------------------------------------------------------------------
// What the fuzzer sends

const VALID: Record<Protocol, string[]> = {
  pop: [
    'CAPA',
    'QUIT',
    'STLS',
    'NOOP',
    'RSET',
    'STAT',
    'LIST',
    'LIST 1',
    'RETR 1',
    'TOP 1 10',
    'UIDL',
    'DELE 1',
    `USER ${ALICE}`,
    'USER bob@contoso.com',
    'USER nobody@fabrikam.example',
    'PASS secret',
    `PASS ${FAKE}`,
    'AUTH',
    'AUTH PLAIN',
    `AUTH PLAIN ${b64(`\0${ALICE}\0${FAKE}`)}`,
    `AUTH PLAIN ${b64(`${ALICE}\0bob@contoso.com\0x`)}`,
    'AUTH LOGIN',
    `AUTH LOGIN ${b64(ALICE)}`,
    'AUTH XOAUTH2',
    'AUTH CRAM-MD5',
    b64(ALICE),
    b64(FAKE),
    '*',
    '=',
    'APOP alice@contoso.com 0123456789abcdef0123456789abcdef',
  ],
  imap: [
    'a1 CAPABILITY',
    'a2 NOOP',
    'a3 ID NIL',
    'a4 ID ("name" "fuzz" "version" "1.0")',
    `a5 LOGIN ${ALICE} secret`,
    `a6 LOGIN "${ALICE}" "${FAKE}"`,
    'a7 LOGIN {17}',
    'a8 LOGIN {17+}',
    `a9 AUTHENTICATE PLAIN ${b64(`\0${ALICE}\0${FAKE}`)}`,
    'b1 AUTHENTICATE PLAIN',
    'b2 AUTHENTICATE XOAUTH2 dXNlcj0BAQ==',
    'b3 AUTHENTICATE LOGIN',
    'b4 STARTTLS',
    'b5 LOGOUT',
    'b6 SELECT INBOX',
    'b7 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])',
    'b8 LIST "" "*"',
    'b9 ENABLE UTF8=ACCEPT',
    'c1 IDLE',
    'DONE',
    '*',
    '+',
    b64(`\0${ALICE}\0${FAKE}`),
    'c2 APPEND INBOX {5+}',
  ],
  smtp: [
    'EHLO fuzz.example',
    'HELO fuzz.example',
    'EHLO [127.0.0.1]',
    'NOOP',
    'RSET',
    'QUIT',
    'STARTTLS',
    'HELP',
    'VRFY alice',
    'AUTH PLAIN',
    `AUTH PLAIN ${b64(`\0${ALICE}\0${FAKE}`)}`,
    'AUTH LOGIN',
    `AUTH LOGIN ${b64(ALICE)}`,
    'AUTH XOAUTH2',
    'AUTH CRAM-MD5',
    b64(ALICE),
    b64(FAKE),
    '*',
    '=',
    'MAIL FROM:<alice@contoso.com>',
    'MAIL FROM:<alice@contoso.com> SIZE=100 BODY=8BITMIME',
    'RCPT TO:<bob@contoso.com>',
    'DATA',
    'BDAT 10 LAST',
    '.',
  ],
};

/**
 * Commands that take any argument before login: their mutations (junk arguments, NULs, 8-bit
 * bytes, huge numbers) are often no protocol error, so a session reads more hostile lines before
 * its tenth error closes it.
 */
const TOLERANT: Record<Protocol, string[]> = {
  pop: [`USER ${ALICE}`, 'USER fuzz', 'USER bob@contoso.com'],
  imap: ['n1 NOOP', 'n2 ID NIL', 'n3 ID ("name" "fuzz" "os" "x")', 'n4 NOOP'],
  smtp: ['NOOP', 'RSET', 'HELO fuzz.example', 'NOOP fuzz'],
};

/** User names carrying a line break, a NUL or a command: must never log in or run. */
const INJECTED_USERS = [
  `${ALICE}\r\nQUIT`,
  `${ALICE}\0`,
  'alice\r@contoso.com',
  `${ALICE}\n`,
  `${ALICE}\r\nb LOGOUT`,
  `\r\n${ALICE}`,
  `${ALICE}\r\nMAIL FROM:<x@y>`,
];

function bytes(rand: Rand, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** A valid line with a CR, an LF, a NUL or an 8-bit byte put somewhere inside. */
function injected(rand: Rand, line: string): Buffer {
  const at = Math.floor(rand() * (line.length + 1));
  const what = pick(rand, ['\r', '\n', '\0', '\r\n', '\xff', '\x1b[2J']);
  return Buffer.from(line.slice(0, at) + what + line.slice(at), 'latin1');
}

/** Around the line bound: MAX_LINE - 2 .. MAX_LINE + 2 bytes, starting like a command. */
function boundary(rand: Rand, valid: readonly string[]): Buffer {
  const head = `${pick(rand, valid)} `;
  const size = MAX_LINE - 2 + Math.floor(rand() * 5);
  return Buffer.from(head + 'x'.repeat(Math.max(0, size - head.length)), 'latin1').subarray(0, size);
}

function credentialLine(rand: Rand, protocol: Protocol): Buffer {
  const user = pick(rand, INJECTED_USERS);
  const password = rand() < 0.5 ? FAKE : `${FAKE}\r\nQUIT`;
  const plain = b64(rand() < 0.7 ? `\0${user}\0${password}` : `${user}\0${ALICE}\0${password}`);
  const r = rand();
  if (protocol === 'pop') {
    if (r < 0.4) return Buffer.from(`USER ${user}`, 'latin1');
    if (r < 0.7) return Buffer.from(`AUTH PLAIN ${plain}`, 'latin1');
    return Buffer.from(`AUTH LOGIN ${b64(user)}`, 'latin1');
  }
  if (protocol === 'imap') {
    if (r < 0.3) return Buffer.from(`c3 LOGIN "${user}" ${FAKE}`, 'latin1');
    if (r < 0.6) return Buffer.from(`c4 LOGIN {${Buffer.byteLength(user, 'latin1')}+}\r\n${user} ${FAKE}`, 'latin1');
    return Buffer.from(`c5 AUTHENTICATE PLAIN ${plain}`, 'latin1');
  }
  if (r < 0.5) return Buffer.from(`AUTH PLAIN ${plain}`, 'latin1');
  return Buffer.from(`AUTH LOGIN ${b64(user)}`, 'latin1');
}

const LITERAL_SIZES = [0, 1, 5, 17, MAX_LITERAL - 1, MAX_LITERAL, MAX_LITERAL + 1, 16_384, 100_000, 999_999_999, 1e20];

function imapExtra(rand: Rand): Buffer {
  const tag = pick(rand, ['d1', 'd2', '', '*', '+', 'a(', 'a"b', 'x'.repeat(65), '\xff\xfe', 'a{1}', 'A%', '\x00', 'a\\']);
  const r = rand();
  if (r < 0.35) {
    const size = rand() < 0.8 ? pick(rand, LITERAL_SIZES) : Math.floor(rand() * 5000);
    const plus = rand() < 0.5 ? '+' : '';
    const head = pick(rand, ['LOGIN', 'LOGIN alice', 'AUTHENTICATE PLAIN', 'ID', 'NOOP', 'SELECT']);
    // A small LITERAL+ comes with its bytes, the rest of the command and all.
    const body = plus && size <= 200 ? `\r\n${bytes(rand, size).toString('latin1')} ${pick(rand, ['x', '{3+}\r\nabc', '"p"', ''])}` : '';
    return Buffer.from(`${tag} ${head} {${size}${plus}}${body}`, 'latin1');
  }
  if (r < 0.45) {
    // More literals than a command may have (4), each small.
    const n = 1 + Math.floor(rand() * 7);
    return Buffer.from(`${tag} LOGIN ${Array.from({ length: n }, () => '{1+}\r\nx ').join('')}y`, 'latin1');
  }
  if (r < 0.6) return Buffer.from(`${tag} ID ${pick(rand, ['('.repeat(1 + Math.floor(rand() * 60)), '))', '(("a" "b")', '("a" NIL', '()', ')('])}`, 'latin1');
  if (r < 0.75)
    return Buffer.from(`${tag} LOGIN ${pick(rand, ['"a\\"b" "c\\\\"', '"unterminated', '"a" "b" "c"', '""  ""', 'a[ b', 'NIL NIL', '"\\', '{}'])}`, 'latin1');
  if (r < 0.85)
    return Buffer.from(
      `${tag} AUTHENTICATE ${pick(rand, ['PLAIN =', 'PLAIN ===', `PLAIN ${b64(bytes(rand, 40).toString('latin1'))}`, 'PLAIN "quoted"', 'plain a b', 'PLAIN (x)'])}`,
      'latin1',
    );
  return Buffer.concat([Buffer.from(`${tag} `, 'latin1'), bytes(rand, Math.floor(rand() * 40))]);
}

function popExtra(rand: Rand): Buffer {
  return Buffer.from(
    pick(rand, [
      `AUTH PLAIN ${b64(bytes(rand, Math.floor(rand() * 60)).toString('latin1'))}`,
      `AUTH PLAIN ${'A'.repeat(4000 + Math.floor(rand() * 6000))}`,
      `AUTH LOGIN ${'='.repeat(1 + Math.floor(rand() * 3))}`,
      `USER ${'a'.repeat(1020 + Math.floor(rand() * 10))}@contoso.com`,
      `PASS ${'x'.repeat(1020 + Math.floor(rand() * 3000))}`,
      `USER ${ALICE} ${ALICE}`,
      'user alice@contoso.com',
      `AUTH plain ${b64(`\0${ALICE}\0`)}`,
      `AUTH PLAIN ${b64(`\0\0${FAKE}`)}`,
      ' CAPA',
      'CAPA\t',
    ]),
    'latin1',
  );
}

function smtpExtra(rand: Rand): Buffer {
  return Buffer.from(
    pick(rand, [
      `EHLO ${bytes(rand, Math.floor(rand() * 30)).toString('latin1')}`,
      `AUTH PLAIN ${b64(bytes(rand, Math.floor(rand() * 60)).toString('latin1'))}`,
      `AUTH PLAIN ${'A'.repeat(4000 + Math.floor(rand() * 6000))}`,
      'AUTH PLAIN =',
      `AUTH LOGIN ${b64(ALICE)} extra`,
      `MAIL FROM:<${bytes(rand, 20).toString('latin1')}>`,
      'DATA\r\nSubject: x\r\n\r\nbody\r\n.',
      `EHLO a\nMAIL FROM:<${ALICE}>`,
      'ehlo fuzz.example',
      'BDAT 100000000000000000000',
      '\0EHLO fuzz.example',
    ]),
    'latin1',
  );
}

const EXTRA: Record<Protocol, (rand: Rand) => Buffer> = { pop: popExtra, imap: imapExtra, smtp: smtpExtra };

/** One hostile line with its line ending (mostly CRLF; sometimes a bare LF or an extra CR). */
function hostileLine(rand: Rand, protocol: Protocol): Buffer {
  const valid = VALID[protocol];
  const r = rand();
  let line: Buffer;
  if (r < 0.35) line = mutatedLine(rand, TOLERANT[protocol], MAX_LINE + 1);
  else if (r < 0.65) line = mutatedLine(rand, valid, MAX_LINE + 1);
  else if (r < 0.72) line = injected(rand, pick(rand, valid));
  else if (r < 0.75) line = bytes(rand, Math.floor(rand() * 120));
  else if (r < 0.77) line = boundary(rand, valid);
  else if (r < 0.84) line = credentialLine(rand, protocol);
  else line = EXTRA[protocol](rand);
  const e = rand();
  const ending = e < 0.9 ? CRLF : e < 0.96 ? Buffer.from('\n') : Buffer.from('\r\r\n');
  return Buffer.concat([line, ending]);
}

/**
 * Ends a fuzz connection whatever state its lines left the session in (inside an AUTH exchange,
 * an IMAP literal of up to MAX_LITERAL bytes, an SMTP line ended by a bare LF), so that the proxy,
 * not a timeout, closes it: a cancel or a filler longer than any literal, then QUIT or LOGOUT.
 * (Not a half-close: after the client's FIN the proxy can no longer write replies.)
 */
const TERMINATOR: Record<Protocol, { bytes: Buffer; lines: number }> = {
  pop: { bytes: Buffer.from('*\r\nQUIT\r\n'), lines: 2 },
  imap: { bytes: Buffer.from(`${'x'.repeat(MAX_LITERAL + 4)}\r\nzz LOGOUT\r\n`), lines: 2 },
  smtp: { bytes: Buffer.from('*\r\nQUIT\r\n'), lines: 2 },
};

// ---------------------------------------------------------------------------------------------
// What the proxy may answer

const PRINTABLE = /^[\x20-\x7e]*$/;

/** Checks one connection's reply lines against its protocol, in order, and counts answers. */
interface Replies {
  /** A problem with this line, or undefined. */
  feed(line: string): string | undefined;
  /** Client lines answered (greetings, untagged data and close notices not counted). */
  answers: number;
  /** A closing reply was seen (after which nothing may follow). */
  closed: boolean;
  /** The last reply told the client to start TLS. */
  tlsNext: boolean;
}

/** What every protocol's checker does first: printable replies, nothing after the close, one greeting. */
abstract class ReplyChecker implements Replies {
  answers = 0;
  closed = false;
  tlsNext = false;
  #greeted: boolean;
  constructor(greeted = false) {
    this.#greeted = greeted;
  }
  feed(l: string): string | undefined {
    if (!PRINTABLE.test(l)) return 'not printable ASCII';
    if (this.closed) return 'a reply after the closing one';
    this.tlsNext = false;
    return this.check(l);
  }
  /** The first complete reply must be the greeting: its verdict, or false once greeted. */
  protected greeting(l: string, expected: RegExp): string | undefined | false {
    if (this.#greeted) return false;
    this.#greeted = true;
    return expected.test(l) ? undefined : 'not the greeting';
  }
  protected abstract check(l: string): string | undefined;
}

class PopReplies extends ReplyChecker {
  #capa = false;
  protected check(l: string): string | undefined {
    const greeting = this.greeting(l, /^\+OK \S+ mailbridge POP3 proxy ready\.$/);
    if (greeting !== false) return greeting;
    if (this.#capa) {
      if (l === '.') this.#capa = false;
      else if (!/^[A-Z][A-Z0-9-]*( [A-Za-z0-9.-]+)*$/.test(l)) return 'not a capability';
      return undefined;
    }
    if (/^\+OK( |$)/.test(l)) {
      this.answers++;
      if (l === '+OK Capability list follows') this.#capa = true;
      if (l === '+OK Bye.') this.closed = true;
      if (l === '+OK Begin TLS negotiation.') this.tlsNext = true;
      return undefined;
    }
    if (/^-ERR( |$)/.test(l)) {
      if (/^-ERR (Too many errors|Commands were sent after STLS)/.test(l)) this.closed = true;
      else this.answers++;
      return undefined;
    }
    if (/^\+ [A-Za-z0-9+/]*={0,2}$/.test(l)) {
      this.answers++;
      return undefined;
    }
    return 'not a POP3 reply';
  }
}

class ImapReplies extends ReplyChecker {
  #loggingOut = false;
  protected check(l: string): string | undefined {
    const greeting = this.greeting(l, /^\* OK \[CAPABILITY [^\]]+\] \S+ mailbridge IMAP proxy ready\.$/);
    if (greeting !== false) return greeting;
    if (this.#loggingOut) {
      this.closed = true;
      if (!/^[^\s*+]+ OK LOGOUT completed\.$/.test(l)) return 'not the LOGOUT completion after its BYE';
      this.answers++;
      return undefined;
    }
    if (l.startsWith('* BYE ')) {
      if (l === '* BYE mailbridge IMAP proxy logging out.') this.#loggingOut = true;
      else this.closed = true;
      return undefined;
    }
    if (/^\* (CAPABILITY|ID) ./.test(l)) return undefined;
    if (/^\* BAD ./.test(l) || /^\+ /.test(l)) {
      this.answers++;
      return undefined;
    }
    const tagged = /^([^\x00-\x20*+%(){"\\\x7f-\xff]{1,64}) (OK|NO|BAD) ./.exec(l);
    if (tagged) {
      this.answers++;
      if (/ OK Begin TLS negotiation now\.$/.test(l)) this.tlsNext = true;
      return undefined;
    }
    return 'not an IMAP reply';
  }
}

class SmtpReplies extends ReplyChecker {
  #continuing: string | undefined;
  protected check(l: string): string | undefined {
    const m = /^([2-5][0-9]{2})([ -])/.exec(l);
    if (!m) return 'not an SMTP reply';
    if (this.#continuing !== undefined && m[1] !== this.#continuing) return 'a multi-line reply changed its code';
    if (m[2] === '-') {
      this.#continuing = m[1];
      return undefined;
    }
    this.#continuing = undefined;
    const greeting = this.greeting(l, /^220 \S+ mailbridge ESMTP proxy ready$/);
    if (greeting !== false) return greeting;
    if (m[1] === '421' || m[1] === '221') this.closed = true;
    if (m[1] !== '421') this.answers++;
    if (l === '220 2.0.0 Ready to start TLS') this.tlsNext = true;
    return undefined;
  }
}

const REPLIES: Record<Protocol, (greeted?: boolean) => Replies> = {
  pop: (g) => new PopReplies(g),
  imap: (g) => new ImapReplies(g),
  smtp: (g) => new SmtpReplies(g),
};

const STARTTLS_COMMAND: Record<Protocol, string> = { pop: 'STLS', imap: 'zs STARTTLS', smtp: 'STARTTLS' };

// ---------------------------------------------------------------------------------------------
// The driver

export interface FuzzRun {
  label: string;
  protocol: FuzzProtocol;
  port: number;
  /** Share of connections that upgrade with STARTTLS before fuzzing (0 on plain listeners). */
  upgrade: number;
  /** Hostile lines the proxy must answer. */
  target: number;
}

export interface FuzzResult extends FuzzRun {
  /** Hostile lines answered by the proxy: its answers after any STARTTLS, less those the terminator drew. */
  answered: number;
  /** Lines pipelined, including those that came after the proxy had decided to close (dropped unread). */
  sent: number;
  connections: number;
  upgraded: number;
  slowestMs: number;
  problems: string[];
  problemCount: number;
}

export interface FuzzOptions {
  seed: number;
  runs: FuzzRun[];
  /** Connections at once per run. */
  parallel: number;
  /** The CA (here: the certificate) the proxy's STARTTLS listeners are trusted with. */
  proxyCert: string;
}

/** The client address of the n-th parallel connection of the i-th run: its own, for the rate limiter. */
export function fuzzAddress(runIndex: number, n: number): string {
  return `127.0.${10 + runIndex}.${1 + n}`;
}

export function isFuzzAddress(address: string): boolean {
  return /^127\.0\.1\d\./.test(address);
}

function problem(run: FuzzResult, text: string): void {
  run.problemCount++;
  if (run.problems.length < 20) run.problems.push(text);
}

function connectFrom(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

function startTls(socket: net.Socket, secureContext: tls.SecureContext): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ socket, secureContext, servername: 'localhost' }, () => resolve(secure));
    secure.once('error', reject);
  });
}

/** Lines for one connection: mostly more than the proxy reads before its tenth error, sometimes a few. */
function connectionLines(rand: Rand, protocol: Protocol): Buffer[] {
  const lines: Buffer[] = [];
  // SMTP sessions often greet first and POP3 ones name a user, so AUTH and PASS get further.
  if (protocol === 'smtp' && rand() < 0.5) lines.push(Buffer.from(rand() < 0.8 ? 'HELO fuzz.example\r\n' : 'EHLO fuzz.example\r\n'));
  if (protocol === 'pop' && rand() < 0.3) lines.push(Buffer.from(`USER ${ALICE}\r\n`));
  const n = rand() < 0.05 ? 1 + Math.floor(rand() * 6) : 16 + Math.floor(rand() * 20);
  while (lines.length < n) lines.push(hostileLine(rand, protocol));
  // The terminator must start a line of its own (a bare LF does not end an SMTP line).
  const last = lines[lines.length - 1]!;
  if (protocol === 'smtp' && !last.subarray(-2).equals(CRLF)) lines[lines.length - 1] = Buffer.concat([last, CRLF]);
  return lines;
}

/** One fuzz connection: optional STARTTLS, a pipelined burst of hostile lines, the terminator, the close. */
async function fuzzConnection(run: FuzzResult, rand: Rand, localAddress: string, where: string, secureContext: tls.SecureContext): Promise<void> {
  const started = performance.now();
  run.connections++;
  const upgrade = rand() < run.upgrade;
  let stream: net.Socket | tls.TLSSocket = await connectFrom(run.port, localAddress);
  let replies = REPLIES[run.protocol]();
  let tail = '';
  let closed = false;
  let wake: (() => void) | undefined;
  const onData = (chunk: Buffer) => {
    const lines = (tail + chunk.toString('latin1')).split('\r\n');
    tail = lines.pop()!;
    if (tail.length > 2 * MAX_LINE) problem(run, `${where}: a reply line over ${2 * MAX_LINE} bytes`);
    for (const l of lines) {
      const bad = replies.feed(l);
      if (bad) problem(run, `${where}: ${bad}: ${JSON.stringify(l.slice(0, 200))}`);
    }
    wake?.();
  };
  const onClose = () => {
    closed = true;
    wake?.();
  };
  const until = async (done: () => boolean, ms: number): Promise<boolean> => {
    const deadline = performance.now() + ms;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    return true;
  };
  stream.on('data', onData);
  stream.on('error', () => {});
  stream.on('close', onClose);

  if (upgrade) {
    stream.write(`${STARTTLS_COMMAND[run.protocol]}\r\n`);
    if (!(await until(() => replies.tlsNext || closed, HANG_MS))) {
      problem(run, `${where}: no answer to STARTTLS within ${HANG_MS} ms`);
      stream.destroy();
      return;
    }
    if (closed) {
      problem(run, `${where}: closed instead of starting TLS`);
      return;
    }
    stream.off('data', onData);
    stream.off('close', onClose);
    try {
      stream = await startTls(stream, secureContext);
    } catch (err) {
      problem(run, `${where}: the TLS handshake after STARTTLS failed: ${(err as Error).message}`);
      stream.destroy();
      return;
    }
    stream.on('error', () => {});
    run.upgraded++;
    replies = REPLIES[run.protocol](true);
    stream.on('data', onData);
    stream.on('close', onClose);
  }

  const lines = connectionLines(rand, run.protocol);
  const terminator = TERMINATOR[run.protocol];
  // Pipelined, in up to three writes cut anywhere (inside a line too).
  const all = Buffer.concat([...lines, terminator.bytes]);
  const cuts = [0, ...Array.from({ length: Math.floor(rand() * 3) }, () => Math.floor(rand() * all.length)).sort((a, b) => a - b), all.length];
  for (let i = 0; i + 1 < cuts.length && !closed; i++) {
    if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (!closed && stream.writable) stream.write(all.subarray(cuts[i], cuts[i + 1]));
  }
  run.sent += lines.length;

  if (!(await until(() => closed, HANG_MS))) {
    problem(run, `${where}: not closed within ${HANG_MS} ms of the last line; replies so far end ${JSON.stringify(tail.slice(-100))}`);
    stream.destroy();
  }
  if (tail !== '') problem(run, `${where}: closed inside a reply line ${JSON.stringify(tail.slice(0, 100))}`);
  // Every session ends with a closing reply, or right after the proxy said to start TLS (a
  // handshake that then failed on the fuzz bytes).
  if (!replies.closed && !replies.tlsNext) problem(run, `${where}: closed without a closing reply`);
  run.answered += Math.max(0, replies.answers - terminator.lines);
  run.slowestMs = Math.max(run.slowestMs, performance.now() - started);
}

async function fuzz(options: FuzzOptions, progress: (fraction: number) => void): Promise<FuzzResult[]> {
  const secureContext = tls.createSecureContext({ ca: options.proxyCert });
  const results = options.runs.map((r) => ({ ...r, answered: 0, sent: 0, connections: 0, upgraded: 0, slowestMs: 0, problems: [], problemCount: 0 }));
  const total = results.reduce((n, r) => n + r.target, 0);
  const reporter = setInterval(() => progress(results.reduce((n, r) => n + Math.min(r.answered, r.target), 0) / total), 100);
  await Promise.all(
    results.flatMap((run, i) =>
      Array.from({ length: options.parallel }, async (_, n) => {
        const seed = options.seed + i * 1000 + n;
        const rand = prng(seed);
        const localAddress = fuzzAddress(i, n);
        for (let c = 0; run.answered < run.target && run.problemCount < 20; c++) {
          await fuzzConnection(run, rand, localAddress, `${run.label} seed ${seed} connection ${c}`, secureContext);
        }
      }),
    ),
  );
  clearInterval(reporter);
  progress(1);
  return results;
}

type FuzzMessage = { progress: number } | { results: FuzzResult[] };

/**
 * Runs the fuzz in a worker thread; resolves with each run's figures when all have reached their
 * target. `onProgress` hears the share of the lines answered so far (0..1), about ten times a second.
 */
export function runProxyFuzz(options: FuzzOptions, onProgress?: (fraction: number) => void): Promise<FuzzResult[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { proxyFuzz: options } });
    let results: FuzzResult[] | undefined;
    worker.on('message', (m: FuzzMessage) => {
      if ('results' in m) results = m.results;
      else onProgress?.(m.progress);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => (results ? resolve(results) : reject(new Error(`the fuzz worker exited with ${code}`))));
  });
}

if (!isMainThread && (workerData as { proxyFuzz?: FuzzOptions } | null)?.proxyFuzz) {
  const post = (m: FuzzMessage) => parentPort!.postMessage(m);
  post({ results: await fuzz((workerData as { proxyFuzz: FuzzOptions }).proxyFuzz, (progress) => post({ progress })) });
}
