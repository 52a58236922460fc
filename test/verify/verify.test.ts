// `mailbridge verify` as an admin runs it: a separate process against the emulator, --json read
// back. Every cause is produced through the emulator's scenario or admin API (or, for the two
// token shapes mailbridge itself never requests, a token the emulator issued placed in the grant's
// store) and verify must name it with the fix and the admin's ids. After every run the tokens the
// run used are fetched from the token provider and searched for in stdout and stderr.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { Protocol } from '../../src/config/schema.ts';
import { DEFAULT_IDS, generateSecretValue } from '../../src/emulator/scenario/default.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import { encodeXoauth2 } from '../../src/net/sasl-xoauth2.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { createAuthority } from '../../src/tls/certificates.ts';
import { renderText } from '../../src/verify/render.ts';
import type { VerifyReport } from '../../src/verify/types.ts';
import { runCli } from '../helpers/cli.ts';
import { configVariant, failedWith, protocolOf, SERVICE_SP, VERIFY_ENV, type ConfigJson, type VerifyRun } from './harness.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig, signInMailbox } from '../helpers/identity-config.ts';
import { SCOPES, userToken } from '../helpers/mail-tokens.ts';

const LIMITED = { clientId: '2c4e6a8b-1d3f-4a5b-9c7d-8e0f2a4b6c13', sp: '3d5f7b9c-2e4a-4b6c-8d0e-9f1a3b5c7d24', secret: generateSecretValue() };
const ALICE = 'alice@contoso.com';
const SUPPORT = 'support@contoso.com';
const BOB = 'bob@contoso.com';

