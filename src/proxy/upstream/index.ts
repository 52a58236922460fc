// The proxy's upstream half: connect to the real mail server (TCP, implicit TLS or STARTTLS/STLS,
// verified against the system's CAs plus the cloud's caFile), log in with XOAUTH2 (reference
// sections 8.2-8.5), and hand the logged-in socket back for the proxy to relay raw bytes.
//
//   const session = await loginUpstream('imap', { endpoint: cloud.imap, timeoutMs: 30_000 }, mailbox, token);
//   client.write(session.leftover); session.socket.pipe(client); client.pipe(session.socket);
//
// Every failure is an UpstreamError; code 'auth_rejected' means the server refused the token (refresh
// it and call again once). Every wait is bounded by timeoutMs, every line by 64 KiB.
import type net from 'node:net';
import type tls from 'node:tls';
import type { MailEndpoint } from '../../config/clouds.ts';
import { LineConnection, connectTcp, connectTls, resolveHost } from '../../net/connection.ts';
import { ReusableReads } from '../../net/reusable-reads.ts';
import { encodeXoauth2 } from '../../net/sasl-xoauth2.ts';
import { UpstreamError, upstreamFailure } from './errors.ts';
import { imapLogin } from './imap.ts';
import { pop3Login } from './pop3.ts';
import { smtpLogin } from './smtp.ts';

export { UpstreamError, type UpstreamErrorCode } from './errors.ts';

export type UpstreamProtocol = 'imap' | 'pop' | 'smtp';

export interface UpstreamTarget {
  endpoint: MailEndpoint;
  /** PEM CA trusted besides the system's (an emulator's). */
  caPem?: string;
  /** Bound on every wait: DNS, connect, TLS handshake, each reply. */
  timeoutMs: number;
  /** SMTP: the EHLO name; default os.hostname() when it is a plain host name, else 'localhost'. */
  ehloName?: string;
}

export interface UpstreamSession {
  /**
   * TLS, logged in, paused, with no listener that consumes data (a no-op 'error' listener stays
   * so a reset before the caller listens cannot crash the process). Being paused, it flows again
   * only on pipe() or resume() (a 'data' listener alone does not restart it). It may already have
   * ended when the server hung up right after its answer: check `socket.destroyed`/`readableEnded`.
   */
  socket: net.Socket | tls.TLSSocket;
  /** Bytes already received after the login answer, to be relayed to the client first. */
  leftover: Buffer;
  /** The server's greeting (SMTP: all lines of a multi-line greeting, joined by CRLF). */
  greeting: string;
  /**
   * IMAP: the capabilities stated with or after the login (`OK [CAPABILITY ...]`, `* CAPABILITY`),
   * else []. SMTP: the final EHLO's extensions (e.g. 'SIZE 157286400', 'PIPELINING'). POP3: [].
   */
  capabilities: string[];
  /** IMAP: the tagged reply without our tag ("OK AUTHENTICATE completed."); POP3: the +OK line; SMTP: the 235 line. */
  loginReply: string;
}

/** What a protocol's login gets: an open line connection (TLS already up when implicit). */
export interface LoginContext {
  conn: LineConnection;
  target: UpstreamTarget;
  user: string;
  token: string;
  /** "IMAP server host:port", for messages. */
  where: string;
  /** What must never appear in a message or a reply: the token and the SASL response. */
  secrets: string[];
}

export interface LoginResult {
  greeting: string;
  capabilities: string[];
  loginReply: string;
}

const LABELS: Record<UpstreamProtocol, string> = { imap: 'IMAP', pop: 'POP3', smtp: 'SMTP' };

