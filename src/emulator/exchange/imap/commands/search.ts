// SEARCH and UID SEARCH (RFC 3501 section 6.4.4) over the messages the client knows, in memory.
// Header criteria match decoded values (RFC 2047 words, UTF-8) case-insensitively; BODY and TEXT
// match the decoded text parts. Exchange accepts the charsets US-ASCII (and, today, UTF-8) and
// only the keyword $MDNSent.
import type { MessageMeta } from '../../mail-store.ts';
import { parseSearchDate } from '../format.ts';
import { cachedMessage, headerCached, structureOf, type CachedMessage } from '../message-cache.ts';
import { headerValues, textLeaves, type MimeNode } from '../mime.ts';
import { tokenText, type ImapToken } from '../parser.ts';
import { IMAP } from '../replies.ts';
import { parseSequenceSet, resolveSet } from '../sequence.ts';
import { findMeta, type ImapConnection } from '../session.ts';
import { SELECTED, type CommandSpec, type ImapCommand } from './types.ts';

type Node =
  | { op: 'all' }
  | { op: 'flag'; flag: string; set: boolean }
  | { op: 'new' }
  | { op: 'recent'; set: boolean }
  | { op: 'header'; name: string; value: string }
  | { op: 'body'; value: string; text: boolean }
  | { op: 'date'; cmp: 'before' | 'on' | 'since'; day: number; sent: boolean }
  | { op: 'size'; larger: boolean; n: number }
  | { op: 'in'; indexes: Set<number> }
  | { op: 'not'; node: Node }
  | { op: 'or'; a: Node; b: Node }
  | { op: 'and'; nodes: Node[] };

class SearchError extends Error {
  readonly reply: 'argument' | 'count' | 'set' | 'charset';
  constructor(reply: SearchError['reply']) {
    super(reply);
    this.reply = reply;
  }
}

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};

const HEADER_KEYS: Record<string, string> = { BCC: 'bcc', CC: 'cc', FROM: 'from', SUBJECT: 'subject', TO: 'to' };
const DATE_KEYS: Record<string, ['before' | 'on' | 'since', boolean]> = {
  BEFORE: ['before', false],
  ON: ['on', false],
  SINCE: ['since', false],
  SENTBEFORE: ['before', true],
  SENTON: ['on', true],
  SENTSINCE: ['since', true],
};

interface ParseContext {
  uids: readonly number[];
  pos: number;
  tokens: ImapToken[];
}

function next(ctx: ParseContext): ImapToken {
  const t = ctx.tokens[ctx.pos++];
  if (!t) throw new SearchError('count');
  return t;
}

function nextText(ctx: ParseContext): string {
  const t = tokenText(next(ctx));
  if (t === undefined) throw new SearchError('argument');
  return t;
}

function parseKey(ctx: ParseContext, depth: number): Node {
  if (depth > 10) throw new SearchError('count');
  const token = next(ctx);
  if (token.type === 'list') return parseAll({ uids: ctx.uids, pos: 0, tokens: token.items }, depth + 1);
  if (token.type === 'string') throw new SearchError('argument');
  const key = token.value.toUpperCase();
  const flag = FLAG_KEYS[key];
  if (flag) return { op: 'flag', flag: flag[0], set: flag[1] };
  const header = HEADER_KEYS[key];
  if (header) return { op: 'header', name: header, value: nextText(ctx) };
  const date = DATE_KEYS[key];
  if (date) {
    const day = parseSearchDate(nextText(ctx));
    if (day === undefined) throw new SearchError('argument');
    return { op: 'date', cmp: date[0], day, sent: date[1] };
  }
  switch (key) {
    case 'ALL':
      return { op: 'all' };
    case 'NEW':
      return { op: 'new' };
    case 'OLD':
      return { op: 'recent', set: false };
    case 'RECENT':
      return { op: 'recent', set: true };
    case 'KEYWORD':
    case 'UNKEYWORD': {
      if (nextText(ctx).toLowerCase() !== '$mdnsent') throw new SearchError('argument');
      return { op: 'flag', flag: '$MDNSent', set: key === 'KEYWORD' };
    }
    case 'BODY':
      return { op: 'body', value: nextText(ctx), text: false };
    case 'TEXT':
      return { op: 'body', value: nextText(ctx), text: true };
    case 'HEADER': {
      const name = nextText(ctx).toLowerCase();
      return { op: 'header', name, value: nextText(ctx) };
    }
    case 'LARGER':
    case 'SMALLER': {
      const n = nextText(ctx);
      if (!/^\d{1,15}$/.test(n)) throw new SearchError('argument');
      return { op: 'size', larger: key === 'LARGER', n: Number(n) };
    }
    case 'UID': {
      const ranges = parseSequenceSet(nextText(ctx));
      if (!ranges) throw new SearchError('set');
      return { op: 'in', indexes: new Set(resolveSet(ranges, ctx.uids, true).indexes) };
    }
    case 'NOT':
      return { op: 'not', node: parseKey(ctx, depth + 1) };
    case 'OR': {
      const a = parseKey(ctx, depth + 1);
      return { op: 'or', a, b: parseKey(ctx, depth + 1) };
    }
    default: {
      const ranges = parseSequenceSet(token.value);
      if (!ranges) throw new SearchError('argument');
      return { op: 'in', indexes: new Set(resolveSet(ranges, ctx.uids, false).indexes) };
    }
  }
}

