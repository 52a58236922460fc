// `mailbridge verify`, issue 12 point 20: the sharp edges found by using it as an admin would.
// Each case is produced through the emulator's admin API (or a token file another tool wrote) and
// read back from `--json`, as in verify.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { z } from 'zod';
import type { configSchema, Protocol } from '../../src/config/schema.ts';
import { DEFAULT_IDS, generateSecretValue } from '../../src/emulator/scenario/default.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import type { CauseId, ProtocolReport, VerifyReport } from '../../src/verify/types.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig } from '../helpers/identity-config.ts';

const ENV: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS' && k !== 'MAILBRIDGE_CONFIG' && !k.startsWith('MAILBRIDGE__')),
);

const SERVICE_SP = 'b07c5e9b-3d8f-4b2a-8c4e-6f8d2b4a7c04';
/** An app with POP3 and SMTP application permissions only: no IMAP role to check with. */
const NO_IMAP = { clientId: '6a8c0e2f-5b7d-4e9f-8a1b-2c3d4e5f6a57', sp: '7b9d1f3a-6c8e-4f0a-9b2c-3d4e5f6a7b68', secret: generateSecretValue() };
const SUPPORT = 'support@contoso.com';

interface Run extends CliRun {
  report?: VerifyReport;
}

type ConfigInput = z.input<typeof configSchema>;
type ConfigJson = ConfigInput & Required<Pick<ConfigInput, 'clouds' | 'apps' | 'mailboxes'>>;

describe('mailbridge verify: the sharp edges of issue 12', () => {
  let emu: TestEmulator;
  let base: TestConfig;
  const cleanup: string[] = [];
  const stores: SqliteTokenStore[] = [];

  async function variant(from: string, change: (config: ConfigJson) => void): Promise<string> {
    const config = JSON.parse(await readFile(from, 'utf8')) as ConfigJson;
    for (const app of Object.values(config.apps)) {
      if (app.certificate)
        app.certificate = { certFile: resolve(dirname(from), app.certificate.certFile), keyFile: resolve(dirname(from), app.certificate.keyFile) };
    }
    change(config);
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-verify-edges-'));
    cleanup.push(dir);
    const file = join(dir, 'config.json');
    await writeFile(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    return file;
  }

  async function verify(args: string[], configFile = base.file, stdin?: string): Promise<Run> {
    const run: Run = await runCli(['verify', ...args, '--config', configFile], { env: ENV, ...(stdin === undefined ? {} : { stdin }) });
    if (args.includes('--json') && run.stdout.trim().startsWith('{')) run.report = JSON.parse(run.stdout) as VerifyReport;
    return run;
  }

  function protocolOf(run: Run, protocol: Protocol): ProtocolReport {
    assert.ok(run.report, `no JSON report; exit ${run.code}\n${run.stdout}\n${run.stderr}`);
    const result = run.report.protocols[protocol];
    assert.ok(result, `no ${protocol} in the report`);
    return result;
  }

  function failedWith(run: Run, protocol: Protocol, id: CauseId, step?: string) {
    const result = protocolOf(run, protocol);
    assert.equal(result.ok, false, JSON.stringify(result, null, 2));
    assert.equal(result.cause?.id, id, JSON.stringify(result, null, 2));
    if (step) assert.equal(result.steps.find((s) => !s.ok)?.name, step, JSON.stringify(result.steps, null, 2));
    assert.equal(run.code, 1);
    return result.cause;
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
});
