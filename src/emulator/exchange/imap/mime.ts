// MIME structure of a stored message, by byte offsets (RFC 2045/2046, RFC 3501 section 6.4.5):
// every part's header and body range, its Content-* fields, nested multiparts and
// message/rfc822 parts; from that BODYSTRUCTURE, BODY, ENVELOPE and the bytes of any
// BODY[section]. Bytes are never copied or decoded here except header values (latin1, so they
// pass through unchanged). Hostile structures are bounded: nesting depth and part count.

import { nstring, quote } from './format.ts';

export interface HeaderField {
  /** Lower-case field name. */
  name: string;
  /** Absolute byte range of the field in the message, including its line break(s). */
  start: number;
  end: number;
  /** Unfolded value, latin1, trimmed. */
  value: string;
}

export interface MimeNode {
  start: number;
  bodyStart: number;
  end: number;
  fields: HeaderField[];
  type: string;
  subtype: string;
  params: [string, string][];
  /** Content-Type absent (defaults applied). */
  defaultType: boolean;
  id: string | null;
  description: string | null;
  encoding: string | null;
  md5: string | null;
  disposition: { value: string; params: [string, string][] } | null;
  language: string[] | null;
  location: string | null;
  /** Lines of the body (text/* and message/rfc822). */
  lines: number;
  children: MimeNode[];
  /** For message/rfc822: the encapsulated message. */
  message: MimeNode | undefined;
}

const MAX_DEPTH = 40;
const MAX_PARTS = 2000;

const LF = 0x0a;
const CR = 0x0d;

/** Where a header block ends: the index just past the blank line (or `end` when there is none). */
function headerEnd(raw: Buffer, start: number, end: number): { headerLimit: number; bodyStart: number } {
  if (start >= end) return { headerLimit: start, bodyStart: start };
  if (raw[start] === LF) return { headerLimit: start, bodyStart: start + 1 };
  if (raw[start] === CR && raw[start + 1] === LF) return { headerLimit: start, bodyStart: start + 2 };
  let pos = start;
  for (;;) {
    const lf = raw.indexOf(LF, pos);
    if (lf < 0 || lf >= end) return { headerLimit: end, bodyStart: end };
    const next = lf + 1;
    if (next >= end) return { headerLimit: end, bodyStart: end };
    if (raw[next] === LF) return { headerLimit: next, bodyStart: next + 1 };
    if (raw[next] === CR && next + 1 < end && raw[next + 1] === LF) return { headerLimit: next, bodyStart: next + 2 };
    pos = next;
  }
}

function parseFields(raw: Buffer, start: number, limit: number): HeaderField[] {
  const fields: HeaderField[] = [];
  let pos = start;
  let current: HeaderField | undefined;
  while (pos < limit) {
    let lf = raw.indexOf(LF, pos);
    if (lf < 0 || lf >= limit) lf = limit - 1;
    const next = lf + 1;
    let contentEnd = raw[lf] === LF ? lf : lf + 1;
    if (contentEnd > pos && raw[contentEnd - 1] === CR) contentEnd--;
    const first = raw[pos];
    if ((first === 0x20 || first === 0x09) && current) {
      current.end = next;
      current.value += raw.toString('latin1', pos, contentEnd);
    } else {
      const colon = raw.indexOf(0x3a, pos);
      if (colon > pos && colon < contentEnd) {
        current = {
          name: raw.toString('latin1', pos, colon).trim().toLowerCase(),
          start: pos,
          end: next,
          value: raw.toString('latin1', colon + 1, contentEnd),
        };
        fields.push(current);
      } else {
        current = undefined;
      }
    }
    pos = next;
  }
  for (const f of fields) f.value = f.value.trim();
  return fields;
}

function field(fields: readonly HeaderField[], name: string): string | null {
  for (const f of fields) if (f.name === name) return f.value;
  return null;
}

/** Removes RFC 5322 comments outside quoted strings. */
function stripComments(value: string): string {
  if (!value.includes('(')) return value;
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      out += c;
      if (c === '\\' && i + 1 < value.length) out += value[++i];
      else if (c === '"') quoted = false;
    } else if (depth > 0) {
      if (c === '\\') i++;
      else if (c === '(') depth++;
      else if (c === ')') depth--;
    } else if (c === '"') {
      quoted = true;
      out += c;
    } else if (c === '(') depth++;
    else out += c;
  }
  return out;
}

