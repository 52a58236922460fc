// What the POP3 server's lines mean: the status indicator of a reply (RFC 1939 section 3, and the
// SASL continuation of RFC 5034), and the contents of CAPA (RFC 2449), STAT, LIST and UIDL.

export interface Pop3Capabilities {
  /** The CAPA lines as sent. Empty when the server does not know CAPA. */
  raw: string[];
  /** SASL mechanisms offered (upper case), e.g. ['PLAIN', 'XOAUTH2']. */
  sasl: string[];
  pipelining: boolean;
  top: boolean;
  uidl: boolean;
  stls: boolean;
  user: boolean;
}

export type Status = 'ok' | 'err' | 'continue' | 'bad';

const PLUS = 0x2b;
const MINUS = 0x2d;

/** +OK, -ERR, a SASL "+ " continuation, or something else (a protocol error). */
export function statusOf(line: Buffer): Status {
  if (line[0] === PLUS) {
    if (line[1] === 0x4f && line[2] === 0x4b) return 'ok'; // "+OK"
    if (line.length === 1 || line[1] === 0x20) return 'continue'; // "+" or "+ <base64>"
    return 'bad';
  }
  if (line[0] === MINUS && line[1] === 0x45 && line[2] === 0x52 && line[3] === 0x52) return 'err'; // "-ERR"
  return 'bad';
}

/** A reply line as text: UTF-8 when it is valid UTF-8, else byte for byte (Latin-1). */
export function lineText(line: Buffer): string {
  const text = line.toString('utf8');
  return text.includes('\ufffd') ? line.toString('latin1') : text;
}

/** The lines of a block's content (each without its line end). */
export function blockLines(content: Buffer): string[] {
  if (content.length === 0) return [];
  const lines = lineText(content).split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

export function parseCapabilities(lines: string[]): Pop3Capabilities {
  const caps: Pop3Capabilities = { raw: lines, sasl: [], pipelining: false, top: false, uidl: false, stls: false, user: false };
  for (const line of lines) {
    const [name = '', ...args] = line.trim().split(/\s+/);
    switch (name.toUpperCase()) {
      case 'SASL':
        caps.sasl.push(...args.map((a) => a.toUpperCase()));
        break;
      case 'PIPELINING':
        caps.pipelining = true;
        break;
      case 'TOP':
        caps.top = true;
        break;
      case 'UIDL':
        caps.uidl = true;
        break;
      case 'STLS':
        caps.stls = true;
        break;
      case 'USER':
        caps.user = true;
        break;
    }
  }
  return caps;
}

/** A message number or size: digits only, a safe integer. */
function count(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** "+OK <count> <octets> [anything]" */
export function parseStat(line: string): { count: number; octets: number } | undefined {
  const [, n, octets] = line.trim().split(/\s+/);
  const c = count(n);
  const o = count(octets);
  return c === undefined || o === undefined ? undefined : { count: c, octets: o };
}

/** "<n> <size> [anything]" (a scan listing) */
export function parseListLine(line: string): { n: number; size: number } | undefined {
  const [n, size] = line.trim().split(/\s+/);
  const a = count(n);
  const b = count(size);
  return a === undefined || a === 0 || b === undefined ? undefined : { n: a, size: b };
}

/** "<n> <unique-id>": the id is 1 to 70 printable characters (RFC 1939 section 7); we take up to 512. */
export function parseUidlLine(line: string): { n: number; uid: string } | undefined {
  const [n, uid] = line.trim().split(/\s+/);
  const a = count(n);
  if (a === undefined || a === 0 || uid === undefined || !/^[\x21-\x7e]{1,512}$/.test(uid)) return undefined;
  return { n: a, uid };
}
