// `mailbridge init` as a person or script runs it: a separate process with real stdin, stdout
// and exit code. --emulator against a real emulator process (the written configuration loads, points
// at the emulator, and its certificate really signs in); interactive answers piped on stdin, each
// checked with the configuration's own rules, then the checklist and the Exchange PowerShell.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { DatabaseSync } from 'node:sqlite';
import { defaultDataDir, loadConfig, resolveCloud } from '../../src/config/load.ts';
import { openStores } from '../../src/store/open-stores.ts';
import { SqliteProxyClientStore } from '../../src/store/sqlite-proxy-client-store.ts';
import { msalApp } from '../../src/identity/msal-apps.ts';
import { exchangePowerShell, OBJECT_ID_PLACEHOLDER, registrationChecklist, setupGuide } from '../../src/cli/setup-guide.ts';
import { MAILBRIDGE_CLI, runCli, type CliRun } from '../helpers/cli.ts';
import { httpsRequest } from '../helpers/https.ts';

// The environment of every run: no CA from outside, no config path from outside.
const ENV: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS' && k !== 'MAILBRIDGE_CONFIG' && !k.startsWith('MAILBRIDGE__')),
);

/** `mailbridge init ...` through the real entry point, with `input` as the piped answers. */
function run(args: string[], input?: string, env: NodeJS.ProcessEnv = ENV): Promise<CliRun> {
  return runCli(['init', ...args], { env, stdin: input ?? '' });
}

interface Scenario {
  identity: string;
  ca: string;
  services: Record<string, string>;
  apps: { clientId: string; displayName: string; secrets: { id: string; value: string }[]; certificates: { certPem: string; keyPem: string }[] }[];
  users: { userPrincipalName: string; password: string }[];
  exchange: { servicePrincipals: { appId: string; objectId: string }[] };
}

const CLIENT_ID = '3f9a1c2e-5b7d-4e8f-a1c3-5e7f9b1d3a5c';
const OBJECT_ID = '7d1e3f5a-9b2c-4d6e-8f0a-2b4c6d8e0f1a';
const SECRET_ID = 'a4c6e8f0-2b4d-4f6a-8c0e-2f4a6c8e0b2d';
const SECRET_VALUE = 'Xy78Q~abcdefGHIJKLmnopQRSTuvwxYZ0123456_';

