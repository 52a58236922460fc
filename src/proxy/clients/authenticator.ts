// Decides the proxy's password logins: the username is a configured mailbox, the password an
// app password of a client allowed that mailbox. scrypt costs ~100 ms, so a password verified
// once is remembered (by its HMAC, never in clear) and concurrent identical checks share one run;
// failures are counted per client address and too many refuse that address for a while. The
// caller logs the outcome; nothing here logs, and no outcome carries a secret.
import { isIPv4, isIPv6 } from 'node:net';
import type { Protocol } from '../../config/schema.ts';
import type { ProxyClientRecord, ProxyClientStore } from '../../store/proxy-client-store.ts';
import { parseAppPassword, verifyAppPassword } from './app-password.ts';

// Through getBuiltinModule: an ESM import of node:crypto also loads WebCrypto, which a proxy never uses.
const { createHmac, randomBytes } = process.getBuiltinModule('node:crypto');

export type AuthFailureReason = 'rate_limited' | 'bad_password' | 'unknown_client' | 'revoked' | 'mailbox_not_allowed' | 'unknown_mailbox';

export type AuthOutcome =
  | { ok: true; clientId: string; clientName: string; /** The configured address, as written in the configuration. */ mailbox: string }
  | { ok: false; reason: AuthFailureReason; retryAfterSeconds?: number };

export interface AuthInput {
  username: string;
  password: string;
  remoteAddress: string;
  protocol: Protocol;
}

export interface ProxyAuthenticatorOptions {
  store: ProxyClientStore;
  /** The configured mailbox addresses, read at each login so a reloaded configuration applies. */
  mailboxes: () => string[];
  failedLogins: { max: number; windowSeconds: number };
  /** Milliseconds since the epoch (tests move it). */
  now?: () => number;
  /** How long a verified password is remembered (default 15 minutes). */
  cacheSeconds?: number;
}

/** What the authenticator did, for metrics and for tests that must see single-flight work. */
export interface AuthenticatorStats {
  /** scrypt verifications actually run. */
  scryptRuns: number;
  /** Logins that joined a verification already running for the same password. */
  sharedVerifications: number;
  /** Logins accepted from the verified-password cache. */
  cacheHits: number;
  /** Client addresses with failures remembered now. */
  trackedAddresses: number;
  /** Verified passwords remembered now. */
  cachedPasswords: number;
}

/** Longer than any password or address a person types; longer input is refused unread. */
const MAX_INPUT_BYTES = 1024;
/** Bounds the memory an attacker can make us spend: oldest entries go first. */
const MAX_TRACKED_ADDRESSES = 10_000;
const MAX_CACHED_PASSWORDS = 10_000;
/** last_used_at is informational: one write a minute per client is plenty. */
const TOUCH_EVERY_MS = 60_000;

function unsafe(value: string): boolean {
  return value.length > MAX_INPUT_BYTES || /[\r\n\0]/.test(value) || Buffer.byteLength(value, 'utf8') > MAX_INPUT_BYTES;
}

/** Expands an IPv6 address to its eight hextets (undefined when it is not one). */
function hextets(address: string): string[] | undefined {
  const [head = '', tail, extra] = address.split('::');
  if (extra !== undefined) return undefined;
  const part = (s: string) => (s === '' ? [] : s.split(':'));
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  const all = [...left, ...Array<string>(Math.max(fill, 0)).fill('0'), ...right];
  return all.length === 8 ? all.map((h) => h.toLowerCase().padStart(4, '0')) : undefined;
}

/**
 * The key failures are counted under: an IPv4 address (also when IPv4-mapped), or an IPv6
 * address's /64, since one host commonly owns a whole /64 and could otherwise rotate through it.
 */
export function rateLimitKey(remoteAddress: string): string {
  const address = remoteAddress.trim().replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mapped) return mapped[1]!;
  if (isIPv4(address)) return address;
  if (isIPv6(address)) {
    const h = hextets(address);
    if (h) return `${h.slice(0, 4).join(':')}::/64`;
  }
  return address;
}

interface CachedPassword {
  id: string;
  /** The stored hash string it was verified against: a new password makes the entry useless. */
  hash: string;
  expiresAt: number;
}

export class ProxyAuthenticator {
  readonly #store: ProxyClientStore;
  readonly #mailboxes: () => string[];
  readonly #max: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #cacheMs: number;
  /** Per process: the cache's keys mean nothing outside it, and are no password hashes to crack offline. */
  readonly #hmacKey = randomBytes(32);
  /** Address key -> failure times (ascending, at most `max`), in order of last failure. */
  readonly #failures = new Map<string, number[]>();
  /** HMAC of a password -> the client and hash it was verified against. */
  readonly #verified = new Map<string, CachedPassword>();
  /** HMAC + stored hash -> the running scrypt verification. */
  readonly #inFlight = new Map<string, Promise<boolean>>();
  #configured: { list: string[]; byKey: Map<string, string> } | undefined;
  readonly #stats = { scryptRuns: 0, sharedVerifications: 0, cacheHits: 0 };

  constructor(options: ProxyAuthenticatorOptions) {
    this.#store = options.store;
    this.#mailboxes = options.mailboxes;
    this.#max = options.failedLogins.max;
    this.#windowMs = options.failedLogins.windowSeconds * 1000;
    this.#now = options.now ?? Date.now;
    this.#cacheMs = (options.cacheSeconds ?? 15 * 60) * 1000;
  }

