// IMAP syntax for the emulated server: the command grammar shared with the proxy
// (src/net/imap-syntax.ts), and mailbox names in modified UTF-7.
export * from '../../../net/imap-syntax.ts';

// ---- Modified UTF-7 (RFC 3501 section 5.1.3) for mailbox names ----

/** Decodes a mailbox name as sent by a client; undefined when its `&...-` runs are malformed. */
export function decodeMailboxName(name: string): string | undefined {
  let out = '';
  let i = 0;
  while (i < name.length) {
    const c = name[i]!;
    if (c !== '&') {
      out += c;
      i++;
      continue;
    }
    const end = name.indexOf('-', i + 1);
    if (end < 0) return undefined;
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    const b64 = name.slice(i + 1, end).replace(/,/g, '/');
    if (!/^[A-Za-z0-9+/]+$/.test(b64)) return undefined;
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length % 2 !== 0) return undefined;
    out += bytes.swap16().toString('utf16le');
    i = end + 1;
  }
  return out;
}

export function encodeMailboxName(name: string): string {
  let out = '';
  let pending = '';
  const flush = () => {
    if (!pending) return;
    const b = Buffer.from(pending, 'utf16le').swap16();
    out += `&${b.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
    pending = '';
  };
  for (const ch of name) {
    const code = ch.codePointAt(0)!;
    if (code >= 0x20 && code <= 0x7e) {
      flush();
      out += ch === '&' ? '&-' : ch;
    } else {
      pending += ch;
    }
  }
  flush();
  return out;
}
