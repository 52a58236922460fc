// Writing IMAP data items: quoted strings or literals, NIL, dates, flag lists, mailbox names as
// Exchange writes them. Strings here are latin1 "byte strings" (one char per byte), so header
// bytes pass through unchanged and a literal's length is its string length.
import { encodeMailboxName } from './parser.ts';
import { SYSTEM_FLAGS } from './replies.ts';

/** A quoted string, or a literal when the bytes cannot be quoted (CR, LF, NUL, 8-bit). */
export function quote(s: string): string {
  let needsLiteral = false;
  let needsEscape = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) needsEscape = true;
    else if (c < 0x20 || c > 0x7e) {
      needsLiteral = true;
      break;
    }
  }
  if (needsLiteral) return `{${s.length}}\r\n${s}`;
  return needsEscape ? `"${s.replace(/["\\]/g, '\\$&')}"` : `"${s}"`;
}

export function nstring(s: string | null | undefined): string {
  return s === null || s === undefined ? 'NIL' : quote(s);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH_INDEX = new Map(MONTHS.map((m, i) => [m.toLowerCase(), i]));

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** INTERNALDATE: `"02-Jan-2026 08:00:00 +0000"` (Exchange writes UTC). */
export function internalDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '"01-Jan-1970 00:00:00 +0000"';
  return `"${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000"`;
}

/** `d-Mon-yyyy` (SEARCH dates) as a UTC midnight timestamp; undefined when malformed. */
export function parseSearchDate(text: string): number | undefined {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text);
  if (!m) return undefined;
  const month = MONTH_INDEX.get(m[2]!.toLowerCase());
  const day = Number(m[1]);
  if (month === undefined || day < 1 || day > 31) return undefined;
  return Date.UTC(Number(m[3]), month, day);
}

/** APPEND's date-time `dd-Mon-yyyy hh:mm:ss +zzzz` (day may be space-padded). */
export function parseDateTime(text: string): Date | undefined {
  const m = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const month = MONTH_INDEX.get(m[2]!.toLowerCase());
  if (month === undefined) return undefined;
  const [day, year, hh, mm, ss, zh, zm] = [m[1], m[3], m[4], m[5], m[6], m[8], m[9]].map(Number) as [number, number, number, number, number, number, number];
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || zh > 23 || zm > 59) return undefined;
  const offset = (m[7] === '-' ? -1 : 1) * (zh * 60 + zm);
  const t = Date.UTC(year, month, day, hh, mm, ss) - offset * 60_000;
  return Number.isNaN(t) ? undefined : new Date(t);
}

const FLAG_ORDER = new Map<string, number>(SYSTEM_FLAGS.map((f, i) => [f.toLowerCase(), i]));

/** Exchange's canonical spelling of a flag it keeps, or undefined for anything else. */
export function canonicalFlag(flag: string): string | undefined {
  const i = FLAG_ORDER.get(flag.toLowerCase());
  return i === undefined ? undefined : SYSTEM_FLAGS[i];
}

/** `(\Seen \Flagged)` in Exchange's order. */
export function flagList(flags: readonly string[]): string {
  if (flags.length === 0) return '()';
  const sorted = [...flags].sort((a, b) => (FLAG_ORDER.get(a.toLowerCase()) ?? 99) - (FLAG_ORDER.get(b.toLowerCase()) ?? 99));
  return `(${sorted.join(' ')})`;
}

const ATOM_SPECIALS = /[(){ %*\]]/;
const QUOTED_SPECIALS = /["\\]/;

/** A mailbox name in LIST/LSUB/STATUS replies: atom, quoted, or literal, as Exchange chooses. */
export function mailboxName(name: string): string {
  const encoded = encodeMailboxName(name);
  if (QUOTED_SPECIALS.test(encoded)) return `{${encoded.length}}\r\n${encoded}`;
  if (encoded.length === 0 || ATOM_SPECIALS.test(encoded)) return `"${encoded}"`;
  return encoded;
}
