// The checks that catch the setup mistakes every admin makes once (what-users-hit.md): a Secret
// ID pasted as the secret, Graph scopes, client credentials on /common, redirect URI rules.
import { CLOUD_NAMES } from './clouds.ts';
import { GUID } from './names.ts';
import { GRANTS, type GrantType } from './names.ts';
import type { MailbridgeConfig } from './schema.ts';
import { checkScopes } from './scopes.ts';

export interface ConfigProblem {
  path: string;
  message: string;
}

// What the checks read. A configuration that passed the schema is one; so is looseConfig's reading
// of one that did not, where a field of the wrong type is simply absent (the schema reports it).
interface CheckedApp {
  cloud: string;
  tenant?: string | undefined;
  clientId?: string | undefined;
  clientSecret?: unknown;
  certificate?: unknown;
  redirectUri?: string | undefined;
}
interface CheckedMailbox {
  app?: string | undefined;
  grant?: GrantType | undefined;
  signInAs?: string | undefined;
  scopes?: string[] | undefined;
}
interface CheckedConfig {
  clouds: Record<string, { base?: string | undefined; imap?: string | undefined; pop?: string | undefined; smtp?: string | undefined }>;
  apps: Record<string, CheckedApp>;
  mailboxes: Record<string, CheckedMailbox>;
}

const MULTI_TENANT = new Set(['common', 'organizations', 'consumers']);
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

export function isGuid(value: string): boolean {
  return GUID.test(value);
}

function checkRedirectUri(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `"${uri}" is not a URL`;
  }
  if (uri.length > 256) return 'a redirect URI may be at most 256 characters';
  if (url.hash) return 'a redirect URI cannot have a #fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && (url.hostname === 'localhost' || url.hostname === '127.0.0.1')) return undefined;
  if (url.hostname === '[::1]') return 'Entra does not accept [::1]; use http://localhost or http://127.0.0.1';
  return 'a redirect URI must use https://, except http://localhost or http://127.0.0.1';
}

function checkApp(name: string, app: CheckedApp, config: CheckedConfig, problems: ConfigProblem[]): void {
  const at = `apps.${name}`;
  if (app.clientId !== undefined && !isGuid(app.clientId)) {
    problems.push({
      path: `${at}.clientId`,
      message: 'must be the Application (client) ID, a GUID like 00000000-0000-0000-0000-000000000000 (App registrations > your app > Overview)',
    });
  }
  if (app.tenant !== undefined && !isGuid(app.tenant) && !MULTI_TENANT.has(app.tenant.toLowerCase()) && !DOMAIN.test(app.tenant)) {
    // An app only app-only mailboxes use is not offered the multi-tenant names it would then refuse.
    const users = Object.values(config.mailboxes).filter((m) => m.app === name);
    const appOnly = users.length > 0 && users.every((m) => m.grant === 'client_credentials');
    problems.push({
      path: `${at}.tenant`,
      message: appOnly
        ? 'must be your Directory (tenant) ID (a GUID) or a verified domain such as contoso.com: app-only access signs in at your own tenant'
        : 'must be the Directory (tenant) ID (a GUID), a verified domain such as contoso.com, or organizations/common/consumers',
    });
  }
  // Personal accounts live in the global cloud only: a national cloud (or a custom one based on it) has no /consumers.
  const base = (CLOUD_NAMES as readonly string[]).includes(app.cloud)
    ? app.cloud
    : Object.hasOwn(config.clouds, app.cloud)
      ? config.clouds[app.cloud]?.base
      : undefined;
  if (base !== undefined && base !== 'global' && app.tenant?.toLowerCase() === 'consumers') {
    problems.push({
      path: `${at}.tenant`,
      message: `personal Microsoft accounts (Outlook.com) exist only in the global cloud, not in ${app.cloud}, so "consumers" cannot sign in there; give your Directory (tenant) ID, a verified domain, or organizations`,
    });
  }
  if (!(CLOUD_NAMES as readonly string[]).includes(app.cloud) && !Object.hasOwn(config.clouds, app.cloud)) {
    problems.push({ path: `${at}.cloud`, message: `"${app.cloud}" is neither ${CLOUD_NAMES.join(', ')} nor a cloud defined under "clouds"` });
  }
  if (typeof app.clientSecret === 'string' && isGuid(app.clientSecret)) {
    problems.push({
      path: `${at}.clientSecret`,
      message:
        'this is a GUID, so it is almost certainly the Secret ID, not the secret. In App registrations > your app > Certificates & secrets, copy the Value column (shown only once, right after the secret is created; make a new secret if it is hidden)',
    });
  }
  if (app.clientSecret !== undefined && app.certificate !== undefined) {
    problems.push({ path: at, message: 'give clientSecret or certificate, not both (a certificate is the safer choice)' });
  }
  if (app.redirectUri !== undefined) {
    const problem = checkRedirectUri(app.redirectUri);
    if (problem) problems.push({ path: `${at}.redirectUri`, message: problem });
  }
}

