// IMAP as a MailSource, on imapflow through openImap (fresh token, one refresh-and-retry). One
// folder per source. A message's id is `${uidValidity}:${uid}`: UIDs only name a message under
// the folder's current UIDVALIDITY, so the id carries it and an id from before a change is
// refused rather than applied to whatever holds that UID now. listNew SELECTs the folder again
// each time, which is where the server tells its current UIDVALIDITY; a change is reported as
// `reset`. watch() runs an ImapWatcher (IDLE on a connection of its own, renewed before the
// token expires) and turns its events into wake-ups.
import type { Readable } from 'node:stream';
import type { ImapFlow } from 'imapflow';
import { TokenError } from '../identity/token-errors.ts';
import { TransportError } from '../transport/errors.ts';
import { isKnown } from '../transport/known.ts';
import type { DoneAction, ListNewOptions, MailContext, MailSource, NewMessages, WatchOptions } from '../transport/types.ts';
import { resolveGrant } from '../identity/grants.ts';
import { DEFAULT_COMMAND_TIMEOUT_MS, ImapError, openImap, seconds, type OpenImapOptions } from './connect.ts';
import { ImapWatcher, type ImapWatcherOptions } from './watcher.ts';

export interface ImapSourceOptions {
  /** The folder to read (default INBOX). */
  folder?: string;
  /** Passed to openImap, for this source's session and the watcher's. */
  connect?: Pick<OpenImapOptions, 'logger' | 'timeoutMs' | 'commandTimeoutMs' | 'retryPauseMs'>;
  /** Passed to the ImapWatcher that watch() runs (clock, renewal, backoff). */
  watcher?: Omit<ImapWatcherOptions, 'folder' | 'lastUid' | 'connect'>;
}

export class ImapSource implements MailSource {
  readonly protocol = 'imap' as const;
  readonly mailbox: string;
  readonly doneActions = ['delete', 'flag', 'move'] as const;
  /** The folder this source reads. */
  readonly folder: string;
  readonly #ctx: MailContext;
  readonly #options: ImapSourceOptions;
  readonly #client: ImapFlow;
  /** The folder's UIDVALIDITY at the latest SELECT. */
  #uidValidity: string;
  /** Set when imapflow gave up on a silent server (socketTimeout): the failing command is then named as timed out. */
  #timedOut = false;

  private constructor(ctx: MailContext, mailbox: string, client: ImapFlow, folder: string, uidValidity: string, options: ImapSourceOptions) {
    this.#ctx = ctx;
    this.mailbox = mailbox;
    this.#client = client;
    this.folder = folder;
    this.#uidValidity = uidValidity;
    this.#options = options;
    client.on('error', (err: { code?: string }) => {
      if (err?.code === 'ETIMEOUT') this.#timedOut = true;
    });
  }

  /** Logs in and selects the folder. */
  static async open(ctx: MailContext, mailbox: string, options: ImapSourceOptions = {}): Promise<ImapSource> {
    const folder = options.folder ?? 'INBOX';
    const client = await openImap(ctx, mailbox, options.connect ?? {});
    let timedOut = false;
    const onError = (err: { code?: string }) => {
      if (err?.code === 'ETIMEOUT') timedOut = true;
    };
    client.on('error', onError);
    try {
      const box = await client.mailboxOpen(folder);
      return new ImapSource(ctx, mailbox, client, folder, String(box.uidValidity), options);
    } catch (err) {
      await logout(client);
      throw stepFailure(ctx, mailbox, options, `SELECT ${folder}`, err, timedOut);
    } finally {
      client.off('error', onError);
    }
  }

