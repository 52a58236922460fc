// A minimal raw-socket IMAP and POP3 client for benchmarks that compare two paths to the same
// server (directly over TLS, or through the proxy in plain text) with the same client code: it
// counts the bytes of an answer without copying or parsing them (an IMAP literal is skipped by its
// length, a POP3 multi-line answer ends at its lone "."), so the client costs next to nothing.
import net from 'node:net';
import tls from 'node:tls';
import { encodeXoauth2 } from '../../src/net/sasl-xoauth2.ts';

const EMPTY = Buffer.alloc(0);
const POP3_END = Buffer.from('\r\n.\r\n', 'latin1');
const LITERAL = /\{(\d+)\+?\}$/;

/** A step reading the answer: how many bytes of `buf` it used, and whether it is finished. */
type Feed = (buf: Buffer) => { used: number; finished: boolean };

interface Task {
  feed: Feed;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface Pace {
  /** Bytes per second the reader allows itself. */
  bytesPerSecond: number;
}

/** One connection: bytes in are handed to the running step, never queued in a list. */
export class Wire {
  readonly socket: net.Socket;
  /** Every byte received so far, and in how many reads. */
  received = 0;
  reads = 0;
  #buf: Buffer = EMPTY;
  #task: Task | undefined;
  #failure: Error | undefined;
  #pace: { bytesPerSecond: number; start: number; base: number; timer?: NodeJS.Timeout } | undefined;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      this.reads++;
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      this.#run();
      this.#throttle();
    });
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('the connection closed')));
  }

  /** TCP to host:port (the proxy's plain listener). */
  static async plain(port: number, host = '127.0.0.1'): Promise<Wire> {
    const socket = net.connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return new Wire(socket);
  }

  /** TLS to host:port (the upstream server), verified with `context` for `servername`. */
  static async tls(port: number, context: tls.SecureContext, servername = 'localhost', host = '127.0.0.1'): Promise<Wire> {
    const socket = tls.connect({ host, port, secureContext: context, servername });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    return new Wire(socket);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    const task = this.#task;
    this.#task = undefined;
    if (task) {
      clearTimeout(task.timer);
      task.reject(err);
    }
  }

  #run(): void {
    while (this.#task && this.#buf.length > 0) {
      const task = this.#task;
      const { used, finished } = task.feed(this.#buf);
      this.#buf = used >= this.#buf.length ? EMPTY : this.#buf.subarray(used);
      if (finished) {
        this.#task = undefined;
        clearTimeout(task.timer);
        task.resolve();
      } else if (used === 0) {
        break;
      }
    }
  }

  /** Runs `feed` over what arrives until it says it is finished. */
  #read(feed: Feed, timeoutMs: number): Promise<void> {
    if (this.#task) return Promise.reject(new Error('Wire: one read at a time'));
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
      this.#task = { feed, resolve, reject, timer };
      this.#run();
    });
  }

  /** Reads slowly from now on: the socket is paused whenever more than the allowance has come in. */
  pace(pace: Pace): void {
    this.#pace = { bytesPerSecond: pace.bytesPerSecond, start: performance.now(), base: this.received };
  }

  #throttle(): void {
    const p = this.#pace;
    if (!p || p.timer) return;
    const allowed = ((performance.now() - p.start) / 1000) * p.bytesPerSecond;
    const excess = this.received - p.base - allowed;
    if (excess <= 0) return;
    this.socket.pause();
    p.timer = setTimeout(
      () => {
        p.timer = undefined;
        this.socket.resume();
      },
      Math.ceil((excess / p.bytesPerSecond) * 1000),
    );
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The next line, without its CRLF. */
  async line(timeoutMs = 30_000): Promise<string> {
    let out = '';
    await this.#read((buf) => {
      const lf = buf.indexOf(10);
      if (lf < 0) return { used: 0, finished: false };
      out = buf.toString('latin1', 0, lf > 0 && buf[lf - 1] === 13 ? lf - 1 : lf);
      return { used: lf + 1, finished: true };
    }, timeoutMs);
    return out;
  }

  /**
   * Reads an IMAP answer to the tagged line of `tag`: literals skipped by their length. Returns
   * the tagged line, the bytes received for the answer, and (when `keep`) every other line.
   */
  async imapAnswer(tag: string, options: { keep?: boolean; timeoutMs?: number } = {}): Promise<{ tagged: string; bytes: number; lines: string[] }> {
    const lines: string[] = [];
    let tagged = '';
    let literal = 0;
    let bytes = 0;
    let partial = '';
    const prefix = `${tag} `;
    await this.#read((buf) => {
      if (literal > 0) {
        const used = Math.min(literal, buf.length);
        literal -= used;
        bytes += used;
        return { used, finished: false };
      }
      const lf = buf.indexOf(10);
      if (lf < 0) return { used: 0, finished: false };
      bytes += lf + 1;
      const text = partial + buf.toString('latin1', 0, lf > 0 && buf[lf - 1] === 13 ? lf - 1 : lf);
      const m = LITERAL.exec(text);
      if (m) {
        literal = Number(m[1]);
        // The line goes on after the literal.
        partial = options.keep ? `${text}[${literal} bytes]` : '';
        return { used: lf + 1, finished: false };
      }
      partial = '';
      if (text.startsWith(prefix)) {
        tagged = text;
        return { used: lf + 1, finished: true };
      }
      if (options.keep) lines.push(text);
      return { used: lf + 1, finished: false };
    }, options.timeoutMs ?? 120_000);
    return { tagged, bytes, lines };
  }

  /** Sends an IMAP command and reads its answer; anything but OK is an error. */
  async imap(tag: string, command: string, options: { keep?: boolean; timeoutMs?: number } = {}): Promise<{ bytes: number; lines: string[] }> {
    this.send(`${tag} ${command}\r\n`);
    const answer = await this.imapAnswer(tag, options);
    if (!answer.tagged.startsWith(`${tag} OK`)) throw new Error(`IMAP ${command.split(' ')[0]}: ${answer.tagged}`);
    return answer;
  }

  /** A POP3 single-line answer; -ERR is an error. */
  async pop3Status(what: string, timeoutMs = 30_000): Promise<string> {
    const line = await this.line(timeoutMs);
    if (!line.startsWith('+OK')) throw new Error(`POP3 ${what}: ${line}`);
    return line;
  }

  /** After a +OK: the bytes of a multi-line answer up to and including its lone ".". */
  async pop3Body(timeoutMs = 120_000): Promise<number> {
    let bytes = 0;
    // The CRLF that ended the status line: an empty answer is just ".\r\n".
    let tail = Buffer.from('\r\n', 'latin1');
    await this.#read((buf) => {
      const joined = Buffer.concat([tail, buf.subarray(0, 4)]);
      const across = joined.indexOf(POP3_END);
      if (across >= 0) {
        const used = across + POP3_END.length - tail.length;
        bytes += used;
        return { used, finished: true };
      }
      const inside = buf.indexOf(POP3_END);
      if (inside >= 0) {
        const used = inside + POP3_END.length;
        bytes += used;
        return { used, finished: true };
      }
      bytes += buf.length;
      tail = buf.length >= 4 ? Buffer.from(buf.subarray(buf.length - 4)) : Buffer.concat([tail, buf]).subarray(-4);
      return { used: buf.length, finished: false };
    }, timeoutMs);
    return bytes;
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface ImapLogin {
  kind: 'xoauth2' | 'password';
  user: string;
  /** The access token (xoauth2) or the app password. */
  secret: string;
}

