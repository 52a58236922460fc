// The transport seam: what the rest of mailbridge (fetch, send, and later the ingestion service)
// needs from a mail protocol, said without naming one. POP3 and IMAP implement MailSource, SMTP
// implements MailSender; Microsoft Graph will implement both. Protocol differences that matter to
// a caller (POP3 has no order, IMAP's UIDs can be renumbered, POP3 applies deletions at the end
// of its session) are stated in the types rather than hidden, so a caller cannot rely on a
// guarantee one transport does not give.
import type { Readable } from 'node:stream';
import type { LoadedConfig } from '../config/load.ts';
import type { TokenProvider } from '../identity/token-provider.ts';

/** What opening a transport needs: the configuration and the token provider (the shape openImap and sendMessage take). */
export interface MailContext {
  loaded: LoadedConfig;
  provider: TokenProvider;
}

export type SourceProtocol = 'pop' | 'imap';

/**
 * Where a previous listing ended, as the source returned it; persist it as JSON and pass it back.
 * Only sources whose messages have an order hand one out: POP3 has none (a maildrop is an
 * unordered set), so a POP3 caller says what it already has with `known` instead. Graph will add
 * its own kind (a delta link), which is why this is a union keyed by `kind`.
 */
export type Checkpoint = ImapCheckpoint;

export interface ImapCheckpoint {
  kind: 'imap';
  /** The folder the UIDs belong to. */
  folder: string;
  /** The folder's UIDVALIDITY (a decimal string: it is a 32-bit number and survives JSON). UIDs mean nothing under another one. */
  uidValidity: string;
  /** The highest UID already listed; 0 when none. */
  lastUid: number;
}

/** The ids a caller already has: a set, or a question (e.g. "is there a file for it?"). */
export type KnownIds = ReadonlySet<string> | ((id: string) => boolean);

export interface ListNewOptions {
  /** A checkpoint from an earlier listNew of the same source; without one, every message there is new. */
  since?: Checkpoint;
  /** Ids the caller already has; they are left out. POP3 relies on this alone to tell what is new. */
  known?: KnownIds;
}

export interface MessageRef {
  /**
   * Stable for as long as the message stays where it is in this source: POP3's UIDL;
   * IMAP `${uidValidity}:${uid}` (unique within `folder`). A UIDVALIDITY change gives every IMAP
   * message a new id, and listNew says so with `reset`.
   */
  id: string;
  /** The folder the message is in (IMAP; POP3 only ever sees the inbox and leaves this out). */
  folder?: string;
}

export interface NewMessages {
  /** The new messages, oldest first where the source knows an order (IMAP: by UID), else in the server's order. */
  messages: MessageRef[];
  /** Pass this to the next listNew (absent for sources without order: POP3). */
  checkpoint?: Checkpoint;
  /**
   * The checkpoint given no longer applies: the IMAP folder's UIDVALIDITY changed (it was
   * recreated or renumbered), so its old UIDs name nothing or other messages. Everything in the
   * folder is listed as new, under new ids; what the caller stored under the old ids may be there
   * again (match on Message-ID to find duplicates).
   */
  reset: boolean;
}

/** What to do with a message once the caller has it safely. */
export type DoneAction =
  /** Remove it from the server. */
  | { kind: 'delete' }
  /** Set a flag (IMAP, e.g. `\\Seen`, `\\Flagged`; a keyword such as `$Archived` only where the folder allows keywords: Exchange does not), leaving the message where it is. */
  | { kind: 'flag'; flag: string }
  /** Move it into another folder (IMAP). Its id in this source is then gone. */
  | { kind: 'move'; folder: string };

export interface WatchOptions {
  /** Watching ends when this is aborted; watch() then resolves. */
  signal: AbortSignal;
  /**
   * Called when there may be new messages: call listNew (with the last checkpoint or known ids)
   * to find out which. A wake-up rather than a list, so that listNew stays the one place that
   * decides what is new (nothing reported twice, nothing lost between two sessions), and because
   * a POP3 session can only read what was there when it started. It may be called more than
   * once for one arrival.
   */
  onNewMail: () => void;
  /**
   * Called once the watch knows what is there already: mail arriving from then on wakes it.
   * (Mail that came before is what listNew is for.)
   */
  onReady?: () => void;
  /** Failures the watch recovers from (a dropped connection, a failed poll); it goes on. */
  onError?: (err: Error) => void;
}

/**
 * One mailbox folder to read mail from. One caller at a time: operations run in call order, and
 * a stream from read() must be consumed (or destroyed) before the next operation is answered.
 * Errors are the protocol's own (Pop3Error, ImapError), TokenError from the provider, and
 * TransportError (src/transport/errors.ts) for misuse of the seam itself.
 */
export interface MailSource {
  readonly protocol: SourceProtocol;
  /** The mailbox address, as the configuration spells it. */
  readonly mailbox: string;
  /** What markDone can do here: POP3 can only delete. */
  readonly doneActions: readonly DoneAction['kind'][];

  /** The messages there now that are newer than `since` and not in `known`. */
  listNew(options?: ListNewOptions): Promise<NewMessages>;

  /** The message's raw bytes, exactly as the server stores them. */
  read(id: string): Promise<Readable>;

  /**
   * read() for each id in turn, handing each stream to `onMessage`, which must consume it before
   * its promise settles. A source may ask for several messages at once (POP3 pipelines RETR), so
   * this is faster than a loop of read().
   */
  readEach(ids: readonly string[], onMessage: (id: string, message: Readable) => Promise<void>): Promise<void>;

  /**
   * Finishes with messages. Ids are those of the latest listNew (a stale IMAP id, from before a
   * UIDVALIDITY change, is refused rather than applied to whatever holds its UID now). Deletions
   * are final once close() has resolved: POP3 applies them only at the end of its session, so a
   * connection lost before then keeps the messages and they are listed again (callers must
   * expect to see a message twice).
   */
  markDone(ids: readonly string[], action: DoneAction): Promise<void>;

  /**
   * Watches for new mail until `options.signal` aborts (IMAP: IDLE on its own connection;
   * POP3: a poll on a fresh connection every interval). Resolves when aborted; rejects when the
   * watch cannot start or can no longer go on (e.g. the grant needs a sign-in).
   */
  watch(options: WatchOptions): Promise<void>;

  /** Ends the session (POP3: QUIT, which applies the deletions). */
  close(): Promise<void>;
}

export interface SendEnvelope {
  /** Every recipient (To, Cc and Bcc): the message's headers are not read for them. */
  to: readonly string[];
  /** The envelope sender; default the mailbox's address. */
  from?: string;
}

export interface SendResult {
  /**
   * The Message-ID the message was stored under, with its angle brackets (`<id@host>`): the
   * message's own header, or the one the sender added before sending when it had none (servers
   * such as Exchange would otherwise invent one we could not know).
   */
  messageId: string;
  /** Recipients the server took. */
  accepted: string[];
  /** Recipients the server refused (the message went to the others). */
  rejected: string[];
}

/** Sends mail as one mailbox. */
export interface MailSender {
  /** The mailbox address, as the configuration spells it. */
  readonly mailbox: string;
  /** Sends a complete RFC 5322 message as it is (apart from an added Message-ID when it has none). */
  send(raw: Buffer | string, envelope: SendEnvelope): Promise<SendResult>;
}