  async listNew(options: ListNewOptions = {}): Promise<NewMessages> {
    const { since, known } = options;
    if (since !== undefined && (since.kind !== 'imap' || since.folder !== this.folder)) {
      throw new TransportError(
        'checkpoint_mismatch',
        `a checkpoint of ${since.kind} folder ${JSON.stringify(since.folder)} cannot be used for IMAP folder ${JSON.stringify(this.folder)}`,
      );
    }
    await this.#select();
    const uidValidity = this.#uidValidity;
    const reset = since !== undefined && since.uidValidity !== uidValidity;
    const after = since !== undefined && !reset ? since.lastUid : 0;
    const found = (await this.#step('UID SEARCH', () => this.#client.search(after > 0 ? { uid: `${after + 1}:*` } : { all: true }, { uid: true }))) || [];
    // `N:*` also matches the highest UID when it is below N: keep only what is really newer.
    const uids = found.filter((uid) => uid > after).sort((a, b) => a - b);
    const lastUid = uids.reduce((max, uid) => Math.max(max, uid), after);
    return {
      messages: uids.map((uid) => ({ id: `${uidValidity}:${uid}`, folder: this.folder })).filter((m) => !isKnown(known, m.id)),
      checkpoint: { kind: 'imap', folder: this.folder, uidValidity, lastUid },
      reset,
    };
  }

  async read(id: string): Promise<Readable> {
    const uid = this.#uidOf(id);
    await this.#ensureSelected();
    const step = `UID FETCH ${uid}`;
    const { content } = await this.#step(step, () => this.#client.download(String(uid), undefined, { uid: true }));
    if (!content) throw new TransportError('unknown_message', `the server sent no content for message UID ${uid} of ${this.folder}`);
    return content;
  }

  async readEach(ids: readonly string[], onMessage: (id: string, message: Readable) => Promise<void>): Promise<void> {
    // imapflow runs one command at a time; nothing to gain from asking ahead.
    for (const id of ids) await onMessage(id, await this.read(id));
  }

  async markDone(ids: readonly string[], action: DoneAction): Promise<void> {
    if (ids.length === 0) return;
    // SELECT again first: acting on UIDs of a renumbered folder would hit other messages.
    await this.#select();
    const uids = ids.map((id) => this.#uidOf(id));
    const client = this.#client;
    const done: unknown = await this.#step<unknown>(action.kind === 'delete' ? 'UID STORE/EXPUNGE' : action.kind === 'flag' ? 'UID STORE' : 'UID MOVE', () =>
      action.kind === 'delete'
        ? client.messageDelete(uids, { uid: true })
        : action.kind === 'flag'
          ? client.messageFlagsAdd(uids, [action.flag], { uid: true })
          : client.messageMove(uids, action.folder, { uid: true }),
    );
    if (done === false || done === undefined) {
      // imapflow leaves out flags the folder's PERMANENTFLAGS do not allow (Exchange takes no keywords).
      const hint = action.kind === 'flag' ? ` (is ${action.flag} among the folder's permanent flags?)` : '';
      throw new TransportError(
        'not_done',
        `the IMAP server did not ${action.kind} message${uids.length === 1 ? '' : 's'} ${uids.join(', ')} of ${this.folder}${hint}`,
      );
    }
  }

  async watch(options: WatchOptions): Promise<void> {
    const { signal } = options;
    if (signal.aborted) return;
    const watcher = new ImapWatcher(this.#ctx, this.mailbox, {
      ...this.#options.watcher,
      folder: this.folder,
      ...(this.#options.connect ? { connect: pick(this.#options.connect) } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      let finished = false;
      const finish = (err?: Error) => {
        if (finished) return;
        finished = true;
        signal.removeEventListener('abort', onAbort);
        watcher.stop().then(
          () => (err ? reject(err) : resolve()),
          () => (err ? reject(err) : resolve()),
        );
      };
      const onAbort = () => finish();
      watcher.on('message', () => options.onNewMail());
      // Renumbered: every message is new again under new ids; listNew reports the reset.
      watcher.on('reconnect', ({ uidValidityChanged }) => {
        if (uidValidityChanged) options.onNewMail();
      });
      watcher.on('error', (err) => {
        // The watcher stops itself on these (only a person can fix them): so does the watch.
        if (err instanceof TokenError && err.code !== 'unavailable') finish(err);
        else options.onError?.(err);
      });
      signal.addEventListener('abort', onAbort, { once: true });
      watcher.start().then(
        () => {
          if (!finished) options.onReady?.();
        },
        (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
      );
    });
  }

  async close(): Promise<void> {
    await logout(this.#client);
  }

  /** SELECT the folder (again), noting its UIDVALIDITY now. */
  async #select(): Promise<void> {
    const box = await this.#step(`SELECT ${this.folder}`, () => this.#client.mailboxOpen(this.folder));
    this.#uidValidity = String(box.uidValidity);
  }

  /** Runs one command; a server that stayed silent past commandTimeoutMs becomes an ImapError 'timeout' naming it. */
  async #step<T>(step: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw stepFailure(this.#ctx, this.mailbox, this.#options, step, err, this.#timedOut);
    }
  }

  async #ensureSelected(): Promise<void> {
    const current = this.#client.mailbox;
    if (!current || current.path !== this.folder) await this.#select();
  }

  #uidOf(id: string): number {
    const match = /^(\d+):(\d+)$/.exec(id);
    if (!match) throw new TransportError('unknown_message', `${JSON.stringify(id)} is not an IMAP message id of this source ("<uidValidity>:<uid>")`);
    if (match[1] !== this.#uidValidity) {
      throw new TransportError(
        'stale_message',
        `message ${id} is from UIDVALIDITY ${match[1]}, but ${this.folder} now has ${this.#uidValidity}: list it again (listNew reports the reset)`,
      );
    }
    return Number(match[2]);
  }
}

/** A command's failure: a timeout naming the command and the host when the server stayed silent, else as it was. */
function stepFailure(ctx: MailContext, mailbox: string, options: ImapSourceOptions, step: string, err: unknown, timedOut: boolean): unknown {
  if (err instanceof ImapError || err instanceof TokenError) return err;
  if (!timedOut && (err as { code?: unknown } | undefined)?.code !== 'ETIMEOUT') return err;
  const endpoint = resolveGrant(ctx.loaded, mailbox).cloud.imap;
  const waited = options.connect?.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  return new ImapError('timeout', mailbox, endpoint, `${mailbox}: ${endpoint.host}:${endpoint.port} did not answer ${step} within ${seconds(waited)}`, {
    cause: err,
  });
}

function pick(connect: NonNullable<ImapSourceOptions['connect']>): Pick<OpenImapOptions, 'logger' | 'timeoutMs'> {
  return { ...(connect.logger !== undefined ? { logger: connect.logger } : {}), ...(connect.timeoutMs !== undefined ? { timeoutMs: connect.timeoutMs } : {}) };
}

/** LOGOUT, or just close when the server does not answer. */
async function logout(client: ImapFlow): Promise<void> {
  await client.logout().catch(() => client.close());
}
