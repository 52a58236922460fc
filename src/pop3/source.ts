// POP3 as a MailSource. POP3 gives a session a fixed, unordered view of the maildrop, numbered
// 1..n for that session only, with a unique id per message (UIDL) that stays. So: ids are UIDLs;
// "new" means "not in the caller's known ids" (there is no checkpoint to hand out); a second
// listNew starts a new session (QUIT, which applies the deletions so far, then a fresh login) to
// see mail that arrived meanwhile; and watch polls on connections of its own, leaving this
// session alone.
import type { Readable } from 'node:stream';
import { TransportError } from '../transport/errors.ts';
import { isKnown } from '../transport/known.ts';
import type { DoneAction, ListNewOptions, MailContext, MailSource, NewMessages, WatchOptions } from '../transport/types.ts';
import type { Pop3Client } from './client.ts';
import { openPop3ForMailbox, type OpenPop3Options } from './login.ts';

export interface Pop3SourceOptions extends OpenPop3Options {
  /** How often watch() looks for new mail (default 60 s). */
  pollIntervalMs?: number;
}

export class Pop3Source implements MailSource {
  readonly protocol = 'pop' as const;
  readonly mailbox: string;
  readonly doneActions = ['delete'] as const;
  readonly #ctx: MailContext;
  readonly #options: Pop3SourceOptions;
  #client: Pop3Client;
  /** Message numbers of this session, by UIDL; filled by listNew. */
  #numbers = new Map<string, number>();
  /** Whether this session has been listed already (then the next listNew needs a new one). */
  #listed = false;

  private constructor(ctx: MailContext, mailbox: string, client: Pop3Client, options: Pop3SourceOptions) {
    this.#ctx = ctx;
    this.mailbox = mailbox;
    this.#client = client;
    this.#options = options;
  }

  /** Connects and logs in (one refresh-and-retry on a refused token). */
  static async open(ctx: MailContext, mailbox: string, options: Pop3SourceOptions = {}): Promise<Pop3Source> {
    return new Pop3Source(ctx, mailbox, await openPop3ForMailbox(ctx, mailbox, options), options);
  }

  async listNew(options: ListNewOptions = {}): Promise<NewMessages> {
    if (options.since !== undefined) {
      throw new TransportError(
        'checkpoint_mismatch',
        `a ${options.since.kind} checkpoint cannot be used with POP3, which has none: pass the known ids instead`,
      );
    }
    if (this.#listed) {
      // The maildrop a session sees is fixed when it starts: only a new session sees new mail.
      this.#numbers = new Map();
      await this.close();
      this.#client = await openPop3ForMailbox(this.#ctx, this.mailbox, this.#options);
    }
    this.#listed = true;
    const listing = await this.#client.uidl();
    this.#numbers = new Map(listing.map((u) => [u.uid, u.n]));
    return { messages: listing.filter((u) => !isKnown(options.known, u.uid)).map((u) => ({ id: u.uid })), reset: false };
  }

  async read(id: string): Promise<Readable> {
    return this.#client.retr(this.#number(id));
  }

  async readEach(ids: readonly string[], onMessage: (id: string, message: Readable) => Promise<void>): Promise<void> {
    const byNumber = new Map(ids.map((id) => [this.#number(id), id]));
    await this.#client.retrMany([...byNumber.keys()], (n, message) => onMessage(byNumber.get(n)!, message));
  }

  async markDone(ids: readonly string[], action: DoneAction): Promise<void> {
    if (action.kind !== 'delete') throw new TransportError('unsupported', `POP3 cannot ${action.kind} a message, only delete it`);
    const numbers = ids.map((id) => this.#number(id));
    for (const n of numbers) await this.#client.dele(n);
  }

  async watch(options: WatchOptions): Promise<void> {
    const { signal } = options;
    if (signal.aborted) return;
    const intervalMs = this.#options.pollIntervalMs ?? 60_000;
    // The first look is the baseline; it must succeed, so a watch that cannot work says so at once.
    let seen = await this.#poll();
    options.onReady?.();
    while (!signal.aborted) {
      if (!(await pause(intervalMs, signal))) break;
      let now: Set<string>;
      try {
        now = await this.#poll();
      } catch (err) {
        options.onError?.(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (signal.aborted) break;
      const arrived = [...now].some((id) => !seen.has(id));
      seen = now;
      if (arrived) options.onNewMail();
    }
  }

  /** QUIT: the deletions are applied now; a failed QUIT rejects (the messages may still be there). */
  async close(): Promise<void> {
    const client = this.#client;
    try {
      await client.quit();
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** The UIDLs in the maildrop now, from a short session of its own. */
  async #poll(): Promise<Set<string>> {
    const client = await openPop3ForMailbox(this.#ctx, this.mailbox, this.#options);
    try {
      return new Set((await client.uidl()).map((u) => u.uid));
    } finally {
      await quitQuietly(client);
    }
  }

  #number(id: string): number {
    const n = this.#numbers.get(id);
    if (n === undefined)
      throw new TransportError('unknown_message', `the POP3 message ${JSON.stringify(id)} is not in this session's listing (call listNew first)`);
    return n;
  }
}

/** QUIT (applying the deletions); just close when that fails (the listing or poll it ends is already done). */
async function quitQuietly(client: Pop3Client): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.close();
  }
}

/** Waits `ms`; false when the signal aborted first. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
