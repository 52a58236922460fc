// The one error of the proxy's upstream login: a code the caller acts on ('auth_rejected': refresh the
// token and try once more; anything else: tell the client the server is unavailable), a message
// naming host:port and what happened, and the server's own words when there were some. Tokens
// never appear in either: server lines are redacted before they are kept.
import { MailbridgeError, type MailbridgeErrorOptions } from '../../errors.ts';
import { ConnectionError, NetFailure } from '../../net/connection.ts';
import { redact } from '../../pop3/sasl.ts';

export type UpstreamErrorCode =
  /** DNS, TCP: nothing to talk to. */
  | 'unreachable'
  /** The TLS handshake or certificate failed, or STARTTLS/STLS was missing or refused. */
  | 'tls'
  /** The server refused the token (the caller refreshes it and tries once more). */
  | 'auth_rejected'
  /** The server accepted the token but cannot open the mailbox (IMAP: "User is authenticated but not connected"). */
  | 'not_connected'
  /** The server said something a login does not allow (or refused something else than the token). */
  | 'protocol'
  /** No answer within timeoutMs (connect, handshake or a reply). */
  | 'timeout'
  /** The server closed the connection, or refused the connection itself (BYE, -ERR, 421 greeting). */
  | 'closed';

export interface UpstreamErrorOptions extends MailbridgeErrorOptions {
  /** The server's words (already redacted). */
  reply?: string;
}

export class UpstreamError extends MailbridgeError<UpstreamErrorCode> {
  /** The server's words, never a token. */
  declare readonly reply?: string;

  constructor(code: UpstreamErrorCode, message: string, options: UpstreamErrorOptions = {}) {
    super(code, message, options);
    this.name = 'UpstreamError';
    if (options.reply !== undefined) this.reply = options.reply;
  }
}

/** A server line made safe to keep: secrets removed, control bytes escaped, long lines cut. */
export function serverWords(line: string, secrets: string[], max = 300): string {
  const clean = redact(line, secrets).replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

/** A plain-text client gets silence from a port that expects TLS at once: say so on a greeting timeout. */
export function greetingHint(err: unknown, security: 'implicit' | 'starttls'): unknown {
  if (!(err instanceof UpstreamError) || err.code !== 'timeout' || security !== 'starttls') return err;
  return new UpstreamError('timeout', `${err.message} (a port that expects TLS at once stays silent to a plain-text client: use implicit there)`, {
    cause: err.cause,
  });
}

/** OpenSSL's words made readable; a plain-text answer to our ClientHello says what to fix. */
export function tlsWords(text: string): string {
  if (/wrong version number|packet length too long|http request/i.test(text)) {
    return 'the server does not answer in TLS (a plain-text port configured as implicit TLS? use starttls there)';
  }
  return text
    .replace(/[0-9A-F]{8,}:error:[0-9A-F]+:/g, '')
    .replace(/:\.\.\/deps\/openssl\S*/g, '')
    .trim();
}

/**
 * A failure of the network layer as an UpstreamError. `where` names the server ("IMAP server
 * host:port"), `waiting` what was awaited ("the greeting"), `lastWords` the server's last line
 * that explains a close (an IMAP `* BYE`).
 */
export function upstreamFailure(err: unknown, where: string, waiting: string, lastWords?: string): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const reply = lastWords !== undefined ? { reply: lastWords } : {};
  if (err instanceof NetFailure) {
    if (err.code === 'timeout') return new UpstreamError('timeout', `${where}: ${err.message}`, { cause: err });
    if (err.stage === 'tls') return new UpstreamError('tls', `${where}: TLS failed: ${tlsWords(err.message)}`, { cause: err });
    return new UpstreamError('unreachable', `${where}: cannot connect: ${err.message}`, { cause: err });
  }
  if (err instanceof ConnectionError) {
    switch (err.code) {
      case 'timeout':
        return new UpstreamError('timeout', `${where}: no answer while waiting for ${waiting}: ${err.message}`, { ...reply, cause: err });
      case 'line_too_long':
      case 'literal_too_large':
        return new UpstreamError('protocol', `${where}: ${err.message} while sending ${waiting}`, { ...reply, cause: err });
      case 'closed':
        return new UpstreamError(
          'closed',
          `${where}: ${err.message} while waiting for ${waiting}${lastWords !== undefined ? ` (its last words: ${lastWords})` : ''}`,
          { ...reply, cause: err },
        );
    }
  }
  return new UpstreamError('protocol', `${where}: ${waiting} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
