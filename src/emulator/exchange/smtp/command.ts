// SMTP command lines (RFC 5321 section 4.1): the verb, and the arguments of EHLO/HELO, MAIL,
// RCPT and BDAT, checked strictly enough that hostile input gets a syntax error, never a crash.
import { isUtf8 } from 'node:buffer';

export interface CommandLine {
  /** Upper-cased verb; '' for an empty line. */
  verb: string;
  /** The verb as sent, when it is short printable ASCII (safe to quote back); else undefined. */
  quotable: string | undefined;
  /** Everything after the first space, trailing spaces removed. */
  args: string;
}

/** Splits a received line. Lines that are not valid UTF-8 are read as Latin-1. */
export function parseCommandLine(raw: Buffer): CommandLine {
  const text = isUtf8(raw) ? raw.toString('utf8') : raw.toString('latin1');
  const space = text.indexOf(' ');
  const word = space < 0 ? text : text.slice(0, space);
  const args = space < 0 ? '' : text.slice(space + 1).replace(/[ \t]+$/, '');
  // Only a short, printable verb is echoed in "Unrecognized command": never a token or junk.
  const quotable = /^[\x21-\x7e]{1,32}$/.test(word) && !word.includes("'") ? word : undefined;
  return { verb: word.toUpperCase(), quotable, args };
}

/** EHLO/HELO argument: a domain or address literal, printable ASCII. */
export function parseHelloDomain(args: string): { ok: true; domain: string } | { ok: false; reason: 'missing' | 'invalid' } {
  const domain = args.trim().split(/[ \t]+/)[0] ?? '';
  if (domain === '') return { ok: false, reason: 'missing' };
  if (!/^[\x21-\x7e]{1,255}$/.test(domain)) return { ok: false, reason: 'invalid' };
  return { ok: true, domain };
}

export type PathError = 'syntax' | 'address' | 'utf8' | 'parameter' | 'value' | 'body';

export interface MailFrom {
  /** '' for the null reverse-path `<>`. */
  address: string;
  size?: number;
  body: '7BIT' | '8BITMIME' | 'BINARYMIME';
  smtputf8: boolean;
}

export interface RcptTo {
  address: string;
}

const MAX_ADDRESS = 320;
const ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\uffff]+$/;
const LABEL = /^[A-Za-z0-9\u0080-\uffff]([A-Za-z0-9\-\u0080-\uffff]*[A-Za-z0-9\u0080-\uffff])?$/;

/** A mailbox (RFC 5321 section 4.1.2, with RFC 6531 UTF-8): local@domain, no control characters. */
export function isValidAddress(address: string): boolean {
  if (address.length === 0 || address.length > MAX_ADDRESS) return false;
  if (/[\x00-\x20\x7f]/.test(address.replace(/"(?:[^"\\]|\\.)*"/g, 'q'))) return false;
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return false;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.length > 64) return false;
  const localOk = /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\uffff]|\\[\x20-\x7e])*"$/.test(local) || local.split('.').every((a) => ATOM.test(a));
  if (!localOk) return false;
  if (domain.startsWith('[') && domain.endsWith(']')) return /^\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]{2,45})\]$/.test(domain);
  return domain.length <= 255 && domain.split('.').every((l) => LABEL.test(l));
}

/** `FROM:<path> params` / `TO:<path> params`: the path's inside and the parameter words. */
function splitPath(args: string, keyword: 'FROM' | 'TO'): { path: string; params: string[] } | undefined {
  if (args.slice(0, keyword.length + 1).toUpperCase() !== `${keyword}:`) return undefined;
  const rest = args.slice(keyword.length + 1).replace(/^ +/, '');
  let path: string;
  let after: string;
  if (rest.startsWith('<')) {
    // Find the closing bracket outside a quoted local part.
    let i = 1;
    let quoted = false;
    for (; i < rest.length; i++) {
      const c = rest[i];
      if (quoted && c === '\\') i++;
      else if (c === '"') quoted = !quoted;
      else if (c === '>' && !quoted) break;
    }
    if (i >= rest.length) return undefined;
    path = rest.slice(1, i);
    after = rest.slice(i + 1);
    if (after !== '' && !after.startsWith(' ')) return undefined;
    // A source route (`<@a,@b:user@x>`) is allowed and ignored (RFC 5321 section 4.1.2).
    if (path.startsWith('@')) {
      const colon = path.indexOf(':');
      if (colon < 0) return undefined;
      path = path.slice(colon + 1);
    }
  } else {
    // Many clients leave out the brackets; Exchange takes the address as it comes.
    const space = rest.indexOf(' ');
    path = space < 0 ? rest : rest.slice(0, space);
    after = space < 0 ? '' : rest.slice(space);
    if (path === '') return undefined;
  }
  return { path, params: after.split(' ').filter((p) => p !== '') };
}

