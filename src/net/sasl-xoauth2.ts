// SASL XOAUTH2 (reference section 8.2): base64("user=" U ^A "auth=Bearer " T ^A ^A). Shared by the
// emulated servers, the protocol clients and the proxy.
export interface Xoauth2Credentials {
  user: string;
  token: string;
}

/** Decodes an XOAUTH2 initial response; undefined when it is not one. Tokens may be any length. */
export function parseXoauth2(base64: string): Xoauth2Credentials | undefined {
  const text = base64.trim();
  if (!/^[A-Za-z0-9+/]+=*$/.test(text)) return undefined;
  const decoded = Buffer.from(text, 'base64').toString('utf8');
  const match = /^user=([^\x01]*)\x01auth=Bearer ([^\x01]+)\x01\x01$/.exec(decoded);
  if (!match?.[1] || !match[2]) return undefined;
  return { user: match[1], token: match[2] };
}

export function encodeXoauth2(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}
