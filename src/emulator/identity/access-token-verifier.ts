// Checks an access token the way a resource server does: signature against the emulator's key
// (or, for personal accounts, a look-up of the opaque ticket) and expiry on the emulator's clock.
// Used by the introspection endpoint (for Dovecot) and by the emulated mail servers.
import { jwtVerify, type JWTPayload } from 'jose';
import { hashToken, type IdentityState } from './state.ts';

export type TokenCheck =
  | { ok: true; claims: JWTPayload & Record<string, unknown> }
  | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'unknown_token' };

export async function verifyAccessToken(state: IdentityState, token: string): Promise<TokenCheck> {
  const now = state.clock.nowSeconds();
  if (token.startsWith('EwB')) {
    const record = state.opaqueTokens.get(hashToken(token));
    if (!record) return { ok: false, reason: 'unknown_token' };
    if (record.expiresAtSec <= now) return { ok: false, reason: 'expired' };
    return { ok: true, claims: record.claims };
  }
  if (token.split('.').length !== 3) return { ok: false, reason: 'malformed' };
  try {
    const { payload } = await jwtVerify(token, state.signingKey.publicKey, {
      algorithms: ['RS256'],
      currentDate: new Date(state.clock.nowMs()),
    });
    return { ok: true, claims: payload };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_JWT_EXPIRED') return { ok: false, reason: 'expired' };
    if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return { ok: false, reason: 'not_yet_valid' };
    if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return { ok: false, reason: 'bad_signature' };
    return { ok: false, reason: 'malformed' };
  }
}
