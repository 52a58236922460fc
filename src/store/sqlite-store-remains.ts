// A damaged SQLite store must never look like a new one. Before a store is opened (and SQLite would
// happily make an empty database where the old one was), this looks for signs that a store existed
// here: the key file, a non-empty write-ahead log, the data folder's marker (store.json, written the
// first time a store opens here). A database that is missing or empty beside any of them is refused
// with what is missing; and a key is never made while the database holds grants sealed with one.
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { TokenStoreError } from './token-store.ts';

// Through getBuiltinModule, as `mailbridge token` passes here: an ESM import of node:fs also loads fs.promises.
const { readFileSync, statSync, writeFileSync } = process.getBuiltinModule('node:fs');

/** The marker of a data folder that has held a store. */
export function storeMarkerFile(dataDir: string): string {
  return join(dataDir, 'store.json');
}

export interface SqliteStoreRemains {
  /** Why no new key may be made here: grants sealed with the missing one (read only when the key file is missing). */
  whyNoNewKey(): TokenStoreError | undefined;
  /** Marks the data folder as holding a store (once the store opened), if it is not yet. */
  mark(): void;
}

function sizeOf(file: string): number | undefined {
  return statSync(file, { throwIfNoEntry: false })?.size;
}

/**
 * Refuses a store whose database is missing or empty while signs of earlier data remain; else the
 * state of the store, for the key (never made over sealed grants) and the marker.
 */
export function inspectSqliteStore(dbFile: string, dataDir: string, keyFile: string): SqliteStoreRemains {
  const marker = storeMarkerFile(dataDir);
  const dbSize = sizeOf(dbFile);
  // Stat calls only while the database has content: the everyday path costs two of them.
  if (dbSize === undefined || dbSize === 0) {
    const signs: string[] = [];
    if (sizeOf(keyFile) !== undefined) signs.push(`the key file ${keyFile} exists`);
    const wal = sizeOf(`${dbFile}-wal`);
    if (wal) signs.push(`its write-ahead log ${dbFile}-wal holds ${wal} bytes`);
    if (markerNames(marker, dbFile)) signs.push(`the marker ${marker} says this store was made`);
    if (signs.length > 0) {
      const state = dbSize === undefined ? 'is missing' : 'is empty (0 bytes)';
      throw new TokenStoreError(
        'store_unavailable',
        `the token store ${dbFile} ${state}, but ${signs.join(', and ')}: the store (its grants and proxy clients) was damaged or removed, it is not a new one. ` +
          `Nothing was created. Restore ${dbFile} from a backup (with its -wal file if there is one); to start over with an empty store on purpose, move ${dbFile}, its -wal file, ${keyFile} and ${marker} aside.`,
      );
    }
  }
  return {
    whyNoNewKey: () => {
      const grants = dbSize ? countSealedGrants(dbFile) : 0;
      return grants > 0 ? missingKeyError(keyFile, dbFile, marker, grants) : undefined;
    },
    mark: () => {
      if (sizeOf(marker) !== undefined) return;
      try {
        // 'wx': a marker another process wrote a moment ago stays as it is.
        writeFileSync(marker, `${JSON.stringify({ store: 'sqlite', file: dbFile, createdAt: new Date().toISOString() })}\n`, { mode: 0o600, flag: 'wx' });
      } catch {
        // Best effort: the marker only strengthens the check above; the store works without it.
      }
    },
  };
}

/** Whether the data folder's marker names this database (a marker that cannot be read counts: better refuse than lose a store). */
function markerNames(marker: string, dbFile: string): boolean {
  if (sizeOf(marker) === undefined) return false;
  try {
    return (JSON.parse(readFileSync(marker, 'utf8')) as { file?: unknown }).file === dbFile;
  } catch {
    return true;
  }
}

/** Grants in the database (each holds sealed secrets); 0 when it cannot tell (opening the store will say why). */
function countSealedGrants(dbFile: string): number {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(dbFile, { readOnly: true });
    const row = db.prepare('SELECT count(*) AS n FROM grants').get() as { n: number } | undefined;
    return Number(row?.n ?? 0);
  } catch {
    return 0;
  } finally {
    db?.close();
  }
}

/** The refusal to make a new key beside grants sealed with the missing one. */
function missingKeyError(keyFile: string, dbFile: string, marker: string, grants: number): TokenStoreError {
  return new TokenStoreError(
    'key_unreadable',
    `the key file ${keyFile} is missing, but the token store ${dbFile} holds ${grants} grant${grants === 1 ? '' : 's'} sealed with its key; a new key could not open ${grants === 1 ? 'it' : 'them'}, so none was made. ` +
      `Restore the key file from a backup (then chmod 600 ${keyFile}), or set MAILBRIDGE_KEY to the key; to give up those grants, move ${dbFile} (and its -wal file) and ${marker} aside and sign in again.`,
  );
}
