// Opening a POP3 connection: TCP, implicit TLS (port 995) or the TLS upgrade after STLS (port 110),
// with the system's CAs plus an optional extra one, a timeout, and failures told apart: could not
// connect at all ('unreachable'), or connected but TLS failed ('tls').
import net from 'node:net';
import tls from 'node:tls';
import { secureContextFor } from '../net/connection.ts';
import type { OnRead, ReusableReads } from '../net/reusable-reads.ts';
import { Pop3Error } from './errors.ts';

export interface Pop3ConnectOptions {
  host: string;
  port: number;
  /** 'implicit': TLS from the first byte (995); 'starttls': plain, then STLS (110); 'none': plain. */
  security: 'implicit' | 'starttls' | 'none';
  /** An extra CA certificate (PEM) to trust besides the system's. */
  ca?: string;
  /** The name the server's certificate must carry (and SNI); default: `host` unless it is an IP. */
  servername?: string;
  /** How long to wait for each reply (and for the connection), default 30 s. */
  timeoutMs?: number;
  /** Longest reply line accepted, without its CRLF, default 64 KiB. Applies to message lines too. */
  maxLineBytes?: number;
  /** Largest multi-line reply kept in memory (CAPA, LIST, UIDL, TOP), default 64 MiB. */
  maxReplyBytes?: number;
  /** RETRs sent ahead by retrMany when the server offers PIPELINING, default 32. */
  pipelineWindow?: number;
  /**
   * For whoever takes the socket with detach() to relay it: reads go into these reused buffers
   * (implicit TLS and plain only; after STLS, Node reads into fresh ones).
   */
  reads?: ReusableReads;
}

export interface Pop3Settings {
  host: string;
  port: number;
  security: 'implicit' | 'starttls' | 'none';
  ca: string | undefined;
  servername: string | undefined;
  timeoutMs: number;
  maxLineBytes: number;
  maxReplyBytes: number;
  pipelineWindow: number;
  reads: ReusableReads | undefined;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`Pop3ConnectOptions.${name} must be a positive integer`);
  return value;
}

export function settingsOf(options: Pop3ConnectOptions): Pop3Settings {
  if (typeof options.host !== 'string' || options.host === '') throw new TypeError('Pop3ConnectOptions.host is required');
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) throw new RangeError('Pop3ConnectOptions.port must be 1-65535');
  if (!['implicit', 'starttls', 'none'].includes(options.security)) throw new TypeError("Pop3ConnectOptions.security must be 'implicit', 'starttls' or 'none'");
  return {
    host: options.host,
    port: options.port,
    security: options.security,
    ca: options.ca,
    servername: options.servername ?? (net.isIP(options.host) ? undefined : options.host),
    timeoutMs: positive('timeoutMs', options.timeoutMs, 30_000),
    maxLineBytes: positive('maxLineBytes', options.maxLineBytes, 64 * 1024),
    maxReplyBytes: positive('maxReplyBytes', options.maxReplyBytes, 64 * 1024 * 1024),
    pipelineWindow: positive('pipelineWindow', options.pipelineWindow, 32),
    reads: options.reads,
  };
}

function tlsOptions(s: Pop3Settings): tls.ConnectionOptions {
  return { secureContext: secureContextFor(s.ca), ...(s.servername !== undefined ? { servername: s.servername } : {}) };
}

/** Waits for `event` on a fresh socket; maps failures and the timeout to Pop3Errors. */
function established<T extends net.Socket>(socket: T, event: 'connect' | 'secureConnect', s: Pop3Settings, upgrade: boolean): Promise<T> {
  const where = `${s.host}:${s.port}`;
  return new Promise((resolve, reject) => {
    let tcpUp = upgrade;
    const onConnect = () => (tcpUp = true);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off(event, onReady);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const failWith = (err: Pop3Error) => {
      cleanup();
      socket.on('error', () => {});
      socket.destroy();
      reject(err);
    };
    const onReady = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err: Error) => {
      if (event === 'secureConnect' && tcpUp) failWith(new Pop3Error('tls', `TLS handshake with ${where} failed: ${err.message}`, { cause: err }));
      else failWith(new Pop3Error('unreachable', `cannot connect to ${where}: ${err.message}`, { cause: err }));
    };
    const onClose = () => {
      failWith(
        new Pop3Error(
          tcpUp ? 'tls' : 'unreachable',
          tcpUp ? `${where} closed the connection during the TLS handshake` : `cannot connect to ${where}: connection closed`,
        ),
      );
    };
    const timer = setTimeout(() => {
      failWith(new Pop3Error('timeout', `${tcpUp ? 'TLS handshake with' : 'connecting to'} ${where} took longer than ${s.timeoutMs} ms`));
    }, s.timeoutMs);
    socket.on('connect', onConnect);
    socket.once(event, onReady);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}

/** A connected socket: TLS already up for 'implicit', plain otherwise. */
export async function openSocket(s: Pop3Settings): Promise<net.Socket | tls.TLSSocket> {
  const connect = (extra: { onread?: OnRead }) =>
    s.security === 'implicit' ? tls.connect({ host: s.host, port: s.port, ...tlsOptions(s), ...extra }) : net.connect({ host: s.host, port: s.port, ...extra });
  const opening = s.reads ? s.reads.open((onread) => connect({ onread })) : connect({});
  const socket = await established(opening, s.security === 'implicit' ? 'secureConnect' : 'connect', s, false);
  socket.setNoDelay(true);
  return socket;
}

/** The TLS handshake over an already connected socket (after STLS). */
export async function upgradeSocket(plain: net.Socket | tls.TLSSocket, s: Pop3Settings): Promise<tls.TLSSocket> {
  const secure = await established(tls.connect({ socket: plain, ...tlsOptions(s) }), 'secureConnect', s, true);
  secure.setNoDelay(true);
  return secure;
}
