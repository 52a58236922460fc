// The one error type of the POP3 client: a code saying what kind of thing went wrong, a message
// naming the command and what was wrong with the reply, and the server's own line when there was
// one. Tokens never appear in either.
import { MailbridgeError, type MailbridgeErrorOptions } from '../errors.ts';

export type Pop3ErrorCode =
  /** TCP connection refused, host unknown, unreachable. */
  | 'unreachable'
  /** TLS handshake failed (certificate, protocol), or STLS not offered or refused. */
  | 'tls'
  /** The server said nothing for `timeoutMs` while a reply was awaited. */
  | 'timeout'
  /** The connection closed (or was closed) before the reply was complete. */
  | 'closed'
  /** The server broke the protocol: a reply that is neither +OK nor -ERR, bad dot-stuffing... */
  | 'protocol'
  /** A reply line longer than `maxLineBytes`. */
  | 'line_too_long'
  /** The server answered -ERR to a command (the connection stays usable). */
  | 'server'
  /** The server refused the login (the connection stays usable). */
  | 'auth_rejected';

export interface Pop3ErrorOptions extends MailbridgeErrorOptions {
  /** The server's line, as sent. */
  reply?: string;
  /** For 'auth_rejected': the server's decoded SASL error challenge (e.g. Dovecot's `{"status":"401",...}`). */
  challenge?: string;
}

export class Pop3Error extends MailbridgeError<Pop3ErrorCode> {
  /** The server's line, as sent (for 'server' and 'auth_rejected' the -ERR line). */
  declare readonly reply?: string;
  /** For 'auth_rejected' after a SASL error challenge: the challenge, decoded from base64. */
  declare readonly challenge?: string;

  constructor(code: Pop3ErrorCode, message: string, options: Pop3ErrorOptions = {}) {
    super(code, message, options);
    this.name = 'Pop3Error';
    if (options.reply !== undefined) this.reply = options.reply;
    if (options.challenge !== undefined) this.challenge = options.challenge;
  }

  /** Whether the connection is gone after this error (everything but an -ERR answer). */
  get fatal(): boolean {
    return this.code !== 'server' && this.code !== 'auth_rejected';
  }
}

/** A server line made safe to quote in a message: control bytes escaped, long lines cut. */
export function quote(line: string, max = 200): string {
  const cut = line.length > max ? `${line.slice(0, max)}...` : line;
  return JSON.stringify(cut);
}