describe('mailbridge verify', () => {
  let emu: TestEmulator;
  let base: TestConfig;
  /** support@ opened by alice (delegated, signInAs) and bob's grant signed in as alice. */
  let delegates: string;
  const cleanup: string[] = [];
  const stores = new Map<string, SqliteTokenStore>();
  let runs = 0;
  let tokensChecked = 0;

  async function storeFor(configFile: string): Promise<{ store: SqliteTokenStore; loaded: Awaited<ReturnType<typeof loadConfig>> }> {
    const loaded = await loadConfig(configFile, {});
    let store = stores.get(loaded.dataDir);
    if (!store) {
      store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
      stores.set(loaded.dataDir, store);
    }
    return { store, loaded };
  }

  const variant = (from: string, change: (config: ConfigJson) => void) => configVariant(from, change, cleanup);

  async function signInAs(configFile: string, mailbox: string, upn: string): Promise<void> {
    const { loaded, store } = await storeFor(configFile);
    await signInMailbox(emu, loaded, store, mailbox, upn);
  }

  /** Runs `mailbridge verify`, then checks that no token the run used appears in its output. */
  async function verify(args: string[], configFile = base.file, stdin?: string): Promise<VerifyRun> {
    const run: VerifyRun = await runCli(['verify', ...args, '--config', configFile], { env: VERIFY_ENV, ...(stdin === undefined ? {} : { stdin }) });
    runs++;
    if (args.includes('--json') && run.stdout.trim().startsWith('{')) run.report = JSON.parse(run.stdout) as VerifyReport;
    // The tokens the run obtained are the ones now in the store: a new provider hands them out.
    if (run.code === 2 || run.code === 3) return run;
    const mailbox = args[0]!;
    const { store, loaded } = await storeFor(configFile);
    const provider = new TokenProvider({ loaded, store, retries: 0 });
    const configured = Object.entries(loaded.config.mailboxes).find(([a]) => a.toLowerCase() === mailbox.toLowerCase());
    for (const protocol of configured?.[1].protocols ?? []) {
      // Only a protocol whose token step got a token can have leaked one (asking for the others
      // would be one more request to the identity platform, counted by the tests that count them).
      const ran = run.report?.protocols[protocol]?.steps.some((s) => s.name === 'token' && s.ok === true);
      if (run.report && !ran) continue;
      let token: string;
      try {
        token = await provider.getAccessToken(mailbox, protocol);
      } catch {
        continue; // no token to leak (a revoked grant, say)
      }
      for (const secret of [token, encodeXoauth2(mailbox, token), token.split('.')[2] ?? token]) {
        assert.ok(!run.stdout.includes(secret), `stdout of verify ${args.join(' ')} contains the ${protocol} token`);
        assert.ok(!run.stderr.includes(secret), `stderr of verify ${args.join(' ')} contains the ${protocol} token`);
      }
      tokensChecked++;
    }
    return run;
  }

  before(async () => {
    emu = await startTestEmulator((scenario) => {
      // An app with IMAP and POP application permissions but not SMTP.SendAsApp.
      const tenant = DEFAULT_IDS.tenant;
      scenario.apps!.push({
        clientId: LIMITED.clientId,
        displayName: 'mailbridge limited',
        objectId: '4e6a8c0d-3f5b-4c7d-9e1f-0a2b4c6d8e35',
        homeTenant: tenant,
        secrets: [
          {
            id: '5f7b9d1e-4a6c-4d8e-af2b-1c3d5e7f9a46',
            value: LIMITED.secret,
            description: 'limited',
            expiresAt: new Date(Date.now() + 86_400_000 * 365).toISOString(),
          },
        ],
        appRoles: { exchange: ['IMAP.AccessAsApp', 'POP.AccessAsApp'] },
        servicePrincipals: { [tenant]: LIMITED.sp },
      });
      scenario.exchange!.servicePrincipals!.push({ tenant, appId: LIMITED.clientId, objectId: LIMITED.sp });
      scenario.exchange!.mailboxes!.find((m) => m.address === SUPPORT)!.permissions!.push({ principal: LIMITED.sp, accessRights: ['FullAccess'] });
    });
    base = await writeTestConfig(emu);
    cleanup.push(base.dir);
    await signInAs(base.file, ALICE, ALICE);
    // A second configuration with its own store: support@ opened by alice, bob's grant made by alice.
    const second = await writeTestConfig(emu);
    cleanup.push(second.dir);
    delegates = await variant(second.file, (c) => {
      c.mailboxes = {
        [SUPPORT]: { app: 'desktop', grant: 'authorization_code', signInAs: ALICE, protocols: ['imap'] },
        [BOB]: { app: 'desktop', grant: 'authorization_code', signInAs: ALICE, protocols: ['imap'] },
      };
    });
    await signInAs(delegates, SUPPORT, ALICE);
    await signInAs(delegates, BOB, ALICE);
  });

  after(async () => {
    for (const store of stores.values()) await store.close();
    await emu.close();
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
  });

  // ------------------------------------------------------------------------------------------
  // Everything works

  it('all green for alice (delegated): IMAP, POP3 and SMTP, every step, exit 0', async () => {
    const run = await verify([ALICE, '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = run.report!;
    assert.equal(report.ok, true);
    assert.equal(report.mailbox, ALICE);
    assert.equal(report.grant, 'authorization_code');
    assert.deepEqual(Object.keys(report.protocols), ['imap', 'pop', 'smtp']);
    assert.equal(report.token?.kind, 'delegated');
    assert.equal(report.token?.upn, ALICE);
    assert.equal(report.token?.aud, 'https://outlook.office.com');
    assert.equal(report.token?.tid, DEFAULT_IDS.tenant);
    assert.equal(report.token?.appid, DEFAULT_IDS.desktopApp);
    assert.ok(Date.parse(report.token.expiresAt!) > Date.now());
    const expected: Record<Protocol, string[]> = {
      imap: ['dns', 'tcp', 'tls', 'greeting', 'capabilities', 'token', 'login', 'mailbox', 'logout'],
      pop: ['dns', 'tcp', 'tls', 'greeting', 'capabilities', 'token', 'login', 'mailbox', 'logout'],
      smtp: ['dns', 'tcp', 'greeting', 'tls', 'capabilities', 'token', 'login', 'mailbox', 'logout'],
    };
    for (const protocol of ['imap', 'pop', 'smtp'] as const) {
      const result = protocolOf(run, protocol);
      assert.equal(result.ok, true, JSON.stringify(result, null, 2));
      assert.equal(result.cause, undefined);
      assert.deepEqual(
        result.steps.map((s) => s.name),
        expected[protocol],
      );
      assert.ok(result.steps.every((s) => s.ok && typeof s.ms === 'number'));
      assert.match(result.token!.scp!, protocol === 'imap' ? /IMAP\.AccessAsUser\.All/ : protocol === 'pop' ? /POP\.AccessAsUser\.All/ : /SMTP\.Send/);
      assert.match(
        result.steps.find((s) => s.name === 'tls')!.detail!,
        /TLSv1\.[23], certificate CN=localhost, issued by CN=mailbridge emulator local CA, valid until \d{4}-/,
      );
    }
    assert.match(protocolOf(run, 'imap').steps.find((s) => s.name === 'greeting')!.detail!, /^\* OK The Microsoft Exchange IMAP4 service is ready/);
    assert.match(
      protocolOf(run, 'imap').steps.find((s) => s.name === 'mailbox')!.detail!,
      /SELECT INBOX: \d+ messages; STATUS INBOX: MESSAGES \d+ UIDNEXT \d+/,
    );
    assert.match(protocolOf(run, 'pop').steps.find((s) => s.name === 'mailbox')!.detail!, /STAT: \d+ messages, \d+ octets; UIDL: \d+ ids/);
    assert.match(
      protocolOf(run, 'smtp').steps.find((s) => s.name === 'mailbox')!.detail!,
      /MAIL FROM: 250 2\.1\.0 Sender OK; RCPT TO: 250 2\.1\.5 Recipient OK; RSET: 250/,
    );
  });

  it('all green for support@ (app-only, no sign-in), and --send-test delivers a message to the mailbox', async () => {
    const before = (await emu.admin('GET', `/mailboxes/${SUPPORT}/messages`)).json<{ folder: string; messages: unknown[] }[]>();
    const inboxBefore = before.find((f) => f.folder === 'INBOX')!.messages.length;
    const run = await verify([SUPPORT, '--json', '--send-test']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = run.report!;
    assert.equal(report.ok, true);
    assert.equal(report.grant, 'client_credentials');
    assert.equal(report.token?.kind, 'app');
    assert.deepEqual(report.token?.roles, ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp']);
    assert.equal(report.token?.oid, SERVICE_SP);
    assert.equal(report.token?.upn, undefined);
    for (const protocol of ['imap', 'pop', 'smtp'] as const) assert.equal(protocolOf(run, protocol).ok, true);
    const send = protocolOf(run, 'smtp').steps.find((s) => s.name === 'send');
    assert.match(send?.detail ?? '', /250 2\.0\.0 OK/);
    const afterList = (await emu.admin('GET', `/mailboxes/${SUPPORT}/messages`)).json<{ folder: string; messages: unknown[] }[]>();
    assert.equal(afterList.find((f) => f.folder === 'INBOX')!.messages.length, inboxBefore + 1);
  });

  it('readable output when stdout is not a terminal: ok/FAIL per step, a closing verdict; ✔/✘ on a terminal', async () => {
    const run = await verify([SUPPORT, '--protocol', 'imap']);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n');
    assert.equal(lines[0], `mailbridge verify ${SUPPORT} (client_credentials, app service)`);
    assert.match(
      lines[1]!,
      /^token \(IMAP\): app-only, aud https:\/\/outlook\.office365\.com, roles IMAP\.AccessAsApp POP\.AccessAsApp SMTP\.SendAsApp, oid b07c5e9b/,
    );
    assert.ok(lines.includes(`IMAP  localhost:${emu.running.mailPorts.imaps} (implicit TLS)`), run.stdout);
    for (const step of ['dns', 'tcp', 'tls', 'greeting', 'capabilities', 'token', 'login', 'mailbox', 'logout']) {
      assert.ok(
        lines.some((l) => new RegExp(`^  ok   ${step} +.*\\(\\d+ ms\\)$`).test(l)),
        `no ok line for ${step}:\n${run.stdout}`,
      );
    }
    assert.ok(lines.includes(`ok   ${SUPPORT} works: IMAP passed every step.`), run.stdout);
    assert.ok(!run.stdout.includes('✔'));

    // On a terminal: the same report with symbols, and a failure shows its cause and fix under the step.
    const report = JSON.parse((await verify([SUPPORT, '--protocol', 'imap', '--json'])).stdout) as VerifyReport;
    const imap = report.protocols.imap!;
    imap.ok = false;
    imap.steps[6] = { ...imap.steps[6]!, ok: false, detail: 'V2 NO AUTHENTICATE failed.' };
    imap.cause = { id: 'service_principal_missing', summary: 'the summary', fix: 'New-ServicePrincipal ...' };
    report.ok = false;
    const text = renderText(report, { symbols: true });
    assert.match(text, /\n {2}✔ dns /);
    assert.match(
      text,
      /\n {2}✘ login +V2 NO AUTHENTICATE failed\. +\(\d+ ms\)\n {6}cause: service_principal_missing: the summary\n {6}fix: {3}New-ServicePrincipal \.\.\.\n/,
    );
    assert.match(text, /\n✘ support@contoso\.com: IMAP failed\.\n$/);
  });

  it('STARTTLS on IMAP (143) and STLS on POP3 (110): TLS comes after the greeting, then all green', async () => {
    const ports = emu.running.mailPorts;
    const file = await variant(base.file, (c) => {
      c.clouds.emulator!.imap = `imap://localhost:${ports.imap}`;
      c.clouds.emulator!.pop = `pop3://localhost:${ports.pop3}`;
    });
    const run = await verify([SUPPORT, '--protocol', 'imap', '--protocol', 'pop', '--json'], file);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    for (const protocol of ['imap', 'pop'] as const) {
      const result = protocolOf(run, protocol);
      assert.match(result.endpoint, /\(STARTTLS\)$/);
      assert.deepEqual(result.steps.map((s) => s.name).slice(0, 5), ['dns', 'tcp', 'greeting', 'tls', 'capabilities']);
      assert.match(result.steps[3]!.detail!, /TLSv1\.[23], certificate CN=localhost/);
    }
  });

  it('a personal account (Outlook.com) token is opaque: reported as such, and the mailbox still verified', async () => {
    const file = await variant(base.file, (c) => {
      c.apps.personal = { cloud: 'emulator', tenant: 'consumers', clientId: DEFAULT_IDS.desktopApp };
      c.mailboxes = { 'carol@outlook.com': { app: 'personal', grant: 'authorization_code', protocols: ['imap', 'pop', 'smtp'] } };
      c.dataDir = `${c.dataDir}-personal`;
    });
    await signInAs(file, 'carol@outlook.com', 'carol@outlook.com');
    const run = await verify(['carol@outlook.com', '--json'], file);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual(run.report!.token, { kind: 'delegated', opaque: true });
    assert.match(protocolOf(run, 'imap').steps.find((s) => s.name === 'token')!.detail!, /opaque personal-account token/);
  });

  it('exit codes: 3 for configuration problems, 5 when never signed in, 2 for a wrong --protocol, all before any protocol runs', async () => {
    const unknown = await verify(['nobody@contoso.com', '--json']);
    assert.equal(unknown.code, 3);
    // --json still prints JSON (what stopped verify, with its code), and the message goes to stderr.
    const stopped = JSON.parse(unknown.stdout) as { ok: boolean; protocols: object; error: { code: string; exitCode: number } };
    assert.deepEqual([stopped.ok, stopped.protocols, stopped.error.code, stopped.error.exitCode], [false, {}, 'not_configured', 3]);
    assert.match(unknown.stderr, /nobody@contoso\.com is not a mailbox in/);

    const notConfigured = await verify([BOB, '--protocol', 'pop', '--json']);
    assert.equal(notConfigured.code, 3);
    assert.match(notConfigured.stderr, /pop is not configured for bob@contoso\.com/);

    const missingFile = await verify([ALICE], join(base.dir, 'no-such-config.json'));
    assert.equal(missingFile.code, 3);

    const neverSignedIn = await verify([BOB]);
    assert.equal(neverSignedIn.code, 5);
    assert.equal(neverSignedIn.stdout, '');
    assert.match(neverSignedIn.stderr, /bob@contoso\.com is not signed in: run `mailbridge login bob@contoso\.com`/);

    const badProtocol = await verify([ALICE, '--protocol', 'ews']);
    assert.equal(badProtocol.code, 2);
    assert.match(badProtocol.stderr, /--protocol must be one of imap, pop, smtp/);
  });

  // ------------------------------------------------------------------------------------------
  // One test per cause

  it('dns: a host that does not resolve', async () => {
    const file = await variant(base.file, (c) => (c.clouds.emulator!.imap = 'imaps://no-such-host.invalid:993'));
    const cause = failedWith(await verify([SUPPORT, '--protocol', 'imap', '--json'], file), 'imap', 'dns', 'dns');
    assert.match(cause.summary, /no-such-host\.invalid does not resolve \((ENOTFOUND|EAI_AGAIN)\)/);
    assert.match(cause.fix, /IMAP host in the configuration \(Exchange Online: outlook\.office365\.com\)/);
  });

  it('tcp: a closed port', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const p = (server.address() as { port: number }).port;
        server.close(() => resolve(p));
      });
    });
    const file = await variant(base.file, (c) => (c.clouds.emulator!.pop = `pop3s://127.0.0.1:${port}`));
    const run = await verify([SUPPORT, '--protocol', 'pop', '--json'], file);
    const cause = failedWith(run, 'pop', 'tcp', 'tcp');
    assert.match(cause.summary, new RegExp(`Cannot connect to 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    assert.match(cause.fix, new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  it('tls: the certificate is not from the CA the configuration trusts (OpenSSL reason, certificate facts)', async () => {
    const other = await createAuthority('some other CA');
    const file = await variant(base.file, (c) => (c.clouds.emulator!.caFile = 'other-ca.crt'));
    await writeFile(join(file, '..', 'other-ca.crt'), other.certPem);
    const run = await verify([SUPPORT, '--json'], file);
    for (const protocol of ['imap', 'pop', 'smtp'] as const) {
      const cause = failedWith(run, protocol, 'tls', 'tls');
      // IMAP and SMTP describe the refused certificate; the POP3 client reports the handshake error.
      if (protocol !== 'pop') assert.match(cause.summary, /certificate CN=localhost issued by CN=mailbridge emulator local CA: /);
      assert.match(
        cause.summary,
        /(self-signed certificate in certificate chain|unable to verify the first certificate|unable to get local issuer certificate).* \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/,
      );
      assert.match(cause.fix, /caFile/);
      // Nothing was sent over it: no login was tried.
      assert.ok(!protocolOf(run, protocol).steps.some((s) => s.name === 'login' || s.name === 'token'));
    }
  });

  it('graph_audience: a token another tool got for a bare "SMTP.Send" (a Graph token, as the emulator issues it) is named before the server refuses it', async () => {
    // What a help desk's own OAuth code does when it asks for the permission as the portal lists it.
    const graphToken = await userToken(emu, ALICE, ['SMTP.Send']);
    const run = await verify([ALICE, '--protocol', 'smtp', '--token-file', '-', '--json'], base.file, `Bearer ${graphToken}\n`);
    const cause = failedWith(run, 'smtp', 'graph_audience', 'token');
    assert.equal(protocolOf(run, 'smtp').token?.aud, '00000003-0000-0000-c000-000000000000');
    assert.match(cause.summary, /Microsoft Graph \(aud 00000003-0000-0000-c000-000000000000\)/);
    assert.match(cause.fix, /tool that obtained this token/);
    assert.match(cause.fix, /request https:\/\/outlook\.office\.com\/SMTP\.Send, first in its scope list/);
    // The server's own answer is still shown, and the token itself never is.
    assert.match(protocolOf(run, 'smtp').steps.find((s) => s.name === 'login')!.detail!, /^535 5\.7\.3 Authentication unsuccessful/);
    for (const secret of [graphToken, graphToken.split('.')[2]!]) assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret));
  });

  it('--token-file: an Exchange token from elsewhere passes; an empty one is a usage error (exit 2)', async () => {
    const good = await userToken(emu, ALICE);
    const dir = await mkdtemp(join(tmpdir(), 'mb-token-file-'));
    await writeFile(join(dir, 'token'), `${good}\n`);
    const run = await verify([ALICE, '--protocol', 'imap', '--token-file', join(dir, 'token'), '--json']);
    assert.equal(protocolOf(run, 'imap').ok, true, JSON.stringify(run.report));
    assert.equal(run.code, 0);
    const empty = await verify([ALICE, '--token-file', '-'], base.file, '\n');
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /--token-file: standard input should hold one access token on one line/);
    await rm(dir, { recursive: true, force: true });
  });

  it('missing_scope: a .default request gets only what was consented; SMTP.Send never was', async () => {
    // Bob's consent covers IMAP only, and his mailbox asks for `.default` (a common pattern): Entra,
    // and the emulator, then issue a token with exactly the consented scopes.
    await emu.admin('POST', '/consents', { clientId: DEFAULT_IDS.desktopApp, user: 'bob@contoso.com', scopes: [SCOPES.imap] });
    const file = await variant(base.file, (c) => {
      c.mailboxes['bob@contoso.com'] = {
        app: 'desktop',
        grant: 'authorization_code',
        protocols: ['imap', 'smtp'],
        scopes: ['https://outlook.office.com/.default'],
      };
      c.dataDir = `${c.dataDir}-default-scope`;
    });
    await signInAs(file, 'bob@contoso.com', 'bob@contoso.com');
    const run = await verify(['bob@contoso.com', '--json'], file);
    assert.equal(protocolOf(run, 'imap').ok, true, 'IMAP, which was consented, works');
    const cause = failedWith(run, 'smtp', 'missing_scope', 'token');
    assert.match(cause.summary, /no SMTP\.Send scope \(scp: IMAP\.AccessAsUser\.All\)/);
    assert.match(cause.fix, new RegExp(`app ${DEFAULT_IDS.desktopApp}`));
    assert.match(cause.fix, /mailbridge login bob@contoso\.com/);
    assert.match(protocolOf(run, 'smtp').steps.find((s) => s.name === 'login')!.detail!, /^535 5\.7\.3/);
  });

  it('missing_role: an app whose admin consent lacks SMTP.SendAsApp', async () => {
    const file = await variant(base.file, (c) => {
      c.apps.limited = { cloud: 'emulator', tenant: 'contoso.com', clientId: LIMITED.clientId, clientSecret: LIMITED.secret };
      c.mailboxes[SUPPORT]!.app = 'limited';
      c.dataDir = `${c.dataDir}-limited`;
    });
    const run = await verify([SUPPORT, '--json'], file);
    assert.equal(protocolOf(run, 'imap').ok, true);
    assert.equal(protocolOf(run, 'pop').ok, true);
    const cause = failedWith(run, 'smtp', 'missing_role', 'token');
    assert.match(cause.summary, /no SMTP\.SendAsApp role \(roles: IMAP\.AccessAsApp POP\.AccessAsApp\)/);
    assert.match(
      cause.fix,
      new RegExp(`App registrations → ${LIMITED.clientId} → API permissions .*Office 365 Exchange Online .*Application permissions → SMTP\\.SendAsApp`),
    );
    assert.match(cause.fix, /Grant admin consent" for tenant contoso\.com/);
  });

  it("service_principal_missing: Exchange has no service principal for the app (New-ServicePrincipal with the token's oid)", async () => {
    await emu.admin('DELETE', `/exchange/service-principals/${SERVICE_SP}`);
    try {
      const run = await verify([SUPPORT, '--json']);
      for (const protocol of ['imap', 'pop', 'smtp'] as const) {
        const cause = failedWith(run, protocol, 'service_principal_missing', 'login');
        assert.match(cause.fix, new RegExp(`New-ServicePrincipal -AppId ${DEFAULT_IDS.serviceApp} -ObjectId ${SERVICE_SP}`));
      }
      assert.match(protocolOf(run, 'imap').steps.find((s) => s.name === 'login')!.detail!, /NO AUTHENTICATE failed\./);
      assert.match(protocolOf(run, 'pop').steps.find((s) => s.name === 'login')!.detail!, /^-ERR Authentication failure: unknown user name or bad password\./);
    } finally {
      await emu.admin('POST', '/exchange/service-principals', { tenant: DEFAULT_IDS.tenant, appId: DEFAULT_IDS.serviceApp, objectId: SERVICE_SP });
    }
  });

  it('mailbox_permission_missing: the app has no FullAccess (IMAP not connected; POP and SMTP refusals name both causes in order)', async () => {
    await emu.admin('DELETE', `/mailboxes/${SUPPORT}/permissions/${SERVICE_SP}`);
    try {
      const run = await verify([SUPPORT, '--json']);
      const imap = failedWith(run, 'imap', 'mailbox_permission_missing', 'mailbox');
      assert.match(protocolOf(run, 'imap').steps.find((s) => s.name === 'mailbox')!.detail!, /BAD User is authenticated but not connected\./);
      assert.match(imap.fix, new RegExp(`^1\\. Add-MailboxPermission -Identity ${SUPPORT} -User ${SERVICE_SP} -AccessRights FullAccess`));
      const pop = failedWith(run, 'pop', 'mailbox_permission_missing', 'login');
      assert.match(
        pop.fix,
        new RegExp(
          `^1\\. Add-MailboxPermission -Identity ${SUPPORT} -User ${SERVICE_SP} -AccessRights FullAccess {2}2\\. Set-CASMailbox -Identity ${SUPPORT} -PopEnabled \\$true`,
        ),
      );
      const smtp = failedWith(run, 'smtp', 'mailbox_permission_missing', 'login');
      assert.match(smtp.fix, /^1\. Add-MailboxPermission .* 2\. New-ServicePrincipal/);
    } finally {
      await emu.admin('POST', `/mailboxes/${SUPPORT}/permissions`, { principal: SERVICE_SP, accessRights: ['FullAccess'] });
    }
  });

  it("protocol_disabled: IMAP and POP switched off for the user's own mailbox", async () => {
    await emu.admin('PATCH', `/mailboxes/${ALICE}`, { imapEnabled: false, popEnabled: false });
    try {
      const run = await verify([ALICE, '--protocol', 'imap', '--protocol', 'pop', '--json']);
      const imap = failedWith(run, 'imap', 'protocol_disabled', 'mailbox');
      assert.match(imap.fix, /Set-CASMailbox -Identity alice@contoso\.com -ImapEnabled \$true/);
      const pop = failedWith(run, 'pop', 'protocol_disabled', 'login');
      assert.match(pop.fix, /Set-CASMailbox -Identity alice@contoso\.com -PopEnabled \$true/);
    } finally {
      await emu.admin('PATCH', `/mailboxes/${ALICE}`, { imapEnabled: true, popEnabled: true });
    }
  });

  it('smtp_auth_disabled_tenant: 535 5.7.139 ... for the Tenant (and the readable failure output)', async () => {
    await emu.admin('PATCH', '/tenants/contoso.com', { smtpClientAuthenticationDisabled: true });
    try {
      const cause = failedWith(await verify([ALICE, '--protocol', 'smtp', '--json']), 'smtp', 'smtp_auth_disabled_tenant', 'login');
      assert.match(cause.fix, /^Set-TransportConfig -SmtpClientAuthenticationDisabled \$false/);
      const text = await verify([ALICE, '--protocol', 'smtp']);
      assert.equal(text.code, 1);
      assert.match(
        text.stdout,
        /\n {2}FAIL login +535 5\.7\.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant\..*\n {6}cause: smtp_auth_disabled_tenant: SMTP AUTH is disabled for the whole organisation.*\n {6}fix: {3}Set-TransportConfig -SmtpClientAuthenticationDisabled \$false/,
      );
      assert.match(text.stdout, /\nFAIL alice@contoso\.com: SMTP failed\.\n$/);
    } finally {
      await emu.admin('PATCH', '/tenants/contoso.com', { smtpClientAuthenticationDisabled: false });
    }
  });

  it('smtp_auth_disabled_mailbox: 535 5.7.139 ... for the Mailbox', async () => {
    await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: true });
    try {
      const cause = failedWith(await verify([ALICE, '--protocol', 'smtp', '--json']), 'smtp', 'smtp_auth_disabled_mailbox', 'login');
      assert.equal(cause.fix, 'Set-CASMailbox -Identity alice@contoso.com -SmtpClientAuthenticationDisabled $false');
    } finally {
      await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: null });
    }
  });

  it("security_defaults: the tenant's security defaults block SMTP AUTH", async () => {
    await emu.admin('PATCH', '/tenants/contoso.com', { securityDefaults: true });
    try {
      const cause = failedWith(await verify([ALICE, '--protocol', 'smtp', '--json']), 'smtp', 'security_defaults', 'login');
      assert.match(cause.summary, /security defaults/);
      assert.match(cause.fix, /Manage security defaults/);
    } finally {
      await emu.admin('PATCH', '/tenants/contoso.com', { securityDefaults: false });
    }
  });

  it('authenticated_not_connected: a delegate without FullAccess on the shared mailbox (both causes listed)', async () => {
    assert.equal((await verify([SUPPORT, '--json'], delegates)).code, 0, 'alice opens support@ while she has FullAccess');
    await emu.admin('DELETE', `/mailboxes/${SUPPORT}/permissions/${ALICE}`);
    try {
      const run = await verify([SUPPORT, '--json'], delegates);
      const cause = failedWith(run, 'imap', 'authenticated_not_connected', 'mailbox');
      assert.equal(protocolOf(run, 'imap').steps.find((s) => s.name === 'login')?.ok, true);
      assert.match(
        cause.fix,
        /1\. alice@contoso\.com needs FullAccess on the mailbox: Add-MailboxPermission -Identity support@contoso\.com -User alice@contoso\.com -AccessRights FullAccess {2}2\. IMAP is disabled for it: Set-CASMailbox -Identity support@contoso\.com -ImapEnabled \$true/,
      );
    } finally {
      await emu.admin('POST', `/mailboxes/${SUPPORT}/permissions`, { principal: ALICE, accessRights: ['FullAccess', 'SendAs'] });
    }
  });

  it('send_as_denied: --send-test as a shared mailbox the delegate may open but not send as', async () => {
    const file = await variant(delegates, (c) => (c.mailboxes[SUPPORT]!.protocols = ['imap', 'smtp']));
    await emu.admin('POST', `/mailboxes/${SUPPORT}/permissions`, { principal: ALICE, accessRights: ['FullAccess'] });
    try {
      const run = await verify([SUPPORT, '--protocol', 'smtp', '--send-test', '--json'], file);
      const cause = failedWith(run, 'smtp', 'send_as_denied', 'send');
      assert.equal(protocolOf(run, 'smtp').steps.find((s) => s.name === 'mailbox')?.ok, true, 'MAIL FROM + RCPT TO + RSET alone do not show it');
      assert.match(cause.summary, /554 5\.2\.252 SendAsDenied/);
      assert.equal(cause.fix, `Add-RecipientPermission -Identity ${SUPPORT} -Trustee ${ALICE} -AccessRights SendAs`);
    } finally {
      await emu.admin('POST', `/mailboxes/${SUPPORT}/permissions`, { principal: ALICE, accessRights: ['FullAccess', 'SendAs'] });
    }
  });

  it('throttled: the suggested backoff is parsed and reported', async () => {
    await emu.admin('POST', '/mail-failures', { protocol: 'imap', mailbox: SUPPORT, kind: 'throttled', backoffMs: 43210, times: 1 });
    const cause = failedWith(await verify([SUPPORT, '--protocol', 'imap', '--json']), 'imap', 'throttled', 'login');
    assert.equal(cause.backoffMs, 43210);
    assert.match(cause.summary, /suggested backoff 43210 ms/);
    assert.match(cause.fix, /^Wait 44 s \(43210 ms\)/);
  });

  it('wrong_user: the grant was signed in as another user and the mailbox is not configured as shared', async () => {
    // bob's grant was made by alice while "signInAs" said so; that line is gone now.
    const file = await variant(delegates, (c) => delete c.mailboxes[BOB]!.signInAs);
    const run = await verify([BOB, '--json'], file);
    const cause = failedWith(run, 'imap', 'wrong_user', 'token');
    assert.equal(protocolOf(run, 'imap').token?.upn, ALICE);
    assert.match(cause.summary, /token is for alice@contoso\.com, but the mailbox is bob@contoso\.com/);
    assert.match(cause.fix, /mailbridge login bob@contoso\.com/);
    assert.match(cause.fix, /"signInAs": "alice@contoso\.com"/);
  });

  it('server_unavailable and unexpected_reply: Exchange says come back later; a server that never greets', async () => {
    await emu.admin('POST', '/mail-failures', { protocol: 'imap', mailbox: SUPPORT, kind: 'unavailable', times: 1 });
    const cause = failedWith(await verify([SUPPORT, '--protocol', 'imap', '--json']), 'imap', 'server_unavailable', 'login');
    assert.match(cause.summary, /BAD Server Unavailable\. 15/);
    // A server that accepts the connection and never greets: a named timeout, not a hang.
    const silent = createServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    try {
      const file = await variant(base.file, (c) => (c.clouds.emulator!.smtp = `smtp://127.0.0.1:${(silent.address() as { port: number }).port}`));
      const run = await verify([SUPPORT, '--protocol', 'smtp', '--timeout', '0.5', '--json'], file);
      const quiet = failedWith(run, 'smtp', 'unexpected_reply', 'greeting');
      assert.match(quiet.summary, /no reply within 500 ms/);
    } finally {
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("token_request_failed: the app's client secret expired (the AADSTS explanation and its fix)", async () => {
    const file = await variant(base.file, (c) => {
      c.mailboxes[SUPPORT]!.app = 'service-secret';
      c.dataDir = `${c.dataDir}-secret`;
    });
    const service = emu.scenario.apps.find((a) => a.clientId === DEFAULT_IDS.serviceApp)!;
    const secret = service.secrets[0]!;
    const expiresAt = secret.expiresAt;
    await emu.admin('POST', `/apps/${DEFAULT_IDS.serviceApp}/secrets/${secret.id}/expire`);
    try {
      const cause = failedWith(await verify([SUPPORT, '--protocol', 'imap', '--json'], file), 'imap', 'token_request_failed', 'token');
      assert.equal(cause.aadsts, 7000222);
      assert.match(
        cause.summary,
        new RegExp(`AADSTS7000222: Client secret expired\\. The client secret in apps\\.service-secret\\.clientSecret .*\\(app ${DEFAULT_IDS.serviceApp}\\)`),
      );
      assert.match(
        cause.fix,
        new RegExp(`^Create a new secret: .*App registrations > the app with client id ${DEFAULT_IDS.serviceApp} > Certificates & secrets > New client secret`),
      );
    } finally {
      secret.expiresAt = expiresAt;
    }
  });

  it('identity_unavailable: the token endpoint keeps failing', async () => {
    await emu.admin('POST', '/outages', { endpoint: 'token', kind: 'http500' });
    try {
      const cause = failedWith(await verify([SUPPORT, '--protocol', 'pop', '--json']), 'pop', 'identity_unavailable', 'token');
      assert.match(cause.fix, /Try again/);
    } finally {
      await emu.admin('DELETE', '/outages');
    }
  });

  it("token_rejected: the server refuses a token for another reason (the cached token expired on the server's clock)", async () => {
    assert.equal((await verify([ALICE, '--protocol', 'imap', '--json'])).code, 0);
    await emu.admin('POST', '/clock', { advanceSeconds: 2 * 3600 });
    try {
      const run = await verify([ALICE, '--protocol', 'imap', '--cached', '--json']);
      const cause = failedWith(run, 'imap', 'token_rejected', 'login');
      assert.match(cause.summary, /IMAP refused the token \(aud https:\/\/outlook\.office\.com, tid .*, expires .*\) \(V\d+ NO AUTHENTICATE failed\.\)/);
      assert.match(cause.fix, /mailbridge login alice@contoso\.com/);
    } finally {
      await emu.admin('POST', '/clock', { reset: true });
    }
  });

  it('grant_expired_or_revoked: sessions revoked after the clock moved on (AADSTS explanation, mailbridge login)', async () => {
    await emu.admin('POST', '/clock', { advanceSeconds: 60 });
    await emu.admin('POST', `/users/${ALICE}/revoke`);
    const refreshes = async () => (await emu.counters()).token?.refresh_token ?? 0;
    const before = await refreshes();
    const run = await verify([ALICE, '--json']);
    for (const protocol of ['imap', 'pop', 'smtp'] as const) {
      const cause = failedWith(run, protocol, 'grant_expired_or_revoked', 'token');
      assert.equal(cause.aadsts, 50173);
      assert.match(cause.summary, /AADSTS50173/);
      assert.match(cause.fix, /mailbridge login alice@contoso\.com/);
    }
    // Asked once, not once per protocol; the steps before the token still ran and passed.
    assert.equal((await refreshes()) - before, 1);
    assert.deepEqual(
      protocolOf(run, 'imap')
        .steps.filter((s) => s.ok)
        .map((s) => s.name)
        .slice(0, 5),
      ['dns', 'tcp', 'tls', 'greeting', 'capabilities'],
    );
  });

  it('no run printed a token', () => {
    assert.ok(runs >= 20, `only ${runs} runs`);
    assert.ok(tokensChecked >= 20, `only ${tokensChecked} tokens checked`);
  });
});
