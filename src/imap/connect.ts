// IMAP through imapflow, fed by the token provider: every connect takes a fresh token (protocol
// 'imap'), TLS as the cloud's endpoint says (implicit or STARTTLS, certificates always verified,
// the cloud's caFile trusted besides the system's CAs), `auth: { user, accessToken }` (imapflow
// picks OAUTHBEARER when the server offers it, else XOAUTH2). When the server refuses the token,
// the provider is told (invalidate) and one more login is tried with a new token; then the
// failure becomes an ImapError carrying the server's reply text, never the token.
import type { ConnectionOptions } from 'node:tls';
import { ImapFlow, type Logger } from 'imapflow';
import { decodeJwt } from 'jose';
import type { MailEndpoint } from '../config/clouds.ts';
import { MailbridgeError } from '../errors.ts';
import { mailTlsOptions, scrub } from '../net/mail-tls.ts';
import type { LoadedConfig } from '../config/load.ts';
import { resolveGrant } from '../identity/grants.ts';
import type { TokenProvider } from '../identity/token-provider.ts';

export interface ImapContext {
  loaded: LoadedConfig;
  provider: TokenProvider;
}

export interface OpenImapOptions {
  /** imapflow's logger; off unless given (imapflow's default writes to stdout). */
  logger?: Logger | false;
  /** Limit for each step of opening: the TCP/TLS connect, the greeting, then the login (default 30 s each). */
  timeoutMs?: number;
  /**
   * How long the server may stay silent while a command waits for its answer (SELECT, SEARCH,
   * FETCH, ...) before it is given up as a timeout naming the command (default 60 s; imapflow's
   * socketTimeout).
   */
  commandTimeoutMs?: number;
  /** Pause before the second login after a refused token (default 250 ms). */
  retryPauseMs?: number;
  /** Passed to imapflow: how long after the last command IDLE starts (default imapflow's 15 s). */
  autoIdleDelayMs?: number;
  /** Passed to imapflow: IDLE is broken and restarted this often (default: never). */
  maxIdleTimeMs?: number;
}

export type ImapErrorCode =
  /** The server refused the token, also the fresh one after invalidate. */
  | 'auth_rejected'
  /** Exchange: the login succeeded, the mailbox cannot be opened ("authenticated but not connected"). */
  | 'not_connected'
  /** The server asked to slow down (Exchange: "Request is throttled. Suggested Backoff Time: N milliseconds"). */
  | 'throttled'
  /** The server is (for now) unavailable: "Server Unavailable", `[UNAVAILABLE]`. */
  | 'unavailable'
  /** TLS failed: an untrusted or mismatched certificate, STARTTLS refused. */
  | 'tls'
  /** No TCP connection, or it closed before the login finished. */
  | 'unreachable'
  | 'timeout'
  /** Anything else the server or imapflow said. */
  | 'protocol';

export class ImapError extends MailbridgeError<ImapErrorCode> {
  readonly mailbox: string;
  readonly host: string;
  readonly port: number;
  /** The server's reply text, when there was one (e.g. `AUTHENTICATE failed.`). */
  readonly response?: string;
  /** From Exchange's throttling reply. */
  readonly backoffMs?: number;
  constructor(
    code: ImapErrorCode,
    mailbox: string,
    endpoint: MailEndpoint,
    message: string,
    extra: { response?: string; backoffMs?: number; cause?: unknown } = {},
  ) {
    super(code, message, extra.cause === undefined ? {} : { cause: extra.cause });
    this.name = 'ImapError';
    this.mailbox = mailbox;
    this.host = endpoint.host;
    this.port = endpoint.port;
    if (extra.response !== undefined) this.response = extra.response;
    if (extra.backoffMs !== undefined) this.backoffMs = extra.backoffMs;
  }
}