function hostPort(endpoint: MailEndpoint): string {
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/** resolveHost has no deadline of its own. */
async function resolveWithin(host: string, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamError('timeout', `${host} did not resolve within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([resolveHost(host), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function open(target: UpstreamTarget, where: string): Promise<LineConnection> {
  const { host, port, security } = target.endpoint;
  let addresses: string[];
  try {
    addresses = await resolveWithin(host, target.timeoutMs);
  } catch (err) {
    if (err instanceof UpstreamError) throw new UpstreamError(err.code, `${where}: ${err.message}`);
    throw upstreamFailure(err, where, 'the address');
  }
  if (security !== 'implicit') {
    const { socket } = await connectTcp(addresses, port, target.timeoutMs).catch((err: unknown) => {
      throw upstreamFailure(err, where, 'the connection');
    });
    return new LineConnection(socket, target.timeoutMs);
  }
  // The relay then moves the server's bytes through a few reused buffers (net/reusable-reads.ts).
  const secure = await connectTls(addresses, port, host, target.caPem, target.timeoutMs, new ReusableReads()).catch((err: unknown) => {
    throw upstreamFailure(err, where, 'the connection');
  });
  return new LineConnection(secure.socket, target.timeoutMs);
}

/** What a SASL user or token must not contain: it would break the XOAUTH2 string or the line. */
const UNSAFE = /[\x00-\x20\x7f]/;

function checkArguments(protocol: UpstreamProtocol, target: UpstreamTarget): void {
  if (!(protocol in LABELS)) throw new TypeError(`loginUpstream: protocol must be 'imap', 'pop' or 'smtp', not ${JSON.stringify(protocol)}`);
  const { endpoint } = target;
  if (typeof endpoint?.host !== 'string' || endpoint.host === '' || !Number.isInteger(endpoint.port) || endpoint.port < 1 || endpoint.port > 65535) {
    throw new TypeError('loginUpstream: target.endpoint needs a host and a port 1-65535');
  }
  if (endpoint.security !== 'implicit' && endpoint.security !== 'starttls')
    throw new TypeError("loginUpstream: target.endpoint.security must be 'implicit' or 'starttls'");
  if (!Number.isSafeInteger(target.timeoutMs) || target.timeoutMs <= 0) throw new TypeError('loginUpstream: target.timeoutMs must be a positive integer');
  if (target.ehloName !== undefined && !/^(\[[0-9A-Fa-f:.IPv]+\]|[A-Za-z0-9][A-Za-z0-9.-]*)$/.test(target.ehloName)) {
    throw new TypeError(`loginUpstream: target.ehloName is not a host name or address literal: ${JSON.stringify(target.ehloName)}`);
  }
}

/** The user comes from a legacy client's login, the token from the store: checked before anything is sent. */
function checkCredentials(where: string, user: string, token: string): void {
  if (user === '' || UNSAFE.test(user))
    throw new UpstreamError('protocol', `${where}: not attempted: the user name is empty or holds spaces or control characters: ${JSON.stringify(user)}`);
  if (token === '' || UNSAFE.test(token))
    throw new UpstreamError('protocol', `${where}: not attempted: the access token is empty or holds spaces or control characters`);
}

/**
 * Connects to `target`, logs `user` in with XOAUTH2 and `accessToken`, and hands back the
 * logged-in socket. Rejects with an UpstreamError; a TypeError only for a malformed target or protocol
 * (a programming error, not something a server or a client did).
 */
export async function loginUpstream(protocol: UpstreamProtocol, target: UpstreamTarget, user: string, accessToken: string): Promise<UpstreamSession> {
  checkArguments(protocol, target);
  const where = `${LABELS[protocol]} server ${hostPort(target.endpoint)}`;
  checkCredentials(where, user, accessToken);
  if (protocol === 'pop') return pop3Login(target, user, accessToken, where);

  const conn = await open(target, where);
  const ctx: LoginContext = { conn, target, user, token: accessToken, where, secrets: [accessToken, encodeXoauth2(user, accessToken)] };
  try {
    const result = protocol === 'imap' ? await imapLogin(ctx) : await smtpLogin(ctx);
    const { socket, leftover } = conn.detach();
    return { socket, leftover, ...result };
  } catch (err) {
    conn.close();
    throw upstreamFailure(err, where, 'the login');
  }
}
