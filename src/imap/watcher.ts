// ImapWatcher: one folder watched with IDLE for as long as it runs, across token expiry and
// dropped connections. It knows when the token of the current session expires (the JWT's `exp`;
// 60 minutes for an opaque token) and, `refreshAheadMs` before that, opens a new session with a
// fresh token, switches to it and only then logs the old one out (make before break). After a
// drop it reconnects with backoff. New messages are reported by UID: the highest UID seen is
// kept, and every (re)connect and every EXISTS asks for the UIDs above it, one query at a time,
// so nothing is reported twice and nothing between two sessions is missed.
//
// The clock is compared with the renewal deadline every `checkIntervalMs` rather than trusting
// one long timer: a suspended machine (or a test moving the clock) is noticed at the next check.
import { EventEmitter } from 'node:events';
import type { ImapFlow } from 'imapflow';
import { TokenError } from '../identity/token-errors.ts';
import { connectImap, type ImapContext, type OpenImapOptions } from './connect.ts';

export type ReconnectReason = 'token-expiry' | 'connection-lost';

export interface ImapWatcherEvents {
  /** A message arrived (or was there, unseen by this watcher, after a reconnect). */
  message: [{ uid: number }];
  /** A new session took over; `uidValidityChanged` when the folder's UIDs were renumbered. */
  reconnect: [{ reason: ReconnectReason; uidValidityChanged?: boolean }];
  /** A failed reconnect or query (the watcher goes on), or a fatal one (it stops). Emitted only when listened to. */
  error: [Error];
}

export interface ImapWatcherOptions {
  /** Folder to watch (default INBOX). */
  folder?: string;
  /** Reconnect this long before the token expires (default 3 minutes, under the provider's 5 so it hands out a new token). */
  refreshAheadMs?: number;
  /** The clock the token's expiry is compared with (default Date.now); share it with the provider. */
  now?: () => number;
  /** How often the clock is checked against the renewal deadline (default 15 s). */
  checkIntervalMs?: number;
  /** Delay before reconnecting after a drop or a failed attempt, doubling up to maxMs (default 1 s .. 5 min). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Resume: report messages with a higher UID than this at start (default: only what arrives from now on). */
  lastUid?: number;
  /** Restart IDLE this often on one connection (default 25 minutes, under servers' 30-minute IDLE limit). */
  maxIdleTimeMs?: number;
  /** Passed to openImap. */
  connect?: Pick<OpenImapOptions, 'logger' | 'timeoutMs'>;
}

/** Lifetime assumed for an opaque (non-JWT) access token, counted from when it was obtained. */
const OPAQUE_TOKEN_LIFETIME_MS = 60 * 60_000;
/** After a reconnect that left the deadline in the past (an almost expired token), wait at least this long. */
const MIN_RENEW_GAP_MS = 30_000;

export class ImapWatcher extends EventEmitter<ImapWatcherEvents> {
  readonly #ctx: ImapContext;
  readonly #mailbox: string;
  readonly #folder: string;
  readonly #refreshAheadMs: number;
  readonly #now: () => number;
  readonly #checkIntervalMs: number;
  readonly #backoffInitialMs: number;
  readonly #backoffMaxMs: number;
  readonly #maxIdleTimeMs: number;
  readonly #connectOptions: Pick<OpenImapOptions, 'logger' | 'timeoutMs'>;
  #client: ImapFlow | undefined;
  #detach: (() => void) | undefined;
  /** When the current session must be replaced (on the `now` clock). */
  #renewAt = Infinity;
  #highest: number | undefined;
  #uidValidity: bigint | undefined;
  #started = false;
  #stopped = false;
  #renewing: Promise<void> | undefined;
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #queries: Promise<void> = Promise.resolve();

  constructor(ctx: ImapContext, mailbox: string, options: ImapWatcherOptions = {}) {
    super();
    this.#ctx = ctx;
    this.#mailbox = mailbox;
    this.#folder = options.folder ?? 'INBOX';
    this.#refreshAheadMs = options.refreshAheadMs ?? 3 * 60_000;
    this.#now = options.now ?? Date.now;
    this.#checkIntervalMs = options.checkIntervalMs ?? 15_000;
    this.#backoffInitialMs = options.backoff?.initialMs ?? 1_000;
    this.#backoffMaxMs = options.backoff?.maxMs ?? 5 * 60_000;
    this.#maxIdleTimeMs = options.maxIdleTimeMs ?? 25 * 60_000;
    this.#connectOptions = options.connect ?? {};
    if (options.lastUid !== undefined) this.#highest = options.lastUid;
  }

  /** The highest UID reported so far (or the starting point); persist it to resume later with `lastUid`. */
  get lastUid(): number | undefined {
    return this.#highest;
  }

