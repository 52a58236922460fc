// Loading and checking the configuration: the mistakes admins make get a message that says what
// to change, every problem at once; environment overrides and custom clouds work.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig, resolveCloud, resolveSecret } from '../../src/config/load.ts';
import { scopeForProtocol, scopesFor } from '../../src/config/scopes.ts';
import { CLOUDS } from '../../src/config/clouds.ts';
import { configCacheFile } from '../../src/config/validated-cache.ts';
import { runCli } from '../helpers/cli.ts';

const CLIENT = '8b3e1d7f-2c4a-4e6b-9f1d-5a7c3e9b2d41';
const TENANT = 'c5a7e2b4-1f3d-4c8e-9a6b-2d7f0e1c3b5a';

describe('configuration', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-config-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  let n = 0;
  async function write(config: unknown): Promise<string> {
    const file = join(dir, `config-${n++}.json`);
    await writeFile(file, typeof config === 'string' ? config : JSON.stringify(config));
    return file;
  }

  async function problemsOf(config: unknown, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
    try {
      await loadConfig(await write(config), env);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map((p) => `${p.path}: ${p.message}`);
    }
    return [];
  }

  const good = {
    apps: {
      desktop: { tenant: 'contoso.com', clientId: CLIENT },
      service: { tenant: TENANT, clientId: CLIENT, clientSecret: { env: 'SERVICE_SECRET' } },
    },
    mailboxes: {
      'alice@contoso.com': { app: 'desktop', grant: 'authorization_code', protocols: ['imap', 'smtp'] },
      'support@contoso.com': { app: 'service', grant: 'client_credentials', protocols: ['pop'] },
    },
  };

  it('loads a valid configuration, with defaults', async () => {
    const loaded = await loadConfig(await write(good), { XDG_DATA_HOME: '/var/lib/x' });
    assert.equal(loaded.config.apps.desktop?.cloud, 'global');
    assert.deepEqual(loaded.config.mailboxes['alice@contoso.com']?.protocols, ['imap', 'smtp']);
    assert.equal(loaded.dataDir, '/var/lib/x/mailbridge');
    assert.equal(resolveCloud(loaded, loaded.config.apps.desktop).imap.host, 'outlook.office365.com');
  });

  it('flags a GUID-shaped client secret as the Secret ID', async () => {
    const problems = await problemsOf({
      ...good,
      apps: { ...good.apps, service: { tenant: TENANT, clientId: CLIENT, clientSecret: '9e5a3c7f-1b6d-4f0e-8a2c-4d6b0f2e5a71' } },
    });
    assert.deepEqual(problems, [
      'apps.service.clientSecret: this is a GUID, so it is almost certainly the Secret ID, not the secret. In App registrations > your app > Certificates & secrets, copy the Value column (shown only once, right after the secret is created; make a new secret if it is hidden)',
    ]);
  });

  it('refuses client credentials on common, a client id that is not a GUID, and an unknown app, all at once', async () => {
    const problems = await problemsOf({
      apps: { svc: { tenant: 'common', clientId: 'my-app', clientSecret: 's3cr3t~value' } },
      mailboxes: {
        'a@contoso.com': { app: 'svc', grant: 'client_credentials' },
        'b@contoso.com': { app: 'nope', grant: 'device_code' },
      },
    });
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.match(problems[0]!, /^apps\.svc\.clientId: must be the Application \(client\) ID, a GUID/);
    assert.match(problems[1]!, /^apps\.svc\.tenant: client credentials \(app-only\) need your tenant id or domain, not "common" \(Entra answers AADSTS9001023/);
    assert.equal(problems[2], 'mailboxes.b@contoso.com.app: no app named "nope" under "apps" (there are: svc)');
  });

  it('reports a schema error and every other check at once (issue 12 point 14)', async () => {
    const problems = await problemsOf({
      apps: {
        svc: { tenant: 'common', clientId: 'my-app', clientSecret: '9e5a3c7f-1b6d-4f0e-8a2c-4d6b0f2e5a71', redirectUri: 'http://app.contoso.com/cb' },
        desk: { tenant: 'not a tenant', clientId: CLIENT },
      },
      mailboxes: {
        'a@contoso.com': { app: 'svc', grant: 'client-credentials' },
        'not-an-address': { app: 'nope', grant: 'device_code' },
        'b@contoso.com': { app: 'desk', grant: 'device_code', scopes: ['Mail.Read'] },
      },
    });
    const paths = problems.map((p) => p.slice(0, p.indexOf(': ')));
    assert.deepEqual(
      [...paths].sort(),
      [
        'apps.desk.tenant',
        'apps.svc.clientId',
        'apps.svc.clientSecret',
        'apps.svc.redirectUri',
        'mailboxes.a@contoso.com.grant',
        'mailboxes.b@contoso.com.scopes',
        'mailboxes.not-an-address',
        'mailboxes.not-an-address.app',
      ],
      problems.join('\n'),
    );
  });

  it('never caches a configuration that failed, whether the schema or a check refused it (issue 12 point 14)', async () => {
    const env = { XDG_CACHE_HOME: join(dir, 'cache-refused') };
    for (const grant of ['client-credentials', 'client_credentials']) {
      const file = await write({
        apps: { svc: { tenant: 'common', clientId: CLIENT, clientSecret: 'x~y' } },
        mailboxes: { 'a@contoso.com': { app: 'svc', grant } },
      });
      for (let attempt = 0; attempt < 2; attempt++) await assert.rejects(loadConfig(file, env), ConfigError);
      await assert.rejects(stat(configCacheFile(file, env)), { code: 'ENOENT' });
    }
  });

  it('names the unset environment variable of a secret, through the real CLI (issue 12 point 14)', async () => {
    const file = await write({
      apps: { service: { tenant: TENANT, clientId: CLIENT, clientSecret: { env: 'MAILBRIDGE_TEST_UNSET_SECRET' } } },
      mailboxes: { 'support@contoso.com': { app: 'service', grant: 'client_credentials', protocols: ['imap'] } },
    });
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MAILBRIDGE')));
    const result = await runCli(['token', 'support@contoso.com', '--config', file], {
      env: { ...env, XDG_DATA_HOME: join(dir, 'data'), XDG_CACHE_HOME: join(dir, 'cache') },
    });
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /apps\.service\.clientSecret: the environment variable MAILBRIDGE_TEST_UNSET_SECRET is not set/);
    assert.doesNotMatch(result.stderr, /problem:\./);
  });

  it('refuses personal accounts (consumers) in a national cloud, also through a custom cloud based on one (issue 12 point 15)', async () => {
    const personal = (cloud: string, clouds: unknown = {}) =>
      problemsOf({ clouds, apps: { desktop: { cloud, tenant: 'consumers', clientId: CLIENT } }, mailboxes: {} });
    for (const cloud of ['china', 'usgov-gcc-high', 'usgov-dod']) {
      assert.deepEqual(await personal(cloud), [
        `apps.desktop.tenant: personal Microsoft accounts (Outlook.com) exist only in the global cloud, not in ${cloud}, so "consumers" cannot sign in there; give your Directory (tenant) ID, a verified domain, or organizations`,
      ]);
    }
    assert.equal((await personal('gov', { gov: { base: 'usgov-dod', loginUrl: 'https://login.example.us' } })).length, 1);
    assert.deepEqual(await personal('global'), []);
    assert.deepEqual(await problemsOf({ apps: { desktop: { cloud: 'china', tenant: 'organizations', clientId: CLIENT } }, mailboxes: {} }), []);
  });

  it('refuses Graph and unprefixed mail scopes and names the right one', async () => {
    const problems = await problemsOf({
      ...good,
      mailboxes: { 'alice@contoso.com': { app: 'desktop', grant: 'device_code', scopes: ['IMAP.AccessAsUser.All', 'https://graph.microsoft.com/SMTP.Send'] } },
    });
    assert.deepEqual(problems, [
      'mailboxes.alice@contoso.com.scopes: "IMAP.AccessAsUser.All" gives a Microsoft Graph token, which IMAP, POP and SMTP refuse; use "https://outlook.office.com/IMAP.AccessAsUser.All"',
      'mailboxes.alice@contoso.com.scopes: "https://graph.microsoft.com/SMTP.Send" gives a Microsoft Graph token, which IMAP, POP and SMTP refuse; use "https://outlook.office.com/SMTP.Send"',
    ]);
  });

  it('refuses any unprefixed scope (it means Graph), but takes OIDC directives and the Outlook .default', async () => {
    const withScopes = (scopes: string[]) => problemsOf({ ...good, mailboxes: { 'alice@contoso.com': { app: 'desktop', grant: 'device_code', scopes } } });
    assert.deepEqual(await withScopes(['https://outlook.office.com/.default', 'offline_access', 'openid']), []);
    const problems = await withScopes(['Mail.Read', 'https://outlook.office.com/SMTP.Send']);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /"Mail\.Read" has no resource prefix, so it means Microsoft Graph's Mail\.Read/);
  });

  it('applies the redirect URI rules', async () => {
    const withUri = (redirectUri: string) =>
      problemsOf({ apps: { web: { tenant: 'contoso.com', clientId: CLIENT, clientSecret: 'x~y', redirectUri } }, mailboxes: {} });
    assert.deepEqual(await withUri('https://app.contoso.com/auth/callback'), []);
    assert.deepEqual(await withUri('http://localhost:8080/callback'), []);
    assert.deepEqual(await withUri('http://app.contoso.com/callback'), [
      'apps.web.redirectUri: a redirect URI must use https://, except http://localhost or http://127.0.0.1',
    ]);
    assert.deepEqual(await withUri('http://[::1]:8080/'), ['apps.web.redirectUri: Entra does not accept [::1]; use http://localhost or http://127.0.0.1']);
  });

  it('takes overrides from the environment (MAILBRIDGE__path__to__field) and secret references', async () => {
    const loaded = await loadConfig(await write(good), { MAILBRIDGE__apps__desktop__tenant: 'organizations', SERVICE_SECRET: 'from-env~secret' });
    assert.equal(loaded.config.apps.desktop?.tenant, 'organizations');
    assert.equal(
      await resolveSecret(loaded, loaded.config.apps.service!.clientSecret!, 'apps.service.clientSecret', { SERVICE_SECRET: 'from-env~secret' }),
      'from-env~secret',
    );
    await assert.rejects(
      resolveSecret(loaded, { env: 'MISSING_VAR' }, 'apps.service.clientSecret', {}),
      /apps\.service\.clientSecret: the environment variable MISSING_VAR is not set/,
    );
  });

  it('points a custom cloud at other hosts (the emulator), relative to the file', async () => {
    const loaded = await loadConfig(
      await write({
        clouds: {
          emulator: {
            base: 'global',
            loginUrl: 'https://localhost:44300/',
            imap: 'imaps://localhost:44303',
            pop: 'pop3s://localhost:44301',
            smtp: 'smtp://localhost:44305',
            caFile: 'ca.crt',
          },
        },
        apps: { desktop: { cloud: 'emulator', tenant: 'contoso.com', clientId: CLIENT } },
        mailboxes: {},
      }),
      {},
    );
    const cloud = resolveCloud(loaded, loaded.config.apps.desktop!);
    assert.equal(cloud.loginUrl, 'https://localhost:44300');
    assert.deepEqual(cloud.imap, { host: 'localhost', port: 44303, security: 'implicit' });
    assert.deepEqual(cloud.smtp, { host: 'localhost', port: 44305, security: 'starttls' });
    assert.equal(cloud.caFile, join(dir, 'ca.crt'));
    assert.equal(cloud.delegatedScopePrefix, 'https://outlook.office.com');
  });

  it('sends personal Outlook.com accounts to smtp-mail.outlook.com', async () => {
    const loaded = await loadConfig(await write({ apps: { personal: { tenant: 'consumers', clientId: CLIENT } }, mailboxes: {} }), {});
    const cloud = resolveCloud(loaded, loaded.config.apps.personal!);
    assert.deepEqual(cloud.smtp, { host: 'smtp-mail.outlook.com', port: 587, security: 'starttls' });
    assert.equal(cloud.imap.host, 'outlook.office365.com');
  });

  it('says what to do when the file is missing or not JSON', async () => {
    await assert.rejects(loadConfig(join(dir, 'absent.json'), {}), /there is no such file; create one with `mailbridge init`/);
    await assert.rejects(loadConfig(await write('{ "apps": '), {}), /not valid JSON/);
  });

  it('builds scopes from protocol and cloud', () => {
    assert.deepEqual(scopesFor(CLOUDS.global, ['imap', 'smtp', 'imap'], 'authorization_code'), [
      'https://outlook.office.com/IMAP.AccessAsUser.All',
      'https://outlook.office.com/SMTP.Send',
      'offline_access',
    ]);
    assert.deepEqual(scopesFor(CLOUDS['usgov-gcc-high'], ['pop'], 'client_credentials'), ['https://outlook.office365.us/.default']);
    assert.equal(scopeForProtocol(CLOUDS.china, 'pop', 'device_code'), 'https://partner.outlook.cn/POP.AccessAsUser.All');
  });
});