/** Expiry (ms since the epoch) of a JWT access token from its `exp` claim; undefined for opaque tokens. */
export function tokenExpiry(token: string): number | undefined {
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ImapFlowFailure {
  code?: string;
  message?: string;
  response?: unknown;
  responseText?: unknown;
  authenticationFailed?: boolean;
  tlsFailed?: boolean;
  serverResponseCode?: string;
}

/** The step of opening a session that each of imapflow's (and attempt()'s) timeout codes stands for. */
const TIMEOUT_STEPS: Record<string, string> = {
  CONNECT_TIMEOUT: 'the connection (TCP and TLS)',
  ETIMEDOUT: 'the connection (TCP and TLS)',
  GREETING_TIMEOUT: 'the greeting',
  UPGRADE_TIMEOUT: 'STARTTLS',
  // imapflow's socketTimeout during the login's commands, and attempt()'s deadline for the login.
  ETIMEOUT: 'the login (CAPABILITY, AUTHENTICATE)',
  LOGIN_TIMEOUT: 'the login (CAPABILITY, AUTHENTICATE)',
};

/** How long a command's answer may stay out by default. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;

/** Seconds as people write them: 0.4 s, 30 s. */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'NoConnection',
  'EConnectionClosed',
  'ClosedAfterConnectText',
  'ClosedAfterConnectTLS',
]);

/** The failure of one login attempt, named; `tokenRefused` says whether a new token might help. */
function classify(
  err: unknown,
  mailbox: string,
  endpoint: MailEndpoint,
  token: string,
  timeoutMs: number,
  commandTimeoutMs: number,
): { error: ImapError; tokenRefused: boolean } {
  if (err instanceof ImapError) return { error: err, tokenRefused: false };
  const e = (err ?? {}) as ImapFlowFailure;
  const where = `${endpoint.host}:${endpoint.port}`;
  const responseText = typeof e.response === 'string' ? e.response : typeof e.responseText === 'string' ? e.responseText : undefined;
  // imapflow hands over the whole tagged line ("3 NO AUTHENTICATE failed."): drop the tag.
  const response = responseText === undefined ? undefined : scrub(responseText.replace(/^[A-Za-z0-9.]+ (?=(?:OK|NO|BAD)\b)/, ''), [token]);
  const detail = scrub(e.message ?? String(err), [token]);
  const make = (code: ImapErrorCode, message: string, extra: { backoffMs?: number } = {}) =>
    new ImapError(code, mailbox, endpoint, `${mailbox}: ${message}`, { ...(response !== undefined ? { response } : {}), ...extra, cause: err });
  const throttle = response !== undefined ? /throttled\.?\s*Suggested Backoff Time:\s*(\d+)/i.exec(response) : null;
  if (throttle || e.code === 'ETHROTTLE') {
    const backoffMs = throttle ? Number(throttle[1]) : undefined;
    return {
      error: make(
        'throttled',
        `${where} throttles this mailbox${backoffMs !== undefined ? `; try again in ${backoffMs} ms` : ''} (${response ?? detail})`,
        backoffMs !== undefined ? { backoffMs } : {},
      ),
      tokenRefused: false,
    };
  }
  if (response !== undefined && /authenticated but not connected/i.test(response)) {
    return {
      error: make(
        'not_connected',
        `${where} accepted the token but cannot open the mailbox ("${response}"): the mailbox may lack a license, IMAP may be disabled for it, or the token's user has no access to it`,
      ),
      tokenRefused: false,
    };
  }
  if (response !== undefined && /Server Unavailable|\[UNAVAILABLE\]|temporary/i.test(response)) {
    return { error: make('unavailable', `${where} is unavailable for now ("${response}")`), tokenRefused: false };
  }
  if (e.authenticationFailed) {
    return { error: make('auth_rejected', `${where} refused the access token${response ? ` ("${response}")` : ''}`), tokenRefused: true };
  }
  if (e.tlsFailed || /CERT|SIGNATURE|SSL|TLS|ALTNAME/.test(e.code ?? '')) {
    return { error: make('tls', `TLS with ${where} failed: ${detail}`), tokenRefused: false };
  }
  const step = TIMEOUT_STEPS[e.code ?? ''];
  if (step) {
    // The login's deadline is three steps' worth (connect, greeting, login); a silent command gets commandTimeoutMs.
    const waited =
      e.code === 'LOGIN_TIMEOUT'
        ? 3 * timeoutMs
        : e.code === 'ETIMEOUT'
          ? commandTimeoutMs
          : e.code === 'GREETING_TIMEOUT'
            ? Math.min(timeoutMs, commandTimeoutMs)
            : timeoutMs;
    return { error: make('timeout', `${where} did not answer ${step} within ${seconds(waited)}`), tokenRefused: false };
  }
  if (CONNECTION_CODES.has(e.code ?? '')) return { error: make('unreachable', `cannot talk to ${where}: ${detail}`), tokenRefused: false };
  return {
    error: make('protocol', `IMAP with ${where} failed: ${detail}${response && !detail.includes(response) ? ` ("${response}")` : ''}`),
    tokenRefused: false,
  };
}

