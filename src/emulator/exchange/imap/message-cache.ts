// Parsed structures of stored messages, per (mailbox, folder, UID): messages never change once
// stored and UIDs are never reused, so an entry stays valid until evicted. Keeps the top-level
// header bytes too, so ENVELOPE, BODYSTRUCTURE and header fetches need no file read when cached.
import type { FolderData, MailboxData } from '../mail-store.ts';
import { bodyStructure, envelope, parseMessage, type MimeNode } from './mime.ts';

export interface CachedMessage {
  root: MimeNode;
  /** Bytes [0, root.bodyStart) of the message: offsets in `root.fields` index into it. */
  header: Buffer;
  envelope?: string;
  bodyStructure?: string;
  body?: string;
}

const MAX_ENTRIES = 5000;
/** Headers longer than this are not kept (the structure still is). */
const MAX_HEADER_BYTES = 64 * 1024;

const mailboxIds = new WeakMap<MailboxData, number>();
let nextMailboxId = 1;
const entries = new Map<string, CachedMessage>();

function key(data: MailboxData, folder: FolderData, uid: number): string {
  let id = mailboxIds.get(data);
  if (id === undefined) {
    id = nextMailboxId++;
    mailboxIds.set(data, id);
  }
  return `${id}/${folder.id}/${folder.uidValidity}/${uid}`;
}

export function cachedMessage(data: MailboxData, folder: FolderData, uid: number): CachedMessage | undefined {
  const k = key(data, folder, uid);
  const hit = entries.get(k);
  if (hit) {
    // Most recently used last.
    entries.delete(k);
    entries.set(k, hit);
  }
  return hit;
}

/** Parses (once) and caches the structure of a message whose bytes are at hand. */
export function structureOf(data: MailboxData, folder: FolderData, uid: number, raw: Buffer): CachedMessage {
  const hit = cachedMessage(data, folder, uid);
  if (hit) return hit;
  const root = parseMessage(raw);
  const entry: CachedMessage = {
    root,
    header: root.bodyStart <= MAX_HEADER_BYTES ? Buffer.from(raw.subarray(0, root.bodyStart)) : Buffer.alloc(0),
  };
  entries.set(key(data, folder, uid), entry);
  if (entries.size > MAX_ENTRIES) {
    const oldest = entries.keys().next().value;
    if (oldest !== undefined) entries.delete(oldest);
  }
  return entry;
}

/** Whether the cached header can serve header-only sections (it was not too long to keep). */
export function headerCached(entry: CachedMessage): boolean {
  return entry.header.length === entry.root.bodyStart;
}

export function envelopeOf(entry: CachedMessage): string {
  return (entry.envelope ??= envelope(entry.root));
}

export function bodyStructureOf(entry: CachedMessage, extended: boolean): string {
  if (extended) return (entry.bodyStructure ??= bodyStructure(entry.root, true));
  return (entry.body ??= bodyStructure(entry.root, false));
}
