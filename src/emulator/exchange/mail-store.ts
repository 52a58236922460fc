// The emulated mailboxes: folders with UIDs, flags and internal dates, each message a file, the
// index rewritten atomically after every change, so mail survives restarts of the emulator.
// Sessions (POP3, IMAP, SMTP delivery) share one MailboxData per address and hear each other's
// changes through its events (IMAP IDLE pushes EXISTS from them).
import { EventEmitter } from 'node:events';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { mkdir, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../scenario/load.ts';

/** Messages up to this size are read synchronously (see MailboxData.read). */
const SYNC_READ_LIMIT = 256 * 1024;

export interface MessageMeta {
  uid: number;
  flags: string[];
  /** ISO 8601, when the message arrived. */
  internalDate: string;
  size: number;
  /**
   * The message does not end with CRLF, so POP3 sends one more CRLF before the terminating dot
   * (and counts it in LIST and STAT). Absent in indexes written before it was recorded.
   */
  unterminated?: true;
}

/** The metadata of a message stored now: its size, and whether it lacks a final CRLF (from its last two bytes). */
function metaOf(uid: number, size: number, tail: Buffer, flags: string[], internalDate: Date): MessageMeta {
  const unterminated = size > 0 && !(tail.length === 2 && tail[0] === 0x0d && tail[1] === 0x0a);
  return { uid, flags, internalDate: internalDate.toISOString(), size, ...(unterminated ? { unterminated: true as const } : {}) };
}

/** A streamed message went past the size limit; nothing was stored. */
export class MessageTooLargeError extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`The message is larger than ${limit} bytes.`);
    this.limit = limit;
  }
}

export interface FolderData {
  /** Stable number naming the folder's directory (folder names may hold any character). */
  id: number;
  name: string;
  uidValidity: number;
  uidNext: number;
  subscribed: boolean;
  specialUse?: string;
  messages: MessageMeta[];
}

interface MailboxIndex {
  version: 1;
  nextFolderId: number;
  folders: FolderData[];
}

export type MailboxChange =
  { kind: 'exists'; folder: string; uids: number[] } | { kind: 'expunge'; folder: string; uids: number[] } | { kind: 'flags'; folder: string; uids: number[] };

/** The folders a new Exchange Online mailbox has, with their special uses (RFC 6154). */
export const DEFAULT_FOLDERS: { name: string; specialUse?: string }[] = [
  { name: 'INBOX' },
  { name: 'Archive', specialUse: '\\Archive' },
  { name: 'Deleted Items', specialUse: '\\Trash' },
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Junk Email', specialUse: '\\Junk' },
  { name: 'Outbox' },
  { name: 'Sent Items', specialUse: '\\Sent' },
];