/** ESMTP parameters as KEY[=value] pairs (keys upper-cased); undefined when a key repeats. */
function esmtpParams(params: string[]): { key: string; val: string | undefined }[] | undefined {
  const out: { key: string; val: string | undefined }[] = [];
  for (const param of params) {
    const eq = param.indexOf('=');
    const key = (eq < 0 ? param : param.slice(0, eq)).toUpperCase();
    if (out.some((p) => p.key === key)) return undefined;
    out.push({ key, val: eq < 0 ? undefined : param.slice(eq + 1) });
  }
  return out;
}

const XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+$/;

export function parseMailFrom(args: string): { ok: true; value: MailFrom } | { ok: false; error: PathError } {
  const split = splitPath(args, 'FROM');
  if (!split) return { ok: false, error: 'syntax' };
  const value: MailFrom = { address: split.path, body: '7BIT', smtputf8: false };
  const params = esmtpParams(split.params);
  if (!params) return { ok: false, error: 'value' };
  for (const { key, val } of params) {
    switch (key) {
      case 'SIZE':
        if (val === undefined || !/^\d{1,20}$/.test(val)) return { ok: false, error: 'value' };
        value.size = Number(val);
        break;
      case 'BODY': {
        const body = val?.toUpperCase();
        if (body !== '7BIT' && body !== '8BITMIME' && body !== 'BINARYMIME') return { ok: false, error: 'body' };
        value.body = body;
        break;
      }
      case 'SMTPUTF8':
        if (val !== undefined) return { ok: false, error: 'value' };
        value.smtputf8 = true;
        break;
      case 'RET':
        if (val?.toUpperCase() !== 'FULL' && val?.toUpperCase() !== 'HDRS') return { ok: false, error: 'value' };
        break;
      case 'ENVID':
      case 'AUTH':
        if (val === undefined || val.length > 500 || !(XTEXT.test(val) || val === '<>')) return { ok: false, error: 'value' };
        break;
      default:
        return { ok: false, error: 'parameter' };
    }
  }
  if (value.address !== '') {
    if (!isValidAddress(value.address)) return { ok: false, error: 'address' };
    if (/[^\x00-\x7f]/.test(value.address) && !value.smtputf8) return { ok: false, error: 'utf8' };
  }
  return { ok: true, value };
}

export function parseRcptTo(args: string, smtputf8: boolean): { ok: true; value: RcptTo } | { ok: false; error: PathError } {
  const split = splitPath(args, 'TO');
  if (!split) return { ok: false, error: 'syntax' };
  const params = esmtpParams(split.params);
  if (!params) return { ok: false, error: 'value' };
  for (const { key, val } of params) {
    if (key === 'NOTIFY') {
      const words = (val ?? '').toUpperCase().split(',');
      const ok = (words.length === 1 && words[0] === 'NEVER') || (words.length > 0 && words.every((w) => w === 'SUCCESS' || w === 'FAILURE' || w === 'DELAY'));
      if (!ok) return { ok: false, error: 'value' };
    } else if (key === 'ORCPT') {
      if (val === undefined || val.length > 500 || !/^[A-Za-z0-9-]+;.+$/.test(val)) return { ok: false, error: 'value' };
    } else {
      return { ok: false, error: 'parameter' };
    }
  }
  if (!isValidAddress(split.path)) return { ok: false, error: 'address' };
  if (/[^\x00-\x7f]/.test(split.path) && !smtputf8) return { ok: false, error: 'utf8' };
  return { ok: true, value: { address: split.path } };
}

/** `BDAT <size> [LAST]` (RFC 3030). */
export function parseBdat(args: string): { size: number; last: boolean } | undefined {
  const match = /^(\d{1,15})(?: +(LAST))? *$/i.exec(args);
  if (!match?.[1]) return undefined;
  return { size: Number(match[1]), last: match[2] !== undefined };
}
