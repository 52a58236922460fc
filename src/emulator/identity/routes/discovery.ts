// OIDC discovery, JWKS and MSAL's instance discovery (reference sections 1.3 to 1.5).
import type { FastifyInstance } from 'fastify';
import { resolveAuthority } from '../directory.ts';
import { jsonHeaders, requestOrigin } from '../http.ts';
import { jwksDocument } from '../signing-keys.ts';
import type { IdentityState } from '../state.ts';

const CACHE = 'max-age=86400, private';

export function registerDiscoveryRoutes(app: FastifyInstance, state: IdentityState): void {
  app.get<{ Params: { tenant: string } }>('/:tenant/v2.0/.well-known/openid-configuration', async (request, reply) => {
    state.count('discovery');
    const authority = resolveAuthority(state.scenario, request.params.tenant);
    const origin = requestOrigin(request, state);
    const t = request.params.tenant;
    const specific = authority.kind === 'tenant' || authority.kind === 'consumers';
    const issuerTenant = specific ? authority.tenant.id : '{tenantid}';
    const base = `${origin}/${t}`;
    reply.header('access-control-allow-origin', '*');
    return jsonHeaders(reply, CACHE).send({
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${origin}/${issuerTenant}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: [
        'sub',
        'iss',
        'cloud_instance_name',
        'cloud_instance_host_name',
        'cloud_graph_host_name',
        'msgraph_host',
        'aud',
        'exp',
        'iat',
        'auth_time',
        'acr',
        'nonce',
        'preferred_username',
        'name',
        'tid',
        'ver',
        'at_hash',
        'c_hash',
        'email',
      ],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: authority.kind === 'tenant' ? authority.tenant.region : null,
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    });
  });

  const keys = async (request: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    state.count('jwks');
    return jsonHeaders(reply, CACHE).send(jwksDocument(state.signingKey, `${requestOrigin(request, state)}/{tenantid}/v2.0`));
  };
  app.get('/:tenant/discovery/v2.0/keys', keys);
  app.get('/:tenant/discovery/keys', keys);

  app.get('/common/discovery/instance', async (request, reply) => {
    state.count('instance_discovery');
    const origin = requestOrigin(request, state);
    const host = new URL(origin).host;
    return jsonHeaders(reply, CACHE).send({
      tenant_discovery_endpoint: `${origin}/{tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [
        { preferred_network: host, preferred_cache: host, aliases: [host] },
        {
          preferred_network: 'login.microsoftonline.com',
          preferred_cache: 'login.windows.net',
          aliases: ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'],
        },
        {
          preferred_network: 'login.partner.microsoftonline.cn',
          preferred_cache: 'login.partner.microsoftonline.cn',
          aliases: ['login.partner.microsoftonline.cn', 'login.chinacloudapi.cn'],
        },
        {
          preferred_network: 'login.microsoftonline.us',
          preferred_cache: 'login.microsoftonline.us',
          aliases: ['login.microsoftonline.us', 'login.usgovcloudapi.net'],
        },
      ],
    });
  });
}
