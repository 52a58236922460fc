// FETCH and UID FETCH (RFC 3501 section 6.4.5). Items are answered in the order asked, UID added
// last for UID FETCH when not asked for (as Exchange does). Message files are read ahead of
// the writer and each is read once; bodies are written as slices of the file's buffer, never
// copied or re-encoded; structures are parsed once per message and cached.
import type { MessageMeta } from '../../mail-store.ts';
import { flagList, internalDate } from '../format.ts';
import { bodyStructureOf, cachedMessage, envelopeOf, headerCached, structureOf, type CachedMessage } from '../message-cache.ts';
import { sectionBytes, sectionRanges, type Section, type SectionText } from '../mime.ts';
import { tokenize, tokenText, type ImapToken } from '../parser.ts';
import { IMAP } from '../replies.ts';
import { parseSequenceSet, resolveSet } from '../sequence.ts';
import { findMeta, type ImapConnection } from '../session.ts';
import { SELECTED, type CommandSpec, type ImapCommand } from './types.ts';

type SimpleItem = 'FLAGS' | 'UID' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' | 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT';

type FetchItem =
  { kind: SimpleItem } | { kind: 'section'; peek: boolean; section: Section; label: string; partial: { start: number; length: number } | undefined };

const SIMPLE = new Set<string>(['FLAGS', 'UID', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT']);
const MACROS: Record<string, SimpleItem[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

const SECTION_ITEM = /^(BODY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d{1,10})\.(\d{1,10})>)?$/i;
const SECTION_SPEC = /^((?:[1-9]\d{0,4}\.)*[1-9]\d{0,4})?(?:^|\.|$)(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?(?: \((.*)\))?$/i;

function parseSection(spec: string): { section: Section; label: string } | undefined {
  const m = SECTION_SPEC.exec(spec);
  if (!m) return undefined;
  const path = m[1] ? m[1].split('.').map(Number) : [];
  const text = (m[2]?.toUpperCase() ?? '') as SectionText;
  if (path.length > 32) return undefined;
  if (text === 'MIME' && path.length === 0) return undefined;
  const wantsFields = text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT';
  if (wantsFields !== (m[3] !== undefined)) return undefined;
  if (!m[1] && !m[2] && spec.length > 0) return undefined;
  let fields: string[] = [];
  if (wantsFields) {
    let tokens: ImapToken[];
    try {
      tokens = tokenize({ lines: [Buffer.from(m[3]!, 'latin1')], literals: [] }, 0);
    } catch {
      return undefined;
    }
    for (const t of tokens) {
      const name = tokenText(t);
      if (name === undefined || !/^[\x21-\x39\x3b-\x7e]+$/.test(name)) return undefined;
      fields.push(name);
    }
    if (fields.length === 0) return undefined;
  }
  const labelText = [path.join('.'), text].filter(Boolean).join('.');
  const label = wantsFields ? `${labelText} (${fields.map((f) => f.toUpperCase()).join(' ')})` : labelText;
  if (!wantsFields) fields = [];
  return { section: { path, text, fields }, label };
}

function parseItem(atom: string): FetchItem | undefined {
  const upper = atom.toUpperCase();
  if (SIMPLE.has(upper)) return { kind: upper as SimpleItem };
  const m = SECTION_ITEM.exec(atom);
  if (!m) return undefined;
  const parsed = parseSection(m[2]!);
  if (!parsed) return undefined;
  const partial = m[3] !== undefined ? { start: Number(m[3]), length: Number(m[4]) } : undefined;
  if (partial && partial.length === 0) return undefined;
  return { kind: 'section', peek: m[1]!.toUpperCase() === 'BODY.PEEK', section: parsed.section, label: parsed.label, partial };
}

function parseItems(arg: ImapToken): FetchItem[] | undefined {
  if (arg.type === 'atom') {
    const macro = MACROS[arg.value.toUpperCase()];
    if (macro) return macro.map((kind) => ({ kind }));
    const item = parseItem(arg.value);
    return item ? [item] : undefined;
  }
  if (arg.type !== 'list' || arg.items.length === 0 || arg.items.length > 100) return undefined;
  const items: FetchItem[] = [];
  for (const t of arg.items) {
    if (t.type !== 'atom') return undefined;
    const item = parseItem(t.value);
    if (!item) return undefined;
    items.push(item);
  }
  return items;
}

/** Whether answering needs the message file (beyond a cached structure). */
function needsFile(items: readonly FetchItem[], cached: CachedMessage | undefined): boolean {
  for (const item of items) {
    switch (item.kind) {
      case 'RFC822':
      case 'RFC822.TEXT':
        return true;
      case 'RFC822.HEADER':
      case 'ENVELOPE':
      case 'BODYSTRUCTURE':
      case 'BODY':
        if (!cached || (item.kind === 'RFC822.HEADER' && !headerCached(cached))) return true;
        break;
      case 'section': {
        const { path, text } = item.section;
        const headerOnly = path.length === 0 && (text === 'HEADER' || text === 'HEADER.FIELDS' || text === 'HEADER.FIELDS.NOT');
        if (!headerOnly || !cached || !headerCached(cached)) return true;
        break;
      }
      default:
        break;
    }
  }
  return false;
}

/** Whether the items need the parsed structure at all (BODY[] and RFC822 alone do not). */
function needsStructure(items: readonly FetchItem[]): boolean {
  return items.some((i) =>
    i.kind === 'section'
      ? i.section.path.length > 0 || i.section.text !== ''
      : i.kind !== 'FLAGS' && i.kind !== 'UID' && i.kind !== 'INTERNALDATE' && i.kind !== 'RFC822.SIZE' && i.kind !== 'RFC822',
  );
}

function setsSeen(items: readonly FetchItem[]): boolean {
  return items.some((i) => (i.kind === 'section' ? !i.peek : i.kind === 'RFC822' || i.kind === 'RFC822.TEXT'));
}

/** Files read ahead of the writer: at most this many, and this many bytes (one at least). */
const READ_AHEAD = 32;
const READ_AHEAD_BYTES = 8 * 1024 * 1024;

async function fetchRun(conn: ImapConnection, cmd: ImapCommand): Promise<void> {
  if (cmd.args.length !== 2) return conn.bad(cmd.tag, IMAP.argumentCount);
  const setText = cmd.args[0]!.type === 'atom' ? cmd.args[0]!.value : undefined;
  const ranges = setText === undefined ? undefined : parseSequenceSet(setText);
  if (!ranges) return conn.bad(cmd.tag, IMAP.messageSetInvalid);
  const items = parseItems(cmd.args[1]!);
  if (!items) return conn.bad(cmd.tag, IMAP.argumentError);
  const data = conn.data!;
  const view = conn.view!;
  const folder = view.folder;
  const { indexes, outOfRange } = resolveSet(ranges, view.uids, cmd.uid);

  const wantFlags = items.some((i) => i.kind === 'FLAGS');
  const wantUid = items.some((i) => i.kind === 'UID');
  const structure = needsStructure(items);

  // Messages that exist, with their metadata; the rest no longer do.
  let gone = false;
  const targets: { seq: number; uid: number; meta: MessageMeta }[] = [];
  for (const i of indexes) {
    const uid = view.uids[i]!;
    const meta = findMeta(folder, uid);
    if (meta && !view.gone.has(uid)) targets.push({ seq: i + 1, uid, meta });
    else gone = true;
  }

  // BODY[] (not PEEK), RFC822 and RFC822.TEXT set \Seen first, so FLAGS in the answer show it.
  let seenSet: Set<number> | undefined;
  if (!view.readOnly && setsSeen(items)) {
    const unseen = targets.filter((t) => !t.meta.flags.includes('\\Seen')).map((t) => t.uid);
    if (unseen.length > 0) {
      await data.setFlags(folder.name, unseen, ['\\Seen'], 'add');
      seenSet = new Set(unseen);
      for (const t of targets) t.meta = findMeta(folder, t.uid) ?? t.meta;
    }
  }

  // Start reading files ahead of the writer.
  const reads = new Map<number, Promise<Buffer | undefined>>();
  const plan = targets.map((t) => ({ ...t, cached: cachedMessage(data, folder, t.uid) }));
  const wantsFile = plan.map((p) => needsFile(items, p.cached));
  let nextRead = 0;
  let aheadBytes = 0;
  const startReads = (current: number) => {
    while (nextRead < plan.length && nextRead < current + READ_AHEAD && (nextRead === current || aheadBytes < READ_AHEAD_BYTES)) {
      if (wantsFile[nextRead]) {
        const p = plan[nextRead]!;
        aheadBytes += p.meta.size;
        reads.set(
          nextRead,
          data.read(folder, p.uid).then(
            (b) => b,
            () => undefined,
          ),
        );
      }
      nextRead++;
    }
  };

  const out = conn.out;
  for (let k = 0; k < plan.length; k++) {
    if (conn.session.closed) return;
    startReads(k);
    const p = plan[k]!;
    let raw: Buffer | undefined;
    if (wantsFile[k]) {
      raw = await reads.get(k);
      reads.delete(k);
      aheadBytes -= p.meta.size;
      if (!raw) {
        gone = true;
        continue;
      }
    }
    let entry = p.cached;
    if (!entry && raw && structure) entry = structureOf(data, folder, p.uid, raw);
    const source = raw ?? entry?.header ?? Buffer.alloc(0);
    out.push(`* ${p.seq} FETCH (`);
    let first = true;
    const sep = () => {
      if (first) first = false;
      else out.push(' ');
    };
    for (const item of items) {
      sep();
      switch (item.kind) {
        case 'FLAGS':
          out.push(`FLAGS ${flagList(p.meta.flags)}`);
          break;
        case 'UID':
          out.push(`UID ${p.uid}`);
          break;
        case 'INTERNALDATE':
          out.push(`INTERNALDATE ${internalDate(p.meta.internalDate)}`);
          break;
        case 'RFC822.SIZE':
          out.push(`RFC822.SIZE ${p.meta.size}`);
          break;
        case 'ENVELOPE':
          out.push(`ENVELOPE ${envelopeOf(entry!)}`);
          break;
        case 'BODYSTRUCTURE':
          out.push(`BODYSTRUCTURE ${bodyStructureOf(entry!, true)}`);
          break;
        case 'BODY':
          out.push(`BODY ${bodyStructureOf(entry!, false)}`);
          break;
        case 'RFC822':
          out.push(`RFC822 {${raw!.length}}\r\n`);
          out.push(raw!);
          break;
        case 'RFC822.HEADER': {
          const bytes = source.subarray(0, entry!.root.bodyStart);
          out.push(`RFC822.HEADER {${bytes.length}}\r\n`);
          out.push(bytes);
          break;
        }
        case 'RFC822.TEXT': {
          const root = entry ?? structureOf(data, folder, p.uid, raw!);
          const bytes = raw!.subarray(root.root.bodyStart);
          out.push(`RFC822.TEXT {${bytes.length}}\r\n`);
          out.push(bytes);
          break;
        }
        case 'section': {
          let bytes: Buffer | undefined;
          if (item.section.path.length === 0 && item.section.text === '') bytes = raw!;
          else {
            const spec = sectionRanges(entry!.root, item.section);
            bytes = spec ? sectionBytes(source, spec) : undefined;
          }
          let label = `BODY[${item.label}]`;
          if (bytes && item.partial) {
            label += `<${item.partial.start}>`;
            bytes = bytes.subarray(Math.min(item.partial.start, bytes.length), Math.min(item.partial.start + item.partial.length, bytes.length));
          }
          if (!bytes) out.push(`${label} NIL`);
          else {
            out.push(`${label} {${bytes.length}}\r\n`);
            out.push(bytes);
          }
          break;
        }
      }
    }
    if (cmd.uid && !wantUid) {
      sep();
      out.push(`UID ${p.uid}`);
    }
    out.push(')\r\n');
    await out.maybeFlush();
  }
  // Flags this FETCH set were shown in its FLAGS items; otherwise they follow as notifications.
  if (seenSet && wantFlags) for (const uid of seenSet) view.flagged.delete(uid);
  if (gone) return conn.no(cmd.tag, IMAP.messagesGone);
  if (outOfRange && !cmd.uid) return conn.no(cmd.tag, IMAP.messageSetInvalid);
  conn.ok(cmd.tag, IMAP.completed('FETCH'));
}

export const fetch: CommandSpec = {
  states: SELECTED,
  expunges: false,
  run: fetchRun,
};
