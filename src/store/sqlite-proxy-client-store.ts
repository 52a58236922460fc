// The proxy's clients in SQLite (node:sqlite), in the token store's file (tokens.db) on a
// connection of their own: WAL so logins read while the CLI writes, a busy timeout so several
// processes share it. Only hashes of the app passwords are kept.
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  CLIENT_ID,
  CLIENT_NAME,
  nameKey,
  ProxyClientStoreError,
  type NewProxyClient,
  type ProxyClientRecord,
  type ProxyClientStore,
} from './proxy-client-store.ts';
import { makeDatabaseFilePrivate } from './sqlite-private-file.ts';

// node:fs through getBuiltinModule: an ESM import also loads fs.promises and its streams, which a
// proxy at rest does without.
const { chmodSync, existsSync, mkdirSync } = process.getBuiltinModule('node:fs');

// The partial unique index lets a revoked client's name be given to a new client while the old
// row stays for the record.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS proxy_clients (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  name_key TEXT NOT NULL,
  mailboxes TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  last_used_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS proxy_clients_active_name ON proxy_clients (name_key) WHERE revoked_at IS NULL;`;

const COLUMNS = 'id, name, mailboxes, password_hash, created_at, revoked_at, last_used_at';

interface Row {
  id: string;
  name: string;
  mailboxes: string;
  password_hash: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

/** SQLite's extended result codes for the two unique constraints. */
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;

export class SqliteProxyClientStore implements ProxyClientStore {
  readonly #db: DatabaseSync;
  readonly #file: string;
  /** Compiled once: a login reads by id, and compiling costs more than running. */
  readonly #sql: Record<'insert' | 'byId' | 'byName' | 'list' | 'revoke' | 'touch', StatementSync>;

  private constructor(db: DatabaseSync, file: string) {
    this.#db = db;
    this.#file = file;
    this.#sql = {
      insert: db.prepare('INSERT INTO proxy_clients (id, name, name_key, mailboxes, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
      byId: db.prepare(`SELECT ${COLUMNS} FROM proxy_clients WHERE id = ?`),
      byName: db.prepare(`SELECT ${COLUMNS} FROM proxy_clients WHERE name_key = ? ORDER BY revoked_at IS NOT NULL, revoked_at DESC LIMIT 1`),
      list: db.prepare(`SELECT ${COLUMNS} FROM proxy_clients ORDER BY created_at, id`),
      revoke: db.prepare(`UPDATE proxy_clients SET revoked_at = ? WHERE name_key = ? AND revoked_at IS NULL RETURNING ${COLUMNS}`),
      touch: db.prepare('UPDATE proxy_clients SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)'),
    };
  }

  static async open(file: string): Promise<SqliteProxyClientStore> {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const created = !existsSync(file);
    let db: DatabaseSync;
    try {
      makeDatabaseFilePrivate(file);
      db = new DatabaseSync(file);
      // Same settings as the token store: see sqlite-token-store.ts.
      db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;');
      db.exec(SCHEMA);
    } catch (err) {
      throw new ProxyClientStoreError('store_unavailable', `cannot open the proxy client store ${file}: ${(err as Error).message}`);
    }
    // Hashes are slow to attack, not impossible: keep a file we created private (SQLite gives its
    // -wal and -shm files the database file's mode).
    if (created) {
      try {
        chmodSync(file, 0o600);
      } catch {
        // Best effort, as before: the store works without it.
      }
    }
    return new SqliteProxyClientStore(db, file);
  }

  #parse(row: Row): ProxyClientRecord {
    let mailboxes: unknown;
    try {
      mailboxes = JSON.parse(row.mailboxes);
    } catch {
      mailboxes = undefined;
    }
    if (!Array.isArray(mailboxes) || !mailboxes.every((m) => typeof m === 'string')) {
      throw new ProxyClientStoreError('corrupt_record', `the proxy client ${row.name} (${row.id}) in ${this.#file} is damaged; revoke it and add it again`);
    }
    return {
      id: row.id,
      name: row.name,
      mailboxes,
      passwordHash: row.password_hash,
      createdAt: row.created_at,
      revokedAt: row.revoked_at,
      lastUsedAt: row.last_used_at,
    };
  }

  async add(client: NewProxyClient): Promise<ProxyClientRecord> {
    const name = client.name.trim();
    if (!CLIENT_NAME.test(name))
      throw new ProxyClientStoreError(
        'invalid_record',
        `"${name}" cannot be a client name: use up to 64 letters, digits, spaces and . _ @ + -, starting with a letter or digit`,
      );
    if (!CLIENT_ID.test(client.id)) throw new ProxyClientStoreError('invalid_record', 'a client id is 8 characters of lower-case base32');
    if (client.mailboxes.length === 0) throw new ProxyClientStoreError('invalid_record', 'a client needs at least one mailbox');
    const mailboxes = [...new Set(client.mailboxes.map((m) => m.trim().toLowerCase()))];
    try {
      this.#sql.insert.run(client.id, name, nameKey(name), JSON.stringify(mailboxes), client.passwordHash, client.createdAt);
    } catch (err) {
      const code = (err as { errcode?: number }).errcode;
      if (code === SQLITE_CONSTRAINT_UNIQUE) throw new ProxyClientStoreError('name_taken', `a proxy client named "${name}" already exists`);
      if (code === SQLITE_CONSTRAINT_PRIMARYKEY) throw new ProxyClientStoreError('id_taken', `the client id ${client.id} is taken`);
      throw new ProxyClientStoreError('store_unavailable', `cannot write to ${this.#file}: ${(err as Error).message}`);
    }
    return { id: client.id, name, mailboxes, passwordHash: client.passwordHash, createdAt: client.createdAt, revokedAt: null, lastUsedAt: null };
  }

  async getById(id: string): Promise<ProxyClientRecord | undefined> {
    const row = this.#sql.byId.get(id) as Row | undefined;
    return row ? this.#parse(row) : undefined;
  }

  async getByName(name: string): Promise<ProxyClientRecord | undefined> {
    const row = this.#sql.byName.get(nameKey(name)) as Row | undefined;
    return row ? this.#parse(row) : undefined;
  }

  async list(): Promise<ProxyClientRecord[]> {
    return (this.#sql.list.all() as unknown as Row[]).map((row) => this.#parse(row));
  }

  async revoke(name: string, when = Date.now()): Promise<ProxyClientRecord | undefined> {
    const row = this.#sql.revoke.get(when, nameKey(name)) as Row | undefined;
    return row ? this.#parse(row) : undefined;
  }

  async touch(id: string, when: number): Promise<void> {
    this.#sql.touch.run(when, id, when);
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}
