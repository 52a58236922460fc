// What every grant handler receives, and the checks several grants share.
import type { App, User } from '../../scenario/schema.ts';
import { AadError } from '../aad-error.ts';
import { authenticateClient, hasCredential, presentedCredential, type PresentedCredential } from '../client-auth.ts';
import type { Authority } from '../directory.ts';
import type { FormParams } from '../form.ts';
import { RESOURCES, type ResourceId } from '../scopes.ts';
import type { IdentityState } from '../state.ts';
import type { ClientAuthMethod } from '../tokens.ts';

export interface TokenRequestContext {
  state: IdentityState;
  authority: Authority;
  form: FormParams;
  grantType: string;
  /** From the body, or from HTTP Basic when the body has none. */
  clientId?: string;
  /** The `Authorization` header (HTTP Basic client secrets). */
  authorization?: string;
  /** The `Origin` header: set by browsers, so by single-page apps. */
  origin?: string;
}

/** The client id, wherever the client sent it; AADSTS900144 when it sent none. */
export function requireClientId(ctx: TokenRequestContext): string {
  if (!ctx.clientId) throw new AadError(900144, { name: 'client_id' });
  return ctx.clientId;
}

/** Token endpoint URLs of the authority: any is a valid `aud` of a client assertion. */
export function tokenEndpointAudiences(ctx: TokenRequestContext): string[] {
  const segments = new Set<string>([ctx.authority.segment]);
  if (ctx.authority.kind === 'tenant' || ctx.authority.kind === 'consumers') {
    segments.add(ctx.authority.tenant.id);
    for (const d of ctx.authority.tenant.domains) segments.add(d);
  }
  const origin = ctx.state.origin;
  return [...segments].flatMap((s) => [`${origin}/${s}/oauth2/v2.0/token`, `${origin}/${s}/oauth2/token`]);
}

export function credentialOf(ctx: TokenRequestContext): PresentedCredential {
  return presentedCredential(ctx.form, ctx.authorization);
}

/**
 * Client authentication for user flows: a presented credential is always verified; without one,
 * only a flow the app allows publicly goes on (`publicAllowed`), else AADSTS7000218.
 */
export async function authenticateUserFlowClient(ctx: TokenRequestContext, app: App, publicAllowed: boolean): Promise<ClientAuthMethod> {
  const credential = credentialOf(ctx);
  if (!hasCredential(credential)) {
    if (publicAllowed) return '0';
    throw new AadError(7000218);
  }
  return authenticateClient(app, credential, { nowSec: ctx.state.clock.nowSeconds(), audiences: tokenEndpointAudiences(ctx) });
}

/** What stops a user's tokens however they ask: disabled, blocked, revoked, MFA. */
export function checkUserMayGetTokens(ctx: TokenRequestContext, user: User, options: { resource: ResourceId; amr: string[]; grantIssuedAtMs?: number }): void {
  if (!user.accountEnabled) throw new AadError(50057);
  if (user.locked) throw new AadError(50053);
  if (user.blockedByConditionalAccess) throw new AadError(53003);
  if (options.grantIssuedAtMs !== undefined && user.tokensValidFrom) {
    const validFrom = Date.parse(user.tokensValidFrom);
    if (options.grantIssuedAtMs < validFrom) {
      throw new AadError(50173, {
        issuedOn: new Date(options.grantIssuedAtMs).toISOString(),
        validFrom: new Date(validFrom).toISOString(),
      });
    }
  }
  const resource = RESOURCES[options.resource].appId;
  if (user.mfa === 'enroll') throw new AadError(50079, { resource });
  if (user.mfa === 'required' && !options.amr.includes('mfa')) throw new AadError(50076, { resource });
}