/** One connect and login with `token`; the client is closed again when anything fails. */
async function attempt(address: string, endpoint: MailEndpoint, tls: ConnectionOptions, token: string, options: OpenImapOptions): Promise<ImapFlow> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const client = new ImapFlow({
    host: endpoint.host,
    port: endpoint.port,
    secure: endpoint.security === 'implicit',
    ...(endpoint.security === 'starttls' ? { doSTARTTLS: true } : {}),
    ...(tls.servername ? { servername: tls.servername } : {}),
    tls,
    auth: { user: address, accessToken: token },
    logger: options.logger ?? false,
    clientInfo: { name: 'mailbridge' },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    // A command whose answer stays out this long fails with ETIMEOUT (source.ts names the command).
    socketTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    ...(options.autoIdleDelayMs !== undefined ? { autoIdleDelay: options.autoIdleDelayMs } : {}),
    ...(options.maxIdleTimeMs !== undefined ? { maxIdleTime: options.maxIdleTimeMs } : {}),
  });
  // Socket trouble after the login also ends in 'close' and in rejected commands; without a
  // listener an 'error' event would end the process. Callers may add their own.
  client.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  try {
    // The connect and the greeting have imapflow's own timers; this one bounds the login after them.
    const deadlineMs = 3 * timeoutMs;
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`no login within ${deadlineMs} ms`), { code: 'LOGIN_TIMEOUT' })), deadlineMs);
      }),
    ]);
    return client;
  } catch (err) {
    client.close();
    // imapflow's socketTimeout can fire before its greeting timer: a silence before the greeting is the greeting's.
    const greeted = (client as unknown as { greeting?: unknown }).greeting !== undefined;
    if ((err as { code?: unknown } | undefined)?.code === 'ETIMEOUT' && !greeted)
      throw Object.assign(new Error('no greeting'), { code: 'GREETING_TIMEOUT', cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

export interface ImapSession {
  client: ImapFlow;
  /** When the token this session logged in with expires (JWT `exp`), undefined for an opaque token. */
  tokenExpiresAt: number | undefined;
}

/**
 * openImap, also saying when the token it logged in with expires (for code that has to
 * reconnect before then, like ImapWatcher). The token itself never leaves this module.
 */
export async function connectImap(ctx: ImapContext, mailbox: string, options: OpenImapOptions = {}): Promise<ImapSession> {
  const grant = resolveGrant(ctx.loaded, mailbox);
  const endpoint = grant.cloud.imap;
  const tls = await mailTlsOptions(endpoint, grant.cloud.caFile);
  let token = await ctx.provider.getAccessToken(grant.address, 'imap');
  try {
    return { client: await attempt(grant.address, endpoint, tls, token, options), tokenExpiresAt: tokenExpiry(token) };
  } catch (err) {
    const first = classify(err, grant.address, endpoint, token, options.timeoutMs ?? 30_000, options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    if (!first.tokenRefused) throw first.error;
  }
  // Refused: the token may have been revoked or expired early. One refresh and one more try.
  ctx.provider.invalidate(grant.address, 'imap', token);
  await sleep(options.retryPauseMs ?? 250);
  token = await ctx.provider.getAccessToken(grant.address, 'imap');
  try {
    return { client: await attempt(grant.address, endpoint, tls, token, options), tokenExpiresAt: tokenExpiry(token) };
  } catch (err) {
    const second = classify(err, grant.address, endpoint, token, options.timeoutMs ?? 30_000, options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    if (second.tokenRefused) {
      throw new ImapError(
        'auth_rejected',
        grant.address,
        endpoint,
        `${second.error.message}, also a freshly refreshed one: check the grant's scopes or roles, the mailbox permission and that IMAP is enabled for the mailbox (\`mailbridge verify ${grant.address}\` names the cause)`,
        {
          ...(second.error.response !== undefined ? { response: second.error.response } : {}),
          cause: err,
        },
      );
    }
    throw second.error;
  }
}

/**
 * A logged-in imapflow client for the mailbox (nothing selected yet). Errors: TokenError from
 * the provider, ImapError for everything on the wire. The caller logs out (or closes) it.
 */
export async function openImap(ctx: ImapContext, mailbox: string, options: OpenImapOptions = {}): Promise<ImapFlow> {
  return (await connectImap(ctx, mailbox, options)).client;
}
