// A TCP server for a line-based protocol: plain or implicit TLS, STARTTLS upgrades, idle
// timeouts, TCP_NODELAY, writes that respect backpressure, and every session closed on shutdown.
// A session handler's failure ends that session only, never the server. node:tls loads only for
// an implicit TLS listener or the first STARTTLS: a plain listener's process does without it.
import net from 'node:net';
import type tls from 'node:tls';
import { LineReader, type LineReaderOptions } from './line-reader.ts';

export interface TlsMaterial {
  key: string;
  cert: string;
}

export interface LineServerOptions {
  host: string;
  port: number;
  /** Implicit TLS (like ports 993, 995): the handshake comes before the greeting. */
  implicitTls?: TlsMaterial;
  maxLineBytes: number;
  /** Only CRLF ends a line (SMTP); see LineReaderOptions. */
  crlfOnly?: boolean;
  /** A session silent this long is closed (after `onIdle`, if given, has said goodbye). */
  idleTimeoutMs: number;
  /** Connections the kernel queues before they are accepted (Node's default is 511). */
  backlog?: number;
  /**
   * Keep writing after the client half-closes (a script that sends its commands and shuts its
   * side): the replies still reach it; the session ends our side itself when it is done. Off by
   * default: Node then ends our side at once, and replies not yet written are lost.
   */
  allowHalfOpen?: boolean;
}

export class LineSession {
  socket: net.Socket | tls.TLSSocket;
  reader: LineReader;
  readonly remoteAddress: string;
  readonly #readerOptions: LineReaderOptions;
  #closed = false;

  constructor(socket: net.Socket | tls.TLSSocket, readerOptions: LineReaderOptions) {
    this.socket = socket;
    this.#readerOptions = readerOptions;
    this.reader = new LineReader(socket, readerOptions);
    this.remoteAddress = socket.remoteAddress ?? '';
    socket.setNoDelay(true);
    socket.on('error', () => {
      // Reported to the handler through the reader; never an uncaught exception.
    });
    socket.on('close', () => {
      this.#closed = true;
    });
  }

  get secure(): boolean {
    // A TLSSocket says so itself; asking it this way needs no node:tls.
    return (this.socket as Partial<tls.TLSSocket>).encrypted === true;
  }

  get closed(): boolean {
    return this.#closed || this.socket.destroyed;
  }

  /** Writes and waits while the peer is slow to read, so a session never buffers without bound. */
  write(data: string | Buffer): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.socket.write(data)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /**
   * Upgrades to TLS in place (STARTTLS/STLS). Returns false, without upgrading, when the client
   * sent more after the command: such bytes would be read as if they came over TLS (CVE-2011-0411).
   */
  async startTls(material: TlsMaterial): Promise<boolean> {
    const leftover = this.reader.detach();
    if (leftover.length > 0) {
      this.reader = new LineReader(this.socket, this.#readerOptions);
      return false;
    }
    const { TLSSocket } = await import('node:tls');
    const secure = new TLSSocket(this.socket, { isServer: true, key: material.key, cert: material.cert });
    secure.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
    this.socket = secure;
    this.reader = new LineReader(secure, this.#readerOptions);
    return true;
  }

  /**
   * Ends the session: half-closes, then reads and drops whatever the client still sends until it
   * closes too (two seconds at most). Closing a socket with unread input makes the kernel send a
   * reset, which can destroy the last reply (a BYE, a QUIT answer) before a pipelining client
   * has read it.
   */
  async end(): Promise<void> {
    if (this.closed) return;
    const socket = this.socket;
    this.reader.detach();
    socket.on('data', () => {});
    socket.resume();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      timer.unref();
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      socket.once('end', done);
      socket.once('close', done);
      socket.end();
    });
    socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface RunningLineServer {
  port: number;
  /** Open sessions right now. */
  readonly sessionCount: number;
  /** Stops taking new connections; open sessions go on. */
  stopAccepting(): Promise<void>;
  close(): Promise<void>;
}

export async function startLineServer(
  options: LineServerOptions,
  onSession: (session: LineSession) => Promise<void>,
  onIdle?: (session: LineSession) => Promise<void>,
): Promise<RunningLineServer> {
  const sessions = new Set<LineSession>();
  const handle = (socket: net.Socket | tls.TLSSocket) => {
    const session = new LineSession(socket, { maxLineBytes: options.maxLineBytes, crlfOnly: options.crlfOnly ?? false });
    sessions.add(session);
    socket.setTimeout(options.idleTimeoutMs, () => {
      void (async () => {
        try {
          if (onIdle) await onIdle(session);
        } finally {
          session.destroy();
        }
      })();
    });
    socket.once('close', () => sessions.delete(session));
    onSession(session)
      .catch(() => {
        // A broken peer or a bug in one session must not take the server down.
      })
      .finally(() => {
        void session.end();
      });
  };
  const allowHalfOpen = options.allowHalfOpen ?? false;
  const server = options.implicitTls
    ? (await import('node:tls')).createServer({ key: options.implicitTls.key, cert: options.implicitTls.cert, allowHalfOpen }, handle)
    : net.createServer({ allowHalfOpen }, handle);
  server.on('tlsClientError', () => {});
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port, ...(options.backlog ? { backlog: options.backlog } : {}) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    get sessionCount() {
      return sessions.size;
    },
    // server.close() calls back only once every connection has ended: not waited for here.
    stopAccepting: async () => {
      if (server.listening) server.close();
    },
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      });
    },
  };
}