describe('mailbridge init', () => {
  let dir: string;
  let emulator: ChildProcess;
  let identity: string;
  let caPath: string;
  let scenario: Scenario;
  let app: (name: string) => Scenario['apps'][number];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-init-'));
    emulator = spawn(process.execPath, [MAILBRIDGE_CLI, 'emulator', '--data', join(dir, 'emulator'), '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
    for await (const line of createInterface({ input: emulator.stdout! })) {
      if (line.startsWith('identity ')) identity = line.slice('identity '.length);
      if (line.startsWith('ca ')) {
        caPath = line.slice('ca '.length);
        break;
      }
    }
    scenario = (await httpsRequest(`${identity}/_emulator/scenario`, { caPem: await readFile(caPath, 'utf8') })).json<Scenario>();
    app = (name) => scenario.apps.find((a) => a.displayName === name)!;
  });

  after(async () => {
    const exited = new Promise((resolve) => emulator.once('close', resolve));
    emulator.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  });

  /** Every secret the emulator's scenario holds: none may appear in what init prints. */
  function secretsOf(s: Scenario): string[] {
    return [
      ...s.apps.flatMap((a) => a.secrets.map((x) => x.value)),
      ...s.apps.flatMap((a) => a.certificates.map((c) => c.keyPem.split('\n')[1]!)),
      ...s.users.map((u) => u.password),
    ];
  }

  describe('--emulator', () => {
    let configFile: string;
    let first: CliRun;

    before(async () => {
      configFile = join(dir, 'emulator-config', 'config.json');
      first = await run(['--emulator', identity, '--ca', caPath, '--config', configFile, '--json']);
    });

    it('writes a configuration that loads, with one mailbox per grant, derived from the live scenario', async () => {
      assert.equal(first.code, 0, first.stderr);
      const loaded = await loadConfig(configFile, {});
      const { apps, mailboxes } = loaded.config;
      const desktop = app('mailbridge desktop');
      const web = app('mailbridge web');
      const service = app('mailbridge service');
      assert.deepEqual(
        Object.entries(mailboxes).map(([address, m]) => [address, m.app, m.grant, m.protocols]),
        [
          ['alice@contoso.com', 'desktop', 'authorization_code', ['imap', 'pop', 'smtp']],
          ['bob@contoso.com', 'desktop', 'device_code', ['imap', 'pop', 'smtp']],
          ['support@contoso.com', 'service', 'client_credentials', ['imap', 'pop', 'smtp']],
          ['carol@outlook.com', 'desktop-personal', 'authorization_code', ['imap', 'pop', 'smtp']],
        ],
      );
      assert.deepEqual(apps.desktop, { cloud: 'emulator', tenant: 'contoso.onmicrosoft.com', clientId: desktop.clientId });
      assert.deepEqual(apps['desktop-personal'], { cloud: 'emulator', tenant: 'consumers', clientId: desktop.clientId });
      assert.equal(apps.web?.clientId, web.clientId);
      assert.equal(apps.web?.clientSecret, web.secrets[0]!.value);
      assert.equal(apps.web?.certificate, undefined);
      assert.equal(apps.web?.redirectUri, 'http://localhost/auth/callback');
      assert.equal(apps.service?.clientId, service.clientId);
      assert.equal(apps.service?.clientSecret, undefined);
      assert.ok(apps.service?.certificate);

      const summary = JSON.parse(first.stdout) as { config: string; files: string[]; mailboxes: { address: string; grant: string }[] };
      assert.equal(summary.config, configFile);
      assert.deepEqual(
        summary.mailboxes.map((m) => `${m.address} ${m.grant}`),
        [
          'alice@contoso.com authorization_code',
          'bob@contoso.com device_code',
          'support@contoso.com client_credentials',
          'carol@outlook.com authorization_code',
        ],
      );
      assert.match(first.stderr, new RegExp(`wrote ${configFile} \\(mode 0600\\)`));
      assert.match(first.stderr, /bob@contoso\.com +desktop +device_code +imap, pop, smtp/);
    });

    it("points the emulator cloud at the emulator's ports and CA", async () => {
      const loaded = await loadConfig(configFile, {});
      const cloud = resolveCloud(loaded, loaded.config.apps.desktop!);
      const port = (name: string) => Number(new URL(scenario.services[name]!).port);
      assert.equal(cloud.loginUrl, identity);
      assert.deepEqual(cloud.imap, { host: 'localhost', port: port('imaps'), security: 'implicit' });
      assert.deepEqual(cloud.pop, { host: 'localhost', port: port('pop3s'), security: 'implicit' });
      assert.deepEqual(cloud.smtp, { host: 'localhost', port: port('smtp'), security: 'starttls' });
      assert.equal(cloud.caFile, caPath);
      assert.equal(cloud.appOnlyScope, 'https://outlook.office365.com/.default');
    });

    it('writes the configuration and the certificate files with mode 0600, and the certificate signs in', async () => {
      const loaded = await loadConfig(configFile, {});
      const service = loaded.config.apps.service!;
      const certFile = join(loaded.baseDir, service.certificate!.certFile);
      const keyFile = join(loaded.baseDir, service.certificate!.keyFile);
      for (const file of [configFile, certFile, keyFile]) assert.equal((await stat(file)).mode & 0o777, 0o600, file);
      assert.equal(await readFile(certFile, 'utf8'), app('mailbridge service').certificates[0]!.certPem);
      assert.equal(await readFile(keyFile, 'utf8'), app('mailbridge service').certificates[0]!.keyPem);
      // The real consumer of these files: msal-node, over HTTPS to the emulator, trusting its CA.
      const cloud = resolveCloud(loaded, service);
      const client = await msalApp(loaded, 'service', service, cloud);
      assert.ok(client instanceof ConfidentialClientApplication);
      const result = await client.acquireTokenByClientCredential({ scopes: [cloud.appOnlyScope] });
      assert.ok(result?.accessToken);
    });

    it('gives each configuration its own data folder next to it, and its token store is private (0600, with -wal/-shm) (issue 12 point 16)', async () => {
      const loaded = await loadConfig(configFile, {});
      assert.equal(loaded.dataDir, join(dir, 'emulator-config', 'config.data'));
      assert.notEqual(loaded.dataDir, defaultDataDir({}));
      const other = join(dir, 'elsewhere', 'second.json');
      const second = await run(['--emulator', identity, '--ca', caPath, '--config', other]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal((await loadConfig(other, {})).dataDir, join(dir, 'elsewhere', 'second.data'));
      assert.match(second.stderr, /second\.data/);

      // A first token through the real CLI, under the usual umask: the store it creates is private.
      const umask = process.umask(0o022);
      try {
        const login = await runCli(['login', 'support@contoso.com', '--config', configFile], { env: ENV });
        assert.equal(login.code, 0, login.stderr);
        assert.equal((await stat(join(loaded.dataDir, 'tokens.db'))).mode & 0o777, 0o600);
        // While a store is open its -wal and -shm exist: they are private too.
        const stores = await openStores(loaded, { env: {} });
        try {
          await stores.openProxyClients();
          await stores.tokens.listMeta();
          for (const name of ['tokens.db', 'tokens.db-wal', 'tokens.db-shm']) {
            assert.equal((await stat(join(loaded.dataDir, name))).mode & 0o777, 0o600, name);
          }
        } finally {
          await stores.close();
        }
      } finally {
        process.umask(umask);
      }
    });

    it('makes an existing store written 0644 by an earlier version private, with its -wal/-shm (issue 12 point 16)', async () => {
      const data = join(dir, 'loose-store');
      await mkdir(data, { recursive: true, mode: 0o700 });
      const file = join(data, 'tokens.db');
      const umask = process.umask(0o022);
      try {
        const db = new DatabaseSync(file);
        db.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);');
        assert.equal((await stat(`${file}-wal`)).mode & 0o777, 0o644, 'the setup makes a loose store');
        const store = await SqliteProxyClientStore.open(file);
        try {
          for (const name of [file, `${file}-wal`, `${file}-shm`]) assert.equal((await stat(name)).mode & 0o777, 0o600, name);
        } finally {
          await store.close();
          db.close();
        }
      } finally {
        process.umask(umask);
      }
    });

    it('prints no secret, key or password', () => {
      for (const secret of secretsOf(scenario)) {
        assert.ok(!first.stdout.includes(secret), 'a secret on stdout');
        assert.ok(!first.stderr.includes(secret), 'a secret on stderr');
      }
    });

    it('refuses to replace an existing configuration without --force (exit 3), and replaces it with --force', async () => {
      const before = await readFile(configFile, 'utf8');
      const again = await run(['--emulator', identity, '--ca', caPath, '--config', configFile]);
      assert.equal(again.code, 3);
      assert.match(again.stderr, /config\.json already exists; nothing was written\. Pass --force to replace it\./);
      assert.equal(await readFile(configFile, 'utf8'), before);

      const forced = await run(['--emulator', identity, '--ca', caPath, '--config', configFile, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.equal((await stat(configFile)).mode & 0o777, 0o600);
      await loadConfig(configFile, {});
    });

    it('needs the CA: without --ca or NODE_EXTRA_CA_CERTS it says what to pass (exit 2); a wrong CA is named (exit 4)', async () => {
      const missing = await run(['--emulator', identity, '--config', join(dir, 'no-ca.json')]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /pass --ca <path printed by mailbridge emulator>/);

      const otherCa = join(dir, 'other-ca.crt');
      await writeFile(otherCa, app('mailbridge web').certificates[0]!.certPem);
      const wrong = await run(['--emulator', identity, '--ca', otherCa, '--config', join(dir, 'no-ca.json')]);
      assert.equal(wrong.code, 4);
      assert.match(wrong.stderr, /not signed by the CA in .*other-ca\.crt/);

      const fromEnv = await run(['--emulator', identity, '--config', join(dir, 'env-ca.json')], '', { ...ENV, NODE_EXTRA_CA_CERTS: caPath });
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      await assert.rejects(stat(join(dir, 'no-ca.json')), { code: 'ENOENT' });
    });

    it('says when nothing answers at the URL (exit 4)', async () => {
      const result = await run(['--emulator', 'https://localhost:1', '--ca', caPath, '--config', join(dir, 'nothing.json')]);
      assert.equal(result.code, 4);
      assert.match(result.stderr, /nothing answers at https:\/\/localhost:1\/_emulator\/scenario; is `mailbridge emulator` running/);
    });
  });

  describe('interactive', () => {
    it('app-only: refuses common and a Secret ID, then writes the config, the checklist and the PowerShell with the ids', async () => {
      const configFile = join(dir, 'app-only.json');
      const answers = [
        '3', // app-only service
        '', // global
        'common', // refused: client credentials need a tenant
        'contoso.com',
        CLIENT_ID,
        '2', // client secret
        SECRET_ID, // refused: the Secret ID
        SECRET_VALUE,
        'support@contoso.com',
        'imap, pop, smtp',
        CLIENT_ID, // refused: the client id, not the enterprise application's object id
        OBJECT_ID,
      ];
      const result = await run(['--config', configFile], `${answers.join('\n')}\n`);
      assert.equal(result.code, 0, result.stderr);
      // The messages are validateConfig's own.
      assert.match(result.stderr, /client credentials \(app-only\) need your tenant id or domain, not "common" \(Entra answers AADSTS9001023/);
      assert.match(
        result.stderr,
        /this is a GUID, so it is almost certainly the Secret ID, not the secret\. In App registrations > your app > Certificates & secrets, copy the Value column/,
      );
      assert.match(result.stderr, /that is the Application \(client\) ID; the Object ID is another GUID/);
      assert.ok(!result.stdout.includes(SECRET_VALUE) && !result.stderr.includes(SECRET_VALUE), 'the secret is never printed');

      const loaded = await loadConfig(configFile, {});
      assert.deepEqual(loaded.config.apps.service, { cloud: 'global', tenant: 'contoso.com', clientId: CLIENT_ID, clientSecret: SECRET_VALUE });
      assert.deepEqual(loaded.config.mailboxes['support@contoso.com'], { app: 'service', grant: 'client_credentials', protocols: ['imap', 'pop', 'smtp'] });
      assert.equal((await stat(configFile)).mode & 0o777, 0o600);

      const out = result.stdout;
      assert.match(
        out,
        /APIs my organization uses > "Office 365 Exchange Online" >\n {4}Application permissions:\n {6}IMAP\.AccessAsApp, POP\.AccessAsApp, SMTP\.SendAsApp/,
      );
      assert.match(out, /Grant admin consent/);
      assert.match(out, /https:\/\/entra\.microsoft\.com > App registrations/);
      assert.match(out, /^Connect-ExchangeOnline$/m);
      assert.ok(out.includes(`New-ServicePrincipal -AppId ${CLIENT_ID} -ObjectId ${OBJECT_ID}`), out);
      assert.ok(out.includes(`Add-MailboxPermission -Identity 'support@contoso.com' -User ${OBJECT_ID} -AccessRights FullAccess`), out);
      assert.ok(out.includes("Set-CASMailbox -Identity 'support@contoso.com' -SmtpClientAuthenticationDisabled $false"), out);
      assert.ok(out.includes("Set-CASMailbox -Identity 'support@contoso.com' -ImapEnabled $true -PopEnabled $true"), out);
      assert.doesNotMatch(out, /Allow public client flows|http:\/\/localhost/);
    });

    it('app-only in GCC High with a certificate and no object id yet: the environment name and a placeholder', async () => {
      const certFile = join(dir, 'service.crt');
      const keyFile = join(dir, 'service.key');
      await writeFile(certFile, app('mailbridge service').certificates[0]!.certPem);
      await writeFile(keyFile, app('mailbridge service').certificates[0]!.keyPem, { mode: 0o600 });
      const configFile = join(dir, 'gcc-high.json');
      const answers = [
        '3',
        'usgov-gcc-high',
        'contoso.onmicrosoft.us',
        CLIENT_ID,
        '',
        join(dir, 'missing.crt'),
        certFile,
        certFile,
        keyFile,
        'support@contoso.us',
        'imap',
        '',
      ];
      const result = await run(['--config', configFile, '--json'], `${answers.join('\n')}\n`);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /cannot read .*missing\.crt/);
      assert.match(result.stderr, /service\.crt is not an unencrypted PEM private key/);
      const loaded = await loadConfig(configFile, {});
      assert.deepEqual(loaded.config.apps.service?.certificate, { certFile, keyFile });
      const summary = JSON.parse(result.stdout) as { scenario: string; guide: string; apps: Record<string, { credential: string }> };
      assert.equal(summary.scenario, 'service');
      assert.equal(summary.apps.service?.credential, 'certificate');
      assert.match(summary.guide, /^Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovGCCHigh$/m);
      assert.match(summary.guide, /https:\/\/portal\.azure\.us > App registrations/);
      assert.match(summary.guide, /Upload certificate/);
      assert.ok(summary.guide.includes(`New-ServicePrincipal -AppId ${CLIENT_ID} -ObjectId ${OBJECT_ID_PLACEHOLDER}`));
      assert.ok(summary.guide.includes(`Add-MailboxPermission -Identity 'support@contoso.us' -User ${OBJECT_ID_PLACEHOLDER} -AccessRights FullAccess`));
      assert.match(summary.guide, /az ad sp show --id 3f9a1c2e-5b7d-4e8f-a1c3-5e7f9b1d3a5c --query id -o tsv/);
      assert.match(summary.guide, /requests https:\/\/outlook\.office365\.us\/\.default/);
      assert.doesNotMatch(summary.guide, /SmtpClientAuthenticationDisabled|PopEnabled/, 'IMAP only');
    });

    it('delegated desktop: checks the client id, then the checklist with http://localhost and "Allow public client flows"', async () => {
      const configFile = join(dir, 'desktop.json');
      const answers = [
        '1',
        '',
        'contoso.com',
        'not-a-guid',
        CLIENT_ID,
        '2',
        'alice@contoso.com, not-an-address',
        'alice@contoso.com, bob@contoso.com',
        'imap, xmpp',
        '',
      ];
      const result = await run(['--config', configFile], `${answers.join('\n')}\n`);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /must be the Application \(client\) ID, a GUID like 00000000-0000-0000-0000-000000000000/);
      assert.match(result.stderr, /the key must be the mailbox address, e\.g\. support@contoso\.com/);
      assert.match(result.stderr, /"xmpp" is not a protocol mailbridge speaks; answer imap, pop and\/or smtp/);
      const loaded = await loadConfig(configFile, {});
      assert.deepEqual(loaded.config.apps.desktop, { cloud: 'global', tenant: 'contoso.com', clientId: CLIENT_ID });
      assert.deepEqual(
        Object.entries(loaded.config.mailboxes).map(([a, m]) => [a, m.grant, m.protocols]),
        [
          ['alice@contoso.com', 'device_code', ['imap', 'smtp']],
          ['bob@contoso.com', 'device_code', ['imap', 'smtp']],
        ],
      );
      const out = result.stdout;
      assert.match(out, /Mobile and desktop applications > custom redirect URI:\n {6}http:\/\/localhost\n/);
      assert.match(out, /"Allow public client flows": Yes/);
      assert.match(out, /Microsoft Graph > Delegated permissions:\n {6}IMAP\.AccessAsUser\.All, SMTP\.Send, offline_access/);
      assert.ok(out.includes('https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access'), out);
      assert.ok(out.includes("Set-CASMailbox -Identity 'bob@contoso.com' -SmtpClientAuthenticationDisabled $false"), out);
      assert.doesNotMatch(out, /New-ServicePrincipal|AccessAsApp/);
    });

    it('in a national cloud, offers no personal-account tenant and refuses consumers and common (issue 12 point 15)', async () => {
      const configFile = join(dir, 'china-desktop.json');
      const answers = ['1', 'china', 'consumers', 'common', 'contoso.partner.onmschina.cn', CLIENT_ID, '1', 'alice@contoso.cn', 'imap'];
      const result = await run(['--config', configFile], `${answers.join('\n')}\n`);
      assert.equal(result.code, 0, result.stderr);
      const tenantPrompt = result.stderr.split('\n').find((line) => line.startsWith('Tenant ('))!;
      assert.doesNotMatch(tenantPrompt, /consumers|common/, tenantPrompt);
      assert.match(tenantPrompt, /organizations/);
      assert.match(
        result.stderr,
        /personal Microsoft accounts \(Outlook\.com\) exist only in the global cloud, not in china, so "consumers" cannot sign in there/,
      );
      assert.match(result.stderr, /personal Microsoft accounts exist only in the global cloud; in china "common" means organizations/);
      const loaded = await loadConfig(configFile, {});
      assert.deepEqual(loaded.config.apps.desktop, { cloud: 'china', tenant: 'contoso.partner.onmschina.cn', clientId: CLIENT_ID });
    });

    it('protocols: a Graph scope or permission is explained, not met with a raw schema message (issue 12 point 17)', async () => {
      const configFile = join(dir, 'graph-scope.json');
      const answers = [
        '1',
        '',
        'contoso.com',
        CLIENT_ID,
        '1',
        'alice@contoso.com',
        'https://graph.microsoft.com/IMAP.AccessAsUser.All',
        'Mail.Read',
        'xmpp',
        'imap, pop',
      ];
      const result = await run(['--config', configFile], `${answers.join('\n')}\n`);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /Invalid option|expected one of/);
      assert.match(
        result.stderr,
        /"https:\/\/graph\.microsoft\.com\/IMAP\.AccessAsUser\.All" is a Microsoft Graph scope: a Graph token is refused by IMAP, POP and SMTP/,
      );
      assert.match(result.stderr, /"Mail\.Read" is a permission, not a protocol/);
      assert.match(result.stderr, /"xmpp" is not a protocol mailbridge speaks; answer imap, pop and\/or smtp/);
      const loaded = await loadConfig(configFile, {});
      assert.deepEqual(loaded.config.mailboxes['alice@contoso.com']?.protocols, ['imap', 'pop']);
    });

    it('app-only: a wrong tenant is told the forms app-only takes, not organizations/common/consumers (issue 12 point 17)', async () => {
      const configFile = join(dir, 'app-only-tenant.json');
      const answers = ['3', '', 'contoso', 'contoso.com', CLIENT_ID, '2', SECRET_VALUE, 'support@contoso.com', 'imap', ''];
      const result = await run(['--config', configFile], `${answers.join('\n')}\n`);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /must be your Directory \(tenant\) ID \(a GUID\) or a verified domain such as contoso\.com/);
      assert.doesNotMatch(result.stderr, /organizations|consumers/);
    });

    it('delegated checklist: the tenant step fits the tenant form, IMAP/POP are turned on, consent names what to look for (issue 12 point 17)', async () => {
      const configFile = join(dir, 'organizations.json');
      const answers = ['1', '', 'organizations', CLIENT_ID, '1', 'alice@contoso.com', 'imap, pop, smtp'];
      const result = await run(['--config', configFile], `${answers.join('\n')}\n`);
      assert.equal(result.code, 0, result.stderr);
      const out = result.stdout;
      assert.doesNotMatch(out, /signs in at tenant organizations/);
      assert.match(out, /signs in at \/organizations: a work or school account of any organisation/);
      assert.ok(out.includes("Set-CASMailbox -Identity 'alice@contoso.com' -ImapEnabled $true -PopEnabled $true"), out);
      assert.doesNotMatch(out, /<your organisation>/);
      assert.match(out, /"Grant admin consent for <your organisation's name, as on Microsoft Entra ID > Overview>"/);
    });

    it('stops with exit 2 and writes nothing when the answers run out', async () => {
      const configFile = join(dir, 'short.json');
      const result = await run(['--config', configFile], '1\n\n');
      assert.equal(result.code, 2);
      assert.match(result.stderr, /stdin ended before every question was answered; nothing was written/);
      await assert.rejects(stat(configFile), { code: 'ENOENT' });
    });

    it('refuses an existing file before asking anything', async () => {
      const configFile = join(dir, 'exists.json');
      await writeFile(configFile, '{}');
      const result = await run(['--config', configFile], '1\n');
      assert.equal(result.code, 3);
      assert.doesNotMatch(result.stderr, /Scenario:/);
      assert.equal(await readFile(configFile, 'utf8'), '{}');
    });
  });

  describe('setup guide', () => {
    it('names the Exchange environment of each national cloud', () => {
      const base = { scenario: 'service' as const, tenant: 'contoso.com', clientId: CLIENT_ID, protocols: ['imap' as const], mailboxes: ['a@contoso.com'] };
      assert.match(exchangePowerShell({ ...base, cloud: 'usgov-dod' }), /^Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovDoD$/m);
      assert.match(exchangePowerShell({ ...base, cloud: 'china' }), /^Connect-ExchangeOnline -ExchangeEnvironmentName O365China$/m);
      assert.match(setupGuide({ ...base, cloud: 'china' }), /https:\/\/portal\.azure\.cn > App registrations/);
      // An address cannot break out of its PowerShell string.
      assert.match(exchangePowerShell({ ...base, cloud: 'global', mailboxes: ["o'brien@contoso.com"] }), /-Identity 'o''brien@contoso\.com'/);
    });

    it('the tenant step for each tenant form, and the tenant name on the consent button when known (issue 12 point 17)', () => {
      const base = { scenario: 'desktop' as const, cloud: 'global' as const, clientId: CLIENT_ID, protocols: ['imap' as const], mailboxes: ['a@contoso.com'] };
      const step = (tenant: string) =>
        registrationChecklist({ ...base, tenant })
          .split(/\n(?= ?\d+\. )/)
          .find((s) => s.includes('Overview: the Application'))!;
      assert.match(step('4b1c2d3e-5f60-4718-9a2b-3c4d5e6f7a8b'), /Directory \(tenant\) ID 4b1c2d3e-5f60-4718-9a2b-3c4d5e6f7a8b/);
      assert.match(step('contoso.com'), /contoso\.com, a verified domain of your tenant/);
      assert.match(step('organizations'), /\/organizations: a work or school account of any organisation/);
      assert.match(step('common'), /\/common: work or school accounts of any organisation and personal Microsoft\s+accounts/);
      assert.match(step('consumers'), /\/consumers: personal Microsoft accounts \(Outlook\.com\) only/);
      for (const tenant of ['organizations', 'common', 'consumers']) assert.doesNotMatch(step(tenant), /Directory \(tenant\) ID/);
      const named = setupGuide({ ...base, scenario: 'service', tenant: 'contoso.com', tenantDisplayName: 'Contoso Ltd' });
      assert.match(named, /"Grant admin consent for Contoso Ltd"/);
    });

    it('web app: its redirect URI, the Secret ID warning and delegated Outlook scopes', () => {
      const guide = setupGuide({
        scenario: 'web',
        cloud: 'global',
        tenant: 'organizations',
        clientId: CLIENT_ID,
        protocols: ['pop'],
        mailboxes: ['a@contoso.com'],
        redirectUri: 'https://mail.example.com/auth/callback',
        credential: 'secret',
      });
      assert.match(guide, /Web > Redirect URIs:\n {6}https:\/\/mail\.example\.com\/auth\/callback/);
      assert.match(guide, /the Secret ID next to it is a GUID and is NOT the secret/);
      assert.match(guide, /Multitenant/);
      assert.ok(guide.includes('https://outlook.office.com/POP.AccessAsUser.All offline_access'));
    });
  });
});
