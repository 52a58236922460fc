// What `mailbridge fetch` has saved into a folder: for each source (mailbox, protocol, IMAP
// folder), the server's ids of the messages whose files it wrote there (POP3 UIDL, IMAP
// `<uidValidity>:<uid>`). It lives in the folder it describes (`.mailbridge-fetched.json`), so a
// copy of a mailbox in another folder is a copy of its own, and it goes wherever the files go.
// `fetch --delete` removes from the server every recorded message still there, also those saved
// by earlier runs. An id is added only after its file is on the disk, and the record is replaced
// atomically, so a crash can lose at most the latest additions, never damage the record.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MailbridgeError } from '../../errors.ts';
import type { SourceProtocol } from '../../transport/types.ts';
import { writeFileDurably } from './durable-files.ts';

export const RECORD_FILE = '.mailbridge-fetched.json';

export interface SourceKey {
  protocol: SourceProtocol;
  mailbox: string;
  /** IMAP only. */
  folder?: string;
}

interface SourceEntry extends SourceKey {
  ids: string[];
}

interface RecordDocument {
  version: 1;
  sources: SourceEntry[];
}

function isEntry(value: unknown): value is SourceEntry {
  const entry = value as SourceEntry;
  return (
    typeof entry === 'object' &&
    entry !== null &&
    (entry.protocol === 'pop' || entry.protocol === 'imap') &&
    typeof entry.mailbox === 'string' &&
    (entry.folder === undefined || typeof entry.folder === 'string') &&
    Array.isArray(entry.ids) &&
    entry.ids.every((id) => typeof id === 'string')
  );
}

function sameSource(a: SourceKey, b: SourceKey): boolean {
  return a.protocol === b.protocol && a.mailbox.toLowerCase() === b.mailbox.toLowerCase() && (a.folder ?? '') === (b.folder ?? '');
}

export class FetchedRecord {
  readonly #dir: string;
  readonly #sources: { key: SourceKey; ids: Set<string> }[];

  private constructor(dir: string, sources: SourceEntry[]) {
    this.#dir = dir;
    this.#sources = sources.map(({ ids, ...key }) => ({ key, ids: new Set(ids) }));
  }

  /** The record of `dir` (empty when there is none yet). A record that cannot be read is an error: guessing could delete unsaved mail. */
  static async load(dir: string): Promise<FetchedRecord> {
    const path = join(dir, RECORD_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new FetchedRecord(dir, []);
      throw err;
    }
    let doc: RecordDocument | undefined;
    try {
      doc = JSON.parse(text) as RecordDocument;
    } catch {
      doc = undefined;
    }
    if (doc?.version !== 1 || !Array.isArray(doc.sources) || !doc.sources.every(isEntry)) {
      throw new MailbridgeError(
        'corrupt_record',
        `${path} is not a record of fetched messages that mailbridge can read. Move it away to start a new one: the .eml files in the folder then count as fetched, and --delete removes only their messages from the server.`,
      );
    }
    return new FetchedRecord(dir, doc.sources);
  }

  /** The ids recorded for one source; a live set: change it, then save(). */
  idsOf(key: SourceKey): Set<string> {
    let source = this.#sources.find((s) => sameSource(s.key, key));
    if (!source) {
      source = { key: { protocol: key.protocol, mailbox: key.mailbox, ...(key.folder !== undefined ? { folder: key.folder } : {}) }, ids: new Set() };
      this.#sources.push(source);
    }
    return source.ids;
  }

  /** Writes the record, replacing the previous one atomically. */
  async save(): Promise<void> {
    const doc: RecordDocument = { version: 1, sources: this.#sources.map(({ key, ids }) => ({ ...key, ids: [...ids] })) };
    await writeFileDurably(this.#dir, RECORD_FILE, `${JSON.stringify(doc, null, 1)}\n`);
  }
}
