// Look-ups over the live scenario: which tenant a URL names, which app a client id is, which
// users may sign in through which authority. Raises the Entra error a real tenant would.
import { AadError } from './aad-error.ts';
import { CONSUMER_TENANT_ID, type App, type Scenario, type Tenant, type User } from '../scenario/schema.ts';
import { consentKey, RESOURCES, type Permission } from './scopes.ts';

/** The `{tenant}` path segment, resolved. */
export type Authority =
  | { kind: 'common' | 'organizations'; segment: string }
  | { kind: 'consumers'; segment: string; tenant: Tenant }
  | { kind: 'tenant'; segment: string; tenant: Tenant };

export function resolveAuthority(scenario: Scenario, segment: string): Authority {
  const lower = segment.toLowerCase();
  if (lower === 'common' || lower === 'organizations') return { kind: lower, segment };
  const tenant = scenario.tenants.find((t) => t.id.toLowerCase() === lower || t.domains.some((d) => d.toLowerCase() === lower));
  if (lower === 'consumers' || tenant?.kind === 'consumers') {
    const consumers = scenario.tenants.find((t) => t.kind === 'consumers');
    if (consumers) return { kind: 'consumers', segment, tenant: consumers };
  }
  if (!tenant) throw new AadError(90002, { tenant: segment });
  return { kind: 'tenant', segment, tenant };
}

export function isPersonal(user: User): boolean {
  return user.tenant === CONSUMER_TENANT_ID;
}

export function allowsPersonal(app: App): boolean {
  return app.signInAudience === 'AzureADandPersonalMicrosoftAccount' || app.signInAudience === 'PersonalMicrosoftAccount';
}

/** The app behind a client id, checked against the authority it is used through. */
export function findApp(scenario: Scenario, clientId: string | undefined, authority: Authority): App {
  const app = scenario.apps.find((a) => a.clientId.toLowerCase() === (clientId ?? '').toLowerCase());
  const tenantName = authority.kind === 'tenant' || authority.kind === 'consumers' ? authority.tenant.id : authority.segment;
  if (!app) throw new AadError(700016, { appId: clientId ?? '', tenant: tenantName });
  const names = { appId: app.clientId, appName: app.displayName };
  if (app.signInAudience === 'PersonalMicrosoftAccount' && authority.kind !== 'consumers' && authority.kind !== 'common') {
    throw new AadError(9002331, names);
  }
  if (app.signInAudience === 'AzureADMyOrg') {
    if (authority.kind !== 'tenant' && authority.kind !== 'consumers') throw new AadError(50194, names);
    if (authority.tenant.id !== app.homeTenant) throw new AadError(700016, { appId: app.clientId, tenant: tenantName });
  }
  if (authority.kind === 'consumers' && !allowsPersonal(app)) {
    throw new AadError(700016, { appId: app.clientId, tenant: tenantName });
  }
  return app;
}

export function findUser(scenario: Scenario, login: string): User | undefined {
  const wanted = login.trim().toLowerCase();
  return scenario.users.find((u) => u.userPrincipalName.toLowerCase() === wanted);
}

function hideEmail(login: string): string {
  const [name = '', domain = ''] = login.split('@');
  return `${name.slice(0, 1)}${'*'.repeat(Math.max(name.length - 1, 1))}@${domain}`;
}

/** Checks that `user` may sign in to `app` through `authority`; returns the tenant of the grant. */
export function checkUserForAuthority(scenario: Scenario, login: string, app: App, authority: Authority): User {
  const user = findUser(scenario, login);
  const directory = authority.kind === 'tenant' ? authority.tenant.domains[0] : authority.segment;
  if (!user) throw new AadError(50034, { EmailHidden: hideEmail(login), tenant: directory });
  const personal = isPersonal(user);
  const foreign =
    (authority.kind === 'tenant' && user.tenant !== authority.tenant.id) ||
    (authority.kind === 'organizations' && personal) ||
    (authority.kind === 'consumers' && !personal) ||
    (authority.kind === 'common' && personal && !allowsPersonal(app));
  if (foreign) {
    throw new AadError(50020, {
      email: user.userPrincipalName,
      idp: personal ? 'live.com' : `https://sts.windows.net/${user.tenant}/`,
      tenant: authority.kind === 'tenant' ? authority.tenant.id : authority.segment,
      appId: app.clientId,
      appName: app.displayName,
    });
  }
  return user;
}

export function userTenant(scenario: Scenario, user: User): Tenant {
  const tenant = scenario.tenants.find((t) => t.id === user.tenant);
  if (!tenant) throw new Error(`user ${user.userPrincipalName} names unknown tenant ${user.tenant}`);
  return tenant;
}

/** Permissions in `wanted` that neither the user nor an admin has consented to for this app. */
export function missingConsent(scenario: Scenario, app: App, user: User, wanted: Permission[]): Permission[] {
  const granted = new Set<string>();
  for (const consent of scenario.consents) {
    if (consent.clientId.toLowerCase() !== app.clientId.toLowerCase() || consent.tenant !== user.tenant) continue;
    if (consent.user && consent.user.toLowerCase() !== user.userPrincipalName.toLowerCase()) continue;
    for (const scope of consent.scopes) granted.add(consentKeyOfScope(scope));
  }
  return wanted.filter((p) => !granted.has(consentKey(p)));
}

/** `https://outlook.office365.com/SMTP.Send` and `https://outlook.office.com/smtp.send` are one consent. */
export function consentKeyOfScope(scope: string): string {
  const slash = scope.lastIndexOf('/');
  const prefix = slash > 0 ? scope.slice(0, slash).toLowerCase() : '';
  const name = (slash > 0 ? scope.slice(slash + 1) : scope).toLowerCase();
  for (const resource of Object.values(RESOURCES)) {
    const named = prefix === '' ? resource.id === 'graph' : Object.keys(resource.prefixes).some((k) => k.toLowerCase() === prefix);
    if (!named) continue;
    const canonical = resource.delegated.find((p) => p.toLowerCase() === name) ?? name;
    return consentKey({ resource: resource.id, name: canonical });
  }
  return scope.toLowerCase();
}

/** Records a user's (or, without a user, an organisation-wide) consent. */
export function recordConsent(scenario: Scenario, app: App, tenantId: string, scopes: string[], user?: User): void {
  scenario.consents.push({
    clientId: app.clientId,
    tenant: tenantId,
    ...(user ? { user: user.userPrincipalName } : {}),
    scopes,
  });
}

/** The object id of the app's service principal in a tenant (made on first use, as consent would). */
export function servicePrincipalId(app: App, tenantId: string): string | undefined {
  return app.servicePrincipals[tenantId];
}