/** `value; a=b; c="d"` as the value and its parameters. */
export function parseParameterized(raw: string): { value: string; params: [string, string][] } {
  const text = stripComments(raw);
  const segments: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      cur += c;
      if (c === '\\' && i + 1 < text.length) cur += text[++i];
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
      cur += c;
    } else if (c === ';') {
      segments.push(cur);
      cur = '';
    } else cur += c;
  }
  segments.push(cur);
  const params: [string, string][] = [];
  for (const seg of segments.slice(1)) {
    const eq = seg.indexOf('=');
    if (eq <= 0) continue;
    const key = seg.slice(0, eq).trim();
    let val = seg.slice(eq + 1).trim();
    if (val.startsWith('"')) {
      val = val.endsWith('"') && val.length > 1 ? val.slice(1, -1) : val.slice(1);
      val = val.replace(/\\(.)/g, '$1');
    }
    if (key) params.push([key, val]);
  }
  return { value: segments[0]!.trim(), params };
}

function countLines(raw: Buffer, start: number, end: number): number {
  if (end <= start) return 0;
  let n = 0;
  let pos = raw.indexOf(LF, start);
  while (pos >= 0 && pos < end) {
    n++;
    pos = raw.indexOf(LF, pos + 1);
  }
  if (raw[end - 1] !== LF) n++;
  return n;
}

interface Budget {
  parts: number;
}

