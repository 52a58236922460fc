// The embedded token store: one SQLite file (node:sqlite), WAL so readers never wait for the
// writer, a busy timeout so several processes can share it. Metadata in clear, secrets sealed.
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SecretBox } from './encryption.ts';
import { makeDatabaseFilePrivate } from './sqlite-private-file.ts';
import { TokenStoreError, type GrantMeta, type GrantRecord, type GrantSecrets, type TokenStore } from './token-store.ts';

// node:fs through getBuiltinModule: an ESM import also loads fs.promises and its streams, which
// `mailbridge token` does without.
const { mkdirSync } = process.getBuiltinModule('node:fs');

const SCHEMA = `
CREATE TABLE IF NOT EXISTS grants (
  mailbox TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  meta TEXT NOT NULL,
  secrets TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);`;

interface GrantRow {
  mailbox: string;
  version: number;
  meta: string;
  secrets: string;
}

function key(mailbox: string): string {
  return mailbox.trim().toLowerCase();
}

export class SqliteTokenStore implements TokenStore {
  readonly #db: DatabaseSync;
  /**
   * Leases on their own connection without fsync: a lease lost to a crash simply expires. Opened
   * at the first lease, as only a refresh takes one (`mailbridge token` with a fresh token does not).
   */
  #leases: { db: DatabaseSync; lease: StatementSync; release: StatementSync } | undefined;
  #closed = false;
  readonly #box: SecretBox;
  readonly #file: string;
  /** Compiled once: a refresh runs several of these, and compiling costs more than running. */
  readonly #sql: Record<'get' | 'version' | 'list' | 'insert' | 'update' | 'delete', StatementSync>;

  private constructor(db: DatabaseSync, box: SecretBox, file: string) {
    this.#db = db;
    this.#box = box;
    this.#file = file;
    this.#sql = {
      get: db.prepare('SELECT mailbox, version, meta, secrets FROM grants WHERE mailbox = ?'),
      version: db.prepare('SELECT version FROM grants WHERE mailbox = ?'),
      list: db.prepare('SELECT mailbox, meta FROM grants ORDER BY mailbox'),
      insert: db.prepare('INSERT INTO grants (mailbox, version, meta, secrets, updated_at) VALUES (?, 1, ?, ?, ?) ON CONFLICT(mailbox) DO NOTHING'),
      update: db.prepare('UPDATE grants SET version = version + 1, meta = ?, secrets = ?, updated_at = ? WHERE mailbox = ? AND version = ?'),
      delete: db.prepare('DELETE FROM grants WHERE mailbox = ?'),
    };
  }

  static async open(file: string, box: SecretBox): Promise<SqliteTokenStore> {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    let db: DatabaseSync;
    try {
      makeDatabaseFilePrivate(file);
      db = new DatabaseSync(file);
      // WAL + NORMAL: every write is atomic and survives a crash of the process; only an OS crash
      // or power loss can roll back the newest write, and then the refresh token before it is
      // still valid (Entra keeps old refresh tokens until they expire), so no grant is lost.
      // FULL would add an fsync to every refresh.
      db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;');
      db.exec(SCHEMA);
    } catch (err) {
      throw new TokenStoreError('store_unavailable', `cannot open the token store ${file}: ${(err as Error).message}`);
    }
    return new SqliteTokenStore(db, box, file);
  }

  /** The lease connection and its statements, opened on first use (never after close). */
  #leaseSql(): { lease: StatementSync; release: StatementSync } {
    if (this.#leases) return this.#leases;
    if (this.#closed) throw new TokenStoreError('store_unavailable', `the token store ${this.#file} is closed`);
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(this.#file);
      db.exec('PRAGMA busy_timeout = 5000; PRAGMA synchronous = OFF;');
      this.#leases = {
        db,
        lease: db.prepare(
          `INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
         WHERE leases.expires_at < ? OR leases.owner = excluded.owner`,
        ),
        release: db.prepare('DELETE FROM leases WHERE name = ? AND owner = ?'),
      };
      return this.#leases;
    } catch (err) {
      db?.close();
      throw new TokenStoreError('store_unavailable', `cannot open the token store ${this.#file}: ${(err as Error).message}`);
    }
  }

  #parse(row: GrantRow): GrantRecord {
    let meta: GrantMeta;
    let secrets: GrantSecrets;
    try {
      meta = JSON.parse(row.meta) as GrantMeta;
    } catch {
      throw new TokenStoreError('corrupt_record', `the record of ${row.mailbox} in ${this.#file} is damaged; sign in again to replace it`);
    }
    const opened = this.#box.open(row.secrets, row.mailbox);
    try {
      secrets = JSON.parse(opened) as GrantSecrets;
    } catch {
      throw new TokenStoreError('corrupt_record', `the stored secrets of ${row.mailbox} are damaged; sign in again to replace them`);
    }
    return { meta, secrets, version: row.version };
  }

  async get(mailbox: string): Promise<GrantRecord | undefined> {
    const row = this.#sql.get.get(key(mailbox)) as GrantRow | undefined;
    return row ? this.#parse(row) : undefined;
  }

  async version(mailbox: string): Promise<number | undefined> {
    const row = this.#sql.version.get(key(mailbox)) as { version: number } | undefined;
    return row?.version;
  }

  async listMeta(): Promise<GrantMeta[]> {
    const rows = this.#sql.list.all() as unknown as Pick<GrantRow, 'mailbox' | 'meta'>[];
    return rows.flatMap((r) => {
      try {
        return [JSON.parse(r.meta) as GrantMeta];
      } catch {
        return [];
      }
    });
  }

  async put(meta: GrantMeta, secrets: GrantSecrets, expectedVersion: number): Promise<number | undefined> {
    const id = key(meta.mailbox);
    const sealed = this.#box.seal(JSON.stringify(secrets), id);
    const now = Date.now();
    if (expectedVersion === 0) {
      const result = this.#sql.insert.run(id, JSON.stringify(meta), sealed, now);
      return result.changes === 1 ? 1 : undefined;
    }
    const result = this.#sql.update.run(JSON.stringify(meta), sealed, now, id, expectedVersion);
    return result.changes === 1 ? expectedVersion + 1 : undefined;
  }

  async delete(mailbox: string): Promise<boolean> {
    return this.#sql.delete.run(key(mailbox)).changes === 1;
  }

  async tryLease(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const result = this.#leaseSql().lease.run(name, owner, now + ttlMs, now);
    return result.changes === 1;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    this.#leaseSql().release.run(name, owner);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#leases?.db.close();
    this.#db.close();
  }
}