  stats(): AuthenticatorStats {
    return { ...this.#stats, trackedAddresses: this.#failures.size, cachedPasswords: this.#verified.size };
  }

  async authenticate(input: AuthInput): Promise<AuthOutcome> {
    const address = rateLimitKey(input.remoteAddress);
    const now = this.#now();
    const retryAfterMs = this.#blockedFor(address, now);
    if (retryAfterMs > 0) return { ok: false, reason: 'rate_limited', retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)) };
    const outcome = await this.#decide(input);
    if (!outcome.ok) this.#recordFailure(address, this.#now());
    return outcome;
  }

  async #decide(input: AuthInput): Promise<AuthOutcome> {
    // Line-protocol injection or memory games: refused before any store work.
    if (unsafe(input.username) || unsafe(input.password)) return { ok: false, reason: 'bad_password' };
    const mailbox = this.#configuredMailbox(input.username);
    if (mailbox === undefined) return { ok: false, reason: 'unknown_mailbox' };
    const parsed = parseAppPassword(input.password);
    if (!parsed) return { ok: false, reason: 'unknown_client' };
    const client = await this.#store.getById(parsed.id);
    if (!client) return { ok: false, reason: 'unknown_client' };
    if (client.revokedAt !== null) return { ok: false, reason: 'revoked' };

    const mac = createHmac('sha256', this.#hmacKey).update(input.password).digest('base64');
    const now = this.#now();
    const cached = this.#verified.get(mac);
    if (cached && cached.id === client.id && cached.hash === client.passwordHash && cached.expiresAt > now) {
      this.#stats.cacheHits++;
    } else {
      if (cached) this.#verified.delete(mac);
      if (!(await this.#verify(mac, input.password, client.passwordHash))) return { ok: false, reason: 'bad_password' };
      // scrypt took a while: the client may have been revoked or given a new password meanwhile.
      const fresh = await this.#store.getById(client.id);
      if (!fresh || fresh.revokedAt !== null) return { ok: false, reason: 'revoked' };
      if (fresh.passwordHash !== client.passwordHash) return { ok: false, reason: 'bad_password' };
      this.#remember(mac, { id: client.id, hash: client.passwordHash, expiresAt: this.#now() + this.#cacheMs });
    }

    // Checked after the password, so this reason means the real client asked for the wrong mailbox.
    if (!client.mailboxes.includes(mailbox.trim().toLowerCase())) return { ok: false, reason: 'mailbox_not_allowed' };
    await this.#touch(client, now);
    return { ok: true, clientId: client.id, clientName: client.name, mailbox };
  }

  /** The configured address the username names, as written in the configuration. */
  #configuredMailbox(username: string): string | undefined {
    const list = this.#mailboxes();
    if (this.#configured?.list !== list) {
      this.#configured = { list, byKey: new Map(list.map((address) => [address.trim().toLowerCase(), address])) };
    }
    return this.#configured.byKey.get(username.trim().toLowerCase());
  }

  /** One scrypt run per (password, stored hash) at a time, whatever its result. */
  #verify(mac: string, password: string, hash: string): Promise<boolean> {
    const key = `${mac}\n${hash}`;
    const running = this.#inFlight.get(key);
    if (running) {
      this.#stats.sharedVerifications++;
      return running;
    }
    this.#stats.scryptRuns++;
    const run = verifyAppPassword(password, hash).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, run);
    return run;
  }

  #remember(mac: string, entry: CachedPassword): void {
    this.#verified.delete(mac);
    this.#verified.set(mac, entry);
    if (this.#verified.size <= MAX_CACHED_PASSWORDS) return;
    // Insertion order is expiry order: expired entries are at the front.
    const now = this.#now();
    for (const [k, v] of this.#verified) {
      if (v.expiresAt > now) break;
      this.#verified.delete(k);
    }
    while (this.#verified.size > MAX_CACHED_PASSWORDS) this.#verified.delete(this.#verified.keys().next().value!);
  }

  async #touch(client: ProxyClientRecord, now: number): Promise<void> {
    if (client.lastUsedAt !== null && now - client.lastUsedAt < TOUCH_EVERY_MS) return;
    try {
      await this.#store.touch(client.id, now);
    } catch {
      // A busy or read-only store must not refuse a correct login over a "last used" date.
    }
  }

  /** Milliseconds until the address may try again (0: now). */
  #blockedFor(address: string, now: number): number {
    const times = this.#failures.get(address);
    if (!times) return 0;
    const recent = times.filter((t) => t > now - this.#windowMs);
    if (recent.length === 0) {
      this.#failures.delete(address);
      return 0;
    }
    if (recent.length !== times.length) this.#failures.set(address, recent);
    return recent.length >= this.#max ? recent[0]! + this.#windowMs - now : 0;
  }

  #recordFailure(address: string, now: number): void {
    const times = (this.#failures.get(address) ?? []).filter((t) => t > now - this.#windowMs);
    times.push(now);
    // Only the newest `max` matter: the oldest of them leaving the window unblocks the address.
    if (times.length > this.#max) times.splice(0, times.length - this.#max);
    // Re-inserted, so the map's order is the order of last failure and the first is the stalest.
    this.#failures.delete(address);
    this.#failures.set(address, times);
    if (this.#failures.size <= MAX_TRACKED_ADDRESSES) return;
    for (const [k, v] of this.#failures) {
      if (v[v.length - 1]! > now - this.#windowMs) break;
      this.#failures.delete(k);
    }
    while (this.#failures.size > MAX_TRACKED_ADDRESSES) this.#failures.delete(this.#failures.keys().next().value!);
  }
}
