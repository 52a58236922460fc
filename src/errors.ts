// The one error family of mailbridge (model: jose's JOSEError): every failure mailbridge reports on
// purpose is a MailbridgeError with a stable `code` that programs can act on, while the message is
// for people and may be reworded. The same failure has the same code whatever part reports it: a
// POP3 server that does not answer in time is 'timeout', as is an IMAP or SMTP one. The command
// line turns codes into exit codes in one place (src/cli/exit-codes.ts, documented in docs/cli.md).

/**
 * Every code a MailbridgeError can carry. Each error class uses a subset (its own `code` type);
 * the meaning of a code is the same in every class.
 */
export type ErrorCode =
  // The network and the peer: worth trying again later (exit 4).
  /** No answer within the time allowed: connecting, the TLS handshake, a reply. */
  | 'timeout'
  /** Nothing to talk to: the host does not resolve, nothing listens, the connection is refused or drops before a session starts. */
  | 'unreachable'
  /** The peer closed the connection (or turned it away) in the middle of a conversation. */
  | 'closed'
  /** TLS failed: the certificate is not trusted or names another host, the handshake failed, STARTTLS/STLS missing or refused. */
  | 'tls'
  /** The service says it is unavailable for now (IMAP `[UNAVAILABLE]`, the identity platform down, a refresh held elsewhere). */
  | 'unavailable'
  /** The service asked to slow down. */
  | 'throttled'
  // What a server said no to (exit 1).
  /** The server refused the access token, also a freshly refreshed one: a permission, licence or protocol setting is missing. */
  | 'auth_rejected'
  /** The server refuses this way of logging in altogether (Exchange: SMTP AUTH disabled). */
  | 'auth_disabled'
  /** The login succeeded but the mailbox cannot be opened (Exchange: "authenticated but not connected"). */
  | 'not_connected'
  /** The server answered a command with a refusal (POP3 -ERR). */
  | 'server'
  /** The server refused the sender, a recipient or the message (SMTP). */
  | 'rejected'
  // The peer broke the protocol (exit 1).
  /** A reply or command that the protocol does not allow. */
  | 'protocol'
  /** A line longer than the bound. */
  | 'line_too_long'
  /** An IMAP literal larger than the bound, or too many of them in one response. */
  | 'literal_too_large'
  // Identity (exit 5 or 3).
  /** The mailbox's grant needs someone to sign in (again): `mailbridge login`. */
  | 'needs_sign_in'
  /** The mailbox or app is not in the configuration. */
  | 'not_configured'
  /** The configuration cannot work as it is (no credential for the grant, the identity platform refuses the app's settings). */
  | 'broken_configuration'
  // Configuration and command line (exit 3 or 2).
  /** The configuration file (or an emulator scenario) is missing or invalid; the message names the field. */
  | 'config_invalid'
  /** A file that would be written exists already (nothing was written). */
  | 'exists'
  /** The command line or the answers given cannot work. */
  | 'usage'
  /** The person stopped the command. */
  | 'cancelled'
  // Stores (exit 6, except the two a person can fix by choosing another name: exit 1).
  /** The store's records were written with another key. */
  | 'cannot_decrypt'
  /** The key file cannot be read or is not a key. */
  | 'key_unreadable'
  /** A record is damaged. */
  | 'corrupt_record'
  /** The store cannot be opened or used (a locked or read-only database). */
  | 'store_unavailable'
  /** The name is taken already (a proxy client). */
  | 'name_taken'
  /** A generated id collided (retried; reported only when that keeps happening). */
  | 'id_taken'
  /** A record that would be written is not valid (an empty mailbox list, a bad name). */
  | 'invalid_record'
  // Misuse of the transport seam (exit 1; src/transport/errors.ts says more).
  /** A message id this source never listed. */
  | 'unknown_message'
  /** A message id from before the folder's UIDVALIDITY changed. */
  | 'stale_message'
  /** The protocol cannot do this (POP3 can neither flag nor move). */
  | 'unsupported'
  /** The checkpoint belongs to another protocol or folder. */
  | 'checkpoint_mismatch'
  /** The server did not carry out a delete, flag or move. */
  | 'not_done';

export interface MailbridgeErrorOptions {
  /** The lower-level failure this one explains (kept as the standard `cause`). */
  cause?: unknown;
}

export class MailbridgeError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options: MailbridgeErrorOptions = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'MailbridgeError';
    this.code = code;
  }
}

/** Whether `err` is one of mailbridge's own errors (and so has a stable code and a message fit to show). */
export function isMailbridgeError(err: unknown): err is MailbridgeError {
  return err instanceof MailbridgeError;
}
