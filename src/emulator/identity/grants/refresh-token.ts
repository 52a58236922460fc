// grant_type=refresh_token (reference section 5.1): a new refresh token every time; old ones stay
// valid unless the scenario says `refreshTokenReuse: revoke`; 90 days of inactivity, SPA 24 h.
import { AadError } from '../aad-error.ts';
import { consentKeyOfScope, findApp, isPersonal, missingConsent } from '../directory.ts';
import { parseDelegatedScopes, parseScopes, type Permission } from '../scopes.ts';
import { hashToken } from '../state.ts';
import { chooseResource, issueUserTokens, type TokenResponse } from '../tokens.ts';
import { isPublicOnly } from '../client-auth.ts';
import { authenticateUserFlowClient, checkUserMayGetTokens, type TokenRequestContext, requireClientId } from './context.ts';

const NINETY_DAYS_MS = 90 * 86_400_000;
const SPA_LIFETIME_MS = 86_400_000;

/** Every permission consented for this user and app, for a refresh that names no scope. */
function consentedPermissions(ctx: TokenRequestContext, clientId: string, userUpn: string, tenantId: string): Permission[] {
  const keys = ctx.state.scenario.consents
    .filter((c) => c.clientId === clientId && c.tenant === tenantId && (!c.user || c.user.toLowerCase() === userUpn.toLowerCase()))
    .flatMap((c) => c.scopes);
  return parseScopes(keys.join(' ')).permissions.filter((p, i, all) => all.findIndex((q) => consentKeyOfScope(q.scope) === consentKeyOfScope(p.scope)) === i);
}

export async function redeemRefreshToken(ctx: TokenRequestContext): Promise<TokenResponse> {
  const { state, form } = ctx;
  const app = findApp(state.scenario, requireClientId(ctx), ctx.authority);
  const token = form.require('refresh_token');
  const record = state.refreshTokens.get(hashToken(token));
  const notValid = { parameter: "'refresh_token' or 'assertion'", problem: 'is not valid' };
  if (!record || record.clientId !== app.clientId || record.revoked) throw new AadError(70000, notValid);
  const user = state.findUserById(record.userId);
  if (!user) throw new AadError(70000, notValid);
  const authority = ctx.authority;
  const otherTenant =
    (authority.kind === 'tenant' && authority.tenant.id !== record.tenantId) ||
    (authority.kind === 'organizations' && isPersonal(user)) ||
    (authority.kind === 'consumers' && !isPersonal(user));
  if (otherTenant) throw new AadError(7000012);
  const now = state.clock.nowMs();
  if (now - record.issuedAtMs > NINETY_DAYS_MS) {
    throw new AadError(700082, { issuedOn: new Date(record.issuedAtMs).toISOString() });
  }
  if (record.spa && now - record.grantIssuedAtMs > SPA_LIFETIME_MS) {
    throw new AadError(700084, { issuedOn: new Date(record.grantIssuedAtMs).toISOString() });
  }

  const appidacr = await authenticateUserFlowClient(ctx, app, app.publicClient || isPublicOnly(app) || record.spa);

  const rawScope = form.get('scope') ?? '';
  const parsed = parseDelegatedScopes(rawScope);
  const granted = consentedPermissions(ctx, app.clientId, user.userPrincipalName, user.tenant);
  const chosen = chooseResource(parsed, granted, true, rawScope);
  if (missingConsent(state.scenario, app, user, chosen.permissions).length > 0) {
    throw new AadError(65001, { appId: app.clientId, appName: app.displayName });
  }
  // A revocation ends the whole grant, and AADSTS50173 names when it began (the sign-in), not
  // when this refresh token was minted.
  checkUserMayGetTokens(ctx, user, { resource: chosen.resource, amr: record.amr, grantIssuedAtMs: record.grantIssuedAtMs });
  state.checkFailures('token', { grantType: ctx.grantType, clientId: app.clientId, user });

  if (state.scenario.settings.refreshTokenReuse === 'revoke') record.revoked = true;
  return issueUserTokens(state, {
    app,
    user,
    signIn: { userId: user.id, authTimeSec: record.authTimeSec, amr: record.amr, sessionId: record.sessionId },
    chosen,
    // A refresh always rotates the refresh token, whatever scopes are named.
    directives: [...new Set([...parsed.directives, 'offline_access' as const])],
    appidacr,
    wantClientInfo: form.get('client_info') === '1',
    spa: record.spa,
    grantIssuedAtMs: record.grantIssuedAtMs,
  });
}
