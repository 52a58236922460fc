// Minting what the token endpoint returns, in Microsoft's formats (reference sections 2.5, 2.8,
// 6): v1 JWT access tokens for Exchange and Graph, opaque tickets for personal accounts, v2 ID
// tokens, client_info, and opaque refresh tokens remembered by the state.
import { createHash, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { App, User } from '../scenario/schema.ts';
import { AadError } from './aad-error.ts';
import { isPersonal } from './directory.ts';
import { RESOURCES, type OidcScope, type ParsedScopes, type Permission, type ResourceId } from './scopes.ts';
import { hashToken, randomToken, type IdentityState, type SignIn } from './state.ts';

export interface TokenResponse {
  token_type: 'Bearer';
  scope?: string;
  expires_in: number;
  ext_expires_in: number;
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  client_info?: string;
}

/** How the client proved itself: the `appidacr` claim (0 public, 1 secret, 2 certificate). */
export type ClientAuthMethod = '0' | '1' | '2';

export interface ChosenResource {
  resource: ResourceId;
  aud: string;
  permissions: Permission[];
}

/**
 * One token is for one resource. With several, the first decides; the rest raise AADSTS28000
 * unless `firstWins` (refresh requests always behave that way, section 5.1).
 */
export function chooseResource(parsed: ParsedScopes, granted: Permission[], firstWins: boolean, rawScope: string): ChosenResource {
  const wanted = parsed.permissions.length > 0 ? parsed.permissions : granted;
  const first = wanted[0];
  if (!first) return { resource: 'graph', aud: RESOURCES.graph.defaultAudience, permissions: [] };
  const others = wanted.filter((p) => p.resource !== first.resource);
  if (others.length > 0 && !firstWins) throw new AadError(28000, { scope: rawScope });
  return { resource: first.resource, aud: first.aud, permissions: wanted.filter((p) => p.resource === first.resource) };
}

function accessTokenLifetime(state: IdentityState): number {
  const setting = state.scenario.settings.accessTokenLifetime;
  if (typeof setting === 'number') return setting;
  return setting.min + Math.floor(Math.random() * Math.max(setting.max - setting.min, 0));
}

function sign(state: IdentityState, claims: Record<string, unknown>): Promise<string> {
  const key = state.signingKey;
  return new SignJWT(claims).setProtectedHeader({ typ: 'JWT', alg: 'RS256', x5t: key.kid, kid: key.kid }).sign(key.privateKey);
}

/**
 * An access token of at least `accessTokenMinLength` characters: real ones grow past 4 KB with
 * group and extension claims, and clients with fixed-size fields break on them.
 */
async function signAccessToken(state: IdentityState, claims: Record<string, unknown>): Promise<string> {
  const minLength = state.scenario.settings.accessTokenMinLength;
  const token = await sign(state, claims);
  if (token.length >= minLength) return token;
  // Each claim byte becomes 4/3 characters of base64url; pad a little over and the length is met.
  return sign(state, { ...claims, xms_ext: randomToken(Math.ceil(((minLength - token.length) * 3) / 4) + 8) });
}

function uti(): string {
  return randomToken(16).slice(0, 22);
}

function nameParts(user: User): { given_name: string; family_name: string } {
  const [given = user.displayName, ...rest] = user.displayName.split(' ');
  return { given_name: given, family_name: rest.join(' ') || given };
}

/** A pairwise subject: stable per user and app, different across apps. */
function pairwiseSubject(userId: string, clientId: string): string {
  return createHash('sha256').update(`${userId}:${clientId.toLowerCase()}`).digest('base64url').slice(0, 43);
}

export function clientInfo(user: User): string {
  return Buffer.from(JSON.stringify({ uid: user.id, utid: user.tenant })).toString('base64url');
}

async function userAccessToken(
  state: IdentityState,
  app: App,
  user: User,
  signIn: SignIn,
  chosen: ChosenResource,
  directives: OidcScope[],
  appidacr: ClientAuthMethod,
  lifetime: number,
): Promise<string> {
  const now = state.clock.nowSeconds();
  const scp = [...chosen.permissions.map((p) => p.name), ...(chosen.resource === 'graph' ? directives.filter((d) => d !== 'offline_access') : [])];
  const claims: Record<string, unknown> = {
    aud: chosen.aud,
    iss: `https://sts.windows.net/${user.tenant}/`,
    iat: now,
    nbf: now,
    exp: now + lifetime,
    acr: '1',
    aio: randomToken(40),
    amr: signIn.amr,
    app_displayname: app.displayName,
    appid: app.clientId,
    appidacr,
    ...nameParts(user),
    idtyp: 'user',
    ipaddr: '127.0.0.1',
    name: user.displayName,
    oid: user.id,
    puid: createHash('sha1').update(user.id).digest('hex').slice(0, 16).toUpperCase(),
    rh: `0.${randomToken(30)}.`,
    scp: scp.join(' '),
    sid: signIn.sessionId,
    sub: pairwiseSubject(user.id, RESOURCES[chosen.resource].appId),
    tid: user.tenant,
    unique_name: user.userPrincipalName,
    upn: user.userPrincipalName,
    uti: uti(),
    ver: '1.0',
  };
  if (isPersonal(user)) {
    // Personal accounts get an opaque ticket; the mail servers look it up by value.
    const token = `EwB${randomToken(Math.max(1100, Math.ceil((state.scenario.settings.accessTokenMinLength * 3) / 4)))}`;
    state.opaqueTokens.set(hashToken(token), { claims, expiresAtSec: now + lifetime });
    return token;
  }
  return signAccessToken(state, claims);
}

export async function idToken(state: IdentityState, app: App, user: User, signIn: SignIn, nonce: string | undefined, withEmail: boolean): Promise<string> {
  const now = state.clock.nowSeconds();
  return sign(state, {
    aud: app.clientId,
    iss: `${state.origin}/${user.tenant}/v2.0`,
    iat: now,
    nbf: now,
    exp: now + 3600,
    ...(withEmail ? { email: user.userPrincipalName } : {}),
    name: user.displayName,
    ...(nonce ? { nonce } : {}),
    oid: user.id,
    preferred_username: user.userPrincipalName,
    rh: `0.${randomToken(30)}.`,
    sid: signIn.sessionId,
    sub: pairwiseSubject(user.id, app.clientId),
    tid: user.tenant,
    uti: uti(),
    ver: '2.0',
    aio: randomToken(40),
  });
}

/** A new refresh token for a user grant, remembered by hash only. */
export function newRefreshToken(state: IdentityState, app: App, user: User, signIn: SignIn, spa: boolean, grantIssuedAtMs?: number): string {
  const token = isPersonal(user) ? `M.C5${randomToken(4)}_BAY.0.U.-${randomToken(700)}` : `1.A${randomToken(700)}`;
  const now = state.clock.nowMs();
  state.refreshTokens.set(hashToken(token), {
    clientId: app.clientId,
    userId: user.id,
    tenantId: user.tenant,
    issuedAtMs: now,
    grantIssuedAtMs: grantIssuedAtMs ?? now,
    revoked: false,
    spa,
    authTimeSec: signIn.authTimeSec,
    amr: signIn.amr,
    sessionId: signIn.sessionId,
  });
  return token;
}

export function newAuthorizationCode(user: User): string {
  return isPersonal(user) ? `M.C5${randomToken(3)}_BAY.2.U.${randomUUID()}` : `1.AXoA${randomToken(560)}`;
}

export interface UserTokenRequest {
  app: App;
  user: User;
  signIn: SignIn;
  chosen: ChosenResource;
  directives: OidcScope[];
  appidacr: ClientAuthMethod;
  nonce?: string;
  wantClientInfo: boolean;
  spa: boolean;
  grantIssuedAtMs?: number;
}

/** The token response for a delegated grant (authorization code, device code, refresh, password). */
export async function issueUserTokens(state: IdentityState, req: UserTokenRequest): Promise<TokenResponse> {
  const lifetime = accessTokenLifetime(state);
  const body: TokenResponse = {
    token_type: 'Bearer',
    scope: [
      ...req.chosen.permissions.map((p) => p.scope),
      ...(req.chosen.resource === 'graph' ? req.directives.filter((d) => d !== 'offline_access') : []),
    ].join(' '),
    expires_in: lifetime,
    ext_expires_in: lifetime,
    access_token: await userAccessToken(state, req.app, req.user, req.signIn, req.chosen, req.directives, req.appidacr, lifetime),
  };
  if (req.directives.includes('offline_access')) {
    body.refresh_token = newRefreshToken(state, req.app, req.user, req.signIn, req.spa, req.grantIssuedAtMs);
  }
  if (req.directives.includes('openid')) {
    body.id_token = await idToken(state, req.app, req.user, req.signIn, req.nonce, req.directives.includes('email'));
  }
  if (req.wantClientInfo) body.client_info = clientInfo(req.user);
  return body;
}

/** The token response for client credentials: roles instead of scopes, no refresh or ID token. */
export async function issueAppToken(
  state: IdentityState,
  app: App,
  tenantId: string,
  resource: ResourceId,
  aud: string,
  appidacr: ClientAuthMethod,
  servicePrincipalId: string,
): Promise<TokenResponse> {
  const now = state.clock.nowSeconds();
  const lifetime = accessTokenLifetime(state);
  const roles = app.appRoles[resource] ?? [];
  const claims: Record<string, unknown> = {
    aud,
    iss: `https://sts.windows.net/${tenantId}/`,
    iat: now,
    nbf: now,
    exp: now + lifetime,
    aio: randomToken(40),
    app_displayname: app.displayName,
    appid: app.clientId,
    appidacr,
    idp: `https://sts.windows.net/${tenantId}/`,
    idtyp: 'app',
    oid: servicePrincipalId,
    rh: `0.${randomToken(30)}.`,
    ...(roles.length > 0 ? { roles } : {}),
    sub: servicePrincipalId,
    tid: tenantId,
    uti: uti(),
    ver: '1.0',
  };
  return { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: await signAccessToken(state, claims) };
}
