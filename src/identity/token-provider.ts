// getAccessToken(mailbox, protocol): the one seam through which everything in mailbridge gets a
// token. Served from memory while it has minutes left; otherwise from the store (another process
// may have refreshed); otherwise refreshed, with exactly one refresh in flight per grant in this
// process (a shared promise) and across processes (a lease in the store). The newest refresh
// token is written with a compare-and-set in the same write as the access token, so it is never
// lost. Failures become a grant status with an explanation, and the alert hook hears of it.
import type { LoadedConfig } from '../config/load.ts';
import type { Protocol } from '../config/schema.ts';
import type { GrantMeta, GrantRecord, GrantSecrets, GrantStatus, TokenStore } from '../store/token-store.ts';
import type { StatusChange } from './alerts.ts';
import { resolveGrant, type ResolvedGrant } from './grants.ts';
import type { MsalApp } from './msal-apps.ts';
import { isMailbridgeError } from '../errors.ts';
import { classifyFailure, explanationContextOf, TokenError } from './token-errors.ts';

// Through getBuiltinModule: an ESM import of node:crypto also loads WebCrypto, on every `mailbridge token`.
const { randomUUID } = process.getBuiltinModule('node:crypto');

export interface TokenProviderOptions {
  loaded: LoadedConfig;
  store: TokenStore;
  /** A token with less time left than this is refreshed first (default 5 minutes). */
  refreshAheadMs?: number;
  /** How long a refresh lease is held at most (default 30 s). */
  leaseMs?: number;
  /** Transient failures are retried this many times, waiting baseDelayMs, then twice that, ... */
  retries?: number;
  retryBaseDelayMs?: number;
  now?: () => number;
  /** How long one request to the identity platform may take (default 15 s). */
  requestTimeoutMs?: number;
  /** Told of every status change (besides the configured alert hook). */
  onStatusChange?: (change: StatusChange) => void;
}

