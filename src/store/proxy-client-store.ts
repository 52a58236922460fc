// The legacy proxy's local clients: each one a name, the mailboxes it may open, and the hash of
// its app password (never the password). SQLite implements it today, in the token store's file;
// a PostgreSQL store will implement it for many workers.
import { MailbridgeError, type MailbridgeErrorOptions } from '../errors.ts';

export interface ProxyClientRecord {
  /** Short random id, embedded in the client's password so a login finds its row directly. */
  id: string;
  /** Unique (case-insensitive) among clients that are not revoked. */
  name: string;
  /** Lower-cased addresses of configured mailboxes. */
  mailboxes: string[];
  /** Self-describing hash string (algorithm, parameters, salt, hash): see app-password.ts. */
  passwordHash: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** Set once revoked; a revoked client never authenticates again. */
  revokedAt: number | null;
  /** Last successful login, updated at most about once a minute. */
  lastUsedAt: number | null;
}

export interface NewProxyClient {
  id: string;
  name: string;
  mailboxes: string[];
  passwordHash: string;
  createdAt: number;
}

export type ProxyClientStoreErrorCode = 'name_taken' | 'id_taken' | 'invalid_record' | 'corrupt_record' | 'store_unavailable';

export class ProxyClientStoreError extends MailbridgeError<ProxyClientStoreErrorCode> {
  constructor(code: ProxyClientStoreErrorCode, message: string, options: MailbridgeErrorOptions = {}) {
    super(code, message, options);
    this.name = 'ProxyClientStoreError';
  }
}

/** Names people choose for a program ("crm", "Scanner 3rd floor"): no control characters, no quotes. */
export const CLIENT_NAME = /^[\p{L}\p{N}][\p{L}\p{N} ._@+-]{0,63}$/u;
/** The client ids of app-password.ts: 8 characters of lower-case base32. */
export const CLIENT_ID = /^[a-z2-7]{8}$/;

export function nameKey(name: string): string {
  return name.trim().toLowerCase();
}

export interface ProxyClientStore {
  /**
   * Adds a client; throws `name_taken` when a client that is not revoked has the name and
   * `id_taken` when the id exists (draw another).
   */
  add(client: NewProxyClient): Promise<ProxyClientRecord>;
  getById(id: string): Promise<ProxyClientRecord | undefined>;
  /** The client holding the name now; when none does, the most recently revoked one. */
  getByName(name: string): Promise<ProxyClientRecord | undefined>;
  /** Every client, revoked ones included, oldest first. */
  list(): Promise<ProxyClientRecord[]>;
  /** Revokes the client holding the name (the row stays, for the record); undefined when none does. */
  revoke(name: string, when?: number): Promise<ProxyClientRecord | undefined>;
  /** Records a successful login at `when` (never moves backwards). */
  touch(id: string, when: number): Promise<void>;
  close(): Promise<void>;
}
