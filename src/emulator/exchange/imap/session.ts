// One IMAP connection: its state, the mailbox it logged in to, the folder it has selected (with
// the sequence-number view the client knows), the changes other sessions made that the client
// has not been told about yet, and buffered output that is written in large chunks and waits
// while the peer is slow to read.
import type { LineSession } from '../../../net/line-server.ts';
import type { ExchangeContext } from '../context.ts';
import type { FolderData, MailboxChange, MailboxData, MessageMeta } from '../mail-store.ts';
import type { Mailbox } from '../../scenario/schema.ts';
import { flagList } from './format.ts';
import { IMAP } from './replies.ts';
import { indexOfSorted } from './sequence.ts';

export type ImapState = 'nonauth' | 'auth' | 'selected' | 'not_connected';

/** Output collected before a write: strings are latin1 bytes. */
const FLUSH_AT = 256 * 1024;

export class Output {
  readonly #session: LineSession;
  #parts: Buffer[] = [];
  #text = '';
  #size = 0;

  constructor(session: LineSession) {
    this.#session = session;
  }

  get size(): number {
    return this.#size;
  }

  push(data: string | Buffer): void {
    if (typeof data === 'string') {
      this.#text += data;
    } else {
      if (this.#text) {
        this.#parts.push(Buffer.from(this.#text, 'latin1'));
        this.#text = '';
      }
      this.#parts.push(data);
    }
    this.#size += data.length;
  }

  line(text: string): void {
    this.push(`${text}\r\n`);
  }

  /** Writes when enough has collected; call between messages of a long answer. */
  async maybeFlush(): Promise<void> {
    if (this.#size >= FLUSH_AT) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#text) {
      this.#parts.push(Buffer.from(this.#text, 'latin1'));
      this.#text = '';
    }
    const parts = this.#parts;
    this.#parts = [];
    this.#size = 0;
    if (parts.length === 0 || this.#session.closed) return;
    const socket = this.#session.socket;
    socket.cork();
    for (const p of parts) socket.write(p);
    socket.uncork();
    if (!socket.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.once('drain', done);
      socket.once('close', done);
    });
  }
}

/** Index of the message with `uid` in a folder's (UID-ordered) list, or -1. */
export function metaIndex(messages: readonly MessageMeta[], uid: number): number {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (messages[mid]!.uid < uid) lo = mid + 1;
    else hi = mid;
  }
  return lo < messages.length && messages[lo]!.uid === uid ? lo : -1;
}

export function findMeta(folder: FolderData, uid: number): MessageMeta | undefined {
  const i = metaIndex(folder.messages, uid);
  return i >= 0 ? folder.messages[i] : undefined;
}

/** The selected folder as this client sees it. */
export class SelectedView {
  readonly folder: FolderData;
  readonly readOnly: boolean;
  /** Sequence number n is `uids[n - 1]`; ascending. */
  uids: number[];
  /** UIDs at or above this arrived after the SELECT (the session's \Recent). */
  readonly recentFrom: number;
  newUids: number[] = [];
  readonly gone = new Set<number>();
  readonly flagged = new Set<number>();

  constructor(folder: FolderData, readOnly: boolean) {
    this.folder = folder;
    this.readOnly = readOnly;
    this.uids = folder.messages.map((m) => m.uid);
    this.recentFrom = folder.uidNext;
  }

  record(change: MailboxChange): void {
    if (change.kind === 'exists') {
      for (const uid of change.uids) this.newUids.push(uid);
    } else if (change.kind === 'expunge') {
      for (const uid of change.uids) {
        const pending = this.newUids.indexOf(uid);
        if (pending >= 0) this.newUids.splice(pending, 1);
        else if (indexOfSorted(this.uids, uid) >= 0) this.gone.add(uid);
        this.flagged.delete(uid);
      }
    } else {
      for (const uid of change.uids) if (!this.gone.has(uid)) this.flagged.add(uid);
    }
  }

  get pending(): boolean {
    return this.newUids.length > 0 || this.gone.size > 0 || this.flagged.size > 0;
  }
}

export interface ImapConnectionOptions {
  /** BAD replies a session may collect before it is closed (Exchange: the third one closes). */
  maxInvalidCommands: number;
}