function parseNode(raw: Buffer, start: number, end: number, depth: number, budget: Budget, defaultRfc822: boolean): MimeNode {
  budget.parts++;
  const { headerLimit, bodyStart } = headerEnd(raw, start, end);
  const fields = parseFields(raw, start, headerLimit);
  const ctRaw = field(fields, 'content-type');
  let type = defaultRfc822 ? 'message' : 'text';
  let subtype = defaultRfc822 ? 'rfc822' : 'plain';
  let params: [string, string][] = defaultRfc822 ? [] : [['charset', 'us-ascii']];
  let defaultType = true;
  if (ctRaw !== null) {
    const ct = parseParameterized(ctRaw);
    const slash = ct.value.indexOf('/');
    const t = slash > 0 ? ct.value.slice(0, slash).trim().toLowerCase() : '';
    const s =
      slash > 0
        ? ct.value
            .slice(slash + 1)
            .trim()
            .toLowerCase()
        : '';
    if (/^[a-z0-9!#$&^_.+-]+$/.test(t) && /^[a-z0-9!#$&^_.+-]+$/.test(s)) {
      type = t;
      subtype = s;
      params = ct.params;
      defaultType = false;
    }
  }
  const dispRaw = field(fields, 'content-disposition');
  const disp = dispRaw !== null ? parseParameterized(dispRaw) : null;
  const langRaw = field(fields, 'content-language');
  const language =
    langRaw !== null
      ? stripComments(langRaw)
          .split(',')
          .map((l) => l.trim())
          .filter(Boolean)
      : null;
  const encodingRaw = field(fields, 'content-transfer-encoding');
  const node: MimeNode = {
    start,
    bodyStart,
    end,
    fields,
    type,
    subtype,
    params,
    defaultType,
    id: field(fields, 'content-id'),
    description: field(fields, 'content-description'),
    encoding: encodingRaw !== null ? stripComments(encodingRaw).trim().toLowerCase() : null,
    md5: field(fields, 'content-md5'),
    disposition: disp && disp.value ? { value: disp.value.toLowerCase(), params: disp.params } : null,
    language: language && language.length > 0 ? language : null,
    location: field(fields, 'content-location'),
    lines: 0,
    children: [],
    message: undefined,
  };
  const nestingAllowed = depth < MAX_DEPTH && budget.parts < MAX_PARTS;
  if (type === 'multipart' && nestingAllowed) {
    const boundary = params.find(([k]) => k.toLowerCase() === 'boundary')?.[1];
    if (boundary) parseMultipart(raw, node, boundary, depth, budget);
    if (node.children.length === 0) {
      // A multipart with no parts still has one (empty) part in BODYSTRUCTURE's grammar.
      node.children.push(emptyPart(bodyStart));
    }
  } else if (type === 'multipart') {
    // Too deep or too many parts: shown as one opaque part.
    node.type = 'application';
    node.subtype = 'octet-stream';
  } else if (type === 'message' && subtype === 'rfc822' && nestingAllowed) {
    node.message = parseNode(raw, bodyStart, end, depth + 1, budget, false);
    node.lines = countLines(raw, bodyStart, end);
  } else if (type === 'text') {
    node.lines = countLines(raw, bodyStart, end);
  }
  return node;
}

function emptyPart(at: number): MimeNode {
  return {
    start: at,
    bodyStart: at,
    end: at,
    fields: [],
    type: 'text',
    subtype: 'plain',
    params: [['charset', 'us-ascii']],
    defaultType: true,
    id: null,
    description: null,
    encoding: null,
    md5: null,
    disposition: null,
    language: null,
    location: null,
    lines: 0,
    children: [],
    message: undefined,
  };
}

function parseMultipart(raw: Buffer, node: MimeNode, boundary: string, depth: number, budget: Budget): void {
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  const { bodyStart, end } = node;
  // Delimiter lines: `--boundary` at a line start, then `--` (close) or whitespace to line end.
  const found: { at: number; lineEnd: number; close: boolean }[] = [];
  let pos = bodyStart;
  while (pos < end) {
    const at = raw.indexOf(delim, pos);
    if (at < 0 || at + delim.length > end) break;
    pos = at + delim.length;
    if (at !== bodyStart && raw[at - 1] !== LF) continue;
    let i = at + delim.length;
    let close = false;
    if (raw[i] === 0x2d && raw[i + 1] === 0x2d) {
      close = true;
      i += 2;
    }
    while (i < end && (raw[i] === 0x20 || raw[i] === 0x09)) i++;
    if (i < end && raw[i] !== CR && raw[i] !== LF) continue;
    let lineEnd = i;
    if (raw[lineEnd] === CR) lineEnd++;
    if (raw[lineEnd] === LF) lineEnd++;
    found.push({ at, lineEnd: Math.min(lineEnd, end), close });
    pos = Math.max(pos, lineEnd);
    if (close) break;
  }
  const digest = node.subtype === 'digest';
  for (let k = 0; k < found.length; k++) {
    const d = found[k]!;
    if (d.close) break;
    if (budget.parts >= MAX_PARTS) break;
    const partStart = d.lineEnd;
    const next = found[k + 1];
    let partEnd: number;
    if (next) {
      // The line break before the next delimiter belongs to the delimiter.
      partEnd = next.at;
      if (partEnd > partStart && raw[partEnd - 1] === LF) partEnd--;
      if (partEnd > partStart && raw[partEnd - 1] === CR) partEnd--;
    } else {
      partEnd = end;
    }
    if (partEnd < partStart) partEnd = partStart;
    node.children.push(parseNode(raw, partStart, partEnd, depth + 1, budget, digest));
  }
}

/** The structure of a whole message. */
export function parseMessage(raw: Buffer): MimeNode {
  return parseNode(raw, 0, raw.length, 0, { parts: 0 }, false);
}

// ---- Section paths (RFC 3501 section 6.4.5) ----

/** The node a part path (`[2, 1]` for `BODY[2.1]`) names, or undefined. */
export function findPart(root: MimeNode, path: readonly number[]): MimeNode | undefined {
  let node: MimeNode | undefined = root;
  let first = true;
  for (const n of path) {
    if (!node) return undefined;
    let container: MimeNode = node;
    if (!first && container.message) container = container.message;
    first = false;
    if (container.children.length > 0) node = container.children[n - 1];
    else node = n === 1 ? container : undefined;
  }
  return node;
}

export type SectionText = 'HEADER' | 'TEXT' | 'MIME' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | '';

export interface Section {
  path: number[];
  text: SectionText;
  fields: string[];
}

/**
 * The bytes of a section, as [start, end) ranges of the raw message (several for HEADER.FIELDS,
 * whose answer is the matching field lines plus a blank line) or undefined when the section names
 * nothing. `extraCrlf` asks for a CRLF after the ranges.
 */
export function sectionRanges(root: MimeNode, section: Section): { ranges: [number, number][]; extraCrlf: boolean } | undefined {
  let node: MimeNode | undefined = root;
  let messageNode: MimeNode | undefined = root;
  if (section.path.length > 0) {
    node = findPart(root, section.path);
    if (!node) return undefined;
    messageNode = node.message ?? (node === root ? root : undefined);
  }
  switch (section.text) {
    case '':
      return { ranges: [[node.bodyStart, node.end]], extraCrlf: false };
    case 'MIME':
      return { ranges: [[node.start, node.bodyStart]], extraCrlf: false };
    case 'HEADER':
      if (!messageNode) return undefined;
      return { ranges: [[messageNode.start, messageNode.bodyStart]], extraCrlf: false };
    case 'TEXT':
      if (!messageNode) return undefined;
      return { ranges: [[messageNode.bodyStart, messageNode.end]], extraCrlf: false };
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT': {
      if (!messageNode) return undefined;
      const wanted = new Set(section.fields.map((f) => f.toLowerCase()));
      const not = section.text === 'HEADER.FIELDS.NOT';
      const ranges: [number, number][] = [];
      for (const f of messageNode.fields) if (wanted.has(f.name) !== not) ranges.push([f.start, f.end]);
      return { ranges, extraCrlf: true };
    }
  }
}

