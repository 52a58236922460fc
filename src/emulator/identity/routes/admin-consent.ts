// Admin consent (reference section 4.2): `/{tenant}/v2.0/adminconsent` (with `scope`) and the
// classic `/{tenant}/adminconsent`. An administrator signs in and grants the app its permissions
// for the whole organisation; the app learns the outcome from `admin_consent=True&tenant=...`.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AadError } from '../aad-error.ts';
import { FormParams } from '../form.ts';
import {
  appResponse,
  begin,
  errorFields,
  errorPageOutcome,
  listAppRoles,
  listDelegated,
  pageRoute,
  validateClientAndRedirect,
  type Outcome,
  type ValidatedClient,
  type Web,
} from '../interaction.ts';
import type { ListedPermission } from '../pages/consent.ts';
import type { ResourceId } from '../scopes.ts';
import type { IdentityState } from '../state.ts';
import { parseDelegatedScopes } from '../scopes.ts';

type TenantRequest = FastifyRequest<{ Params: { tenant: string } }>;

async function adminConsent(web: Web, classic: boolean): Promise<Outcome> {
  const { state, request } = web;
  state.count('adminconsent');
  const params = FormParams.fromQuery(request.query);
  let client: ValidatedClient;
  try {
    client = validateClientAndRedirect(web, (request as TenantRequest).params.tenant, params);
  } catch (err) {
    if (err instanceof AadError) return errorPageOutcome(web, err);
    throw err;
  }
  const { app } = client;
  let stateValue: string | undefined;
  try {
    stateValue = params.get('state');
  } catch {
    stateValue = undefined;
  }
  const target = { redirectUri: client.redirectUri, responseMode: 'query' as const };
  try {
    params.get('state');
    let listed: ListedPermission[] = [];
    let consentScopes: string[] = [];
    let scopeEcho: string | undefined;
    const rawScope = classic ? undefined : params.get('scope');
    if (!classic && (rawScope === undefined || rawScope.trim() === '')) throw new AadError(900144, { name: 'scope' });
    if (rawScope !== undefined) {
      const parsed = parseDelegatedScopes(rawScope);
      scopeEcho = rawScope.split(/\s+/).filter(Boolean).join(' ');
      listed = [
        ...parsed.defaults.flatMap((d) => {
          const roles = app.appRoles[d.resource] ?? [];
          return roles.length > 0 ? listAppRoles(d.resource, roles) : [{ title: `Access ${d.scope.slice(0, -'/.default'.length)} as the app`, scope: d.scope }];
        }),
        ...listDelegated(parsed.permissions, [...parsed.directives]),
      ];
      consentScopes = [...parsed.permissions.map((p) => p.scope), ...parsed.defaults.map((d) => d.scope)];
    } else {
      for (const [resource, roles] of Object.entries(app.appRoles)) listed.push(...listAppRoles(resource as ResourceId, roles ?? []));
    }
    return await begin(web, {
      authority: client.authority,
      clientId: app.clientId,
      target: {
        kind: 'adminconsent',
        redirectUri: client.redirectUri,
        responseMode: 'query',
        ...(stateValue !== undefined ? { state: stateValue } : {}),
        ...(scopeEcho !== undefined ? { scopeEcho } : {}),
        consentScopes,
        listed,
      },
      permissions: [],
      directives: [],
      defaults: [],
    });
  } catch (err) {
    if (err instanceof AadError) return appResponse(target, errorFields(web, err, stateValue));
    throw err;
  }
}

export function registerAdminConsentRoutes(app: FastifyInstance, state: IdentityState): void {
  app.get(
    '/:tenant/v2.0/adminconsent',
    pageRoute(state, (web) => adminConsent(web, false)),
  );
  app.get(
    '/:tenant/adminconsent',
    pageRoute(state, (web) => adminConsent(web, true)),
  );
}
