// The SASL initial responses for OAuth 2.0 bearer tokens: XOAUTH2 (Google's and Microsoft's,
// reference section 8.2) and OAUTHBEARER (RFC 7628). Tokens may be any length.
import { encodeXoauth2 } from '../net/sasl-xoauth2.ts';

export type BearerMechanism = 'XOAUTH2' | 'OAUTHBEARER';

/** base64 of the mechanism's initial response. */
export function bearerResponse(mechanism: BearerMechanism, user: string, token: string, host: string, port: number): string {
  if (mechanism === 'XOAUTH2') return encodeXoauth2(user, token);
  // RFC 7628 section 3.1: gs2 header with the authzid ("," and "=" escaped), then key=value pairs.
  const authzid = user.replace(/=/g, '=3D').replace(/,/g, '=2C');
  return Buffer.from(`n,a=${authzid},\x01host=${host}\x01port=${port}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}

/**
 * What the client answers to a server's error challenge so that the server sends its final
 * failure: an empty response for XOAUTH2, a single %x01 for OAUTHBEARER (RFC 7628 section 3.2.3).
 */
export function errorChallengeAnswer(mechanism: BearerMechanism): string {
  return mechanism === 'XOAUTH2' ? '' : Buffer.from('\x01').toString('base64');
}

/** A server's challenge text, decoded when it is base64 (Dovecot sends JSON), as sent otherwise. */
export function decodeChallenge(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') return '';
  if (/^[A-Za-z0-9+/]+=*$/.test(trimmed)) {
    const decoded = Buffer.from(trimmed, 'base64').toString('utf8');
    if (!/[\x00-\x08\x0e-\x1f\ufffd]/.test(decoded)) return decoded;
  }
  return trimmed;
}

/** `text` with every secret replaced, so that no token reaches an error message or a log. */
export function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 8) out = out.split(s).join('[redacted]');
  return out;
}
