// grant_type=client_credentials (reference section 4): a specific tenant, exactly one
// `<resource>/.default` scope, a secret or certificate, and roles from admin consent.
import { AadError } from '../aad-error.ts';
import { findApp, servicePrincipalId } from '../directory.ts';
import { authenticateClient } from '../client-auth.ts';
import { parseScopes, UnknownResourceError } from '../scopes.ts';
import { issueAppToken, type TokenResponse } from '../tokens.ts';
import { credentialOf, tokenEndpointAudiences, type TokenRequestContext, requireClientId } from './context.ts';

export async function clientCredentials(ctx: TokenRequestContext): Promise<TokenResponse> {
  const { state, form, authority } = ctx;
  if (authority.kind === 'common' || authority.kind === 'consumers') throw new AadError(9001023);
  const app = findApp(state.scenario, requireClientId(ctx), authority);
  const rawScope = form.require('scope');
  const tenant = authority.kind === 'tenant' ? authority.tenant : state.scenario.tenants.find((t) => t.id === app.homeTenant);
  if (!tenant) throw new AadError(90002, { tenant: app.homeTenant });
  let parsed;
  try {
    parsed = parseScopes(rawScope);
  } catch (err) {
    if (err instanceof UnknownResourceError) throw new AadError(500011, { resource: err.resource, tenant: tenant.id });
    if (err instanceof AadError) throw new AadError(1002012, { scope: rawScope });
    throw err;
  }
  const only = parsed.defaults[0];
  if (parsed.defaults.length !== 1 || parsed.permissions.length > 0 || !only) throw new AadError(1002012, { scope: rawScope });

  const appidacr = await authenticateClient(app, credentialOf(ctx), {
    nowSec: state.clock.nowSeconds(),
    audiences: tokenEndpointAudiences(ctx),
  });
  const spId = servicePrincipalId(app, tenant.id);
  if (!spId) throw new AadError(700016, { appId: app.clientId, tenant: tenant.id });
  state.checkFailures('token', { grantType: ctx.grantType, clientId: app.clientId });
  return issueAppToken(state, app, tenant.id, only.resource, only.aud, appidacr, spId);
}
