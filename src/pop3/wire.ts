// One POP3 connection's bytes: writes commands, and reads replies as bounded lines or as streamed
// multi-line blocks. Reading is driven by the socket's 'data' events (no promise per line of a
// message); the socket is paused while more than a bound's worth is unread, so neither a fast
// server nor a slow consumer makes us hold more than that. A reply awaited for longer than the
// timeout, a close before a reply is complete, or a broken reply fails the connection: the socket
// is destroyed and every later read rejects.
import type net from 'node:net';
import type tls from 'node:tls';
import { DotBlockDecoder } from './dot-block.ts';
import { Pop3Error } from './errors.ts';

export interface WireOptions {
  maxLineBytes: number;
  timeoutMs: number;
}

/** Where a block's content goes. `data` returns false to stop until `resumeBlock()`. */
export interface BlockSink {
  data(content: Buffer): boolean;
}

type Want =
  | { kind: 'line'; what: string; resolve: (line: Buffer) => void; reject: (err: Pop3Error) => void }
  | {
      kind: 'block';
      what: string;
      sink: BlockSink;
      decoder: DotBlockDecoder;
      paused: boolean;
      emit: (content: Buffer) => void;
      resolve: () => void;
      reject: (err: Pop3Error) => void;
    };

/** Unread bytes beyond which the socket is paused (at least one longest line must fit). */
const MIN_PAUSE_AT = 256 * 1024;

export class Pop3Wire {
  readonly socket: net.Socket | tls.TLSSocket;
  readonly #maxLine: number;
  readonly #timeoutMs: number;
  readonly #pauseAt: number;
  #chunks: Buffer[] = [];
  /** Offset of the first unread byte in #chunks[0]. */
  #head = 0;
  #buffered = 0;
  /** Unread bytes already searched for a line end (none found). */
  #lineScanned = 0;
  #ended = false;
  #socketError: Error | undefined;
  #failure: Pop3Error | undefined;
  #want: Want | undefined;
  #pumping = false;
  #pumpAgain = false;
  #timer: NodeJS.Timeout | undefined;
  #detached = false;

