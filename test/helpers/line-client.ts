// A line-protocol client for tests: plain or TLS (trusting a given CA), STARTTLS, read a line or
// a dot-terminated block, send raw lines. Test-side only; products use real client libraries.
import net from 'node:net';
import tls from 'node:tls';
import { LineReader } from '../../src/net/line-reader.ts';

export interface LineClientOptions {
  port: number;
  host?: string;
  /** Connect from this loopback address (e.g. 127.0.0.2), to be another client address. */
  localAddress?: string;
  /** Connect with TLS from the start (e.g. pop3s, imaps), trusting this CA. */
  tlsCa?: string;
  timeoutMs?: number;
}

/** The client side of STARTTLS: the same connection, now over TLS trusting `ca`. */
export async function upgradeToTls(socket: net.Socket | tls.TLSSocket, ca: string): Promise<tls.TLSSocket> {
  const secure = tls.connect({ socket: socket, ca, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  secure.on('error', () => {});
  return secure;
}

export class LineClient {
  socket: net.Socket | tls.TLSSocket;
  #reader: LineReader;
  readonly #timeoutMs: number;

  private constructor(socket: net.Socket | tls.TLSSocket, timeoutMs: number) {
    this.socket = socket;
    this.#timeoutMs = timeoutMs;
    this.#reader = new LineReader(socket, { maxLineBytes: 1024 * 1024 });
    socket.on('error', () => {});
  }

  static async connect(options: LineClientOptions): Promise<LineClient> {
    const host = options.host ?? '127.0.0.1';
    const socket = options.tlsCa
      ? tls.connect({
          host,
          port: options.port,
          ca: options.tlsCa,
          servername: 'localhost',
          ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        })
      : net.connect({ host, port: options.port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tlsCa ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new LineClient(socket, options.timeoutMs ?? 10_000);
  }

  async #timed<T>(work: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next line (latin1), or null when the server closed. */
  async line(): Promise<string | null> {
    const raw = await this.#timed(this.#reader.readLine(), 'line');
    return raw === null ? null : raw.toString('latin1');
  }

  /** IMAP: lines up to and including the tagged answer to `tag`; fails if the server closes first. */
  async untilTagged(tag: string): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.line();
      if (line === null) throw new Error(`closed before ${tag}'s answer; got ${lines.join(' | ')}`);
      lines.push(line);
      if (line.startsWith(`${tag} `)) return lines;
    }
  }

  /** Exactly n bytes (an IMAP literal), or null when the server closed first. */
  async bytes(n: number): Promise<Buffer | null> {
    return this.#timed(this.#reader.readBytes(n), `${n} bytes`);
  }

  /** Lines up to a lone "." (not included), dot-stuffing removed. */
  async block(): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line();
      if (l === null) throw new Error('closed inside a multi-line reply');
      if (l === '.') return lines;
      lines.push(l.startsWith('.') ? l.slice(1) : l);
    }
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Sends `line` and returns the next line of reply. */
  async ask(line: string): Promise<string | null> {
    this.send(line);
    return this.line();
  }

  async startTls(ca: string): Promise<void> {
    this.#reader.detach();
    this.socket = await upgradeToTls(this.socket, ca);
    this.#reader = new LineReader(this.socket, { maxLineBytes: 1024 * 1024 });
  }

  /** Resolves when the server has closed the connection. */
  closed(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return this.#timed(new Promise((resolve) => this.socket.once('close', () => resolve())), 'close');
  }

  close(): void {
    this.socket.destroy();
  }
}