function parseAll(ctx: ParseContext, depth: number): Node {
  const nodes: Node[] = [];
  while (ctx.pos < ctx.tokens.length) nodes.push(parseKey(ctx, depth));
  if (nodes.length === 0) throw new SearchError('count');
  return nodes.length === 1 ? nodes[0]! : { op: 'and', nodes };
}

function needs(node: Node): { header: boolean; body: boolean } {
  switch (node.op) {
    case 'header':
      return { header: true, body: false };
    case 'date':
      return { header: node.sent, body: false };
    case 'body':
      return { header: node.text, body: true };
    case 'not':
      return needs(node.node);
    case 'or': {
      const a = needs(node.a);
      const b = needs(node.b);
      return { header: a.header || b.header, body: a.body || b.body };
    }
    case 'and':
      return node.nodes.map(needs).reduce((x, y) => ({ header: x.header || y.header, body: x.body || y.body }), { header: false, body: false });
    default:
      return { header: false, body: false };
  }
}

// ---- Decoding for comparisons ----

function decodeBytes(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset || 'utf-8').decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

/** A header value (latin1 bytes) as text: UTF-8 when it is, and RFC 2047 encoded-words decoded. */
export function decodeHeader(value: string): string {
  let text = value;
  if (/[\x80-\xff]/.test(text)) text = Buffer.from(text, 'latin1').toString('utf8');
  return text.replace(/=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=(\s+(?==\?))?/g, (_m, charset: string, enc: string, data: string) => {
    const cs = charset.split('*')[0]!.toLowerCase();
    const bytes = enc.toUpperCase() === 'B' ? Buffer.from(data, 'base64') : qDecode(data.replace(/_/g, ' '));
    return decodeBytes(bytes, cs);
  });
}

function qDecode(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c === '=' && (text[i + 1] === '\n' || text.slice(i + 1, i + 3) === '\r\n')) {
      i += text[i + 1] === '\r' ? 2 : 1;
    } else out.push(c.charCodeAt(0) & 0xff);
  }
  return Buffer.from(out);
}

function partText(raw: Buffer, node: MimeNode): string {
  const body = raw.subarray(node.bodyStart, node.end);
  const enc = node.encoding ?? '7bit';
  const bytes = enc === 'base64' ? Buffer.from(body.toString('latin1'), 'base64') : enc === 'quoted-printable' ? qDecode(body.toString('latin1')) : body;
  const charset = node.params.find(([k]) => k.toLowerCase() === 'charset')?.[1]?.toLowerCase() ?? 'utf-8';
  return decodeBytes(bytes, charset);
}

interface Candidate {
  index: number;
  uid: number;
  meta: MessageMeta;
  entry: CachedMessage | undefined;
  raw: Buffer | undefined;
}