function checkMailbox(address: string, mailbox: CheckedMailbox, config: CheckedConfig, problems: ConfigProblem[]): void {
  const at = `mailboxes.${address}`;
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address)) problems.push({ path: at, message: 'the key must be the mailbox address, e.g. support@contoso.com' });
  if (mailbox.app === undefined) return;
  const app = Object.hasOwn(config.apps, mailbox.app) ? config.apps[mailbox.app] : undefined;
  if (!app) {
    const known = Object.keys(config.apps);
    problems.push({ path: `${at}.app`, message: `no app named "${mailbox.app}" under "apps"${known.length ? ` (there are: ${known.join(', ')})` : ''}` });
    return;
  }
  const confidential = app.clientSecret !== undefined || app.certificate !== undefined;
  const tenant = app.tenant?.toLowerCase();
  if (mailbox.grant === 'client_credentials') {
    if (tenant !== undefined && MULTI_TENANT.has(tenant)) {
      problems.push({
        path: `apps.${mailbox.app}.tenant`,
        message: `client credentials (app-only) need your tenant id or domain, not "${app.tenant}" (Entra answers AADSTS9001023 on /common and /consumers)`,
      });
    }
    if (!confidential)
      problems.push({
        path: `apps.${mailbox.app}`,
        message: `mailbox ${address} uses client credentials, which need a clientSecret or (better) a certificate on the app`,
      });
    if (mailbox.signInAs) problems.push({ path: `${at}.signInAs`, message: 'app-only access signs in as the app; signInAs applies to delegated grants only' });
  }
  if (mailbox.grant === 'client_credentials' && tenant === 'consumers') {
    problems.push({ path: `${at}.grant`, message: 'personal Outlook.com accounts have no app-only access; use authorization_code or device_code' });
  }
  if (mailbox.scopes && mailbox.grant) {
    for (const problem of checkScopes(mailbox.scopes, mailbox.grant)) problems.push({ path: `${at}.scopes`, message: problem });
  }
}

/** Every problem in a configuration that passed the schema (or looseConfig's reading of one that did not). */
export function validateConfig(config: MailbridgeConfig | CheckedConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [name, app] of Object.entries(config.apps)) checkApp(name, app, config, problems);
  for (const [address, mailbox] of Object.entries(config.mailboxes)) checkMailbox(address, mailbox, config, problems);
  for (const [name, cloud] of Object.entries(config.clouds)) {
    for (const key of ['imap', 'pop', 'smtp'] as const) {
      const url = cloud[key];
      if (url !== undefined && !/^(imaps?|pop3s?|smtps?):\/\/[^/]+$/.test(url)) {
        problems.push({
          path: `clouds.${name}.${key}`,
          message: `"${url}" must look like ${key === 'smtp' ? 'smtp://host:587' : key === 'imap' ? 'imaps://host:993' : 'pop3s://host:995'}`,
        });
      }
    }
  }
  return problems;
}

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

function entries(value: unknown): [string, Record<string, unknown>][] {
  return isRecord(value) ? Object.entries(value).filter((e): e is [string, Record<string, unknown>] => isRecord(e[1])) : [];
}

/**
 * The parts of a configuration the schema refused that the checks can still read: each field of
 * the right type, with the schema's defaults. So one bad field does not hide the other problems.
 */
export function looseConfig(raw: unknown): CheckedConfig {
  const root = isRecord(raw) ? raw : {};
  const config: CheckedConfig = { clouds: {}, apps: {}, mailboxes: {} };
  for (const [name, cloud] of entries(root.clouds)) {
    config.clouds[name] = { base: text(cloud.base) ?? 'global', imap: text(cloud.imap), pop: text(cloud.pop), smtp: text(cloud.smtp) };
  }
  for (const [name, app] of entries(root.apps)) {
    config.apps[name] = {
      cloud: text(app.cloud) ?? 'global',
      tenant: text(app.tenant),
      clientId: text(app.clientId),
      clientSecret: app.clientSecret,
      certificate: app.certificate,
      redirectUri: text(app.redirectUri),
    };
  }
  for (const [address, mailbox] of entries(root.mailboxes)) {
    const grant = text(mailbox.grant);
    const scopes = Array.isArray(mailbox.scopes) && mailbox.scopes.every((s) => typeof s === 'string') ? mailbox.scopes : undefined;
    config.mailboxes[address] = {
      app: text(mailbox.app),
      grant: (GRANTS as readonly string[]).includes(grant ?? '') ? (grant as GrantType) : undefined,
      signInAs: text(mailbox.signInAs),
      scopes,
    };
  }
  return config;
}

/** The schema's problems and, beside them, every check that can still be made: each reported once. */
export function withOtherChecks(schemaProblems: ConfigProblem[], raw: unknown): ConfigProblem[] {
  const seen = new Set(schemaProblems.map((p) => `${p.path}\n${p.message}`));
  const problems = [...schemaProblems];
  for (const problem of validateConfig(looseConfig(raw))) {
    const key = `${problem.path}\n${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}
