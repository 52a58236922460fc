// `mailbridge verify`, issue 12 point 20: the sharp edges found by using it as an admin would.
// Each case is produced through the emulator's admin API (or a token file another tool wrote) and
// read back from `--json`, as in verify.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { DEFAULT_IDS, generateSecretValue } from '../../src/emulator/scenario/default.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import type { VerifyReport } from '../../src/verify/types.ts';
import { runCli } from '../helpers/cli.ts';
import { configVariant, failedWith, protocolOf, SERVICE_SP, VERIFY_ENV, type ConfigJson, type VerifyRun } from './harness.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { signInMailbox, writeTestConfig, type TestConfig } from '../helpers/identity-config.ts';

/** An app with POP3 and SMTP application permissions only: no IMAP role to check with. */
const NO_IMAP = { clientId: '6a8c0e2f-5b7d-4e9f-8a1b-2c3d4e5f6a57', sp: '7b9d1f3a-6c8e-4f0a-9b2c-3d4e5f6a7b68', secret: generateSecretValue() };
const SUPPORT = 'support@contoso.com';
const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';

describe('mailbridge verify: the sharp edges of issue 12', () => {
  let emu: TestEmulator;
  let base: TestConfig;
  const cleanup: string[] = [];
  const stores: SqliteTokenStore[] = [];

  const variant = (from: string, change: (config: ConfigJson) => void) => configVariant(from, change, cleanup);

  async function signIn(configFile: string, mailbox: string): Promise<void> {
    const loaded = await loadConfig(configFile, {});
    const store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
    stores.push(store);
    await signInMailbox(emu, loaded, store, mailbox, mailbox);
  }

  async function verify(args: string[], configFile = base.file, stdin?: string): Promise<VerifyRun> {
    const run: VerifyRun = await runCli(['verify', ...args, '--config', configFile], { env: VERIFY_ENV, ...(stdin === undefined ? {} : { stdin }) });
    if (args.includes('--json') && run.stdout.trim().startsWith('{')) run.report = JSON.parse(run.stdout) as VerifyReport;
    return run;
  }

  before(async () => {
    emu = await startTestEmulator((scenario) => {
      const tenant = DEFAULT_IDS.tenant;
      scenario.apps!.push({
        clientId: NO_IMAP.clientId,
        displayName: 'mailbridge pop and smtp',
        objectId: '8c0e2a4b-7d9f-4a1b-8c3d-4e5f6a7b8c79',
        homeTenant: tenant,
        secrets: [
          {
            id: '9d1f3b5c-8e0a-4b2c-9d4e-5f6a7b8c9d80',
            value: NO_IMAP.secret,
            description: 'pop and smtp',
            expiresAt: new Date(Date.now() + 86_400_000 * 365).toISOString(),
          },
        ],
        appRoles: { exchange: ['POP.AccessAsApp', 'SMTP.SendAsApp'] },
        servicePrincipals: { [tenant]: NO_IMAP.sp },
      });
      scenario.exchange!.mailboxes!.find((m) => m.address === SUPPORT)!.permissions!.push({ principal: NO_IMAP.sp, accessRights: ['FullAccess'] });
    });
    base = await writeTestConfig(emu);
    cleanup.push(base.dir);
  });

  after(async () => {
    for (const store of stores) await store.close();
    await emu.close();
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
  });

  // ------------------------------------------------------------------------------------------
  // Point 20, first bullet: POP3 and SMTP cannot tell a missing service principal from a missing
  // mailbox permission; an IMAP login with the same token can.

  it('POP3+SMTP only, mailbox permission missing: decided by an IMAP login with the same token, not called service_principal_missing', async () => {
    const file = await variant(base.file, (c) => (c.mailboxes[SUPPORT]!.protocols = ['pop', 'smtp']));
    await emu.admin('DELETE', `/mailboxes/${SUPPORT}/permissions/${SERVICE_SP}`);
    try {
      const run = await verify([SUPPORT, '--json'], file);
      assert.deepEqual(Object.keys(run.report?.protocols ?? {}), ['pop', 'smtp']);
      for (const protocol of ['pop', 'smtp'] as const) {
        const cause = failedWith(run, protocol, 'mailbox_permission_missing', 'login');
        assert.match(cause.summary, /IMAP accepted the same token/);
        assert.match(cause.fix, new RegExp(`^1\\. Add-MailboxPermission -Identity ${SUPPORT} -User ${SERVICE_SP} -AccessRights FullAccess`));
      }
    } finally {
      await emu.admin('POST', `/mailboxes/${SUPPORT}/permissions`, { principal: SERVICE_SP, accessRights: ['FullAccess'] });
    }
  });

  it('POP3+SMTP only, service principal missing: the IMAP login with the same token is refused too, so service_principal_missing is said with why', async () => {
    const file = await variant(base.file, (c) => (c.mailboxes[SUPPORT]!.protocols = ['pop', 'smtp']));
    await emu.admin('DELETE', `/exchange/service-principals/${SERVICE_SP}`);
    try {
      const run = await verify([SUPPORT, '--json'], file);
      for (const protocol of ['pop', 'smtp'] as const) {
        const cause = failedWith(run, protocol, 'service_principal_missing', 'login');
        assert.match(cause.summary, /IMAP refused the same token too/);
        assert.match(cause.fix, new RegExp(`New-ServicePrincipal -AppId ${DEFAULT_IDS.serviceApp} -ObjectId ${SERVICE_SP}`));
      }
    } finally {
      await emu.admin('POST', '/exchange/service-principals', { tenant: DEFAULT_IDS.tenant, appId: DEFAULT_IDS.serviceApp, objectId: SERVICE_SP });
    }
  });

  it('POP3+SMTP only and no IMAP role to check with: both causes are named as possible, with both checks', async () => {
    const file = await variant(base.file, (c) => {
      c.apps.popsmtp = { cloud: 'emulator', tenant: 'contoso.com', clientId: NO_IMAP.clientId, clientSecret: NO_IMAP.secret };
      c.mailboxes[SUPPORT] = { app: 'popsmtp', grant: 'client_credentials', protocols: ['pop', 'smtp'] };
    });
    await emu.admin('DELETE', `/mailboxes/${SUPPORT}/permissions/${NO_IMAP.sp}`);
    try {
      const run = await verify([SUPPORT, '--json'], file);
      for (const protocol of ['pop', 'smtp'] as const) {
        const cause = failedWith(run, protocol, 'service_principal_or_mailbox_permission_missing', 'login');
        assert.match(cause.summary, /cannot tell/);
        assert.match(cause.fix, new RegExp(`Get-ServicePrincipal -Identity ${NO_IMAP.sp}`));
        assert.match(cause.fix, new RegExp(`New-ServicePrincipal -AppId ${NO_IMAP.clientId} -ObjectId ${NO_IMAP.sp}`));
        assert.match(cause.fix, new RegExp(`Get-MailboxPermission -Identity ${SUPPORT} -User ${NO_IMAP.sp}`));
        assert.match(cause.fix, new RegExp(`Add-MailboxPermission -Identity ${SUPPORT} -User ${NO_IMAP.sp} -AccessRights FullAccess`));
      }
    } finally {
      await emu.admin('POST', `/mailboxes/${SUPPORT}/permissions`, { principal: NO_IMAP.sp, accessRights: ['FullAccess'] });
    }
  });

  // ------------------------------------------------------------------------------------------
  // A --token-file that holds no token at all

  it('--token-file that is not a token: said so, with fixes for the tool that wrote it (not `mailbridge login`), and POP3 does not blame protocol_disabled', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mb-not-a-token-'));
    cleanup.push(dir);
    // What people put there by mistake: a word, a client secret, a whole JSON token response.
    const files = {
      word: 'hello',
      secret: generateSecretValue(),
      json: JSON.stringify({ token_type: 'Bearer', expires_in: 3599, access_token: 'x' }),
    };
    for (const [name, content] of Object.entries(files)) {
      await writeFile(join(dir, name), `${content}\n`);
      const run = await verify([ALICE, '--protocol', 'pop', '--protocol', 'imap', '--token-file', join(dir, name), '--json']);
      for (const protocol of ['imap', 'pop'] as const) {
        const cause = failedWith(run, protocol, 'not_a_token', 'token');
        assert.match(cause.summary, /is not an access token/);
        assert.doesNotMatch(cause.summary, /opaque personal-account token/);
        assert.match(cause.fix, /tool that (wrote|obtained) it/);
        assert.match(cause.fix, /access_token/);
        assert.doesNotMatch(cause.fix, /mailbridge login/);
        assert.doesNotMatch(cause.summary + cause.fix, /PopEnabled|protocol_disabled/);
        const token = protocolOf(run, protocol).steps.find((s) => s.name === 'token')!;
        assert.match(token.detail!, /not an access token/);
        assert.ok(!protocolOf(run, protocol).steps.some((s) => s.name === 'login'), 'nothing that is not a token is sent to a server');
        assert.ok(!run.stdout.includes(files.secret), 'the file content is never printed');
      }
      if (name === 'json') assert.match(failedWith(run, 'pop', 'not_a_token').summary, /JSON/);
      assert.deepEqual(run.report!.token, { kind: 'delegated', notAToken: true });
    }
  });

  // ------------------------------------------------------------------------------------------
  // POP3's `-ERR Server Unavailable. 21`

  it('POP3 -ERR Server Unavailable. 21: a transient server problem (server_unavailable), not unexpected_reply', async () => {
    await emu.admin('POST', '/mail-failures', { protocol: 'pop', mailbox: SUPPORT, kind: 'unavailable', times: 1 });
    const run = await verify([SUPPORT, '--protocol', 'pop', '--json']);
    const cause = failedWith(run, 'pop', 'server_unavailable', 'login');
    assert.match(protocolOf(run, 'pop').steps.find((s) => s.name === 'login')!.detail!, /^-ERR Server Unavailable\. 21$/);
    assert.match(cause.summary, /temporar/);
    assert.match(cause.fix, /again/);
  });

  // ------------------------------------------------------------------------------------------
  // --json when nothing could run

  it('--json when not signed in prints a JSON report (exit 5), the message still on stderr', async () => {
    const run = await verify([BOB, '--json']);
    assert.equal(run.code, 5, run.stdout + run.stderr);
    assert.match(run.stderr, /bob@contoso\.com is not signed in: run `mailbridge login bob@contoso\.com`/);
    const report = JSON.parse(run.stdout) as VerifyReport & { error?: { code: string; message: string; exitCode: number } };
    assert.equal(report.mailbox, BOB);
    assert.equal(report.ok, false);
    assert.deepEqual(report.protocols, {});
    assert.equal(report.error?.code, 'needs_sign_in');
    assert.equal(report.error?.exitCode, 5);
    assert.match(report.error.message, /mailbridge login bob@contoso\.com/);
  });

  // ------------------------------------------------------------------------------------------
  // The identity platform's refusals, with what verify knows

  it('a wrong client secret that is plainly not a GUID is not called "the Secret ID"; a GUID-shaped one still is', async () => {
    const wrong = await variant(base.file, (c) => (c.apps['service-secret']!.clientSecret = 'this-is-not-the-secret~value'));
    const cause = failedWith(await verify(['shared@contoso.com', '--json'], wrong), 'imap', 'token_request_failed', 'token');
    assert.equal(cause.aadsts, 7000215);
    assert.doesNotMatch(cause.summary + cause.fix, /is the Secret ID|Secret ID was configured|pasted the Secret ID/);
    assert.match(cause.summary, /It is not a Secret ID \(those are GUIDs\)/);
    assert.match(cause.fix, /apps\.service-secret\.clientSecret/);
    // A GUID written straight into the configuration is refused before any request; read from a file, it reaches Entra.
    const guid = await variant(base.file, (c) => (c.apps['service-secret']!.clientSecret = { file: 'secret.txt' }));
    await writeFile(join(dirname(guid), 'secret.txt'), '0d4f2a6b-8c1e-4f3a-9b5d-7e2c4a6f8b10\n', { mode: 0o600 });
    const guidCause = failedWith(await verify(['shared@contoso.com', '--json'], guid), 'imap', 'token_request_failed', 'token');
    assert.match(guidCause.summary, /the Secret ID was configured instead of the secret's Value/);
    assert.match(guidCause.fix, /apps\.service-secret\.clientSecret \(read from the file secret\.txt\)/);
  });

  it("the expired-secret fix names the configuration key (apps.<name>.clientSecret), not the configuration's app name as if it were Entra's", async () => {
    const service = emu.scenario.apps.find((a) => a.clientId === DEFAULT_IDS.serviceApp)!;
    const secret = service.secrets[0]!;
    const expiresAt = secret.expiresAt;
    await emu.admin('POST', `/apps/${DEFAULT_IDS.serviceApp}/secrets/${secret.id}/expire`);
    try {
      const cause = failedWith(await verify(['shared@contoso.com', '--json']), 'imap', 'token_request_failed', 'token');
      assert.equal(cause.aadsts, 7000222);
      assert.match(cause.fix, /apps\.service-secret\.clientSecret/);
      assert.doesNotMatch(cause.fix, /App registrations > service-secret/);
      assert.match(cause.fix, new RegExp(`App registrations > .*${DEFAULT_IDS.serviceApp}.* > Certificates & secrets`));
    } finally {
      secret.expiresAt = expiresAt;
    }
  });

  it("the consent cause's detail and fix name the configured cloud's hosts, both the same", async () => {
    const file = await variant(base.file, (c) => (c.dataDir = `${c.dataDir}-consent`));
    await signIn(file, ALICE);
    await emu.admin('DELETE', '/consents', { clientId: DEFAULT_IDS.desktopApp, user: ALICE, scopes: [] });
    try {
      const run = await verify([ALICE, '--protocol', 'imap', '--json'], file);
      const result = protocolOf(run, 'imap');
      const cause = result.cause!;
      assert.equal(cause.aadsts, 65001, JSON.stringify(result, null, 2));
      const detail = result.steps.find((s) => s.name === 'token')!.detail!;
      const emulatorHost = new URL(emu.url).host;
      // The emulator's cloud is based on the global one: its portal is entra.microsoft.com, its login host the emulator.
      for (const text of [detail, cause.summary, cause.fix]) assert.doesNotMatch(text, /login\.microsoftonline\.com/, text);
      assert.match(cause.fix, new RegExp(`https://${emulatorHost.replace(/\./g, '\\.')}/contoso\\.com/adminconsent\\?client_id=${DEFAULT_IDS.desktopApp}`));
    } finally {
      await emu.admin('POST', '/consents', {
        clientId: DEFAULT_IDS.desktopApp,
        user: ALICE,
        scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All', 'https://outlook.office.com/POP.AccessAsUser.All', 'https://outlook.office.com/SMTP.Send'],
      });
    }
  });
});
