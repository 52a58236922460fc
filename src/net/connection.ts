// Opening a connection to a mail server, for verify's probes and the proxy's upstream logins:
// resolve the host, open TCP, TLS (verified against the system's CAs plus the cloud's caFile;
// certificate facts kept for reports), and a bounded, timed line connection on top. Certificate checks are done by hand after the
// handshake so a refused certificate can still be described, and nothing is ever sent over a
// connection whose certificate failed.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import net from 'node:net';
import tls from 'node:tls';
import { MailbridgeError, type MailbridgeErrorOptions } from '../errors.ts';
import { LineReader, LineTooLongError } from './line-reader.ts';
import type { OnRead, ReusableReads } from './reusable-reads.ts';

/**
 * No connection: the name does not resolve, TCP fails, or TLS fails. `code` is the family's
 * ('timeout', 'tls' or 'unreachable'); `systemCode` keeps the system's or OpenSSL's own
 * (ENOTFOUND, ECONNREFUSED, CERT_HAS_EXPIRED...), which verify explains.
 */
export class NetFailure extends MailbridgeError<'timeout' | 'unreachable' | 'tls'> {
  readonly stage: 'dns' | 'tcp' | 'tls';
  readonly systemCode: string;
  readonly hint: 'trust' | 'name' | 'expired' | 'other';
  constructor(stage: NetFailure['stage'], systemCode: string, message: string, hint: NetFailure['hint'] = 'other') {
    super(systemCode === 'ETIMEDOUT' ? 'timeout' : stage === 'tls' ? 'tls' : 'unreachable', message);
    this.name = 'NetFailure';
    this.stage = stage;
    this.systemCode = systemCode;
    this.hint = hint;
  }
}

/** The peer closed, stayed silent too long, or sent a line (or an IMAP literal) over the bound. */
export class ConnectionError extends MailbridgeError<'closed' | 'timeout' | 'line_too_long' | 'literal_too_large'> {
  constructor(code: ConnectionError['code'], message: string, options: MailbridgeErrorOptions = {}) {
    super(code, message, options);
    this.name = 'ConnectionError';
  }
}

export async function resolveHost(host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  try {
    const found = await lookup(host, { all: true });
    return found.map((a) => a.address);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND';
    throw new NetFailure('dns', code, `${host} does not resolve (${code})`);
  }
}

/**
 * Runs `attempt` on each address in turn until one succeeds. A NetFailure of stage 'tcp' moves on
 * to the next address (and is reported as that address's, if it was the last); anything else stops.
 */
async function firstAnswering<T>(addresses: string[], port: number, attempt: (address: string) => Promise<T>): Promise<T> {
  let last: NetFailure | undefined;
  for (const address of addresses) {
    try {
      return await attempt(address);
    } catch (err) {
      if (!(err instanceof NetFailure) || err.stage !== 'tcp') throw err;
      last = new NetFailure('tcp', err.systemCode, `${address}:${port}: ${err.message}`);
    }
  }
  throw last ?? new NetFailure('tcp', 'ENOADDR', 'no address to connect to');
}

/** Connects to the first address that answers. */
export function connectTcp(addresses: string[], port: number, timeoutMs: number): Promise<{ socket: net.Socket; address: string }> {
  return firstAnswering(addresses, port, async (address) => {
    try {
      const socket = await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: address, port });
        const timer = setTimeout(() => {
          s.destroy();
          reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
        }, timeoutMs);
        s.once('connect', () => {
          clearTimeout(timer);
          s.setNoDelay(true);
          resolve(s);
        });
        s.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      return { socket, address };
    } catch (err) {
      throw new NetFailure('tcp', (err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED', (err as Error).message);
    }
  });
}

export interface TlsFacts {
  protocol: string;
  subject: string;
  issuer: string;
  validTo: string;
}

function dn(fields: object | undefined): string {
  if (!fields) return '?';
  const f = fields as Record<string, string | string[] | undefined>;
  const parts = ['CN', 'O', 'OU', 'C'].filter((k) => f[k] !== undefined).map((k) => `${k}=${[f[k]].flat().join('+')}`);
  return parts.length ? parts.join(', ') : '?';
}

/** The facts of a peer certificate worth reporting. */
export function tlsFacts(protocol: string | null | undefined, cert: tls.PeerCertificate | undefined): TlsFacts {
  return {
    protocol: protocol ?? '?',
    subject: dn(cert?.subject),
    issuer: dn(cert?.issuer),
    validTo: cert?.valid_to ? new Date(cert.valid_to).toISOString() : '?',
  };
}

let trusted: string[] | undefined;

