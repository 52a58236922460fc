// grant_type=password (resource owner password credentials): a sign-in without a browser. Entra
// still offers it to work accounts; here it also lets tests reach every sign-in failure as JSON.
import { AadError } from '../aad-error.ts';
import { checkUserForAuthority, findApp, missingConsent } from '../directory.ts';
import { isPublicOnly } from '../client-auth.ts';
import { parseDelegatedScopes } from '../scopes.ts';
import { chooseResource, issueUserTokens, type TokenResponse } from '../tokens.ts';
import { authenticateUserFlowClient, checkUserMayGetTokens, type TokenRequestContext, requireClientId } from './context.ts';

export async function passwordGrant(ctx: TokenRequestContext): Promise<TokenResponse> {
  const { state, form } = ctx;
  const app = findApp(state.scenario, requireClientId(ctx), ctx.authority);
  const username = form.require('username');
  const password = form.require('password');
  const rawScope = form.require('scope');
  const appidacr = await authenticateUserFlowClient(ctx, app, app.publicClient || isPublicOnly(app));
  const user = checkUserForAuthority(state.scenario, username, app, ctx.authority);
  if (user.locked) throw new AadError(50053);
  if (user.password !== password) throw new AadError(50126);
  const parsed = parseDelegatedScopes(rawScope);
  const chosen = chooseResource(parsed, [], state.scenario.settings.multipleResources === 'first-wins', rawScope);
  checkUserMayGetTokens(ctx, user, { resource: chosen.resource, amr: ['pwd'] });
  if (missingConsent(state.scenario, app, user, chosen.permissions).length > 0) {
    throw new AadError(65001, { appId: app.clientId, appName: app.displayName });
  }
  state.checkFailures('token', { grantType: ctx.grantType, clientId: app.clientId, user });
  const nowSec = state.clock.nowSeconds();
  return issueUserTokens(state, {
    app,
    user,
    signIn: { userId: user.id, authTimeSec: nowSec, amr: ['pwd'], sessionId: crypto.randomUUID() },
    chosen,
    directives: [...parsed.directives],
    appidacr,
    wantClientInfo: form.get('client_info') === '1',
    spa: false,
  });
}
