// grant_type=device_code (short form, as msal-node sends it) and its URN form: polling answers of
// reference section 3.3 until the person at the verification page has signed in.
import { AadError } from '../aad-error.ts';
import { findApp, missingConsent } from '../directory.ts';
import { chooseResource, issueUserTokens, type TokenResponse } from '../tokens.ts';
import { authenticateUserFlowClient, checkUserMayGetTokens, type TokenRequestContext, requireClientId } from './context.ts';

export async function redeemDeviceCode(ctx: TokenRequestContext): Promise<TokenResponse> {
  const { state, form } = ctx;
  const app = findApp(state.scenario, requireClientId(ctx), ctx.authority);
  const deviceCode = form.require('device_code');
  const record = state.deviceCodes.get(deviceCode);
  if (!record || record.clientId !== app.clientId) throw new AadError(70018);
  if (record.status === 'redeemed') {
    throw new AadError(70000, { parameter: "'device_code'", problem: 'has already been used' });
  }
  if (state.clock.nowMs() > record.expiresAtMs) throw new AadError(70019);
  if (record.status === 'declined') throw new AadError(90120);
  if (record.status === 'pending' || !record.signIn) throw new AadError(70016);

  const appidacr = await authenticateUserFlowClient(ctx, app, app.publicClient);
  const user = state.findUserById(record.signIn.userId);
  if (!user) throw new AadError(70018);
  const chosen = chooseResource(
    { directives: new Set(record.directives), permissions: record.permissions, defaults: [] },
    record.permissions,
    state.scenario.settings.multipleResources === 'first-wins',
    record.permissions.map((p) => p.scope).join(' '),
  );
  // Consent given on the verification page can have been withdrawn since.
  if (missingConsent(state.scenario, app, user, chosen.permissions).length > 0) {
    throw new AadError(65001, { appId: app.clientId, appName: app.displayName });
  }
  checkUserMayGetTokens(ctx, user, { resource: chosen.resource, amr: record.signIn.amr });
  state.checkFailures('token', { grantType: ctx.grantType, clientId: app.clientId, user });
  record.status = 'redeemed';
  return issueUserTokens(state, {
    app,
    user,
    signIn: record.signIn,
    chosen,
    directives: record.directives,
    appidacr,
    wantClientInfo: form.get('client_info') === '1',
    spa: false,
  });
}
