// POST /{tenant}/oauth2/v2.0/token: dispatch on grant_type (reference sections 2 to 5).
import type { FastifyInstance } from 'fastify';
import { AadError } from '../aad-error.ts';
import { clientIdOf } from '../client-auth.ts';
import { resolveAuthority } from '../directory.ts';
import { formBody, jsonHeaders, sendOutage } from '../http.ts';
import type { IdentityState } from '../state.ts';
import type { TokenResponse } from '../tokens.ts';
import { redeemAuthorizationCode } from '../grants/authorization-code.ts';
import { clientCredentials } from '../grants/client-credentials.ts';
import { redeemDeviceCode } from '../grants/device-code.ts';
import { passwordGrant } from '../grants/password.ts';
import { redeemRefreshToken } from '../grants/refresh-token.ts';
import type { TokenRequestContext } from '../grants/context.ts';

const GRANTS: Record<string, (ctx: TokenRequestContext) => Promise<TokenResponse>> = {
  authorization_code: redeemAuthorizationCode,
  refresh_token: redeemRefreshToken,
  device_code: redeemDeviceCode,
  'urn:ietf:params:oauth:grant-type:device_code': redeemDeviceCode,
  client_credentials: clientCredentials,
  password: passwordGrant,
};

export function registerTokenRoutes(app: FastifyInstance, state: IdentityState): void {
  app.post<{ Params: { tenant: string } }>('/:tenant/oauth2/v2.0/token', async (request, reply) => {
    if (sendOutage(reply, state, 'token')) return reply;
    const form = formBody(request);
    const grantType = form.get('grant_type');
    state.count('token', grantType && Object.hasOwn(GRANTS, grantType) ? grantType : 'invalid');
    const authority = resolveAuthority(state.scenario, request.params.tenant);
    if (grantType === undefined || grantType === '') throw new AadError(900144, { name: 'grant_type' });
    const grant = GRANTS[grantType];
    if (!grant || !Object.hasOwn(GRANTS, grantType)) throw new AadError(70003, { grantType });
    const authorization = request.headers.authorization;
    const origin = request.headers.origin;
    const clientId = clientIdOf(form, authorization);
    // Failures armed for a whole endpoint (not one user) fire before the grant's own checks.
    state.checkFailures('token', { grantType, ...(clientId ? { clientId } : {}) });
    const body = await grant({
      state,
      authority,
      form,
      grantType,
      ...(clientId ? { clientId } : {}),
      ...(authorization ? { authorization } : {}),
      ...(typeof origin === 'string' ? { origin } : {}),
    });
    return jsonHeaders(reply).send(body);
  });

  // Only /token refuses GET: /devicecode answers it (reference section 3.1).
  for (const [path, methods] of [
    ['/:tenant/oauth2/v2.0/token', ['GET', 'PUT', 'DELETE', 'PATCH']],
    ['/:tenant/oauth2/v2.0/devicecode', ['PUT', 'DELETE', 'PATCH']],
  ] as const) {
    app.route({
      method: [...methods],
      url: path,
      handler: async (request) => {
        state.count(path.endsWith('token') ? 'token' : 'devicecode', 'wrong_method');
        throw new AadError(900561, { method: request.method });
      },
    });
  }
}
