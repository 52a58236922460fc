// grant_type=authorization_code: redeem a code from /authorize, with PKCE and the redirect URI
// checks of reference sections 2.4 and 2.7.
import { createHash } from 'node:crypto';
import { AadError } from '../aad-error.ts';
import { findApp, missingConsent } from '../directory.ts';
import { parseDelegatedScopes } from '../scopes.ts';
import { hashToken } from '../state.ts';
import { chooseResource, issueUserTokens, type TokenResponse } from '../tokens.ts';
import { redirectUriKind } from '../redirect-uris.ts';
import { authenticateUserFlowClient, checkUserMayGetTokens, type TokenRequestContext, requireClientId } from './context.ts';

export async function redeemAuthorizationCode(ctx: TokenRequestContext): Promise<TokenResponse> {
  const { state, form } = ctx;
  const app = findApp(state.scenario, requireClientId(ctx), ctx.authority);
  const code = form.require('code');
  const redirectUri = form.require('redirect_uri');
  const record = state.codes.get(hashToken(code));
  if (!record || record.clientId !== app.clientId) throw new AadError(9002313);
  if (record.redeemed) throw new AadError(54005);
  if (ctx.authority.kind === 'tenant' && ctx.authority.tenant.id !== record.tenantId) throw new AadError(700005);
  if (state.clock.nowMs() - record.issuedAtMs > state.scenario.settings.authorizationCodeLifetime * 1000) {
    throw new AadError(70008);
  }
  if (redirectUri !== record.redirectUri) throw new AadError(500112, { given: redirectUri, expected: record.redirectUri });

  const kind = redirectUriKind(app, record.redirectUri);
  if (kind === 'web' && ctx.origin) throw new AadError(9002326, { origin: ctx.origin });
  // A single-page app redeems from the browser (an Origin header), and only with PKCE.
  if (kind === 'spa' && !ctx.origin) throw new AadError(9002327);
  if (kind === 'spa' && record.codeChallenge === undefined) throw new AadError(9002325);
  const appidacr = await authenticateUserFlowClient(ctx, app, kind !== 'web');

  if (record.codeChallenge !== undefined) {
    const verifier = form.get('code_verifier') ?? '';
    const expected = record.codeChallengeMethod === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
    if (verifier === '' || expected !== record.codeChallenge) throw new AadError(501481);
  }

  const rawScope = form.get('scope');
  if (rawScope !== undefined && rawScope.trim() === '') throw new AadError(28003);
  const parsed = parseDelegatedScopes(rawScope ?? '');
  const chosen = chooseResource(parsed, record.permissions, state.scenario.settings.multipleResources === 'first-wins', rawScope ?? '');
  const user = state.findUserById(record.signIn.userId);
  if (!user) throw new AadError(9002313);
  if (missingConsent(state.scenario, app, user, chosen.permissions).length > 0) {
    throw new AadError(65001, { appId: app.clientId, appName: app.displayName });
  }
  checkUserMayGetTokens(ctx, user, { resource: chosen.resource, amr: record.signIn.amr });
  state.checkFailures('token', { grantType: ctx.grantType, clientId: app.clientId, user });
  record.redeemed = true;
  return issueUserTokens(state, {
    app,
    user,
    signIn: record.signIn,
    chosen,
    directives: [...new Set([...record.directives, ...parsed.directives])],
    appidacr,
    ...(record.nonce ? { nonce: record.nonce } : {}),
    wantClientInfo: form.get('client_info') === '1',
    spa: record.spa,
  });
}