/** The message with this UID; `messages` are kept in ascending UID order. */
export function findByUid(messages: readonly MessageMeta[], uid: number): MessageMeta | undefined {
  let lo = 0;
  let hi = messages.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const m = messages[mid]!;
    if (m.uid === uid) return m;
    if (m.uid < uid) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

export class FolderError extends Error {
  readonly code: 'no_such_folder' | 'folder_exists' | 'cannot_delete';
  constructor(code: FolderError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

function sameName(a: string, b: string): boolean {
  // INBOX is case-insensitive in IMAP; other names are compared exactly.
  return a === b || (a.toUpperCase() === 'INBOX' && b.toUpperCase() === 'INBOX');
}

export class MailboxData extends EventEmitter<{ change: [MailboxChange] }> {
  readonly address: string;
  readonly #dir: string;
  #index: MailboxIndex;
  #saving: Promise<void> = Promise.resolve();
  #dirty = false;

  constructor(address: string, dir: string, index: MailboxIndex) {
    super();
    this.setMaxListeners(0);
    this.address = address;
    this.#dir = dir;
    this.#index = index;
  }

  folders(): readonly FolderData[] {
    return this.#index.folders;
  }

  folder(name: string): FolderData | undefined {
    return this.#index.folders.find((f) => sameName(f.name, name));
  }

  requireFolder(name: string): FolderData {
    const folder = this.folder(name);
    if (!folder) throw new FolderError('no_such_folder', `The folder ${name} doesn't exist.`);
    return folder;
  }

  #path(folder: FolderData, uid: number): string {
    return join(this.#dir, String(folder.id), `${uid}.eml`);
  }

  /** Writes the index after the current change; several changes in one tick share one write. */
  #save(): Promise<void> {
    if (this.#dirty) return this.#saving;
    this.#dirty = true;
    this.#saving = this.#saving.then(async () => {
      this.#dirty = false;
      await writeFileAtomic(join(this.#dir, 'index.json'), JSON.stringify(this.#index));
    });
    return this.#saving;
  }

  /** Resolves when every change so far is on disk. */
  flush(): Promise<void> {
    return this.#saving;
  }

  async createFolder(name: string): Promise<FolderData> {
    if (this.folder(name)) throw new FolderError('folder_exists', `A folder named ${name} already exists.`);
    const folder: FolderData = {
      id: this.#index.nextFolderId++,
      name,
      uidValidity: Math.floor(Date.now() / 1000) + this.#index.nextFolderId,
      uidNext: 1,
      subscribed: true,
      messages: [],
    };
    this.#index.folders.push(folder);
    await mkdir(join(this.#dir, String(folder.id)), { recursive: true });
    await this.#save();
    return folder;
  }

  async deleteFolder(name: string): Promise<void> {
    const folder = this.requireFolder(name);
    if (folder.name === 'INBOX' || folder.specialUse) throw new FolderError('cannot_delete', `The folder ${name} can't be deleted.`);
    this.#index.folders = this.#index.folders.filter((f) => f !== folder);
    await this.#save();
    await rm(join(this.#dir, String(folder.id)), { recursive: true, force: true });
  }

  async renameFolder(from: string, to: string): Promise<void> {
    const folder = this.requireFolder(from);
    if (this.folder(to)) throw new FolderError('folder_exists', `A folder named ${to} already exists.`);
    folder.name = to;
    await this.#save();
  }

  async setSubscribed(name: string, subscribed: boolean): Promise<void> {
    this.requireFolder(name).subscribed = subscribed;
    await this.#save();
  }

  /** Stores a message; its file is on disk before the index names it. */
  async append(folderName: string, raw: Buffer, flags: string[] = [], internalDate = new Date()): Promise<MessageMeta> {
    const folder = this.requireFolder(folderName);
    const uid = folder.uidNext++;
    await writeFile(this.#path(folder, uid), raw);
    const meta = metaOf(uid, raw.length, raw.subarray(-2), [...new Set(flags)], internalDate);
    folder.messages.push(meta);
    await this.#save();
    this.emit('change', { kind: 'exists', folder: folder.name, uids: [uid] });
    return meta;
  }

  /**
   * Stores a message read from a stream, chunk by chunk, so it never sits whole in memory. Past
   * `maxBytes` the rest is read and dropped (the sender can still be told why), the file removed
   * and MessageTooLargeError thrown. The index names the message only once its file is complete.
   */
  async appendStream(folderName: string, source: Readable, maxBytes: number, internalDate = new Date()): Promise<MessageMeta> {
    const folder = this.requireFolder(folderName);
    const uid = folder.uidNext++;
    const path = this.#path(folder, uid);
    let size = 0;
    let tail = Buffer.alloc(0);
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        if (size > maxBytes) return callback();
        tail = Buffer.concat([tail, chunk.subarray(-2)]).subarray(-2);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(source, counter, createWriteStream(path));
      if (size > maxBytes) throw new MessageTooLargeError(maxBytes);
    } catch (err) {
      await unlink(path).catch(() => {});
      throw err;
    }
    const meta = metaOf(uid, size, tail, [], internalDate);
    folder.messages.push(meta);
    await this.#save();
    this.emit('change', { kind: 'exists', folder: folder.name, uids: [uid] });
    return meta;
  }

  /** Stores many messages with one index write at the end (seeding large mailboxes). */
  async appendMany(folderName: string, messages: { raw: Buffer; internalDate: Date }[]): Promise<void> {
    const folder = this.requireFolder(folderName);
    const uids: number[] = [];
    for (const { raw, internalDate } of messages) {
      const uid = folder.uidNext++;
      await writeFile(this.#path(folder, uid), raw);
      folder.messages.push(metaOf(uid, raw.length, raw.subarray(-2), [], internalDate));
      uids.push(uid);
    }
    await this.#save();
    if (uids.length > 0) this.emit('change', { kind: 'exists', folder: folder.name, uids });
  }

  /**
   * A message's bytes. Small ones are read synchronously: a few microseconds from the page cache,
   * where the asynchronous read costs four thread-pool round trips; large ones asynchronously,
   * so they never hold up other sessions.
   */
  read(folder: FolderData, uid: number): Promise<Buffer> {
    const size = findByUid(folder.messages, uid)?.size ?? Infinity;
    if (size <= SYNC_READ_LIMIT) {
      // A throw inside the executor becomes the promise's rejection.
      return new Promise((resolve) => resolve(readFileSync(this.#path(folder, uid))));
    }
    return readFile(this.#path(folder, uid));
  }

  /** Whether a message is large enough that it should be streamed rather than read whole. */
  isLarge(meta: MessageMeta): boolean {
    return meta.size > SYNC_READ_LIMIT;
  }

  /** A message's bytes as a stream, for large messages. */
  stream(folder: FolderData, uid: number): Readable {
    return createReadStream(this.#path(folder, uid), { highWaterMark: 256 * 1024 });
  }

  /** Adds, removes or replaces flags on the given messages; returns those that changed. */
  async setFlags(folderName: string, uids: number[], flags: string[], mode: 'add' | 'remove' | 'set'): Promise<MessageMeta[]> {
    const folder = this.requireFolder(folderName);
    const wanted = new Set(uids);
    const changed: MessageMeta[] = [];
    for (const m of folder.messages) {
      if (!wanted.has(m.uid)) continue;
      const before = m.flags.join(' ');
      const current = new Set(m.flags);
      if (mode === 'set') current.clear();
      for (const f of flags) {
        if (mode === 'remove') current.delete(f);
        else current.add(f);
      }
      m.flags = [...current];
      if (m.flags.join(' ') !== before) changed.push(m);
    }
    if (changed.length > 0) {
      await this.#save();
      this.emit('change', { kind: 'flags', folder: folder.name, uids: changed.map((m) => m.uid) });
    }
    return changed;
  }

  /** Removes the given messages (all marked \Deleted when `uids` is absent); returns their UIDs. */
  async expunge(folderName: string, uids?: number[]): Promise<number[]> {
    const folder = this.requireFolder(folderName);
    const wanted = uids ? new Set(uids) : undefined;
    const removed = folder.messages.filter((m) => (wanted ? wanted.has(m.uid) : m.flags.includes('\\Deleted')));
    if (removed.length === 0) return [];
    const gone = new Set(removed.map((m) => m.uid));
    folder.messages = folder.messages.filter((m) => !gone.has(m.uid));
    await this.#save();
    this.emit('change', { kind: 'expunge', folder: folder.name, uids: [...gone] });
    await Promise.all(removed.map((m) => unlink(this.#path(folder, m.uid)).catch(() => {})));
    return [...gone];
  }

  /** Copies messages; returns [source UID, new UID] pairs (for COPYUID). */
  async copy(fromName: string, uids: number[], toName: string): Promise<[number, number][]> {
    const from = this.requireFolder(fromName);
    this.requireFolder(toName);
    const pairs: [number, number][] = [];
    for (const m of from.messages.filter((x) => uids.includes(x.uid))) {
      const raw = await this.read(from, m.uid);
      const copy = await this.append(
        toName,
        raw,
        m.flags.filter((f) => f !== '\\Recent'),
        new Date(m.internalDate),
      );
      pairs.push([m.uid, copy.uid]);
    }
    return pairs;
  }
}

export type MailboxSeed = { emlDir: string } | { generate: { count: number; sizeBytes: number } };

/** A plausible text message of about `size` bytes, the same for the same `n`. */
export function generatedMessage(address: string, n: number, size: number): Buffer {
  const date = new Date(Date.UTC(2026, 0, 1, 8, 0, 0) + n * 60_000).toUTCString().replace('GMT', '+0000');
  const header = [
    `From: Sender ${n} <sender${n}@fabrikam.example>`,
    `To: <${address}>`,
    `Subject: Generated message ${n}`,
    `Date: ${date}`,
    `Message-ID: <generated-${n}@fabrikam.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    '',
  ].join('\r\n');
  const line = `Line of message ${n}: the quick brown fox jumps over the lazy dog 0123456789.\r\n`;
  const lines: string[] = [];
  let length = header.length;
  while (length + line.length <= size) {
    lines.push(line);
    length += line.length;
  }
  lines.push('.'.repeat(Math.max(0, size - length - 2)) + '\r\n');
  return Buffer.from(header + lines.join(''), 'latin1');
}

/** Opens (or creates and seeds) mailboxes under one folder of the data directory. */
export class MailStore {
  readonly #root: string;
  readonly #open = new Map<string, Promise<MailboxData>>();

  constructor(root: string) {
    this.#root = root;
  }

  #dirOf(address: string): string {
    return join(this.#root, encodeURIComponent(address.toLowerCase()));
  }

  open(address: string, seed?: MailboxSeed): Promise<MailboxData> {
    const key = address.toLowerCase();
    let opening = this.#open.get(key);
    if (!opening) {
      opening = this.#load(address, seed);
      this.#open.set(key, opening);
      opening.catch(() => this.#open.delete(key));
    }
    return opening;
  }

  async #load(address: string, seed?: MailboxSeed): Promise<MailboxData> {
    const dir = this.#dirOf(address);
    try {
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as MailboxIndex;
      return new MailboxData(address, dir, index);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const index: MailboxIndex = { version: 1, nextFolderId: 0, folders: [] };
    const mailbox = new MailboxData(address, dir, index);
    for (const f of DEFAULT_FOLDERS) {
      const folder = await mailbox.createFolder(f.name);
      if (f.specialUse) folder.specialUse = f.specialUse;
    }
    if (seed) await seedMailbox(mailbox, seed);
    await mailbox.flush();
    return mailbox;
  }

  async flushAll(): Promise<void> {
    for (const opening of this.#open.values()) await (await opening).flush();
  }
}

async function seedMailbox(mailbox: MailboxData, seed: MailboxSeed): Promise<void> {
  const now = new Date();
  if ('emlDir' in seed) {
    const names = (await readdir(seed.emlDir)).filter((n) => n.toLowerCase().endsWith('.eml')).sort();
    const batch = [];
    for (const name of names) batch.push({ raw: await readFile(join(seed.emlDir, name)), internalDate: now });
    await mailbox.appendMany('INBOX', batch);
    return;
  }
  // In chunks, so a very large generated mailbox never sits whole in memory.
  const { count, sizeBytes } = seed.generate;
  for (let start = 1; start <= count; start += 500) {
    const batch = [];
    for (let n = start; n < Math.min(start + 500, count + 1); n++) {
      batch.push({ raw: generatedMessage(mailbox.address, n, sizeBytes), internalDate: new Date(Date.UTC(2026, 0, 1, 8, 0, 0) + n * 60_000) });
    }
    await mailbox.appendMany('INBOX', batch);
  }
}
