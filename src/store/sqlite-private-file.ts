// A SQLite store holds sealed grants and app-password hashes: its file is for its owner only.
// SQLite creates a new database file with 0644 under the usual umask and gives its -wal and -shm
// the database file's mode, so the file is made 0600 before SQLite opens it, and an existing
// one (written by an earlier version) is tightened with its -wal and -shm.

// node:fs through getBuiltinModule: an ESM import also loads fs.promises and its streams, which
// `mailbridge token` does without.
const { chmodSync, closeSync, constants, fchmodSync, fstatSync, openSync, statSync } = process.getBuiltinModule('node:fs');

const PRIVATE = 0o600;

/** Chmods `file` to 0600 when group or others may use it; a file that is not there is left alone. */
function tighten(file: string): void {
  try {
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, PRIVATE);
  } catch {
    // Not there, or not ours to change: SQLite reports what matters when it opens the store.
  }
}

/** Call right before `new DatabaseSync(file)`: the file exists, empty or not, with mode 0600. */
export function makeDatabaseFilePrivate(file: string): void {
  try {
    // O_CREAT without O_TRUNC or O_EXCL: an existing database is opened as it is, never emptied.
    const fd = openSync(file, constants.O_RDWR | constants.O_CREAT, PRIVATE);
    try {
      if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, PRIVATE);
    } finally {
      closeSync(fd);
    }
  } catch {
    // SQLite's own open says why the file cannot be opened.
  }
  tighten(`${file}-wal`);
  tighten(`${file}-shm`);
}
