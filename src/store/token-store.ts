// The token store's contract: one record per grant (per mailbox), its secrets encrypted, every
// write a compare-and-set on the record's version so a rotated refresh token is never lost to
// a concurrent writer, and a lease so that one process at a time refreshes a grant. SQLite
// implements it today; a PostgreSQL store will implement it for many workers.
import type { GrantType, Protocol } from '../config/schema.ts';
import { MailbridgeError, type MailbridgeErrorOptions } from '../errors.ts';

export type GrantStatus = 'ok' | 'expiring' | 'needs_sign_in' | 'broken_configuration' | 'unknown';

/** What may be read without the key: nothing here is a credential. */
export interface GrantMeta {
  mailbox: string;
  app: string;
  clientId: string;
  tenant: string;
  grant: GrantType;
  status: GrantStatus;
  /** Why the status is what it is (an AADSTS code and its explanation's title), never a token. */
  reason?: string;
  aadsts?: number;
  /** The signed-in account (delegated grants). */
  account?: { homeAccountId: string; username: string; tenantId: string };
  createdAt: number;
  /** Last time a refresh (or a first sign-in) succeeded. */
  refreshedAt?: number;
  /** Expiry of each protocol's current access token (ms since epoch). */
  accessTokenExpiry: Partial<Record<Protocol, number>>;
}

/** The credentials of a grant; stored only encrypted. */
export interface GrantSecrets {
  /** msal-node's serialized cache: refresh token, ID token, account. */
  msalCache?: string;
  accessTokens: Partial<Record<Protocol, { token: string; expiresOnMs: number }>>;
}

export interface GrantRecord {
  meta: GrantMeta;
  secrets: GrantSecrets;
  /** Incremented by every write; a write naming an older version is refused. */
  version: number;
}

export type TokenStoreErrorCode = 'cannot_decrypt' | 'key_unreadable' | 'corrupt_record' | 'store_unavailable';

export class TokenStoreError extends MailbridgeError<TokenStoreErrorCode> {
  constructor(code: TokenStoreErrorCode, message: string, options: MailbridgeErrorOptions = {}) {
    super(code, message, options);
    this.name = 'TokenStoreError';
  }
}

export interface TokenStore {
  get(mailbox: string): Promise<GrantRecord | undefined>;
  /** The record's current version without reading its secrets (undefined: no record). */
  version(mailbox: string): Promise<number | undefined>;
  /** Only the metadata: works without decrypting (accounts listing, status pages). */
  listMeta(): Promise<GrantMeta[]>;
  /**
   * Writes the record if its version is still `expectedVersion` (0 for a new record); returns
   * the new version, or undefined when someone else wrote first (read again and retry).
   */
  put(meta: GrantMeta, secrets: GrantSecrets, expectedVersion: number): Promise<number | undefined>;
  delete(mailbox: string): Promise<boolean>;
  /** Takes a named lease for `ttlMs` unless another owner holds an unexpired one. */
  tryLease(name: string, owner: string, ttlMs: number): Promise<boolean>;
  releaseLease(name: string, owner: string): Promise<void>;
  close(): Promise<void>;
}