/** Concatenates ranges of `raw` (adding CRLF where a field lacks its line break). */
export function sectionBytes(raw: Buffer, spec: { ranges: [number, number][]; extraCrlf: boolean }): Buffer {
  if (spec.ranges.length === 1 && !spec.extraCrlf) {
    const [a, b] = spec.ranges[0]!;
    return raw.subarray(Math.min(a, raw.length), Math.min(b, raw.length));
  }
  const parts: Buffer[] = [];
  for (const [a, b] of spec.ranges) {
    const piece = raw.subarray(Math.min(a, raw.length), Math.min(b, raw.length));
    parts.push(piece);
    if (spec.extraCrlf && piece.length > 0 && piece[piece.length - 1] !== LF) parts.push(Buffer.from('\r\n'));
  }
  if (spec.extraCrlf) parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}

// ---- ENVELOPE ----

interface Address {
  name: string | null;
  adl: string | null;
  mailbox: string | null;
  host: string | null;
}

type AddrToken = { kind: 'word'; text: string; quoted: boolean } | { kind: 'special'; text: string };

function addressTokens(value: string): AddrToken[] {
  const tokens: AddrToken[] = [];
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
    } else if (c === '(') {
      let depth = 1;
      i++;
      while (i < value.length && depth > 0) {
        const d = value[i]!;
        if (d === '\\') i++;
        else if (d === '(') depth++;
        else if (d === ')') depth--;
        i++;
      }
    } else if (c === '"') {
      let text = '';
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < value.length) i++;
        text += value[i];
        i++;
      }
      i++;
      tokens.push({ kind: 'word', text, quoted: true });
    } else if ('<>,:;@'.includes(c)) {
      tokens.push({ kind: 'special', text: c });
      i++;
    } else {
      let j = i;
      while (j < value.length && !' \t\r\n()"<>,:;@'.includes(value[j]!)) j++;
      tokens.push({ kind: 'word', text: value.slice(i, j), quoted: false });
      i = j;
    }
  }
  return tokens;
}

function splitAddrSpec(spec: string): { mailbox: string | null; host: string | null } {
  const at = spec.lastIndexOf('@');
  if (at < 0) return { mailbox: spec || null, host: spec ? 'MISSING_DOMAIN' : null };
  return { mailbox: spec.slice(0, at), host: spec.slice(at + 1) || 'MISSING_DOMAIN' };
}

