// Client authentication at the token endpoint: a secret in the body or in HTTP Basic, or a
// certificate-signed assertion (PS256 or RS256, with x5t#S256 or x5t), checked as Entra checks them.
import { X509Certificate, createPublicKey } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, decodeJwt, type JWTPayload } from 'jose';
import type { App } from '../scenario/schema.ts';
import { thumbprints } from '../../tls/certificates.ts';
import { AadError } from './aad-error.ts';
import type { FormParams } from './form.ts';
import type { ClientAuthMethod } from './tokens.ts';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const SKEW_SECONDS = 300;

export interface PresentedCredential {
  secret?: string;
  assertion?: string;
  assertionType?: string;
}

/** The credential a request carries, from the body or an `Authorization: Basic` header. */
export function presentedCredential(form: FormParams, authorization: string | undefined): PresentedCredential {
  const credential: PresentedCredential = {};
  const secret = form.get('client_secret');
  if (secret !== undefined) credential.secret = secret;
  const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? '');
  if (basic?.[1] && credential.secret === undefined) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0) credential.secret = decodeURIComponent(decoded.slice(colon + 1));
  }
  const assertion = form.get('client_assertion');
  if (assertion !== undefined) credential.assertion = assertion;
  const assertionType = form.get('client_assertion_type');
  if (assertionType !== undefined) credential.assertionType = assertionType;
  return credential;
}

/** The client id from the body, or from HTTP Basic when the body has none. */
export function clientIdOf(form: FormParams, authorization: string | undefined): string | undefined {
  const fromBody = form.get('client_id');
  if (fromBody !== undefined) return fromBody;
  const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? '');
  if (!basic?.[1]) return undefined;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 ? decodeURIComponent(decoded.slice(0, colon)) : undefined;
}

export function hasCredential(c: PresentedCredential): boolean {
  return c.secret !== undefined || c.assertion !== undefined;
}

/** An app with no secret and no certificate can only be a public client. */
export function isPublicOnly(app: App): boolean {
  return app.secrets.length === 0 && app.certificates.length === 0;
}

export interface AssertionContext {
  nowSec: number;
  /** Token endpoint URLs this tenant answers to, any of which is a valid `aud`. */
  audiences: string[];
}

function checkSecret(app: App, secret: string, nowSec: number): void {
  const match = app.secrets.find((s) => s.value === secret);
  if (!match) throw new AadError(7000215, { appId: app.clientId });
  if (Date.parse(match.expiresAt) / 1000 <= nowSec) throw new AadError(7000222, { appId: app.clientId });
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * A thumbprint header's bytes. Entra compares thumbprints as bytes, so base64 `=` padding (MSAL
 * Python pads its x5t) and the standard alphabet are accepted as well as unpadded base64url.
 */
function thumbprintBytes(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_+/-]+={0,2}$/.test(value)) return undefined;
  return Buffer.from(value, 'base64url');
}

async function checkAssertion(app: App, assertion: string, ctx: AssertionContext): Promise<void> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: JWTPayload;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    throw new AadError(50027);
  }
  const sha256 = thumbprintBytes(header['x5t#S256']);
  const sha1 = thumbprintBytes(header.x5t);
  const presented = sha256 ?? sha1;
  const cert = app.certificates.find((c) => {
    if (!c.certPem) return false;
    const t = thumbprints(c.certPem);
    if (sha256 !== undefined) return Buffer.from(t.x5tS256, 'base64url').equals(sha256);
    return sha1 !== undefined && Buffer.from(t.x5t, 'base64url').equals(sha1);
  });
  const shownThumbprint = presented ? presented.toString('hex').toUpperCase() : '';
  if (!cert?.certPem) {
    throw new AadError(700027, { problem: 'not registered', reason: 'The key was not found.', thumbprint: shownThumbprint, appId: app.clientId });
  }
  const x509 = new X509Certificate(cert.certPem);
  if (Date.parse(x509.validTo) / 1000 < ctx.nowSec) {
    throw new AadError(700027, { problem: 'expired', reason: 'The key used is expired.', thumbprint: shownThumbprint, appId: app.clientId });
  }
  const alg = header.alg;
  if (alg !== 'RS256' && alg !== 'PS256') throw new AadError(50027);
  try {
    await compactVerify(assertion, createPublicKey(cert.certPem), { algorithms: [alg] });
  } catch {
    throw new AadError(700027, {
      problem: 'not valid',
      reason: 'The signature does not match the registered key.',
      thumbprint: shownThumbprint,
      appId: app.clientId,
    });
  }
  for (const field of ['aud', 'iss', 'sub', 'exp'] as const) {
    if (claims[field] === undefined) throw new AadError(90014, { field });
  }
  if (claims.iss !== app.clientId || claims.sub !== app.clientId) throw new AadError(700021);
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  const wanted = ctx.audiences.map((a) => a.toLowerCase());
  if (!audiences.some((a) => typeof a === 'string' && wanted.includes(a.toLowerCase()))) throw new AadError(700023);
  const exp = Number(claims.exp);
  const nbf = Number(claims.nbf ?? claims.iat ?? exp - 600);
  if (!Number.isFinite(exp) || !Number.isFinite(nbf) || exp + SKEW_SECONDS < ctx.nowSec || nbf - SKEW_SECONDS > ctx.nowSec) {
    throw new AadError(700024, { now: iso(ctx.nowSec), from: iso(nbf), to: iso(exp) });
  }
}

/**
 * Verifies a presented credential for a confidential client and returns the `appidacr` it earns.
 * Callers decide beforehand whether a missing credential is acceptable (public flows).
 */
export async function authenticateClient(app: App, credential: PresentedCredential, ctx: AssertionContext): Promise<ClientAuthMethod> {
  if (!hasCredential(credential)) throw new AadError(7000218);
  if (isPublicOnly(app)) throw new AadError(700025);
  if (credential.assertion !== undefined) {
    if (credential.assertionType !== JWT_BEARER) throw new AadError(900144, { name: 'client_assertion_type' });
    await checkAssertion(app, credential.assertion, ctx);
    return '2';
  }
  checkSecret(app, credential.secret ?? '', ctx.nowSec);
  return '1';
}
