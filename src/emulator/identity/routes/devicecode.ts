// POST /{tenant}/oauth2/v2.0/devicecode (reference sections 3.1, 3.2): a user code for a person
// to enter at the verification page, and a device code the app polls the token endpoint with.
// Entra answers a GET with the parameters in the query string too; clients written for it use it.
import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { findApp, resolveAuthority } from '../directory.ts';
import { FormParams } from '../form.ts';
import { formBody, jsonHeaders, requestOrigin } from '../http.ts';
import { parseDelegatedScopes } from '../scopes.ts';
import { randomToken, type IdentityState } from '../state.ts';

// No 0/O or 1/I: the code is read off one screen and typed on another.
const USER_CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

function newUserCode(): string {
  let code = '';
  for (let i = 0; i < 9; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return code;
}

export function registerDeviceCodeRoutes(app: FastifyInstance, state: IdentityState): void {
  app.route<{ Params: { tenant: string } }>({
    method: ['GET', 'POST'],
    url: '/:tenant/oauth2/v2.0/devicecode',
    handler: async (request, reply) => {
      state.count('devicecode');
      const form = request.method === 'GET' ? FormParams.fromQuery(request.query) : formBody(request);
      const authority = resolveAuthority(state.scenario, request.params.tenant);
      const client = findApp(state.scenario, form.require('client_id'), authority);
      const rawScope = form.require('scope');
      const parsed = parseDelegatedScopes(rawScope);
      state.checkFailures('devicecode', { clientId: client.clientId });
      const { deviceCodeLifetime, deviceCodeInterval } = state.scenario.settings;
      const userCode = newUserCode();
      const deviceCode = `DAQABIQEAAAB${randomToken(180)}`;
      const now = state.clock.nowMs();
      state.deviceCodes.set(deviceCode, {
        deviceCode,
        userCode,
        clientId: client.clientId,
        authoritySegment: request.params.tenant,
        permissions: parsed.permissions,
        directives: [...parsed.directives],
        issuedAtMs: now,
        expiresAtMs: now + deviceCodeLifetime * 1000,
        status: 'pending',
      });
      const verificationUri = `${requestOrigin(request, state)}/devicelogin`;
      return jsonHeaders(reply).send({
        user_code: userCode,
        device_code: deviceCode,
        verification_uri: verificationUri,
        expires_in: deviceCodeLifetime,
        interval: deviceCodeInterval,
        message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${userCode} to authenticate.`,
      });
    },
  });
}