/** The system's CAs (Node's bundle, the OS store, NODE_EXTRA_CA_CERTS) plus the cloud's caFile. */
export function trustedCas(extraPem?: string): string[] {
  trusted ??= [...new Set([...tls.getCACertificates('default'), ...tls.getCACertificates('system')])];
  return extraPem ? [...trusted, extraPem] : trusted;
}

/**
 * The TLS context trusting the system's CAs plus `extraPem`, made once per extra CA: building one
 * parses every trusted root (some 20 ms for ~270), far more than a handshake costs.
 */
const contexts = new Map<string, tls.SecureContext>();

export function secureContextFor(extraPem: string | undefined): tls.SecureContext {
  const key = extraPem ?? '';
  let context = contexts.get(key);
  if (!context) {
    if (contexts.size >= 16) contexts.clear();
    context = tls.createSecureContext({ ca: trustedCas(extraPem), minVersion: 'TLSv1.2' });
    contexts.set(key, context);
  }
  return context;
}

/** OpenSSL's words for the verification codes Node reports (X509_verify_cert_error_string). */
const OPENSSL_REASONS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_UNTRUSTED: 'certificate not trusted',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  CERT_REVOKED: 'certificate revoked',
  CERT_REJECTED: 'certificate rejected',
  INVALID_CA: 'invalid CA certificate',
  INVALID_PURPOSE: 'unsupported certificate purpose',
};

const TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** TLS over an open socket (after STARTTLS/STLS, or implicit TLS over connectTcp); verified as described above. */
export async function startTls(
  socket: net.Socket,
  host: string,
  caPem: string | undefined,
  timeoutMs: number,
): Promise<{ socket: tls.TLSSocket; facts: TlsFacts }> {
  const servername = isIP(host) ? undefined : host;
  const secure = tls.connect({ socket, ...(servername ? { servername } : {}), secureContext: secureContextFor(caPem), rejectUnauthorized: false });
  try {
    return { socket: secure, facts: await verifiedHandshake(secure, servername, timeoutMs, true) };
  } catch (err) {
    secure.destroy();
    socket.destroy();
    throw err;
  }
}

/**
 * TCP and implicit TLS in one step, to the first of `addresses` that answers, verified like
 * startTls. With `reads`, the socket reads into its reused buffers (Node allows that only for a
 * socket it opens itself, not for TLS over an existing one).
 */
export function connectTls(
  addresses: string[],
  port: number,
  host: string,
  caPem: string | undefined,
  timeoutMs: number,
  reads?: ReusableReads,
): Promise<{ socket: tls.TLSSocket; facts: TlsFacts }> {
  const servername = isIP(host) ? undefined : host;
  // A refused certificate is the server's answer (stage 'tls'): another address would not be trusted more.
  return firstAnswering(addresses, port, async (address) => {
    const connect = (extra: { onread?: OnRead }) =>
      tls.connect({ host: address, port, ...(servername ? { servername } : {}), secureContext: secureContextFor(caPem), rejectUnauthorized: false, ...extra });
    const secure = reads ? reads.open((onread) => connect({ onread })) : connect({});
    try {
      const facts = await verifiedHandshake(secure, servername, timeoutMs, false);
      secure.setNoDelay(true);
      return { socket: secure, facts };
    } catch (err) {
      secure.destroy();
      throw err;
    }
  });
}

/**
 * Waits for the handshake of `secure` and checks its certificate and name. `tcpUp`: the TCP
 * connection already exists (a failure before the handshake ends is then a TLS failure).
 */
async function verifiedHandshake(secure: tls.TLSSocket, servername: string | undefined, timeoutMs: number, tcpUp: boolean): Promise<TlsFacts> {
  await new Promise<void>((resolve, reject) => {
    let connected = tcpUp;
    const timer = setTimeout(
      () =>
        reject(
          new NetFailure(connected ? 'tls' : 'tcp', 'ETIMEDOUT', connected ? `no TLS handshake within ${timeoutMs} ms` : `no answer within ${timeoutMs} ms`),
        ),
      timeoutMs,
    );
    if (!tcpUp) secure.once('connect', () => (connected = true));
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      resolve();
    });
    secure.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = err.code ?? 'TLS_ERROR';
      if (!connected) reject(new NetFailure('tcp', code, err.message));
      else reject(new NetFailure('tls', code, err.message.replace(/^[0-9A-F]+:error:[0-9A-F]+:/, '')));
    });
    secure.once('close', () => {
      clearTimeout(timer);
      reject(
        connected
          ? new NetFailure('tls', 'ECONNRESET', 'the server closed the connection during the TLS handshake')
          : new NetFailure('tcp', 'ECONNRESET', 'the connection closed'),
      );
    });
  });
  const cert = secure.getPeerCertificate();
  const facts = tlsFacts(secure.getProtocol(), cert);
  if (!secure.authorized) {
    const reason = secure.authorizationError as unknown as NodeJS.ErrnoException | string | undefined;
    const code = typeof reason === 'string' ? reason : (reason?.code ?? String(reason));
    const text = OPENSSL_REASONS[code] ?? (typeof reason === 'string' ? reason : (reason?.message ?? code));
    const hint = /EXPIRED|NOT_YET_VALID/.test(code) ? 'expired' : TRUST_CODES.has(code) ? 'trust' : 'other';
    throw new NetFailure('tls', code, `certificate ${facts.subject} issued by ${facts.issuer}: ${text}`, hint);
  }
  if (servername) {
    const mismatch = tls.checkServerIdentity(servername, cert);
    if (mismatch)
      throw new NetFailure(
        'tls',
        (mismatch as NodeJS.ErrnoException).code ?? 'ERR_TLS_CERT_ALTNAME_INVALID',
        `certificate ${facts.subject}: ${mismatch.message}`,
        'name',
      );
  }
  secure.on('error', () => {});
  return facts;
}

