// Reads into a few reused buffers instead of a fresh one per read. A relay that moves a large
// download to a slow reader otherwise leaves every chunk it forwarded as garbage until V8's next
// young-generation collection, which a trickle of data rarely triggers: a 1 MB/s reader grew the
// proxy by ~30 MB over 30 s. With these, what is in flight is all that is held.
//
// Node only reads into caller buffers when they are given at creation (the `onread` option of
// net.connect and of tls.connect without `socket`), so a socket starts in "copy" mode: each read
// is copied and pushed into the socket's stream, and line readers, pause() and detach behave as on
// any socket. handOver() then sends every later read, uncopied, to one consumer that gives each
// buffer back once it is done with it.
import type net from 'node:net';

/** The plaintext of one TLS record at most: a TLS socket hands over one record per read. */
const BUFFER_BYTES = 16 * 1024;
/**
 * Free buffers kept for all sockets together (1 MiB); beyond that, buffers given back are left
 * to the collector. An idle socket holds one, armed for its next read.
 */
const KEEP_FREE = 64;
const free: Buffer[] = [];

function take(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES);
}

function release(buffer: Buffer): void {
  if (free.length < KEEP_FREE) free.push(buffer);
}

/**
 * Gets a read's bytes (valid until `release()`); returns false to stop reading (the socket is
 * paused; `socket.resume()` reads again).
 */
export type ReadConsumer = (chunk: Buffer, release: () => void) => boolean;

/** Node's `onread` option. */
export interface OnRead {
  buffer: () => Buffer;
  callback: (n: number, buffer: Buffer) => boolean;
}

const bySocket = new WeakMap<net.Socket, ReusableReads>();

export class ReusableReads {
  #socket: net.Socket | undefined;
  #consumer: ReadConsumer | undefined;

  /**
   * The socket `connect` opens with the `onread` it is given (net.connect, or tls.connect without
   * `socket`): its reads are pushed into its stream until handOver(). No read can come before
   * this returns: reads only arrive from the event loop.
   */
  open<T extends net.Socket>(connect: (onread: OnRead) => T): T {
    const socket = connect({ buffer: take, callback: (n, buffer) => this.#read(n, buffer) });
    this.#socket = socket;
    bySocket.set(socket, this);
    return socket;
  }

  /**
   * From now on every read goes to `consumer`, first what the socket's stream still holds (copies,
   * read before anything newer can arrive). The socket must be paused and have no 'data'
   * listener; call socket.resume() to start.
   */
  handOver(consumer: ReadConsumer): void {
    const socket = this.#socket;
    if (!socket) throw new Error('ReusableReads: handOver() before open()');
    this.#consumer = consumer;
    for (let held = socket.read() as Buffer | null; held !== null; held = socket.read() as Buffer | null) consumer(held, noop);
  }

  #read(n: number, buffer: Buffer): boolean {
    const consumer = this.#consumer;
    if (consumer) {
      let given = false;
      // Given back twice, one buffer would be armed for two reads at once.
      return consumer(buffer.subarray(0, n), () => {
        if (!given) release(buffer);
        given = true;
      });
    }
    const copy = Buffer.allocUnsafe(n);
    buffer.copy(copy, 0, 0, n);
    release(buffer);
    // A full stream buffer says stop, as it does for a socket that reads on its own.
    return this.#socket!.push(copy);
  }
}

function noop(): void {}

/** The ReusableReads a socket was opened with, if any. */
export function reusableReadsOf(socket: net.Socket): ReusableReads | undefined {
  return bySocket.get(socket);
}