function parseAddresses(value: string): Address[] {
  const tokens = addressTokens(value);
  const out: Address[] = [];
  let phrase: AddrToken[] = [];
  let angle: string | null = null;
  let inGroup = false;
  const flush = () => {
    if (angle !== null) {
      let spec = angle;
      let adl: string | null = null;
      const colon = spec.indexOf(':');
      if (spec.startsWith('@') && colon > 0) {
        adl = spec.slice(0, colon);
        spec = spec.slice(colon + 1);
      }
      const name = phrase
        .map((t) => t.text)
        .join(' ')
        .trim();
      out.push({ name: name || null, adl, ...splitAddrSpec(spec) });
    } else if (phrase.length > 0) {
      const spec = phrase.map((t) => (t.kind === 'word' && t.quoted ? `"${t.text}"` : t.text)).join('');
      if (spec) out.push({ name: null, adl: null, ...splitAddrSpec(spec) });
    }
    phrase = [];
    angle = null;
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'special') {
      if (t.text === '<') {
        let spec = '';
        i++;
        while (i < tokens.length && !(tokens[i]!.kind === 'special' && tokens[i]!.text === '>')) {
          const u = tokens[i]!;
          spec += u.kind === 'word' && u.quoted ? `"${u.text}"` : u.text;
          i++;
        }
        angle = spec;
        continue;
      }
      if (t.text === ',') {
        flush();
        continue;
      }
      if (t.text === ':' && !inGroup && angle === null) {
        const name = phrase
          .map((p) => p.text)
          .join(' ')
          .trim();
        out.push({ name: null, adl: null, mailbox: name, host: null });
        phrase = [];
        inGroup = true;
        continue;
      }
      if (t.text === ';' && inGroup) {
        flush();
        out.push({ name: null, adl: null, mailbox: null, host: null });
        inGroup = false;
        continue;
      }
      if (t.text === '>') continue;
    }
    phrase.push(t);
    if (out.length > 10_000) break;
  }
  flush();
  if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
  return out;
}

function addressList(value: string | null): string {
  if (value === null) return 'NIL';
  const list = parseAddresses(value);
  if (list.length === 0) return 'NIL';
  return `(${list.map((a) => `(${nstring(a.name)} ${nstring(a.adl)} ${nstring(a.mailbox)} ${nstring(a.host)})`).join('')})`;
}

/** ENVELOPE of a message node (the root, or a message/rfc822 part's message). */
export function envelope(node: MimeNode): string {
  const f = node.fields;
  const from = field(f, 'from');
  const sender = field(f, 'sender') ?? from;
  const replyTo = field(f, 'reply-to') ?? from;
  return `(${nstring(field(f, 'date'))} ${nstring(field(f, 'subject'))} ${addressList(from)} ${addressList(sender)} ${addressList(replyTo)} ${addressList(field(f, 'to'))} ${addressList(field(f, 'cc'))} ${addressList(field(f, 'bcc'))} ${nstring(field(f, 'in-reply-to'))} ${nstring(field(f, 'message-id'))})`;
}

// ---- BODYSTRUCTURE / BODY ----

function paramList(params: readonly [string, string][]): string {
  if (params.length === 0) return 'NIL';
  return `(${params.map(([k, v]) => `${quote(k)} ${quote(v)}`).join(' ')})`;
}

function extension(node: MimeNode): string {
  const disp = node.disposition ? `(${quote(node.disposition.value)} ${paramList(node.disposition.params)})` : 'NIL';
  const lang = node.language === null ? 'NIL' : node.language.length === 1 ? quote(node.language[0]!) : `(${node.language.map(quote).join(' ')})`;
  return `${disp} ${lang} ${nstring(node.location)}`;
}

/** BODYSTRUCTURE (`extended`) or BODY of a node. */
export function bodyStructure(node: MimeNode, extended: boolean): string {
  if (node.children.length > 0) {
    const parts = node.children.map((c) => bodyStructure(c, extended)).join('');
    const ext = extended ? ` ${paramList(node.params)} ${extension(node)}` : '';
    return `(${parts} ${quote(node.subtype)}${ext})`;
  }
  const size = node.end - node.bodyStart;
  let s = `(${quote(node.type)} ${quote(node.subtype)} ${paramList(node.params)} ${nstring(node.id)} ${nstring(node.description)} ${quote(node.encoding ?? '7bit')} ${size}`;
  if (node.type === 'text') s += ` ${node.lines}`;
  else if (node.message) s += ` ${envelope(node.message)} ${bodyStructure(node.message, extended)} ${node.lines}`;
  if (extended) s += ` ${nstring(node.md5)} ${extension(node)}`;
  return `${s})`;
}

/** Header field values of a node by name (for SEARCH). */
export function headerValues(node: MimeNode, name: string): string[] {
  const out: string[] = [];
  for (const f of node.fields) if (f.name === name) out.push(f.value);
  return out;
}

/** Leaf text parts (for SEARCH BODY/TEXT), depth first. */
export function textLeaves(node: MimeNode, out: MimeNode[] = []): MimeNode[] {
  if (node.children.length > 0) for (const c of node.children) textLeaves(c, out);
  else if (node.message) textLeaves(node.message, out);
  else if (node.type === 'text') out.push(node);
  return out;
}