  readonly #onData = (chunk: Buffer) => {
    if (chunk.length === 0 || this.#failure) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    this.#pump();
  };
  readonly #onEnd = () => {
    this.#ended = true;
    this.#pump();
  };
  readonly #onError = (err: Error) => {
    this.#socketError ??= err;
    this.#ended = true;
    this.#pump();
  };
  readonly #onTimeout = () => {
    this.#timer = undefined;
    const want = this.#want;
    if (!want || (want.kind === 'block' && want.paused)) return;
    this.fail(new Pop3Error('timeout', `no ${want.what} from the POP3 server within ${this.#timeoutMs} ms`));
  };

  constructor(socket: net.Socket | tls.TLSSocket, options: WireOptions) {
    this.socket = socket;
    this.#maxLine = options.maxLineBytes;
    this.#timeoutMs = options.timeoutMs;
    this.#pauseAt = Math.max(MIN_PAUSE_AT, options.maxLineBytes + 2);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  /** The error that ended this connection, if one did. */
  get failure(): Pop3Error | undefined {
    return this.#failure;
  }

  /** Bytes received and not yet read. */
  get buffered(): number {
    return this.#buffered;
  }

  write(data: string): void {
    if (this.#failure || this.socket.destroyed) return;
    this.socket.write(data);
  }

  /** The next line, without its line end (CRLF, or a bare LF). */
  readLine(what: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#start({ kind: 'line', what, resolve, reject });
    });
  }

  /** Reads one dot-terminated block into `sink`; resolves once its end marker has been read. */
  readBlock(what: string, sink: BlockSink): Promise<void> {
    return new Promise((resolve, reject) => {
      const want: Extract<Want, { kind: 'block' }> = {
        kind: 'block',
        what,
        sink,
        decoder: new DotBlockDecoder(this.#maxLine),
        paused: false,
        emit: (content) => {
          if (!sink.data(content)) want.paused = true;
        },
        resolve,
        reject,
      };
      this.#start(want);
    });
  }

  /** `sink` takes data again (ignored unless it is the current block's). */
  resumeBlock(sink: BlockSink): void {
    const want = this.#want;
    if (want?.kind !== 'block' || want.sink !== sink || !want.paused) return;
    want.paused = false;
    this.#pump();
  }

  /** Ends the connection with `err`: the socket is destroyed, the current and later reads reject. */
  fail(err: Pop3Error): Pop3Error {
    if (this.#failure) return err;
    this.#failure = err;
    this.#disarm();
    const want = this.#want;
    this.#want = undefined;
    this.#chunks = [];
    this.#buffered = 0;
    if (!this.#detached) this.socket.destroy();
    want?.reject(err);
    return err;
  }

  /** A polite end (after QUIT): half-close, and destroy once the server has closed too. */
  end(): void {
    if (this.#failure) return;
    this.#failure = new Pop3Error('closed', 'the POP3 session has ended (QUIT)');
    this.#disarm();
    const socket = this.socket;
    socket.end();
    const timer = setTimeout(() => socket.destroy(), 2000);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.resume();
  }

  /**
   * Stops using the socket (for the TLS upgrade after STLS, or to hand a logged-in connection to
   * a relay) and hands it over with the bytes received but not yet read. Later reads reject with
   * `reason`.
   */
  detach(reason = 'the connection was handed over to TLS'): { socket: net.Socket | tls.TLSSocket; leftover: Buffer } {
    this.#detached = true;
    this.#disarm();
    this.socket.off('data', this.#onData);
    this.socket.off('end', this.#onEnd);
    this.socket.off('close', this.#onEnd);
    this.socket.off('error', this.#onError);
    this.#failure ??= new Pop3Error('closed', reason);
    const leftover = this.#buffered > 0 ? this.#copy(this.#buffered) : Buffer.alloc(0);
    this.#chunks = [];
    this.#head = 0;
    this.#buffered = 0;
    return { socket: this.socket, leftover };
  }

  #start(want: Want): void {
    if (this.#failure) {
      want.reject(this.#failure);
      return;
    }
    if (this.#want) {
      want.reject(new Pop3Error('protocol', 'internal error: two reads at once on one POP3 connection'));
      return;
    }
    this.#want = want;
    this.#pump();
  }

  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#serve();
      } while (this.#pumpAgain && !this.#failure);
    } catch (err) {
      this.fail(err instanceof Pop3Error ? err : new Pop3Error('protocol', `cannot read the POP3 reply: ${(err as Error).message}`, { cause: err }));
    } finally {
      this.#pumping = false;
    }
    this.#flow();
  }

  /** Gives the current read what the buffer holds; throws a Pop3Error for a broken reply. */
  #serve(): void {
    const want = this.#want;
    if (!want || this.#failure) return;
    if (want.kind === 'line') {
      const line = this.#takeLine(want.what);
      if (line) {
        this.#want = undefined;
        want.resolve(line);
        return;
      }
    } else {
      while (!want.paused && this.#chunks.length > 0) {
        const chunk = this.#chunks[0]!;
        const from = this.#head;
        const end = want.decoder.decode(chunk, from, want.emit);
        if (end >= 0) {
          this.#consume(end - from);
          this.#want = undefined;
          want.resolve();
          return;
        }
        this.#consume(chunk.length - from);
      }
      if (want.paused) return;
    }
    if (this.#ended) throw this.#closedError(want);
  }

  #closedError(want: Want): Pop3Error {
    const cause = this.#socketError;
    const how = cause ? `the connection failed (${cause.message})` : 'the server closed the connection';
    if (want.kind === 'block') {
      const where = want.decoder.bytes > 0 ? `after ${want.decoder.bytes} bytes of content` : 'before any content';
      return new Pop3Error(
        'closed',
        `${how} in the middle of ${want.what}, ${where}: the multi-line reply is truncated (no terminating ".")`,
        cause ? { cause } : {},
      );
    }
    return new Pop3Error('closed', `${how} while waiting for the ${want.what}`, cause ? { cause } : {});
  }

  /** Removes and returns the next complete line (without CRLF), or undefined when none is in. */
  #takeLine(what: string): Buffer | undefined {
    const max = this.#maxLine + 1;
    let offset = 0;
    for (let i = 0; i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i]!;
      const start = i === 0 ? this.#head : 0;
      const size = chunk.length - start;
      if (offset + size <= this.#lineScanned) {
        offset += size;
        continue;
      }
      const lf = chunk.indexOf(0x0a, start + Math.max(0, this.#lineScanned - offset));
      if (lf < 0) {
        offset += size;
        continue;
      }
      const length = offset + (lf - start);
      if (length > max) throw this.#lineTooLong(what);
      const line = i === 0 ? chunk.subarray(start, lf) : this.#copy(length);
      this.#consume(length + 1);
      return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
    }
    this.#lineScanned = offset;
    if (offset > max) throw this.#lineTooLong(what);
    return undefined;
  }

  #lineTooLong(what: string): Pop3Error {
    return new Pop3Error('line_too_long', `the ${what} has a line longer than ${this.#maxLine} bytes`);
  }

  /** The first `n` unread bytes, copied into one buffer (not consumed). */
  #copy(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    for (let i = 0; filled < n; i++) {
      const chunk = this.#chunks[i]!;
      const start = i === 0 ? this.#head : 0;
      filled += chunk.copy(out, filled, start, Math.min(chunk.length, start + n - filled));
    }
    return out;
  }

  #consume(n: number): void {
    this.#buffered -= n;
    this.#lineScanned = 0;
    while (n > 0) {
      const chunk = this.#chunks[0]!;
      const left = chunk.length - this.#head;
      if (n >= left) {
        this.#chunks.shift();
        this.#head = 0;
        n -= left;
      } else {
        this.#head += n;
        n = 0;
      }
    }
  }

  /** Reads on while there is room and a reader; keeps the reply timer running while one waits. */
  #flow(): void {
    if (this.#failure) return;
    const want = this.#want;
    const waiting = want !== undefined && !(want.kind === 'block' && want.paused);
    if (this.#buffered > this.#pauseAt) this.socket.pause();
    else if (!this.#ended) this.socket.resume();
    if (waiting) this.#arm();
    else this.#disarm();
  }

  #arm(): void {
    if (this.#timer) this.#timer.refresh();
    else this.#timer = setTimeout(this.#onTimeout, this.#timeoutMs);
  }

  #disarm(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}
