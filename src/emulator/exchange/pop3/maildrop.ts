// A POP3 session's view of the inbox (RFC 1939): message numbers fixed at login, deletions only
// marked until QUIT, when they are expunged together.
import type { Readable } from 'node:stream';
import type { FolderData, MailboxData, MessageMeta } from '../mail-store.ts';

export class Maildrop {
  readonly #mailbox: MailboxData;
  readonly #folder: FolderData;
  readonly #messages: MessageMeta[];
  readonly #deleted = new Set<number>();

  constructor(mailbox: MailboxData) {
    this.#mailbox = mailbox;
    this.#folder = mailbox.requireFolder('INBOX');
    this.#messages = [...this.#folder.messages];
  }

  /** The message with this 1-based number, unless deleted in this session. */
  get(n: number): MessageMeta | undefined | 'deleted' {
    const m = this.#messages[n - 1];
    if (!m) return undefined;
    return this.#deleted.has(m.uid) ? 'deleted' : m;
  }

  /** [number, message] for each message not deleted. */
  live(): [number, MessageMeta][] {
    return this.#messages.flatMap((m, i): [number, MessageMeta][] => (this.#deleted.has(m.uid) ? [] : [[i + 1, m]]));
  }

  /**
   * The octets RETR sends of this message (without dot-stuffing, as RFC 1939 counts): a message
   * without a final CRLF gets one on the wire, so it counts here too (fetchmail compares the two).
   */
  octets(m: MessageMeta): number {
    return m.size + (m.unterminated ? 2 : 0);
  }

  stat(): { count: number; octets: number } {
    const live = this.live();
    return { count: live.length, octets: live.reduce((sum, [, m]) => sum + this.octets(m), 0) };
  }

  /** A unique id that stays the same for this message across sessions. */
  uniqueId(m: MessageMeta): string {
    return `AQ${this.#folder.uidValidity.toString(36)}A${m.uid.toString(36).padStart(6, '0')}`;
  }

  read(m: MessageMeta): Promise<Buffer> {
    return this.#mailbox.read(this.#folder, m.uid);
  }

  /** Large messages are streamed, so the server never holds one whole. */
  isLarge(m: MessageMeta): boolean {
    return this.#mailbox.isLarge(m);
  }

  stream(m: MessageMeta): Readable {
    return this.#mailbox.stream(this.#folder, m.uid);
  }

  delete(m: MessageMeta): void {
    this.#deleted.add(m.uid);
  }

  reset(): void {
    this.#deleted.clear();
  }

  /** The UPDATE state: removes what was deleted. */
  async commit(): Promise<void> {
    if (this.#deleted.size > 0) await this.#mailbox.expunge('INBOX', [...this.#deleted]);
  }
}