export class ImapConnection {
  readonly ctx: ExchangeContext;
  readonly session: LineSession;
  readonly out: Output;
  readonly options: ImapConnectionOptions;
  state: ImapState = 'nonauth';
  mailbox: Mailbox | undefined;
  data: MailboxData | undefined;
  view: SelectedView | undefined;
  /** Mailbox address holding one of this session's connection slots. */
  slot: string | undefined;
  invalid = 0;
  /** The running command's notification rules (set by the dispatcher). */
  current: { expunges: boolean; uid: boolean } = { expunges: true, uid: false };
  /** Set when the session must end after what is buffered has been written. */
  closing = false;
  #wake: (() => void) | undefined;
  readonly #onChange = (change: MailboxChange) => {
    const view = this.view;
    if (!view || change.folder !== view.folder.name) return;
    view.record(change);
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  };

  constructor(ctx: ExchangeContext, session: LineSession, options: ImapConnectionOptions) {
    this.ctx = ctx;
    this.session = session;
    this.out = new Output(session);
    this.options = options;
  }

  get authenticated(): boolean {
    return this.state === 'auth' || this.state === 'selected';
  }

  attach(mailbox: Mailbox, data: MailboxData): void {
    this.mailbox = mailbox;
    this.data = data;
    this.state = 'auth';
    data.on('change', this.#onChange);
  }

  dispose(): void {
    this.data?.off('change', this.#onChange);
    if (this.slot) this.ctx.releaseConnection('imap', this.slot);
    this.slot = undefined;
    this.#wake?.();
  }

  /** Resolves at the next change to the selected folder (IDLE). */
  changed(): Promise<void> {
    if (this.view?.pending) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  cancelWait(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  select(folder: FolderData, readOnly: boolean): SelectedView {
    this.view = new SelectedView(folder, readOnly);
    this.state = 'selected';
    return this.view;
  }

  deselect(): void {
    this.view = undefined;
    if (this.state === 'selected') this.state = 'auth';
  }

  /** Whether the selected folder still exists (another session may have deleted it). */
  get viewAlive(): boolean {
    const view = this.view;
    return !!view && !!this.data && this.data.folders().includes(view.folder);
  }

  /** A tagged completion, preceded (like every Exchange answer) by pending notifications. */
  tagged(tag: string, status: 'OK' | 'NO' | 'BAD', text: string): void {
    this.notify({ expunge: this.current.expunges, uid: this.current.uid });
    this.out.line(`${tag} ${status} ${text}`);
  }

  ok(tag: string, text: string): void {
    this.tagged(tag, 'OK', text);
  }

  no(tag: string, text: string): void {
    this.tagged(tag, 'NO', text);
  }

  /** A BAD reply; Exchange counts them and closes the session at the third. */
  bad(tag: string, text: string): void {
    this.tagged(tag, 'BAD', text);
    this.invalid++;
    if (this.invalid >= this.options.maxInvalidCommands) this.bye();
  }

  bye(): void {
    if (this.closing) return;
    this.out.line(IMAP.bye);
    this.closing = true;
  }

  /**
   * Tells the client what changed in the selected folder since it last heard: EXPUNGE (highest
   * sequence number first, when the command allows them), EXISTS, and FLAGS of changed messages.
   * Returns whether an EXISTS line was written.
   */
  notify(options: { expunge: boolean; uid?: boolean }): boolean {
    const view = this.view;
    if (!view || !view.pending) return false;
    let countChanged = false;
    if (options.expunge && view.gone.size > 0) {
      const indexes: number[] = [];
      for (const uid of view.gone) {
        const i = indexOfSorted(view.uids, uid);
        if (i >= 0) indexes.push(i);
      }
      indexes.sort((a, b) => b - a);
      let text = '';
      for (const i of indexes) text += `* ${i + 1} EXPUNGE\r\n`;
      this.out.push(text);
      const gone = view.gone;
      view.uids = view.uids.filter((u) => !gone.has(u));
      gone.clear();
      countChanged = indexes.length > 0;
    }
    if (view.newUids.length > 0) {
      view.newUids.sort((a, b) => a - b);
      const last = view.uids.length > 0 ? view.uids[view.uids.length - 1]! : 0;
      for (const uid of view.newUids) if (uid > last) view.uids.push(uid);
      view.newUids = [];
      countChanged = true;
    }
    if (countChanged) this.out.line(`* ${view.uids.length} EXISTS`);
    if (view.flagged.size > 0) {
      let text = '';
      for (const uid of view.flagged) {
        const i = indexOfSorted(view.uids, uid);
        const meta = findMeta(view.folder, uid);
        if (i < 0 || !meta) continue;
        text += `* ${i + 1} FETCH (FLAGS ${flagList(meta.flags)}${options.uid ? ` UID ${uid}` : ''})\r\n`;
      }
      view.flagged.clear();
      this.out.push(text);
    }
    return countChanged;
  }
}