export function describeTls(f: TlsFacts): string {
  return `${f.protocol}, certificate ${f.subject}, issued by ${f.issuer}, valid until ${f.validTo}`;
}

/** A line connection with a deadline on every read; switches to TLS in place (STARTTLS). */
export class LineConnection {
  #socket: net.Socket | tls.TLSSocket;
  #reader: LineReader;
  readonly #timeoutMs: number;
  #closed = false;
  #detached = false;

  constructor(socket: net.Socket | tls.TLSSocket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    this.#reader = new LineReader(socket, { maxLineBytes: 64 * 1024 });
    socket.on('error', () => {});
  }

  get socket(): net.Socket | tls.TLSSocket {
    return this.#socket;
  }

  async #timed<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConnectionError('timeout', `no reply within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      return await Promise.race([work, timeout]);
    } catch (err) {
      if (err instanceof LineTooLongError) throw new ConnectionError('line_too_long', 'the server sent a line over 64 KiB', { cause: err });
      if (err instanceof ConnectionError) throw err;
      throw new ConnectionError('closed', `the connection failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next line (latin1); throws ConnectionError('closed') when the server hung up. */
  async line(): Promise<string> {
    if (this.#detached) throw new ConnectionError('closed', 'the connection was handed over (detached)');
    const raw = await this.#timed(this.#reader.readLine());
    if (raw === null) throw new ConnectionError('closed', 'the server closed the connection');
    return raw.toString('latin1');
  }

  async bytes(n: number): Promise<Buffer> {
    if (this.#detached) throw new ConnectionError('closed', 'the connection was handed over (detached)');
    const raw = await this.#timed(this.#reader.readBytes(n));
    if (raw === null) throw new ConnectionError('closed', 'the server closed the connection');
    return raw;
  }

  send(line: string): void {
    if (!this.#closed) this.#socket.write(`${line}\r\n`);
  }

  write(data: string | Buffer): void {
    if (!this.#closed) this.#socket.write(data);
  }

  /**
   * Switches the connection to TLS after the server agreed (STARTTLS/STLS). Bytes the server sent
   * before the handshake would be read as if they had come over TLS: that is refused.
   */
  async upgrade(host: string, caPem: string | undefined): Promise<TlsFacts> {
    const early = this.#reader.detach();
    if (early.length > 0) {
      this.close();
      throw new NetFailure('tls', 'EARLY_DATA', 'the server sent data before the TLS handshake (refused: it could be injected)');
    }
    const { socket, facts } = await startTls(this.#socket, host, caPem, this.#timeoutMs);
    this.#socket = socket;
    this.#reader = new LineReader(socket, { maxLineBytes: 64 * 1024 });
    return facts;
  }

  /**
   * Stops reading and hands the socket over (the proxy relays raw bytes from here on): the socket
   * comes back paused with no data listener, with the bytes already received but not yet read.
   * Its no-op 'error' listener stays, so a reset before the new owner listens cannot crash the
   * process. Afterwards this connection neither reads, writes nor closes.
   */
  detach(): { socket: net.Socket | tls.TLSSocket; leftover: Buffer } {
    if (this.#detached || this.#closed) throw new ConnectionError('closed', 'the connection is already closed or handed over');
    this.#detached = true;
    this.#closed = true;
    const leftover = this.#reader.detach();
    // The reader may have left the stream flowing; with no 'data' listener bytes would be dropped.
    this.#socket.pause();
    return { socket: this.#socket, leftover };
  }

  close(): void {
    if (this.#detached) return;
    this.#closed = true;
    this.#socket.destroy();
  }
}