/** Greeting, then AUTHENTICATE XOAUTH2 with an initial response, or LOGIN. */
export async function imapLogin(wire: Wire, login: ImapLogin): Promise<void> {
  const greeting = await wire.line();
  if (!greeting.startsWith('* OK')) throw new Error(`IMAP greeting: ${greeting}`);
  if (login.kind === 'xoauth2') await wire.imap('l1', `AUTHENTICATE XOAUTH2 ${encodeXoauth2(login.user, login.secret)}`);
  else await wire.imap('l1', `LOGIN ${login.user} ${login.secret}`);
}

/** Greeting, then AUTH XOAUTH2 in two steps (as Exchange wants it), or USER and PASS. */
export async function pop3Login(wire: Wire, login: ImapLogin): Promise<void> {
  await wire.pop3Status('greeting');
  if (login.kind === 'xoauth2') {
    wire.send('AUTH XOAUTH2\r\n');
    const go = await wire.line();
    if (!go.startsWith('+')) throw new Error(`POP3 AUTH XOAUTH2: ${go}`);
    wire.send(`${encodeXoauth2(login.user, login.secret)}\r\n`);
    await wire.pop3Status('AUTH XOAUTH2');
  } else {
    wire.send(`USER ${login.user}\r\n`);
    await wire.pop3Status('USER');
    wire.send(`PASS ${login.secret}\r\n`);
    await wire.pop3Status('PASS');
  }
}