function dayOf(ms: number): number {
  return Math.floor(ms / 86_400_000) * 86_400_000;
}

function matches(node: Node, c: Candidate, recentFrom: number): boolean {
  switch (node.op) {
    case 'all':
      return true;
    case 'flag':
      return c.meta.flags.includes(node.flag) === node.set;
    case 'new':
      return c.uid >= recentFrom && !c.meta.flags.includes('\\Seen');
    case 'recent':
      return c.uid >= recentFrom === node.set;
    case 'size':
      return node.larger ? c.meta.size > node.n : c.meta.size < node.n;
    case 'in':
      return node.indexes.has(c.index);
    case 'not':
      return !matches(node.node, c, recentFrom);
    case 'or':
      return matches(node.a, c, recentFrom) || matches(node.b, c, recentFrom);
    case 'and':
      return node.nodes.every((n) => matches(n, c, recentFrom));
    case 'date': {
      let ms: number;
      if (node.sent) {
        const value = c.entry ? headerValues(c.entry.root, 'date')[0] : undefined;
        ms = value ? Date.parse(value.replace(/\([^)]*\)/g, '')) : NaN;
        if (Number.isNaN(ms)) return false;
      } else ms = Date.parse(c.meta.internalDate);
      const day = dayOf(ms);
      return node.cmp === 'before' ? day < node.day : node.cmp === 'on' ? day === node.day : day >= node.day;
    }
    case 'header': {
      if (!c.entry) return false;
      const wanted = node.value.toLowerCase();
      return headerValues(c.entry.root, node.name).some((v) => decodeHeader(v).toLowerCase().includes(wanted));
    }
    case 'body': {
      if (!c.entry || !c.raw) return false;
      const wanted = node.value.toLowerCase();
      if (node.text && c.entry.root.fields.some((f) => `${f.name}: ${decodeHeader(f.value)}`.toLowerCase().includes(wanted))) return true;
      return textLeaves(c.entry.root).some((leaf) => partText(c.raw!, leaf).toLowerCase().includes(wanted));
    }
  }
}

async function searchRun(conn: ImapConnection, cmd: ImapCommand): Promise<void> {
  const view = conn.view!;
  const data = conn.data!;
  const tokens = [...cmd.args];
  let start = 0;
  if (tokens[0]?.type === 'atom' && tokens[0].value.toUpperCase() === 'CHARSET') {
    const charset = tokenText(tokens[1]);
    if (charset === undefined) return conn.bad(cmd.tag, IMAP.argumentCount);
    if (!['us-ascii', 'utf-8'].includes(charset.toLowerCase())) return conn.no(cmd.tag, IMAP.badCharset);
    start = 2;
  }
  let tree: Node;
  try {
    tree = parseAll({ uids: view.uids, pos: start, tokens }, 0);
  } catch (err) {
    if (!(err instanceof SearchError)) throw err;
    return conn.bad(cmd.tag, err.reply === 'count' ? IMAP.argumentCount : err.reply === 'set' ? IMAP.messageSetInvalid : IMAP.argumentError);
  }
  const need = needs(tree);
  const found: number[] = [];
  for (let index = 0; index < view.uids.length; index++) {
    const uid = view.uids[index]!;
    const meta = findMeta(view.folder, uid);
    if (!meta || view.gone.has(uid)) continue;
    const c: Candidate = { index, uid, meta, entry: undefined, raw: undefined };
    if (need.header || need.body) {
      c.entry = cachedMessage(data, view.folder, uid);
      if (need.body || !c.entry || !headerCached(c.entry)) {
        try {
          c.raw = await data.read(view.folder, uid);
        } catch {
          continue;
        }
        c.entry = structureOf(data, view.folder, uid, c.raw);
      }
    }
    if (matches(tree, c, view.recentFrom)) found.push(cmd.uid ? uid : index + 1);
  }
  conn.out.line(found.length > 0 ? `* SEARCH ${found.join(' ')}` : '* SEARCH');
  conn.ok(cmd.tag, IMAP.completed('SEARCH'));
}

export const search: CommandSpec = {
  states: SELECTED,
  expunges: false,
  run: searchRun,
};
