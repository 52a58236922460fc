// Misuse of the transport seam itself, as opposed to what a server or the network did (those stay
// Pop3Error, ImapError, SmtpError): an id this source never listed, an IMAP id from before a
// UIDVALIDITY change, an action the protocol cannot do, a checkpoint from another source.
import { MailbridgeError, type MailbridgeErrorOptions } from '../errors.ts';

export type TransportErrorCode =
  /** The id was not in this source's latest listing (POP3 numbers messages per session). */
  | 'unknown_message'
  /** The id carries a UIDVALIDITY the folder no longer has: its UID may now name another message. */
  | 'stale_message'
  /** The source cannot do this (POP3 can neither flag nor move). */
  | 'unsupported'
  /** The checkpoint belongs to another protocol or folder. */
  | 'checkpoint_mismatch'
  /** The server did not carry out a markDone (imapflow reports a refused STORE, MOVE or EXPUNGE only as "false"). */
  | 'not_done';

export class TransportError extends MailbridgeError<TransportErrorCode> {
  constructor(code: TransportErrorCode, message: string, options: MailbridgeErrorOptions = {}) {
    super(code, message, options);
    this.name = 'TransportError';
  }
}
