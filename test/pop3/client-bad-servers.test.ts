// The POP3 client against servers that misbehave: one scripted local server per case (garbage,
// oversized lines, truncated blocks, wrong dot-stuffing, a "+" where an answer was due, a close
// mid-message, silence), each giving a typed Pop3Error quickly; then a fuzz test feeding the
// client 20,000+ random and mutated replies: every call settles within a bound with a result or a
// Pop3Error, the process never crashes, memory stays bounded, and every connection is closed.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { after, describe, it } from 'node:test';
import { LineReader } from '../../src/net/line-reader.ts';
import { DotBlockDecoder } from '../../src/pop3/dot-block.ts';
import { Pop3Client, Pop3Error, type Pop3ConnectOptions } from '../../src/pop3/index.ts';
import { createAuthority, issueServerCertificate } from '../../src/tls/certificates.ts';
import { pick, prng, type Rand } from '../helpers/fuzz.ts';
import { settledMemoryBytes } from '../helpers/memory.ts';

// ----- a scripted server -----

/** The server's side of one connection. */
class Peer {
  readonly socket: net.Socket;
  readonly reader: LineReader;
  /** Resolves when the client has closed (or reset) the connection. */
  readonly closed: Promise<void>;

  constructor(socket: net.Socket) {
    this.socket = socket;
    serverSockets.add(socket);
    socket.once('close', () => serverSockets.delete(socket));
    socket.setNoDelay(true);
    socket.on('error', () => {});
    this.reader = new LineReader(socket, { maxLineBytes: 1024 * 1024 });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** The client's next command line, or null when it closed. */
  async command(): Promise<string | null> {
    try {
      const line = await this.reader.readLine();
      return line === null ? null : line.toString('latin1');
    } catch {
      return null;
    }
  }

  /** Reads a command, checks it, answers it. */
  async answer(expected: string | RegExp, reply: string | Buffer): Promise<void> {
    const line = await this.command();
    if (typeof expected === 'string') assert.equal(line, expected);
    else assert.match(line ?? '', expected);
    this.send(reply);
  }

  send(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }
}

interface Scripted {
  port: number;
  peers: Peer[];
  /** The script's own failure (an assertion about what the client sent), if any. */
  done: Promise<void>;
  close(): Promise<void>;
}

const servers: net.Server[] = [];
const serverSockets = new Set<net.Socket>();
after(async () => {
  for (const socket of serverSockets) socket.destroy();
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
});

/** A local server running `script` for its first connection. */
async function scripted(script: (peer: Peer) => Promise<void>): Promise<Scripted> {
  const peers: Peer[] = [];
  let finish!: (err?: Error) => void;
  const done = new Promise<void>((resolve, reject) => (finish = (err) => (err ? reject(err) : resolve())));
  done.catch(() => {});
  const server = net.createServer((socket) => {
    const peer = new Peer(socket);
    peers.push(peer);
    if (peers.length > 1) return;
    script(peer).then(() => finish(), finish);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    peers,
    done,
    close: async () => {
      for (const p of peers) p.socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const GREETING = '+OK scripted POP3 server ready\r\n';

function options(port: number, extra: Partial<Pop3ConnectOptions> = {}): Pop3ConnectOptions {
  return { host: '127.0.0.1', port, security: 'none', timeoutMs: 2000, ...extra };
}

/** Resolves with the Pop3Error `work` rejects with (within `withinMs`), checking its code. */
async function failsWith(work: Promise<unknown>, code: Pop3Error['code'], withinMs = 5000): Promise<Pop3Error> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), withinMs)));
  try {
    const outcome = await Promise.race([work.then(() => 'resolved' as const), hang]);
    assert.fail(outcome === 'hang' ? `no answer within ${withinMs} ms (a hang)` : `resolved, expected a Pop3Error '${code}'`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    assert.ok(err instanceof Pop3Error, `expected a Pop3Error, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  } finally {
    clearTimeout(timer);
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Connects and checks that the connection was closed by the client after the error. */
async function closedAfter(server: Scripted): Promise<void> {
  const peer = server.peers[0];
  assert.ok(peer, 'no connection');
  let timer: NodeJS.Timeout | undefined;
  const closed = await Promise.race([peer.closed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2000)))]);
  clearTimeout(timer);
  assert.ok(closed, 'the client kept the connection open after a protocol error');
}

describe('POP3 client against misbehaving servers', () => {
  it('a greeting that is not POP3: protocol error with the text, connection closed', async () => {
    const server = await scripted(async (p) => p.send('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const err = await failsWith(Pop3Client.connect(options(server.port)), 'protocol');
    assert.equal(err.reply, 'HTTP/1.1 400 Bad Request');
    assert.match(err.message, /not a POP3 greeting: "HTTP\/1\.1 400 Bad Request"/);
    await closedAfter(server);
    await server.close();
  });

  it('binary garbage, then a close: closed, never a hang', async () => {
    const server = await scripted(async (p) => {
      p.send(Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]));
      p.socket.end();
    });
    await failsWith(Pop3Client.connect(options(server.port)), 'closed');
    await server.close();
  });

  it('an -ERR greeting: server error with its text', async () => {
    const server = await scripted(async (p) => p.send('-ERR Too many concurrent connections for this mailbox.\r\n'));
    const err = await failsWith(Pop3Client.connect(options(server.port)), 'server');
    assert.equal(err.reply, '-ERR Too many concurrent connections for this mailbox.');
    await server.close();
  });

  it('an oversized greeting line (never ending): line_too_long, connection closed', async () => {
    const server = await scripted(async (p) => {
      const block = Buffer.alloc(64 * 1024, 'A');
      for (let i = 0; i < 64 && !p.socket.destroyed; i++) {
        if (!p.socket.write(block)) await new Promise((r) => setTimeout(r, 5));
      }
    });
    const err = await failsWith(Pop3Client.connect(options(server.port, { maxLineBytes: 4096 })), 'line_too_long');
    assert.match(err.message, /longer than 4096 bytes/);
    await closedAfter(server);
    await server.close();
  });

  it('an oversized line inside LIST and inside a message: line_too_long', async () => {
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('LIST', `+OK\r\n1 100\r\n${'9'.repeat(5000)} 1\r\n.\r\n`);
    });
    const client = await Pop3Client.connect(options(server.port, { maxLineBytes: 1024 }));
    await failsWith(client.list(), 'line_too_long');
    await closedAfter(server);
    await failsWith(client.noop(), 'closed');
    await server.close();

    const second = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('RETR 1', `+OK\r\nSubject: x\r\n\r\n${'y'.repeat(3000)}\r\n.\r\n`);
    });
    const other = await Pop3Client.connect(options(second.port, { maxLineBytes: 1024 }));
    const err = await failsWith(readAll(other.retr(1)), 'line_too_long');
    assert.match(err.message, /multi-line reply is longer than 1024 bytes/);
    await closedAfter(second);
    await second.close();
  });

  it('a multi-line reply cut short by a close: closed, naming the truncation', async () => {
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('LIST', '+OK 2 messages\r\n1 100\r\n2 2');
      p.socket.end();
    });
    const client = await Pop3Client.connect(options(server.port));
    const err = await failsWith(client.list(), 'closed');
    assert.match(err.message, /closed the connection in the middle of the LIST listing.*truncated/);
    await server.close();
  });

  it('wrong dot-stuffing (a line starting with a single "."): protocol error, connection closed', async () => {
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('RETR 1', '+OK\r\nSubject: x\r\n\r\n.not stuffed\r\n.\r\n');
    });
    const client = await Pop3Client.connect(options(server.port));
    const err = await failsWith(readAll(client.retr(1)), 'protocol');
    assert.match(err.message, /invalid dot-stuffing/);
    await closedAfter(server);
    await server.close();
  });

  it('an unstuffed lone "." inside a message: the rest is seen as a bad reply to the next command', async () => {
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('RETR 1', '+OK\r\nSubject: x\r\n\r\nbefore\r\n.\r\nafter the early end\r\n.\r\n');
    });
    const client = await Pop3Client.connect(options(server.port));
    assert.equal((await readAll(client.retr(1))).toString(), 'Subject: x\r\n\r\nbefore\r\n');
    const err = await failsWith(client.noop(), 'protocol');
    assert.equal(err.reply, 'after the early end');
    assert.match(err.message, /reply to NOOP is neither \+OK nor -ERR: "after the early end"/);
    await server.close();
  });

  it('a "+" continuation where a final answer was expected: protocol error', async () => {
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('STAT', '+ \r\n');
    });
    const client = await Pop3Client.connect(options(server.port));
    const err = await failsWith(client.stat(), 'protocol');
    assert.match(err.message, /answered STAT with a "\+" continuation/);
    assert.equal(err.reply, '+ ');
    await closedAfter(server);
    await server.close();
  });

  it('AUTH: +OK before the credentials, or a second "+" after the error challenge, is a protocol error', async () => {
    const token = `eyJ0eXAiOiJKV1QifQ.${'x'.repeat(5000)}`;
    const early = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('AUTH XOAUTH2', '+OK welcome\r\n');
    });
    const a = await Pop3Client.connect(options(early.port));
    const err = await failsWith(a.authXoauth2('bob@contoso.com', token), 'protocol');
    assert.match(err.message, /\+OK before any credentials/);
    await early.close();

    const twice = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('AUTH XOAUTH2', '+ \r\n');
      await p.answer(/^[A-Za-z0-9+/]+=*$/, `+ ${Buffer.from('{"status":"401"}').toString('base64')}\r\n`);
      await p.answer('', '+ \r\n');
    });
    const b = await Pop3Client.connect(options(twice.port));
    const second = await failsWith(b.authXoauth2('bob@contoso.com', token), 'protocol');
    assert.match(second.message, /another "\+" challenge/);
    assert.ok(!second.message.includes(token) && !second.message.includes('xxxxxxxx'));
    await twice.done;
    await twice.close();
  });

  it('a server that echoes the token in its refusal: the token is redacted from the error', async () => {
    const token = `eyJ0eXAiOiJKV1QifQ.${'s3cr3t'.repeat(800)}`;
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('AUTH XOAUTH2', '+ \r\n');
      const response = (await p.command()) ?? '';
      p.send(`-ERR bad token ${token} in ${response}\r\n`);
    });
    const client = await Pop3Client.connect(options(server.port));
    const err = await failsWith(client.authXoauth2('bob@contoso.com', token), 'auth_rejected');
    assert.equal(err.reply, '-ERR bad token [redacted] in [redacted]');
    assert.ok(!err.message.includes('s3cr3t'));
    await server.close();
  });

  it('a close in the middle of a message: the stream fails with closed, after how many bytes', async () => {
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('RETR 1', `+OK 100000 octets\r\nSubject: x\r\n\r\n${'line\r\n'.repeat(1000)}`);
      p.socket.destroy();
    });
    const client = await Pop3Client.connect(options(server.port));
    const err = await failsWith(readAll(client.retr(1)), 'closed');
    assert.match(err.message, /in the middle of message 1, after 6014 bytes of content/);
    await failsWith(client.noop(), 'closed');
    await server.close();
  });

  it('a message stream that fails before anyone reads it: no crash, the error is there when read', async () => {
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('RETR 1', '+OK\r\nSubject: x\r\n\r\npart');
      p.socket.destroy();
    });
    const client = await Pop3Client.connect(options(server.port));
    const stream = client.retr(1);
    // Nobody reads or listens: wait for the failure to land on the stream (a minute at most: a hang guard).
    for (let i = 0; i < 6000 && stream.errored === null; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(stream.errored instanceof Pop3Error);
    await failsWith(readAll(stream), 'closed');
    await server.close();
  });

  it('silence: no greeting, no answer, a message that stops: timeout', async () => {
    const mute = await scripted(async () => {});
    const started = Date.now();
    const err = await failsWith(Pop3Client.connect(options(mute.port, { timeoutMs: 300 })), 'timeout');
    assert.ok(Date.now() - started < 1500);
    assert.match(err.message, /no greeting from the POP3 server within 300 ms/);
    await closedAfter(mute);
    await mute.close();

    const stalls = await scripted(async (p) => {
      p.send(GREETING);
      await p.command(); // STAT: never answered
    });
    const client = await Pop3Client.connect(options(stalls.port, { timeoutMs: 300 }));
    await failsWith(client.stat(), 'timeout');
    await closedAfter(stalls);
    await stalls.close();

    const stops = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('RETR 1', '+OK\r\nSubject: x\r\n\r\nand then noth');
    });
    const other = await Pop3Client.connect(options(stops.port, { timeoutMs: 300 }));
    await failsWith(readAll(other.retr(1)), 'timeout');
    await stops.close();
  });

  it('a slow reader is not a silent server: no timeout while the consumer holds back', async () => {
    const body = Buffer.from(`Subject: big\r\n\r\n${'0123456789'.repeat(99).concat('\r\n').repeat(2000)}`);
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('RETR 1', Buffer.concat([Buffer.from('+OK\r\n'), body, Buffer.from('.\r\n')]));
      await p.answer('NOOP', '+OK\r\n');
    });
    const client = await Pop3Client.connect(options(server.port, { timeoutMs: 200 }));
    const stream = client.retr(1);
    const first = await new Promise<Buffer>((resolve) => stream.once('data', resolve));
    stream.pause();
    await new Promise((r) => setTimeout(r, 700));
    const rest = await readAll(stream);
    assert.equal(Buffer.concat([first, rest]).length, body.length);
    await client.noop();
    await server.close();
  });

  it('STLS: not offered is a tls error; data after the STLS answer is refused', async () => {
    const none = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('CAPA', '+OK\r\nUSER\r\n.\r\n');
    });
    const err = await failsWith(Pop3Client.connect(options(none.port, { security: 'starttls' })), 'tls');
    assert.match(err.message, /does not offer STLS \(CAPA: USER\)/);
    await none.close();

    const injected = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('CAPA', '+OK\r\nSTLS\r\n.\r\n');
      await p.answer('STLS', '+OK Begin TLS negotiation.\r\n+OK injected before TLS\r\n');
    });
    const injection = await failsWith(Pop3Client.connect(options(injected.port, { security: 'starttls' })), 'protocol');
    assert.match(injection.message, /more data after its STLS reply/);
    await injected.close();
  });

  it('TLS failures are tls errors; an unreachable port is a connect error', async () => {
    // Implicit TLS to a plain server.
    const plain = await scripted(async (p) => p.send(GREETING));
    await failsWith(Pop3Client.connect(options(plain.port, { security: 'implicit' })), 'tls');
    await plain.close();
    // A certificate from a CA nobody trusts.
    const authority = await createAuthority('untrusted test CA');
    const cert = await issueServerCertificate(authority, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const tlsServer = tls.createServer({ key: cert.keyPem, cert: cert.certPem }, (s) => s.end(GREETING));
    tlsServer.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    const port = (tlsServer.address() as net.AddressInfo).port;
    const untrusted = await failsWith(Pop3Client.connect(options(port, { security: 'implicit' })), 'tls');
    assert.match(untrusted.message, /TLS handshake with 127\.0\.0\.1:\d+ failed/);
    // Trusted, but the wrong name.
    await failsWith(Pop3Client.connect(options(port, { security: 'implicit', ca: authority.certPem, servername: 'pop.example.com' })), 'tls');
    const ok = await Pop3Client.connect(options(port, { security: 'implicit', ca: authority.certPem }));
    assert.equal(ok.greeting, GREETING.trim());
    ok.close();
    await new Promise((resolve) => tlsServer.close(resolve));
    // Nothing listening.
    const free = net.createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const freePort = (free.address() as net.AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    await failsWith(Pop3Client.connect(options(freePort)), 'unreachable');
  });

  it('retrMany with PIPELINING: an -ERR or a failing callback stops it, the session stays in step', async () => {
    const message = (n: number) => `+OK\r\nSubject: ${n}\r\n\r\n.. body ${n}\r\n.\r\n`;
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('CAPA', '+OK\r\nPIPELINING\r\nTOP\r\n.\r\n');
      // Round one: RETR 1..5 pipelined, message 3 missing.
      for (let n = 1; n <= 5; n++) await p.answer(`RETR ${n}`, n === 3 ? '-ERR no such message\r\n' : message(n));
      await p.answer('NOOP', '+OK round one done\r\n');
      // Round two: the callback fails on message 2.
      for (let n = 1; n <= 4; n++) await p.answer(`RETR ${n}`, message(n));
      await p.answer('NOOP', '+OK round two done\r\n');
    });
    const client = await Pop3Client.connect(options(server.port));
    const got: string[] = [];
    const err = await failsWith(
      client.retrMany([1, 2, 3, 4, 5], async (n, s) => {
        got.push(`${n}:${(await readAll(s)).toString()}`);
      }),
      'server',
    );
    assert.equal(err.reply, '-ERR no such message');
    assert.deepEqual(got, ['1:Subject: 1\r\n\r\n. body 1\r\n', '2:Subject: 2\r\n\r\n. body 2\r\n']);
    await client.noop();
    await assert.rejects(
      client.retrMany([1, 2, 3, 4], async (n) => {
        if (n === 2) throw new Error('disk full');
      }),
      /disk full/,
    );
    await client.noop();
    await server.done;
    await server.close();
  });
});

// ----- fuzz -----

const FUZZ_REPLIES = 20_000;
const FUZZ_CONNECTIONS = 16;
const FUZZ_TIMEOUT_MS = 50;
/** Longest any one call may take: a timeout, plus generous slack for a busy machine. */
const CALL_BOUND_MS = 3000;

function stuffed(body: string): string {
  return body
    .split('\r\n')
    .map((l) => (l.startsWith('.') ? `.${l}` : l))
    .join('\r\n');
}

const BODIES = [
  'Subject: a\r\n\r\nhello\r\n',
  'Subject: b\r\n\r\n.dot\r\n..two\r\n.\r\nend\r\n',
  'Subject: c\r\n\r\n',
  `Subject: d\r\n\r\n${'long line of text '.repeat(20)}\r\n`.repeat(30),
];

/** A well-formed reply to `command`. */
function validReply(rand: Rand, command: string): string {
  const verb = command.split(' ')[0]!.toUpperCase();
  switch (verb) {
    case 'CAPA':
      return `+OK\r\nTOP\r\nUIDL\r\n${rand() < 0.5 ? 'PIPELINING\r\n' : ''}SASL XOAUTH2 OAUTHBEARER\r\nUSER\r\n.\r\n`;
    case 'STAT':
      return `+OK ${Math.floor(rand() * 10)} ${Math.floor(rand() * 1e6)}\r\n`;
    case 'LIST':
      return `+OK\r\n1 120\r\n2 ${Math.floor(rand() * 1e5)}\r\n3 9\r\n.\r\n`;
    case 'UIDL':
      return `+OK\r\n1 AAA1\r\n2 x-${Math.floor(rand() * 1e6)}\r\n.\r\n`;
    case 'TOP':
    case 'RETR':
      return `+OK\r\n${stuffed(pick(rand, BODIES))}.\r\n`;
    case 'AUTH':
      return '+ \r\n';
    case 'QUIT':
      return '+OK bye\r\n';
    case '':
      return '-ERR [AUTH] Authentication failed.\r\n';
    default:
      // NOOP, DELE, RSET, and the SASL response line (base64).
      return /^[A-Za-z0-9+/]{8,}=*$/.test(command)
        ? rand() < 0.5
          ? '+OK Logged in.\r\n'
          : `+ ${Buffer.from('{"status":"401"}').toString('base64')}\r\n`
        : '+OK\r\n';
  }
}

/** A reply to `command`, mutated or not; `stall` says the server then goes silent, `close` that it hangs up. */
function fuzzReply(rand: Rand, command: string): { data: Buffer; close: boolean; stall: boolean } {
  const valid = Buffer.from(validReply(rand, command), 'latin1');
  const r = rand();
  let data = valid;
  let close = false;
  let stall = false;
  if (r < 0.4) {
    // as is
  } else if (r < 0.48) {
    data = Buffer.from(`-ERR ${pick(rand, ['no', 'Protocol error. 14', 'x'.repeat(Math.floor(rand() * 200))])}\r\n`);
  } else if (r < 0.6) {
    data = Buffer.from(valid);
    const flips = 1 + Math.floor(rand() * 4);
    for (let i = 0; i < flips; i++) data[Math.floor(rand() * data.length)] = pick(rand, [0x0a, 0x0d, 0x2e, 0x2b, 0x20, 0x00, 0xff, Math.floor(rand() * 256)]);
  } else if (r < 0.66) {
    data = valid.subarray(0, Math.floor(rand() * valid.length));
    close = true;
  } else if (r < 0.665) {
    data = valid.subarray(0, Math.floor(rand() * valid.length));
    stall = true;
  } else if (r < 0.69) {
    data = Buffer.concat([Buffer.from('+OK\r\n'), Buffer.alloc(9000 + Math.floor(rand() * 20000), 'L'), Buffer.from('\r\n.\r\n')]);
  } else if (r < 0.75) {
    // Lose the terminator, or the stuffing, or add lines.
    const text = valid.toString('latin1');
    data = Buffer.from(
      pick(rand, [text.replace(/\.\r\n$/, ''), text.replace(/\r\n\.\./g, '\r\n.'), `${text}extra line\r\n`, text.replace(/\r\n/g, '\n')]),
      'latin1',
    );
  } else if (r < 0.8) {
    data = Buffer.from(pick(rand, ['+ \r\n', '+\r\n', `+ ${Buffer.from('{"status":"400"}').toString('base64')}\r\n`, '+OK\r\n', '-ERR\r\n', '+OKAY\r\n']));
  } else if (r < 0.85) {
    data = Buffer.alloc(Math.floor(rand() * 120));
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  } else if (r < 0.9) {
    data = Buffer.concat([valid, Buffer.from(validReply(rand, pick(rand, ['STAT', 'RETR 1', 'LIST'])))]); // unsolicited extra reply
  }
  return { data, close, stall };
}

/** The fuzz server: answers every command line with a fuzzed reply, sometimes in pieces. */
async function fuzzServer(seed: number): Promise<{ port: number; replies: () => number; open: () => number; close: () => Promise<void> }> {
  let replies = 0;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const rand = prng(seed + ++connections * 7919);
    const peer = new Peer(socket);
    const send = async (data: Buffer) => {
      if (rand() < 0.25 && data.length > 1) {
        // In pieces, so replies split at every kind of boundary.
        let at = 0;
        while (at < data.length && !socket.destroyed) {
          const n = 1 + Math.floor(rand() * Math.min(64, data.length - at));
          socket.write(data.subarray(at, at + n));
          at += n;
          await new Promise((r) => setImmediate(r));
        }
      } else {
        socket.write(data);
      }
    };
    void (async () => {
      await send(rand() < 0.95 ? Buffer.from('+OK fuzz ready\r\n') : fuzzReply(rand, 'GREETING').data);
      for (;;) {
        const command = await peer.command();
        if (command === null || socket.destroyed) return;
        const reply = fuzzReply(rand, command);
        replies++;
        await send(reply.data);
        if (reply.stall) return; // keep the socket open, say nothing more
        if (reply.close || command.toUpperCase() === 'QUIT') {
          socket.end();
          return;
        }
      }
    })().catch(() => socket.destroy());
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    replies: () => replies,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Consumes a message stream (sometimes pausing, sometimes giving up early). */
async function consume(rand: Rand, stream: Readable): Promise<void> {
  const mode = rand();
  if (mode < 0.1) {
    stream.destroy();
    return;
  }
  for await (const _chunk of stream) {
    if (mode < 0.2) await new Promise((r) => setImmediate(r));
  }
}

describe('POP3 client reply parser under fuzzed server replies', () => {
  it('decodes any dot-stuffed block split at any points into chunks, exactly', () => {
    const rand = prng(0xb10c);
    const pieces = ['.', '..', '...', '.\r\n', '\r\n', 'text', ' ', '\r', '\n.', 'x'.repeat(100)];
    for (let round = 0; round < 20_000; round++) {
      // A message of random pieces, ending with CRLF as stored messages do.
      let body = '';
      const parts = Math.floor(rand() * 30);
      for (let i = 0; i < parts; i++) body += pick(rand, pieces);
      body = body.replace(/\r(?!\n)/g, '').replace(/(?<!\r)\n/g, '\r\n');
      if (body !== '' && !body.endsWith('\r\n')) body += '\r\n';
      const wire = Buffer.from(`${stuffed(body)}.\r\nNEXT`, 'latin1');
      const decoder = new DotBlockDecoder(1000);
      const out: Buffer[] = [];
      let at = 0;
      let end = -1;
      while (end < 0) {
        assert.ok(at < wire.length, `no end marker found in round ${round}`);
        const size = 1 + Math.floor(rand() * 12);
        const chunk = wire.subarray(at, at + size);
        // The connection hands over chunks with an offset (what it has already read).
        const skip = Math.floor(rand() * 3);
        const e = decoder.decode(Buffer.concat([Buffer.alloc(skip, '#'), chunk]), skip, (c) => out.push(Buffer.from(c)));
        if (e >= 0) assert.ok(e >= skip);
        end = e < 0 ? -1 : at + e - skip;
        at += chunk.length;
      }
      assert.equal(Buffer.concat(out).toString('latin1'), body, `round ${round}`);
      assert.equal(wire.subarray(end).toString('latin1'), 'NEXT');
    }
  });

  it('replies arriving in tiny pieces, split at every kind of boundary: exact messages', async () => {
    const rand = prng(0x51ce);
    const bodies = Array.from({ length: 60 }, (_, i) => `Subject: ${i}\r\n\r\n${'.x\r\n..\r\n.\r\nline\r\n'.repeat(1 + (i % 9))}${'z'.repeat(i * 13)}\r\n`);
    const server = await scripted(async (p) => {
      p.send(GREETING);
      await p.answer('CAPA', '+OK\r\nPIPELINING\r\n.\r\n');
      const wire = Buffer.from(bodies.map((b) => `+OK ${b.length} octets\r\n${stuffed(b)}.\r\n`).join('') + '+OK done\r\n', 'latin1');
      // Replies go out as fast as the commands allow (the client pipelines; the server need not wait).
      const commands = (async () => {
        const seen: (string | null)[] = [];
        for (let i = 0; i <= bodies.length; i++) seen.push(await p.command());
        return seen;
      })();
      for (let at = 0; at < wire.length;) {
        const size = 1 + Math.floor(rand() * 5);
        p.send(wire.subarray(at, at + size));
        at += size;
        if (rand() < 0.3) await new Promise((r) => setImmediate(r));
      }
      assert.deepEqual(await commands, [...bodies.map((_, i) => `RETR ${i + 1}`), 'NOOP']);
    });
    const client = await Pop3Client.connect(options(server.port));
    const got: string[] = [];
    await client.retrMany(
      bodies.map((_, i) => i + 1),
      async (_n, s) => void got.push((await readAll(s)).toString('latin1')),
    );
    await client.noop();
    assert.deepEqual(got, bodies);
    await server.done;
    await server.close();
  });

  it('bounds lines exactly: maxLineBytes fits, one more does not, split or not', () => {
    for (const split of [0, 1, 7, 500]) {
      const decode = (line: string) => {
        const wire = Buffer.from(`${line}\r\n.\r\n`);
        const decoder = new DotBlockDecoder(100);
        if (split === 0) return decoder.decode(wire, 0, () => {});
        let end = -1;
        for (let at = 0; end < 0 && at < wire.length; at += split) {
          const e = decoder.decode(wire.subarray(at, at + split), 0, () => {});
          if (e >= 0) end = at + e;
        }
        return end;
      };
      assert.ok(decode('a'.repeat(100)) > 0);
      assert.throws(
        () => decode('a'.repeat(101)),
        (err: unknown) => err instanceof Pop3Error && err.code === 'line_too_long',
      );
    }
  });

  it(`settles every call with a result or a Pop3Error over ${FUZZ_REPLIES}+ mutated replies`, { timeout: 300_000 }, async (t) => {
    const server = await fuzzServer(0x5eed);
    const baseline = settledMemoryBytes();
    const outcomes = new Map<string, number>();
    const note = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    let peakGrowth = 0;

    async function call(rand: Rand, client: Pop3Client): Promise<'fatal' | 'ok'> {
      const op = pick(rand, ['capabilities', 'stat', 'list', 'uidl', 'top', 'retr', 'retrMany', 'noop', 'dele', 'rset', 'auth', 'bearer', 'quit'] as const);
      const work = (async () => {
        switch (op) {
          case 'capabilities':
            return client.capabilities();
          case 'stat':
            return client.stat();
          case 'list':
            return client.list();
          case 'uidl':
            return client.uidl();
          case 'top':
            return client.top(1 + Math.floor(rand() * 3), Math.floor(rand() * 5));
          case 'retr': {
            const stream = client.retr(1 + Math.floor(rand() * 3));
            return consume(rand, stream);
          }
          case 'retrMany':
            return client.retrMany([1, 2, 3], (_n, s) => consume(rand, s));
          case 'noop':
            return client.noop();
          case 'dele':
            return client.dele(1 + Math.floor(rand() * 3));
          case 'rset':
            return client.rset();
          case 'auth':
            return client.authXoauth2('bob@contoso.com', `token-${'t'.repeat(Math.floor(rand() * 6000))}`);
          case 'bearer':
            return client.authOauthbearer('bob@contoso.com', 'token-abc');
          case 'quit':
            return client.quit();
        }
      })();
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), CALL_BOUND_MS)));
      try {
        const outcome = await Promise.race([work.then(() => 'ok' as const), hang]);
        assert.notEqual(outcome, 'hang', `${op} did not settle within ${CALL_BOUND_MS} ms`);
        note(`${op}: ok`);
        return op === 'quit' ? 'fatal' : 'ok';
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        assert.ok(err instanceof Pop3Error, `${op} rejected with ${String(err)}, not a Pop3Error`);
        note(`${op}: ${err.code}`);
        return err.fatal ? 'fatal' : 'ok';
      } finally {
        clearTimeout(timer);
      }
    }

    async function worker(id: number): Promise<void> {
      const rand = prng(0xf022 + id);
      while (server.replies() < FUZZ_REPLIES) {
        let client: Pop3Client;
        try {
          client = await Pop3Client.connect({ host: '127.0.0.1', port: server.port, security: 'none', timeoutMs: FUZZ_TIMEOUT_MS, maxLineBytes: 8192 });
        } catch (err) {
          assert.ok(err instanceof Pop3Error, `connect rejected with ${String(err)}`);
          note(`connect: ${err.code}`);
          continue;
        }
        try {
          for (let i = 0; i < 50 && server.replies() < FUZZ_REPLIES; i++) {
            if ((await call(rand, client)) === 'fatal') break;
          }
        } finally {
          client.close();
        }
        if (id === 0 && rand() < 0.05) peakGrowth = Math.max(peakGrowth, settledMemoryBytes() - baseline);
      }
    }

    await Promise.all(Array.from({ length: FUZZ_CONNECTIONS }, (_, i) => worker(i)));
    assert.ok(server.replies() >= FUZZ_REPLIES, `only ${server.replies()} replies`);
    // Every connection was closed by the client, whatever happened on it.
    for (let i = 0; i < 100 && server.open() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.open(), 0, 'connections left open');
    const growth = settledMemoryBytes() - baseline;
    peakGrowth = Math.max(peakGrowth, growth);
    assert.ok(peakGrowth < 24 * 1024 * 1024, `memory grew by ${(peakGrowth / 1e6).toFixed(1)} MB`);
    // Both kinds of outcome occurred for the main operations (the fuzzing reached them).
    for (const op of ['stat', 'list', 'retr', 'retrMany', 'auth']) {
      assert.ok((outcomes.get(`${op}: ok`) ?? 0) > 0, `${op} never succeeded`);
      assert.ok((outcomes.get(`${op}: protocol`) ?? 0) > 0, `${op} never met a protocol error`);
    }
    for (const code of ['timeout', 'closed', 'line_too_long', 'server']) {
      assert.ok(
        [...outcomes.keys()].some((k) => k.endsWith(`: ${code}`)),
        `no ${code} error seen`,
      );
    }
    t.diagnostic(
      `outcomes: ${[...outcomes]
        .sort()
        .map(([k, v]) => `${k} x${v}`)
        .join(', ')}`,
    );
    t.diagnostic(`${server.replies()} replies; settled memory grew by at most ${(peakGrowth / 1e6).toFixed(1)} MB`);
    await server.close();
  });
});