interface Cached {
  token: string;
  expiresOnMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long a refusal is given again without asking (see #refused). */
const REFUSAL_MEMORY_MS = 5 * 60_000;

export class TokenProvider {
  readonly #loaded: LoadedConfig;
  readonly #store: TokenStore;
  readonly #refreshAheadMs: number;
  readonly #leaseMs: number;
  readonly #retries: number;
  readonly #retryBaseDelayMs: number;
  readonly #now: () => number;
  readonly #requestTimeoutMs: number | undefined;
  readonly #onStatusChange: ((change: StatusChange) => void) | undefined;
  readonly #owner = randomUUID();
  readonly #memory = new Map<string, Cached>();
  /** Tokens a server refused (invalidate): never served again from the store. */
  readonly #rejected = new Set<string>();
  readonly #inflight = new Map<string, Promise<void>>();
  /**
   * The last refusal this process got for a grant, with the record's version it wrote: while the
   * record is unchanged (no new sign-in) and for at most REFUSAL_MEMORY_MS, asking again would only
   * be refused again, so every protocol of a `verify`, or a proxy's next client, gets the same
   * answer instead of another request to the identity platform. After that, a real attempt again:
   * consent granted in the meantime is noticed without a restart.
   */
  readonly #refused = new Map<string, { error: TokenError; version: number; until: number }>();
  /** One msal-node application per app registration, reused (its cache is replaced per refresh). */
  readonly #apps = new Map<string, Promise<MsalApp>>();
  /** Which grant's record (and version) each app's cache holds, so an unchanged one is not reloaded. */
  readonly #appCacheHolds = new Map<string, { mailbox: string; version: number }>();
  /** The record this provider wrote last per grant: while the store's version matches, no decrypting. */
  readonly #lastWritten = new Map<string, GrantRecord>();

  /** The grant's record, from this provider's own last write when nobody has written since. */
  async #read(address: string): Promise<GrantRecord | undefined> {
    const mine = this.#lastWritten.get(address.toLowerCase());
    if (mine && (await this.#store.version(address)) === mine.version) return mine;
    return this.#store.get(address);
  }
  /** Alert deliveries not yet finished (tests and shutdown wait for them). */
  readonly #alerts = new Set<Promise<unknown>>();

  constructor(options: TokenProviderOptions) {
    this.#loaded = options.loaded;
    this.#store = options.store;
    this.#refreshAheadMs = options.refreshAheadMs ?? 5 * 60_000;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#retries = options.retries ?? 3;
    this.#retryBaseDelayMs = options.retryBaseDelayMs ?? 500;
    this.#now = options.now ?? Date.now;
    this.#requestTimeoutMs = options.requestTimeoutMs;
    this.#onStatusChange = options.onStatusChange;
  }

  #fresh(cached: Cached | undefined): cached is Cached {
    return cached !== undefined && cached.expiresOnMs - this.#now() > this.#refreshAheadMs;
  }

  /** A fresh access token for the mailbox's protocol. */
  async getAccessToken(mailbox: string, protocol: Protocol): Promise<string> {
    const key = `${mailbox.toLowerCase()}\u0000${protocol}`;
    const hit = this.#memory.get(key);
    if (this.#fresh(hit)) return hit.token;
    const grant = resolveGrant(this.#loaded, mailbox);
    if (!grant.mailbox.protocols.includes(protocol)) {
      throw new TokenError(
        'broken_configuration',
        grant.address,
        `${grant.address} is not configured for ${protocol}; add it to "protocols" (and sign in again so the grant covers it)`,
      );
    }
    const grantKey = grant.address.toLowerCase();
    for (;;) {
      const running = this.#inflight.get(grantKey);
      if (running) {
        await running;
        const after = this.#memory.get(key);
        if (this.#fresh(after)) return after.token;
        continue;
      }
      const work = this.#obtain(grant, protocol, key).finally(() => this.#inflight.delete(grantKey));
      this.#inflight.set(grantKey, work);
      await work;
      const got = this.#memory.get(key);
      if (got) return got.token;
    }
  }

  /** From the store if another process refreshed; else refresh under the grant's lease. */
  async #obtain(grant: ResolvedGrant, protocol: Protocol, key: string): Promise<void> {
    // A fresh token in the store needs no lease: taking one is a write (and, in a short-lived
    // `mailbridge token`, a WAL checkpoint on close) that only a refresh has to pay for.
    const current = await this.#read(grant.address);
    this.#throwIfRefused(grant, current);
    if (this.#takeStored(current, protocol, key)) return;
    const lease = `refresh:${grant.address.toLowerCase()}`;
    const deadline = this.#now() + this.#leaseMs * 2;
    for (;;) {
      const leased = await this.#store.tryLease(lease, this.#owner, this.#leaseMs);
      try {
        // Read after taking the lease: a refresh another process finished just before is seen.
        const record = await this.#read(grant.address);
        this.#throwIfRefused(grant, record);
        if (this.#takeStored(record, protocol, key)) return;
        if (grant.delegated && !record?.secrets.msalCache) {
          throw new TokenError('needs_sign_in', grant.address, `${grant.address} has no grant yet: run \`mailbridge login ${grant.address}\``);
        }
        if (leased) {
          await this.#refresh(grant, protocol, key, record);
          return;
        }
      } finally {
        if (leased) await this.#store.releaseLease(lease, this.#owner);
      }
      if (this.#now() > deadline)
        throw new TokenError('unavailable', grant.address, `another process has held the refresh of ${grant.address} for over ${(this.#leaseMs * 2) / 1000} s`);
      await sleep(25);
    }
  }

  #takeStored(record: GrantRecord | undefined, protocol: Protocol, key: string): boolean {
    const stored = record?.secrets.accessTokens[protocol];
    if (!stored || !this.#fresh(stored) || this.#rejected.has(stored.token)) return false;
    // A grant whose last real attempt failed hands out no cached token: a refresh is tried instead,
    // so the status always says what the last attempt found (ok again once the cause is gone).
    if (record?.meta.status === 'needs_sign_in' || record?.meta.status === 'broken_configuration') return false;
    this.#memory.set(key, stored);
    return true;
  }

  async #refresh(grant: ResolvedGrant, protocol: Protocol, key: string, record: GrantRecord | undefined): Promise<void> {
    // Here, not at the top: a token served from the store needs no scopes (and no alerts, no msal-node).
    const { tokenScopes } = await import('../config/scopes.ts');
    const scopes = tokenScopes(grant.cloud, protocol, grant.mailbox);
    let attempt = 0;
    for (;;) {
      try {
        const result = await this.#acquire(grant, scopes, record);
        const secrets: GrantSecrets = {
          ...((result.msalCache ?? record?.secrets.msalCache) ? { msalCache: result.msalCache ?? record?.secrets.msalCache } : {}),
          accessTokens: { ...record?.secrets.accessTokens, [protocol]: { token: result.token, expiresOnMs: result.expiresOnMs } },
        };
        const meta: GrantMeta = {
          ...(record?.meta ?? this.#newMeta(grant)),
          status: 'ok',
          refreshedAt: this.#now(),
          accessTokenExpiry: { ...record?.meta.accessTokenExpiry, [protocol]: result.expiresOnMs },
        };
        delete meta.reason;
        delete meta.aadsts;
        const version = await this.#save(grant, meta, secrets, record);
        if (grant.delegated && version !== undefined) this.#appCacheHolds.set(grant.appName, { mailbox: grant.address, version });
        else this.#appCacheHolds.delete(grant.appName);
        if (version !== undefined) this.#lastWritten.set(grant.address.toLowerCase(), { meta, secrets, version });
        else this.#lastWritten.delete(grant.address.toLowerCase());
        this.#memory.set(key, { token: result.token, expiresOnMs: result.expiresOnMs });
        this.#statusChanged(grant, record?.meta.status ?? 'unknown', meta);
        return;
      } catch (err) {
        // Start the next attempt with a fresh msal-node application: no state of this failure carries over.
        this.#apps.delete(grant.appName);
        this.#appCacheHolds.delete(grant.appName);
        // A configuration problem (an unset secret variable, an unreadable certificate) is the
        // configuration's, not the grant's: said as it is, and not recorded as the grant's status.
        if (err instanceof TokenError || (isMailbridgeError(err) && err.code === 'config_invalid')) throw err;
        const failure = await classifyFailure(err, {
          ...explanationContextOf(grant),
          // The configured cloud's hosts, so a fix names the cloud in use (a national cloud, the emulator).
          cloud: grant.cloud,
        });
        // Throttling asks for a pause (Retry-After); hammering would only prolong it.
        if (failure.transient && !failure.throttled && attempt < this.#retries) {
          await sleep(this.#retryBaseDelayMs * 2 ** attempt++);
          continue;
        }
        const status: GrantStatus = failure.transient
          ? (record?.meta.status ?? 'unknown')
          : failure.explanation?.health === 'needs_sign_in'
            ? 'needs_sign_in'
            : 'broken_configuration';
        const fix = failure.explanation ? ` ${failure.explanation.fix}` : '';
        const error = new TokenError(
          failure.transient ? 'unavailable' : status === 'needs_sign_in' ? 'needs_sign_in' : 'broken_configuration',
          grant.address,
          `${grant.address}: ${failure.summary}.${fix}`,
          failure.explanation,
        );
        if (!failure.transient) {
          const version = await this.#markFailed(grant, status, failure.summary, failure.aadsts, record);
          if (version !== undefined) this.#refused.set(grant.address.toLowerCase(), { error, version, until: this.#now() + REFUSAL_MEMORY_MS });
        }
        throw error;
      }
    }
  }

  /** msal-node dates expiry on the real clock; keep the lifetime, measured on ours. */
  #expiresOn(expiresOn: Date | null | undefined): number {
    const lifetime = expiresOn ? expiresOn.getTime() - Date.now() : 3_600_000;
    return this.#now() + lifetime;
  }

  async #acquire(grant: ResolvedGrant, scopes: string[], record: GrantRecord | undefined): Promise<{ token: string; expiresOnMs: number; msalCache?: string }> {
    let building = this.#apps.get(grant.appName);
    if (!building) {
      // Loaded only to ask Microsoft: a token served from the store needs neither it nor node:crypto's import.
      building = import('./msal-apps.ts').then(({ msalApp }) => msalApp(this.#loaded, grant.appName, grant.app, grant.cloud, this.#requestTimeoutMs));
      this.#apps.set(grant.appName, building);
      building.catch(() => this.#apps.delete(grant.appName));
    }
    const app = await building;
    if (!grant.delegated) {
      if (!('acquireTokenByClientCredential' in app))
        throw new TokenError('broken_configuration', grant.address, `the app ${grant.appName} has no credential for client credentials`);
      const result = await app.acquireTokenByClientCredential({ scopes, skipCache: true });
      if (!result?.accessToken) throw new TokenError('unavailable', grant.address, 'the identity platform returned no access token');
      return { token: result.accessToken, expiresOnMs: this.#expiresOn(result.expiresOn) };
    }
    const cache = app.getTokenCache();
    const holds = this.#appCacheHolds.get(grant.appName);
    if (holds?.mailbox !== grant.address || holds.version !== record!.version) cache.deserialize(record!.secrets.msalCache!);
    const homeAccountId = record!.meta.account?.homeAccountId;
    const account = homeAccountId ? await cache.getAccountByHomeId(homeAccountId) : (await cache.getAllAccounts())[0];
    if (!account)
      throw new TokenError('needs_sign_in', grant.address, `the stored grant of ${grant.address} has no account; run \`mailbridge login ${grant.address}\``);
    const result = await app.acquireTokenSilent({ account, scopes, forceRefresh: true });
    return { token: result.accessToken, expiresOnMs: this.#expiresOn(result.expiresOn), msalCache: cache.serialize() };
  }

  #newMeta(grant: ResolvedGrant): GrantMeta {
    return {
      mailbox: grant.address,
      app: grant.appName,
      clientId: grant.app.clientId,
      tenant: grant.app.tenant,
      grant: grant.mailbox.grant,
      status: 'unknown',
      createdAt: this.#now(),
      accessTokenExpiry: {},
    };
  }

  /**
   * Compare-and-set; if another writer got in first, write over its version with our newer
   * tokens. Returns the version written (undefined when the grant was signed out meanwhile).
   */
  async #save(grant: ResolvedGrant, meta: GrantMeta, secrets: GrantSecrets, record: GrantRecord | undefined): Promise<number | undefined> {
    let expected = record?.version ?? 0;
    for (let i = 0; i < 5; i++) {
      const written = await this.#store.put(meta, secrets, expected);
      if (written !== undefined) return written;
      const latest = await this.#store.get(grant.address);
      if (!latest && expected !== 0) return undefined; // signed out meanwhile: do not bring the grant back
      expected = latest?.version ?? 0;
    }
    throw new TokenError('unavailable', grant.address, `could not save the refreshed tokens of ${grant.address}: the store kept changing`);
  }

  /** Throws the refusal this process already got for the grant, while its record is as that refusal left it. */
  #throwIfRefused(grant: ResolvedGrant, record: GrantRecord | undefined): void {
    const refused = this.#refused.get(grant.address.toLowerCase());
    if (!refused) return;
    if (record?.version === refused.version && this.#now() < refused.until) throw refused.error;
    this.#refused.delete(grant.address.toLowerCase());
  }

  async #markFailed(
    grant: ResolvedGrant,
    status: GrantStatus,
    reason: string,
    aadsts: number | undefined,
    record: GrantRecord | undefined,
  ): Promise<number | undefined> {
    // Tokens this process remembers for the grant are not served any more either (a long-running proxy).
    const prefix = `${grant.address.toLowerCase()}\u0000`;
    for (const key of this.#memory.keys()) if (key.startsWith(prefix)) this.#memory.delete(key);
    const meta: GrantMeta = { ...(record?.meta ?? this.#newMeta(grant)), status, reason, ...(aadsts !== undefined ? { aadsts } : {}) };
    const version = await this.#save(grant, meta, record?.secrets ?? { accessTokens: {} }, record);
    this.#statusChanged(grant, record?.meta.status ?? 'unknown', meta);
    return version;
  }

  #statusChanged(grant: ResolvedGrant, from: GrantStatus, meta: GrantMeta): void {
    if (from === meta.status) return;
    const change: StatusChange = {
      mailbox: grant.address,
      from,
      to: meta.status,
      ...(meta.reason ? { reason: meta.reason } : {}),
      ...(meta.aadsts !== undefined ? { aadsts: meta.aadsts } : {}),
      at: new Date(this.#now()).toISOString(),
    };
    this.#onStatusChange?.(change);
    const delivery = import('./alerts.ts').then(({ sendAlert }) => sendAlert(this.#loaded.config.alerts, change));
    this.#alerts.add(delivery);
    void delivery.finally(() => this.#alerts.delete(delivery));
  }

  /**
   * Forgets a token a server refused, so the next getAccessToken for this mailbox and protocol
   * refreshes (one refresh-and-retry when a server rejects a token). Stored copies of that token
   * are skipped too, in this process. With `refused`, nothing happens unless that is still the
   * current token (another caller may have refreshed meanwhile).
   */
  invalidate(mailbox: string, protocol: Protocol, refused?: string): void {
    const key = `${mailbox.toLowerCase()}\u0000${protocol}`;
    const cached = this.#memory.get(key);
    if (refused !== undefined) {
      this.#rejected.add(refused);
      if (cached?.token !== refused) return;
    }
    if (cached) this.#rejected.add(cached.token);
    this.#memory.delete(key);
  }

  /** Resolves when every alert started so far has been delivered (or given up). */
  async settled(): Promise<void> {
    await Promise.all([...this.#alerts]);
  }

  /**
   * Runs refreshIdleGrants every `everyMs` (default 6 hours) until the returned function is called.
   * Failures are already statuses and alerts; the schedule goes on.
   */
  scheduleIdleRefresh(everyMs = 6 * 3_600_000, maxIdleMs?: number): () => void {
    const timer = setInterval(() => void this.refreshIdleGrants(maxIdleMs).catch(() => {}), everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Refreshes delegated grants whose last refresh is older than `maxIdleMs` (default 30 days),
   * well inside Entra's 90-day inactivity limit. Returns the mailboxes refreshed.
   */
  async refreshIdleGrants(maxIdleMs = 30 * 86_400_000): Promise<string[]> {
    const refreshed: string[] = [];
    for (const meta of await this.#store.listMeta()) {
      if (meta.grant === 'client_credentials' || meta.status === 'needs_sign_in') continue;
      if ((meta.refreshedAt ?? meta.createdAt) > this.#now() - maxIdleMs) continue;
      const grant = resolveGrant(this.#loaded, meta.mailbox);
      const protocol = grant.mailbox.protocols[0]!;
      this.#memory.delete(`${grant.address.toLowerCase()}\u0000${protocol}`);
      const record = await this.#store.get(grant.address);
      await this.#refresh(grant, protocol, `${grant.address.toLowerCase()}\u0000${protocol}`, record);
      refreshed.push(grant.address);
    }
    return refreshed;
  }
}
