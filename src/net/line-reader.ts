// Reads a line-based protocol (POP3, IMAP, SMTP) from a socket: CRLF-terminated lines of bounded
// length, and counted byte runs (IMAP literals). Pauses the socket while unread data is buffered,
// so a peer that sends faster than we process cannot make us hold more than one bound's worth.
import type { Duplex } from 'node:stream';
import { MailbridgeError } from '../errors.ts';

export class LineTooLongError extends MailbridgeError<'line_too_long'> {
  readonly limit: number;
  constructor(limit: number) {
    super('line_too_long', `line longer than ${limit} bytes`);
    this.name = 'LineTooLongError';
    this.limit = limit;
  }
}

export interface LineReaderOptions {
  /** Longest line accepted, without its CRLF. */
  maxLineBytes: number;
  /**
   * Only CRLF ends a line; a bare LF stays inside it. SMTP needs this: a server that also takes
   * a bare LF can be made to see the end of DATA where the next hop does not (SMTP smuggling).
   */
  crlfOnly?: boolean;
}

type Waiter = { resolve: () => void; reject: (err: Error) => void };

export class LineReader {
  readonly #socket: Duplex;
  readonly #maxLine: number;
  readonly #crlfOnly: boolean;
  #chunks: Buffer[] = [];
  /** How far the buffer has been searched for a line end, so each wake scans only new bytes. */
  #scanned = 0;
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #waiter: Waiter | undefined;
  readonly #onData = (chunk: Buffer) => {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    // Enough unread: stop reading from the network until the consumer catches up.
    if (this.#buffered > this.#maxLine + 2) this.#socket.pause();
    this.#wake();
  };
  readonly #onEnd = () => {
    this.#ended = true;
    this.#wake();
  };
  readonly #onError = (err: Error) => {
    this.#error = err;
    this.#wake();
  };

  constructor(socket: Duplex, options: LineReaderOptions) {
    this.#socket = socket;
    this.#maxLine = options.maxLineBytes;
    this.#crlfOnly = options.crlfOnly ?? false;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) {
      if (this.#error) waiter.reject(this.#error);
      else waiter.resolve();
    }
  }

  #wait(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    this.#socket.resume();
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  #flatten(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #consume(n: number): Buffer {
    const all = this.#flatten();
    const taken = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    this.#scanned = 0;
    if (this.#buffered <= this.#maxLine + 2) this.#socket.resume();
    return taken;
  }

  /** Index of the LF ending the first line in `all`, or -1; remembers how far it looked. */
  #lineEnd(all: Buffer): number {
    let from = this.#scanned;
    for (;;) {
      const lf = all.indexOf(10, from);
      if (lf < 0) {
        this.#scanned = all.length;
        return -1;
      }
      if (!this.#crlfOnly || (lf > 0 && all[lf - 1] === 13)) return lf;
      from = lf + 1;
    }
  }

  /** Bytes received but not yet read. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * The next line without its line ending (a bare LF is accepted as one), or null when the peer
   * closed. Throws LineTooLongError when no line end comes within the bound; the rest of that
   * line is then discarded up to its end.
   */
  async readLine(): Promise<Buffer | null> {
    for (;;) {
      const all = this.#flatten();
      const lf = this.#lineEnd(all);
      if (lf >= 0) {
        if (lf > this.#maxLine + 1) {
          this.#consume(lf + 1);
          throw new LineTooLongError(this.#maxLine);
        }
        const line = this.#consume(lf + 1);
        const end = lf > 0 && line[lf - 1] === 13 ? lf - 1 : lf;
        return line.subarray(0, end);
      }
      if (all.length > this.#maxLine + 1) {
        await this.#discardLine();
        throw new LineTooLongError(this.#maxLine);
      }
      if (this.#ended) {
        if (all.length === 0) return null;
        return this.#consume(all.length);
      }
      await this.#wait();
    }
  }

  /** Drops bytes up to and including the next LF (or to the end of the stream). */
  async #discardLine(): Promise<void> {
    for (;;) {
      const all = this.#flatten();
      const lf = this.#lineEnd(all);
      if (lf >= 0) {
        this.#consume(lf + 1);
        return;
      }
      this.#consume(all.length);
      if (this.#ended) return;
      await this.#wait();
    }
  }

  /** Exactly `n` bytes (an IMAP literal), or null when the peer closed first. */
  async readBytes(n: number): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const all = this.#flatten();
      if (all.length > 0) {
        const take = this.#consume(Math.min(need, all.length));
        parts.push(Buffer.from(take));
        need -= take.length;
        continue;
      }
      if (this.#ended) return null;
      await this.#wait();
    }
    return Buffer.concat(parts);
  }

  /** Stops reading this socket (before a TLS upgrade); returns what was received but not read. */
  detach(): Buffer {
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.off('error', this.#onError);
    const rest = this.#consume(this.#buffered);
    return rest;
  }
}