  /** Whether a session is open right now. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** Connects and starts watching; rejects (and the watcher is stopped) when the first connect fails. */
  async start(): Promise<void> {
    if (this.#started) throw new Error('ImapWatcher.start() was already called');
    this.#started = true;
    try {
      await this.#establish(undefined);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.#checkTimer = setInterval(() => this.#check(), this.#checkIntervalMs);
    this.#checkTimer.unref();
  }

  /** Stops watching and logs out. No event is emitted afterwards. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#checkTimer);
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    this.#detach?.();
    this.#detach = undefined;
    if (client) await logoutQuietly(client);
    await this.#renewing?.catch(() => {});
  }

  #emitError(err: unknown): void {
    if (this.#stopped || this.listenerCount('error') === 0) return;
    this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }

  #check(): void {
    if (this.#stopped || this.#renewing || this.#retryTimer) return;
    if (this.#now() >= this.#renewAt) this.#renew('token-expiry');
  }

  /** Opens a new session (single flight); on failure, tries again after the backoff. */
  #renew(reason: ReconnectReason): void {
    if (this.#stopped || this.#renewing) return;
    this.#renewing = this.#establish(reason)
      .then(() => {
        this.#failures = 0;
        clearTimeout(this.#retryTimer);
        this.#retryTimer = undefined;
      })
      .catch((err: unknown) => {
        this.#emitError(err);
        if (err instanceof TokenError && err.code !== 'unavailable') {
          // Only a person can fix these (sign in again, correct the configuration).
          void this.stop();
          return;
        }
        this.#retryLater(reason);
      })
      .finally(() => {
        this.#renewing = undefined;
      });
  }

  #retryLater(reason: ReconnectReason): void {
    if (this.#stopped) return;
    const base = Math.min(this.#backoffMaxMs, this.#backoffInitialMs * 2 ** this.#failures++);
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      // A renewal that finished meanwhile already replaced the lost session.
      if (reason === 'connection-lost' && this.#client) return;
      this.#renew(reason);
    }, delay);
  }

  /** Connects, selects the folder, switches over to the new session and asks for what is new. */
  async #establish(reason: ReconnectReason | undefined): Promise<void> {
    const { client, tokenExpiresAt } = await connectImap(this.#ctx, this.#mailbox, {
      ...this.#connectOptions,
      // IDLE again right after each query: new mail is pushed only while IDLE runs.
      autoIdleDelayMs: 50,
      maxIdleTimeMs: this.#maxIdleTimeMs,
    });
    const obtained = this.#now();
    let uidValidityChanged = false;
    try {
      if (this.#stopped) throw new Error('stopped');
      const box = await client.mailboxOpen(this.#folder);
      if (this.#uidValidity !== undefined && box.uidValidity !== this.#uidValidity) {
        // The old UIDs mean nothing in the renumbered folder: start over from what is there now.
        uidValidityChanged = true;
        this.#highest = undefined;
      }
      this.#uidValidity = box.uidValidity;
      if (this.#highest === undefined) this.#highest = box.uidNext > 0 ? box.uidNext - 1 : await highestUid(client);
      if (this.#stopped) throw new Error('stopped');
    } catch (err) {
      await logoutQuietly(client);
      if (this.#stopped) return;
      throw err;
    }

    const expires = tokenExpiresAt ?? obtained + OPAQUE_TOKEN_LIFETIME_MS;
    const renewAt = expires - this.#refreshAheadMs;
    this.#renewAt = renewAt > this.#now() ? renewAt : this.#now() + MIN_RENEW_GAP_MS;

    const old = this.#client;
    this.#detach?.();
    this.#client = client;
    this.#detach = this.#attach(client);
    if (old) void logoutQuietly(old);
    if (reason) this.emit('reconnect', uidValidityChanged ? { reason, uidValidityChanged } : { reason });
    await this.#query();
  }

  #attach(client: ImapFlow): () => void {
    const onExists = () => void this.#query();
    const onClose = () => {
      if (client !== this.#client || this.#stopped) return;
      this.#client = undefined;
      this.#detach?.();
      this.#detach = undefined;
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      this.#retryLater('connection-lost');
    };
    const onError = (err: Error) => this.#emitError(err);
    client.on('exists', onExists);
    client.on('close', onClose);
    client.on('error', onError);
    return () => {
      client.off('exists', onExists);
      client.off('close', onClose);
      client.off('error', onError);
    };
  }

  /** Reports the UIDs above the highest seen; queries run one after the other. */
  #query(): Promise<void> {
    const run = this.#queries.then(async () => {
      const client = this.#client;
      if (!client || this.#stopped || this.#highest === undefined) return;
      try {
        const found = await client.search({ uid: `${this.#highest + 1}:*` }, { uid: true });
        // `N:*` also matches the highest UID when it is below N: keep only what is really new.
        const fresh = (found || []).filter((uid) => uid > this.#highest!).sort((a, b) => a - b);
        for (const uid of fresh) {
          if (this.#stopped || client !== this.#client) return;
          this.#highest = uid;
          this.emit('message', { uid });
        }
      } catch (err) {
        // A dropped connection is handled by 'close'; the next session asks again.
        if (client === this.#client) this.#emitError(err);
      }
    });
    this.#queries = run;
    return run;
  }
}

async function highestUid(client: ImapFlow): Promise<number> {
  const all = await client.search({ all: true }, { uid: true });
  return all ? all.reduce((max, uid) => Math.max(max, uid), 0) : 0;
}

/** LOGOUT, or just close when the server does not answer within 5 s. */
async function logoutQuietly(client: ImapFlow): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([client.logout(), new Promise((resolve) => (timer = setTimeout(resolve, 5_000)))]);
  } catch {
    // already gone
  } finally {
    clearTimeout(timer);
    client.close();
  }
}
