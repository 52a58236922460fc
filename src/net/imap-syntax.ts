// IMAP command syntax (RFC 3501 section 9, RFC 7888 LITERAL+), shared by the emulated server and
// the proxy: a command arrives as lines, each but the last ending in a literal marker `{n}` /
// `{n+}` followed by n raw bytes. The servers' readers gather those pieces (bounding every size);
// this file turns them into tokens: atoms (including `BODY[HEADER.FIELDS (A B)]<0.10>` kept whole),
// quoted strings, literals and parenthesised lists.
import { MailbridgeError } from '../errors.ts';

export type ImapToken = { type: 'atom'; value: string } | { type: 'string'; value: Buffer; literal: boolean } | { type: 'list'; items: ImapToken[] };

/** A command as received: `lines.length === literals.length + 1`. */
export interface RawCommand {
  lines: Buffer[];
  literals: Buffer[];
}

/** A command that breaks IMAP's syntax (the peer's mistake): code 'protocol'. */
export class ImapSyntaxError extends MailbridgeError<'protocol'> {
  constructor(message: string) {
    super('protocol', message);
    this.name = 'ImapSyntaxError';
  }
}

/** Deepest parenthesis nesting accepted in a command. */
const MAX_DEPTH = 32;

const SP = 0x20;
const LPAREN = 0x28;
const RPAREN = 0x29;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;

/** `{123}` or `{123+}` at the very end of a line: the literal's size and whether it is synchronizing. */
export function literalMarker(line: Buffer): { size: number; sync: boolean } | undefined {
  const n = line.length;
  if (n < 3 || line[n - 1] !== 0x7d) return undefined;
  let i = n - 2;
  const plus = line[i] === 0x2b;
  if (plus) i--;
  let digits = 0;
  let size = 0;
  while (i >= 0 && line[i]! >= 0x30 && line[i]! <= 0x39) {
    // Sizes beyond 2^53 are nonsense; anything past 15 digits is reported as too big.
    if (digits < 16) size += (line[i]! - 0x30) * 10 ** digits;
    digits++;
    i--;
  }
  if (digits === 0 || i < 0 || line[i] !== LBRACE) return undefined;
  return { size: digits > 15 ? Number.MAX_SAFE_INTEGER : size, sync: !plus };
}

/** First two space-separated words of a line (tag and command name), bytes kept as latin1. */
export function splitHead(line: Buffer): { tag: string; name: string; restStart: number } {
  let i = 0;
  while (i < line.length && line[i] !== SP) i++;
  const tag = line.toString('latin1', 0, i);
  let j = i + 1;
  while (j < line.length && line[j] !== SP) j++;
  const name = i < line.length ? line.toString('latin1', i + 1, j) : '';
  return { tag, name, restStart: Math.min(j + 1, line.length) };
}

/** Whether a line holds only printable ASCII (and tabs): Exchange refuses anything else. */
export function isPrintableAscii(line: Buffer, from = 0): boolean {
  for (let i = from; i < line.length; i++) {
    const c = line[i]!;
    if (c > 0x7e || (c < 0x20 && c !== 0x09)) return false;
  }
  return true;
}

/**
 * Tokens of the command's arguments: `raw` with its first line starting at byte `start` (after
 * the tag and command name). Literals replace their markers.
 */
export function tokenize(raw: RawCommand, start: number): ImapToken[] {
  const root: ImapToken[] = [];
  const stack: ImapToken[][] = [root];
  let current = root;
  for (let li = 0; li < raw.lines.length; li++) {
    const line = raw.lines[li]!;
    const marker = li < raw.literals.length ? literalMarker(line) : undefined;
    const end = marker ? line.lastIndexOf(LBRACE) : line.length;
    let i = li === 0 ? start : 0;
    while (i < end) {
      const c = line[i]!;
      if (c === SP) {
        i++;
        continue;
      }
      if (c === LPAREN) {
        if (stack.length > MAX_DEPTH) throw new ImapSyntaxError('lists nested too deep');
        const list: ImapToken = { type: 'list', items: [] };
        current.push(list);
        current = list.items;
        stack.push(current);
        i++;
        continue;
      }
      if (c === RPAREN) {
        if (stack.length === 1) throw new ImapSyntaxError('unbalanced )');
        stack.pop();
        current = stack[stack.length - 1]!;
        i++;
        continue;
      }
      if (c === DQUOTE) {
        const parts: number[] = [];
        let j = i + 1;
        let closed = false;
        while (j < end) {
          const d = line[j]!;
          if (d === BACKSLASH && j + 1 < end) {
            parts.push(line[j + 1]!);
            j += 2;
            continue;
          }
          if (d === DQUOTE) {
            closed = true;
            break;
          }
          parts.push(d);
          j++;
        }
        if (!closed) throw new ImapSyntaxError('unterminated quoted string');
        current.push({ type: 'string', value: Buffer.from(parts), literal: false });
        i = j + 1;
        continue;
      }
      // An atom: up to a space or parenthesis, with `[...]` kept whole (sections of FETCH).
      let j = i;
      while (j < end) {
        const d = line[j]!;
        if (d === LBRACKET) {
          const close = line.indexOf(RBRACKET, j + 1);
          if (close < 0 || close >= end) throw new ImapSyntaxError('unterminated [');
          j = close + 1;
          continue;
        }
        if (d === SP || d === LPAREN || d === RPAREN) break;
        if (d === DQUOTE || d === LBRACE) throw new ImapSyntaxError('unexpected character in atom');
        j++;
      }
      current.push({ type: 'atom', value: line.toString('latin1', i, j) });
      i = j;
    }
    if (marker) {
      // Nothing but spaces may sit between the previous token and `{`; the literal follows.
      current.push({ type: 'string', value: raw.literals[li]!, literal: true });
    }
  }
  if (stack.length !== 1) throw new ImapSyntaxError('unbalanced (');
  return root;
}

/** The text of an atom or string token (strings as UTF-8), or undefined for a list. */
export function tokenText(token: ImapToken | undefined): string | undefined {
  if (!token) return undefined;
  if (token.type === 'atom') return token.value;
  if (token.type === 'string') return token.value.toString('utf8');
  return undefined;
}

/** An astring argument (atom or string), NIL not special. */
export function astring(token: ImapToken | undefined): string | undefined {
  return tokenText(token);
}

export function isAtom(token: ImapToken | undefined, value: string): boolean {
  return token?.type === 'atom' && token.value.toUpperCase() === value;
}
