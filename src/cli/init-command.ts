// `mailbridge init`: writes a configuration file (mode 0600: it may hold a secret).
//   --emulator <url>  from a running emulator's live scenario: one mailbox per grant, so every
//                     command can be tried offline.
//   otherwise         asks, one answer per line (a terminal, or answers piped on stdin), checks
//                     each answer with the configuration's own rules, writes the file and prints
//                     the app registration checklist (and the Exchange PowerShell for app-only).
// Results go to stdout (the checklist, or --json), prompts and notes for people to stderr.
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { z } from 'zod';
import { CLOUD_NAMES, type CloudName } from '../config/clouds.ts';
import { defaultConfigPath } from '../config/load.ts';
import { configSchema, PROTOCOLS, type GrantType, type Protocol } from '../config/schema.ts';
import { isGuid, validateConfig, withOtherChecks } from '../config/validate.ts';
import { MailbridgeError } from '../errors.ts';
import { exitCodeFor } from './exit-codes.ts';
import { setupGuide, type SetupScenario } from './setup-guide.ts';

/** Why init wrote nothing; the exit code follows from the code (exit-codes.ts). */
export type InitErrorCode = 'usage' | 'exists' | 'config_invalid' | 'unreachable' | 'unavailable' | 'cancelled';

export class InitError extends MailbridgeError<InitErrorCode> {
  constructor(message: string, code: InitErrorCode) {
    super(code, message);
    this.name = 'InitError';
  }
}

interface InitFlags {
  config?: string;
  emulator?: string;
  ca?: string;
  force?: boolean;
  json?: boolean;
}

/** The summary `--json` prints: never a secret, only where things are and who uses what. */
export interface InitSummary {
  config: string;
  files: string[];
  apps: Record<string, { clientId: string; tenant: string; cloud: string; credential: 'none' | 'secret' | 'certificate' }>;
  mailboxes: { address: string; app: string; grant: GrantType; protocols: Protocol[] }[];
}

// ---------------------------------------------------------------------------------------------
// Checking and writing a configuration

/** Every problem the configuration's schema and checks find, as `path: message`. */
export function configProblems(raw: unknown): { path: string; message: string }[] {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success)
    return withOtherChecks(
      parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })),
      raw,
    );
  return validateConfig(parsed.data);
}

interface PrivateFile {
  path: string;
  content: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Refuses (exit 3) when one of the files exists and --force was not given. */
async function refuseExisting(paths: string[], force: boolean): Promise<void> {
  if (force) return;
  for (const path of paths) {
    if (await exists(path)) throw new InitError(`${path} already exists; nothing was written. Pass --force to replace it.`, 'exists');
  }
}

/**
 * Writes each file with mode 0600: a new file is created exclusively; with force, a temporary
 * file is renamed over the old one (so an old, looser mode does not survive).
 */
async function writePrivateFiles(files: PrivateFile[], force: boolean): Promise<void> {
  await refuseExisting(
    files.map((f) => f.path),
    force,
  );
  for (const file of files) {
    await mkdir(dirname(file.path), { recursive: true, mode: 0o700 });
    if (!force) {
      try {
        await writeFile(file.path, file.content, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new InitError(`${file.path} already exists; pass --force to replace it.`, 'exists');
        throw err;
      }
      continue;
    }
    const temporary = join(dirname(file.path), `.${basename(file.path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(temporary, file.content, { mode: 0o600, flag: 'wx' });
      await rename(temporary, file.path);
    } finally {
      await rm(temporary, { force: true });
    }
  }
}

function configText(raw: unknown): string {
  return `${JSON.stringify(raw, null, 2)}\n`;
}

function summaryOf(configPath: string, files: string[], raw: RawConfig): InitSummary {
  return {
    config: configPath,
    files,
    apps: Object.fromEntries(
      Object.entries(raw.apps).map(([name, app]) => [
        name,
        {
          clientId: app.clientId,
          tenant: app.tenant,
          cloud: app.cloud,
          credential: app.certificate ? 'certificate' : app.clientSecret !== undefined ? 'secret' : 'none',
        },
      ]),
    ),
    mailboxes: Object.entries(raw.mailboxes).map(([address, m]) => ({ address, app: m.app, grant: m.grant, protocols: m.protocols })),
  };
}

function mailboxTable(summary: InitSummary): string {
  const width = Math.max(...summary.mailboxes.map((m) => m.address.length), 7);
  const appWidth = Math.max(...summary.mailboxes.map((m) => m.app.length), 3);
  return summary.mailboxes.map((m) => `  ${m.address.padEnd(width)}  ${m.app.padEnd(appWidth)}  ${m.grant.padEnd(18)}  ${m.protocols.join(', ')}`).join('\n');
}

// The configuration as init writes it (a subset of the schema's input).
interface RawApp {
  cloud: string;
  tenant: string;
  clientId: string;
  clientSecret?: string;
  certificate?: { certFile: string; keyFile: string };
  redirectUri?: string;
}
interface RawMailbox {
  app: string;
  grant: GrantType;
  protocols: Protocol[];
}
interface RawConfig {
  dataDir?: string;
  clouds?: Record<string, { base: CloudName; loginUrl: string; imap: string; pop: string; smtp: string; caFile: string }>;
  apps: Record<string, RawApp>;
  mailboxes: Record<string, RawMailbox>;
}

// ---------------------------------------------------------------------------------------------
// --emulator: the live scenario

const MAX_SCENARIO_BYTES = 8 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 15_000;

const liveScenarioSchema = z.object({
  identity: z.string(),
  ca: z.string(),
  services: z.object({ imaps: z.string(), pop3s: z.string(), smtp: z.string() }),
  tenants: z.array(z.object({ id: z.string(), domains: z.array(z.string()).min(1), kind: z.string().default('organization') })),
  apps: z.array(
    z.object({
      clientId: z.string(),
      displayName: z.string().default(''),
      homeTenant: z.string().optional(),
      signInAudience: z.string().default('AzureADMyOrg'),
      publicClient: z.boolean().default(false),
      redirectUris: z.object({ web: z.array(z.string()).default([]) }).default({ web: [] }),
      secrets: z.array(z.object({ value: z.string(), expiresAt: z.string().optional() })).default([]),
      certificates: z.array(z.object({ certPem: z.string().optional(), keyPem: z.string().optional() })).default([]),
      appRoles: z.record(z.string(), z.array(z.string())).default({}),
    }),
  ),
  users: z.array(z.object({ userPrincipalName: z.string(), tenant: z.string() })),
  exchange: z.object({
    servicePrincipals: z.array(z.object({ tenant: z.string(), appId: z.string(), objectId: z.string() })).default([]),
    mailboxes: z.array(
      z.object({
        address: z.string(),
        tenant: z.string(),
        kind: z.string().default('user'),
        permissions: z.array(z.object({ principal: z.string(), accessRights: z.array(z.string()) })).default([]),
      }),
    ),
  }),
});
export type LiveScenario = z.infer<typeof liveScenarioSchema>;

function describeFetchError(err: NodeJS.ErrnoException, url: string, caFile: string): string {
  const tls = new Set([
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    'SELF_SIGNED_CERT_IN_CHAIN',
    'DEPTH_ZERO_SELF_SIGNED_CERT',
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    'CERT_SIGNATURE_FAILURE',
  ]);
  if (err.code && tls.has(err.code))
    return `the server's certificate is not signed by the CA in ${caFile} (${err.code}); pass --ca <the ca path printed by mailbridge emulator>`;
  if (err.code === 'ECONNREFUSED') return `nothing answers at ${url}; is \`mailbridge emulator\` running, and is this the identity URL it printed?`;
  if (err.code === 'ENOTFOUND') return `no such host in ${url}`;
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `the certificate does not name this host; use the identity URL exactly as mailbridge emulator printed it`;
  return err.message;
}

/** GET over HTTPS trusting only `caPem`, at most MAX_SCENARIO_BYTES, within FETCH_TIMEOUT_MS. */
function fetchJson(url: string, caPem: string, caFile: string): Promise<unknown> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      url,
      { ca: caPem, headers: { accept: 'application/json' }, timeout: FETCH_TIMEOUT_MS, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(
            new InitError(
              `${url} answered HTTP ${res.statusCode ?? '?'}; give the identity URL that mailbridge emulator printed (https://localhost:<port>)`,
              'unavailable',
            ),
          );
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_SCENARIO_BYTES) {
            req.destroy();
            reject(new InitError(`${url} sent more than ${MAX_SCENARIO_BYTES / 1024 / 1024} MiB; that is not an emulator scenario`, 'unavailable'));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          try {
            resolvePromise(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch {
            reject(new InitError(`${url} did not answer with JSON; give the identity URL that mailbridge emulator printed`, 'config_invalid'));
          }
        });
        res.on('error', (err) => reject(new InitError(`cannot fetch ${url}: ${err.message}`, 'unreachable')));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${FETCH_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.name === 'AbortError' || err.name === 'TimeoutError' ? `no answer within ${FETCH_TIMEOUT_MS / 1000} s` : describeFetchError(err, url, caFile);
      reject(new InitError(`cannot fetch ${url}: ${why}`, 'unreachable'));
    });
    req.end();
  });
}

function scenarioUrl(identity: string): string {
  let url: URL;
  try {
    url = new URL(identity);
  } catch {
    throw new InitError(`--emulator must be the identity URL that mailbridge emulator printed (https://localhost:<port>), not "${identity}"`, 'usage');
  }
  if (url.protocol !== 'https:')
    throw new InitError(`--emulator must be an https:// URL (the identity line mailbridge emulator printed), not "${identity}"`, 'usage');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}/_emulator/scenario`;
}

async function loadCa(flags: InitFlags, env: NodeJS.ProcessEnv): Promise<{ caPem: string; caFile: string }> {
  const caFile = flags.ca ?? env.NODE_EXTRA_CA_CERTS;
  if (!caFile) {
    throw new InitError(
      'the emulator uses its own CA; pass --ca <path printed by mailbridge emulator> (its "ca" line), or set NODE_EXTRA_CA_CERTS to it',
      'usage',
    );
  }
  const path = resolve(caFile);
  try {
    return { caPem: await readFile(path, 'utf8'), caFile: path };
  } catch (err) {
    throw new InitError(`cannot read the CA file ${path}: ${(err as Error).message}; pass --ca <path printed by mailbridge emulator>`, 'config_invalid');
  }
}

function unexpired(secret: { expiresAt?: string | undefined }): boolean {
  return secret.expiresAt === undefined || Date.parse(secret.expiresAt) > Date.now();
}

export interface EmulatorConfig {
  raw: RawConfig;
  /** The service app's certificate and key, written next to the configuration. */
  files: PrivateFile[];
  notes: string[];
}

/**
 * A configuration for every grant of the emulator's scenario, derived from the live JSON: the
 * public app for authorization code (alice) and device code (bob) in the organisation and for a
 * personal account (carol), the web app with its secret, the app-only service app with its
 * certificate for the shared mailbox it has FullAccess to.
 */
export function emulatorConfig(scenario: LiveScenario, options: { configPath: string; caFile: string }): EmulatorConfig {
  const notes: string[] = [];
  const org = scenario.tenants.find((t) => t.kind === 'organization');
  if (!org) throw new InitError('the emulator scenario has no organization tenant', 'config_invalid');
  const orgTenant = org.domains[0]!;
  const consumer = scenario.tenants.find((t) => t.kind === 'consumers');
  const protocols: Protocol[] = ['imap', 'pop', 'smtp'];

  const desktop = scenario.apps.find((a) => a.publicClient && a.homeTenant === org.id) ?? scenario.apps.find((a) => a.publicClient);
  if (!desktop) throw new InitError('the emulator scenario has no public client app (publicClient: true) to sign users in with', 'config_invalid');
  const serviceSp = (clientId: string) => scenario.exchange.servicePrincipals.find((sp) => sp.appId === clientId && sp.tenant === org.id);
  const service = scenario.apps.find((a) => !a.publicClient && serviceSp(a.clientId) && a.certificates.some((c) => c.certPem && c.keyPem));
  const web = scenario.apps.find((a) => !a.publicClient && a !== service && a.redirectUris.web.length > 0 && a.secrets.some(unexpired));

  const cloud = 'emulator';
  const stem = basename(options.configPath).replace(/\.json$/i, '');
  const raw: RawConfig = {
    // Its own data folder (key, tokens.db) next to the file, relative so the pair can be moved:
    // emulator grants never mix with another configuration's, or with the real ones in the default.
    dataDir: `${stem}.data`,
    clouds: {
      [cloud]: {
        base: 'global',
        loginUrl: scenario.identity,
        imap: scenario.services.imaps,
        pop: scenario.services.pop3s,
        smtp: scenario.services.smtp,
        caFile: options.caFile,
      },
    },
    apps: {},
    mailboxes: {},
  };
  raw.apps.desktop = { cloud, tenant: orgTenant, clientId: desktop.clientId };

  const mailboxOf = (address: string) => scenario.exchange.mailboxes.find((m) => m.address.toLowerCase() === address.toLowerCase());
  const orgUsers = scenario.users.filter((u) => u.tenant === org.id && mailboxOf(u.userPrincipalName)?.kind === 'user');
  const [first, second] = orgUsers;
  if (first) raw.mailboxes[first.userPrincipalName] = { app: 'desktop', grant: 'authorization_code', protocols };
  if (second) raw.mailboxes[second.userPrincipalName] = { app: 'desktop', grant: 'device_code', protocols };
  else notes.push('the scenario has only one user in the organisation, so no mailbox uses device code');

  if (web) {
    const secret = web.secrets.find(unexpired)!;
    raw.apps.web = { cloud, tenant: orgTenant, clientId: web.clientId, clientSecret: secret.value, redirectUri: web.redirectUris.web[0]! };
  } else {
    notes.push('the scenario has no confidential web app with a redirect URI and a valid secret');
  }

  const files: PrivateFile[] = [];
  if (service) {
    const sp = serviceSp(service.clientId)!;
    const certificate = service.certificates.find((c) => c.certPem && c.keyPem)!;
    const certFile = `${stem}.service.crt`;
    const keyFile = `${stem}.service.key`;
    files.push(
      { path: join(dirname(options.configPath), certFile), content: certificate.certPem! },
      { path: join(dirname(options.configPath), keyFile), content: certificate.keyPem! },
    );
    raw.apps.service = { cloud, tenant: orgTenant, clientId: service.clientId, certificate: { certFile, keyFile } };
    const shared =
      scenario.exchange.mailboxes.find(
        (m) => m.tenant === org.id && m.kind === 'shared' && m.permissions.some((p) => p.principal === sp.objectId && p.accessRights.includes('FullAccess')),
      ) ??
      scenario.exchange.mailboxes.find(
        (m) => m.tenant === org.id && m.permissions.some((p) => p.principal === sp.objectId && p.accessRights.includes('FullAccess')),
      );
    if (shared) raw.mailboxes[shared.address] = { app: 'service', grant: 'client_credentials', protocols };
    else notes.push(`no mailbox grants FullAccess to the service app's service principal ${sp.objectId}, so no mailbox uses client credentials`);
  } else {
    notes.push('the scenario has no app registered in Exchange with a certificate, so no mailbox uses client credentials');
  }

  const personalApp = /PersonalMicrosoftAccount/.test(desktop.signInAudience)
    ? desktop
    : scenario.apps.find((a) => a.publicClient && /PersonalMicrosoftAccount/.test(a.signInAudience));
  const personalUser = consumer ? scenario.users.find((u) => u.tenant === consumer.id && mailboxOf(u.userPrincipalName)) : undefined;
  if (personalApp && personalUser) {
    raw.apps['desktop-personal'] = { cloud, tenant: 'consumers', clientId: personalApp.clientId };
    raw.mailboxes[personalUser.userPrincipalName] = { app: 'desktop-personal', grant: 'authorization_code', protocols };
  } else {
    notes.push('the scenario has no personal account with a mailbox and a public app that allows personal accounts');
  }
  return { raw, files, notes };
}

async function initFromEmulator(flags: InitFlags, configPath: string, env: NodeJS.ProcessEnv): Promise<void> {
  const url = scenarioUrl(flags.emulator!);
  const force = flags.force === true;
  await refuseExisting([configPath], force);
  const { caPem, caFile } = await loadCa(flags, env);
  const parsed = liveScenarioSchema.safeParse(await fetchJson(url, caPem, caFile));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InitError(`${url} is not an emulator scenario (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'unexpected shape'})`, 'config_invalid');
  }
  const { raw, files, notes } = emulatorConfig(parsed.data, { configPath, caFile });
  const problems = configProblems(raw);
  if (problems.length > 0) {
    throw new InitError(
      `the configuration made from the emulator's scenario is not valid:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
      'config_invalid',
    );
  }
  // Certificate files first: the configuration names them.
  await writePrivateFiles([...files, { path: configPath, content: configText(raw) }], force);
  const summary = summaryOf(
    configPath,
    files.map((f) => f.path),
    raw,
  );
  const out = [
    `mailbridge init: wrote ${configPath} (mode 0600) for the emulator at ${parsed.data.identity}`,
    ...files.map((f) => `  ${f.path} (mode 0600)`),
    `Its data folder (token store and key): ${resolve(dirname(configPath), raw.dataDir ?? '')}`,
    'Mailboxes (address, app, grant, protocols):',
    mailboxTable(summary),
    ...notes.map((n) => `Note: ${n}.`),
    `The users' passwords are in ${url}.`,
    `Use it with --config ${configPath} (or MAILBRIDGE_CONFIG=${configPath}).`,
    '',
  ];
  process.stderr.write(out.join('\n'));
  if (flags.json) process.stdout.write(`${JSON.stringify({ ...summary, emulator: parsed.data.identity }, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------
// Interactive: one question per line

class EndOfAnswers extends Error {}

/** Reads answers line by line: from a terminal (with echo off for secrets) or from piped stdin. */
class Prompter {
  private readonly rl: Interface;
  private readonly lines: AsyncIterator<string>;
  private readonly tty: boolean;
  private readonly errors: NodeJS.WritableStream;
  private muted = false;
  /** Set when the person pressed Ctrl+C. */
  cancelled = false;

  constructor(input: NodeJS.ReadableStream & { isTTY?: boolean }, errors: NodeJS.WritableStream) {
    this.tty = input.isTTY === true;
    this.errors = errors;
    const output = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (!this.muted) errors.write(chunk);
        callback();
      },
    });
    this.rl = createInterface({ input, ...(this.tty ? { output, terminal: true } : { terminal: false }) });
    this.rl.on('SIGINT', () => {
      this.cancelled = true;
      errors.write('\n');
      this.rl.close();
    });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  async ask(question: string, options: { secret?: boolean } = {}): Promise<string> {
    if (this.tty) {
      // readline redraws only the prompt's own line, so the lines above it are written as they are.
      const cut = question.lastIndexOf('\n') + 1;
      this.errors.write(question.slice(0, cut));
      this.rl.setPrompt(question.slice(cut));
      this.rl.prompt();
    } else {
      this.errors.write(question);
    }
    this.muted = this.tty && options.secret === true;
    let next: IteratorResult<string>;
    try {
      next = await this.lines.next();
    } finally {
      this.muted = false;
    }
    if (next.done) throw new EndOfAnswers();
    if (!this.tty || options.secret) this.errors.write('\n');
    return next.value.trim();
  }

  close(): void {
    this.rl.close();
  }
}

type Check<T> = (answer: string) => { value: T } | { problems: string[] };

async function askUntil<T>(prompter: Prompter, question: string, check: Check<T>, options: { secret?: boolean } = {}): Promise<T> {
  for (;;) {
    const result = check(await prompter.ask(question, options));
    if ('value' in result) return result.value;
    for (const problem of result.problems) process.stderr.write(`  ${problem}\n`);
  }
}

interface Answers {
  scenario: SetupScenario;
  cloud?: string;
  tenant?: string;
  clientId?: string;
  grant?: GrantType;
  redirectUri?: string;
  secret?: string;
  certificate?: { certFile: string; keyFile: string };
  mailboxes?: string[];
  protocols?: string[];
}

const PLACEHOLDER = {
  tenant: 'example.com',
  clientId: '00000000-0000-0000-0000-000000000000',
  certificate: { certFile: 'cert.pem', keyFile: 'key.pem' },
  redirectUri: 'https://example.com/auth/callback',
  mailbox: 'user@example.com',
};

/** The configuration the answers so far make, with known-good stand-ins for the rest. */
function candidate(a: Answers): RawConfig {
  const grant: GrantType = a.scenario === 'service' ? 'client_credentials' : (a.grant ?? 'authorization_code');
  const app: RawApp = { cloud: a.cloud ?? 'global', tenant: a.tenant ?? PLACEHOLDER.tenant, clientId: a.clientId ?? PLACEHOLDER.clientId };
  if (a.scenario !== 'desktop') {
    if (a.secret !== undefined) app.clientSecret = a.secret;
    else app.certificate = a.certificate ?? PLACEHOLDER.certificate;
  }
  if (a.scenario === 'web') app.redirectUri = a.redirectUri ?? PLACEHOLDER.redirectUri;
  const mailboxes: Record<string, RawMailbox> = {};
  for (const address of a.mailboxes ?? [PLACEHOLDER.mailbox])
    mailboxes[address] = { app: a.scenario, grant, protocols: (a.protocols ?? ['imap']) as Protocol[] };
  return { apps: { [a.scenario]: app }, mailboxes };
}

/** Accepts `answers` when the candidate configuration with them has no problem. */
function checkWith(answers: Answers): { value: Answers } | { problems: string[] } {
  const problems = configProblems(candidate(answers));
  return problems.length === 0 ? { value: answers } : { problems: [...new Set(problems.map((p) => p.message))] };
}

async function readPem(path: string): Promise<string | { problem: string }> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    return { problem: `cannot read ${path}: ${(err as Error).message}` };
  }
}

async function askCertificate(prompter: Prompter): Promise<{ certFile: string; keyFile: string }> {
  for (;;) {
    const certFile = resolve(await prompter.ask('Certificate file (PEM, the one uploaded to the app registration): '));
    const certPem = await readPem(certFile);
    if (typeof certPem !== 'string') {
      process.stderr.write(`  ${certPem.problem}\n`);
      continue;
    }
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(certPem);
    } catch {
      process.stderr.write(`  ${certFile} is not a PEM certificate (-----BEGIN CERTIFICATE-----)\n`);
      continue;
    }
    for (;;) {
      const keyFile = resolve(await prompter.ask('Its private key file (PEM): '));
      const keyPem = await readPem(keyFile);
      if (typeof keyPem !== 'string') {
        process.stderr.write(`  ${keyPem.problem}\n`);
        continue;
      }
      try {
        if (!certificate.checkPrivateKey(createPrivateKey(keyPem))) {
          process.stderr.write(`  the key in ${keyFile} does not belong to the certificate in ${certFile}\n`);
          continue;
        }
      } catch {
        process.stderr.write(`  ${keyFile} is not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)\n`);
        continue;
      }
      if (((await stat(keyFile)).mode & 0o077) !== 0) process.stderr.write(`  warning: others can read ${keyFile}; run chmod 600 ${keyFile}\n`);
      return { certFile, keyFile };
    }
  }
}

const GRAPH_SCOPE =
  /^(https:\/\/(graph\.microsoft\.(com|us)|dod-graph\.microsoft\.us|microsoftgraph\.chinacloudapi\.cn)\/|00000003-0000-0000-c000-000000000000\/)/i;

/** Why an answer at the protocols prompt is not a protocol; a scope or permission gets the reason it is wrong here. */
function notAProtocol(answer: string): string {
  const protocols = 'answer imap, pop and/or smtp: mailbridge builds the Outlook scopes (https://outlook.office.com/...) from them';
  if (GRAPH_SCOPE.test(answer))
    return `"${answer}" is a Microsoft Graph scope: a Graph token is refused by IMAP, POP and SMTP, which take only Office 365 Exchange Online tokens; ${protocols}`;
  if (/[./]/.test(answer))
    return `"${answer}" is a permission, not a protocol; unprefixed it means Microsoft Graph, whose tokens IMAP, POP and SMTP refuse; ${protocols}`;
  return `"${answer}" is not a protocol mailbridge speaks; answer imap, pop and/or smtp`;
}

function choice<T>(options: Record<string, T>, message: string, fallback?: T): Check<T> {
  return (answer) => {
    const key = answer.toLowerCase();
    if (key === '' && fallback !== undefined) return { value: fallback };
    return Object.hasOwn(options, key) ? { value: options[key]! } : { problems: [message] };
  };
}

async function initInteractive(flags: InitFlags, configPath: string): Promise<void> {
  const force = flags.force === true;
  await refuseExisting([configPath], force);
  const prompter = new Prompter(process.stdin, process.stderr);
  let answers: Answers;
  let objectId = '';
  try {
    process.stderr.write(`mailbridge init: a configuration in ${configPath}, then the app registration checklist.\n\n`);
    const scenario = await askUntil(
      prompter,
      'Scenario:\n  1  delegated, desktop or headless (a person signs in: browser on this machine, or device code)\n  2  delegated, web app (mailbridge serve: an admin presses Authenticate)\n  3  app-only service (client credentials, no person signs in)\nChoose 1, 2 or 3: ',
      choice<SetupScenario>({ '1': 'desktop', '2': 'web', '3': 'service', desktop: 'desktop', web: 'web', service: 'service' }, 'answer 1, 2 or 3'),
    );
    answers = { scenario };
    answers = await askUntil(prompter, `Cloud (${CLOUD_NAMES.join(', ')}) [global]: `, (a) =>
      checkWith({ ...answers, cloud: a === '' ? 'global' : a.toLowerCase() }),
    );
    // Personal accounts exist in the global cloud only, so a national cloud is not offered common or consumers.
    const national = answers.cloud !== 'global';
    const tenantHint =
      scenario === 'service'
        ? 'your Directory (tenant) ID or a verified domain'
        : national
          ? 'Directory (tenant) ID, a verified domain, or organizations'
          : 'Directory (tenant) ID, a verified domain, organizations, common or consumers';
    answers = await askUntil(prompter, `Tenant (${tenantHint}): `, (a) => {
      if (national && a.toLowerCase() === 'common')
        return {
          problems: [
            `personal Microsoft accounts exist only in the global cloud; in ${answers.cloud} "common" means organizations: give organizations, your tenant id or a domain`,
          ],
        };
      return checkWith({ ...answers, tenant: a });
    });
    answers = await askUntil(prompter, 'Application (client) ID (App registrations > your app > Overview): ', (a) => checkWith({ ...answers, clientId: a }));
    if (scenario === 'desktop') {
      const grant = await askUntil(
        prompter,
        'Sign-in:\n  1  authorization code (a browser on this machine)\n  2  device code (headless: a code to enter on any device)\nChoose 1 or 2 [1]: ',
        choice<GrantType>(
          { '1': 'authorization_code', '2': 'device_code', authorization_code: 'authorization_code', device_code: 'device_code' },
          'answer 1 or 2',
          'authorization_code',
        ),
      );
      answers = { ...answers, grant };
    }
    if (scenario === 'web') {
      answers = await askUntil(prompter, 'Redirect URI (where mailbridge serve receives the sign-in, e.g. https://mail.example.com/auth/callback): ', (a) =>
        checkWith({ ...answers, redirectUri: a }),
      );
    }
    if (scenario !== 'desktop') {
      const kind = await askUntil(
        prompter,
        'Credential:\n  1  certificate (recommended)\n  2  client secret\nChoose 1 or 2 [1]: ',
        choice<'certificate' | 'secret'>({ '1': 'certificate', '2': 'secret', certificate: 'certificate', secret: 'secret' }, 'answer 1 or 2', 'certificate'),
      );
      if (kind === 'secret') {
        answers = await askUntil(
          prompter,
          'Client secret Value (Certificates & secrets > Client secrets > the Value column, not the Secret ID): ',
          (a) => (a === '' ? { problems: ['the secret is empty'] } : checkWith({ ...answers, secret: a })),
          { secret: true },
        );
      } else {
        answers = { ...answers, certificate: await askCertificate(prompter) };
      }
    }
    answers = await askUntil(
      prompter,
      `Mailbox address(es), separated by commas or spaces${scenario === 'service' ? '' : ' (each signs in as itself)'}: `,
      (a) => {
        const mailboxes = [...new Set(a.split(/[\s,;]+/).filter(Boolean))];
        if (mailboxes.length === 0) return { problems: ['give at least one mailbox address, e.g. support@contoso.com'] };
        return checkWith({ ...answers, mailboxes });
      },
    );
    answers = await askUntil(prompter, 'Protocols (imap, pop, smtp) [imap, smtp]: ', (a) => {
      const words = a === '' ? ['imap', 'smtp'] : a.split(/[\s,;]+/).filter(Boolean);
      // Each word that is not a protocol is quoted as typed, with why it is wrong here.
      const wrong = words.filter((w) => !(PROTOCOLS as readonly string[]).includes(w.toLowerCase()));
      if (wrong.length > 0) return { problems: wrong.map(notAProtocol) };
      return checkWith({ ...answers, protocols: [...new Set(words.map((w) => w.toLowerCase()))] });
    });
    if (scenario === 'service') {
      objectId = await askUntil<string>(
        prompter,
        'Object ID of the Enterprise application (Enterprise applications > your app > Overview > Object ID;\nNOT the Object ID on the App registration page). Empty to fill it in later: ',
        (a) => {
          if (a === '') return { value: '' };
          if (!isGuid(a))
            return { problems: ['must be a GUID like 00000000-0000-0000-0000-000000000000 (Enterprise applications > your app > Overview > Object ID)'] };
          if (a.toLowerCase() === answers.clientId?.toLowerCase()) {
            return { problems: ["that is the Application (client) ID; the Object ID is another GUID on the Enterprise application's Overview page"] };
          }
          return { value: a.toLowerCase() };
        },
      );
    }
  } catch (err) {
    if (err instanceof EndOfAnswers) {
      if (prompter.cancelled) throw new InitError('cancelled; nothing was written.', 'cancelled');
      throw new InitError('stdin ended before every question was answered; nothing was written. Run it in a terminal, or pipe one answer per line.', 'usage');
    }
    throw err;
  } finally {
    prompter.close();
  }

  const raw = candidate(answers);
  const problems = configProblems(raw);
  if (problems.length > 0)
    throw new InitError(`the answers do not make a valid configuration:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`, 'config_invalid');
  await writePrivateFiles([{ path: configPath, content: configText(raw) }], force);

  const mailboxes = answers.mailboxes ?? [];
  const guide = setupGuide({
    scenario: answers.scenario,
    cloud: (answers.cloud ?? 'global') as CloudName,
    tenant: answers.tenant!,
    clientId: answers.clientId!,
    protocols: (answers.protocols ?? ['imap', 'smtp']) as Protocol[],
    mailboxes,
    ...(answers.grant ? { grant: answers.grant } : {}),
    ...(answers.redirectUri ? { redirectUri: answers.redirectUri } : {}),
    ...(answers.scenario !== 'desktop' ? { credential: answers.secret !== undefined ? ('secret' as const) : ('certificate' as const) } : {}),
    ...(objectId ? { servicePrincipalObjectId: objectId } : {}),
  });
  const summary = summaryOf(configPath, [], raw);
  process.stderr.write(`\nmailbridge init: wrote ${configPath} (mode 0600)\nMailboxes (address, app, grant, protocols):\n${mailboxTable(summary)}\n`);
  if (answers.scenario !== 'service') process.stderr.write('For a shared mailbox, add "signInAs": "<a user with FullAccess to it>" to its entry.\n');
  process.stderr.write('\n');
  if (flags.json) {
    process.stderr.write(guide);
    process.stdout.write(`${JSON.stringify({ ...summary, scenario: answers.scenario, guide }, null, 2)}\n`);
  } else {
    process.stdout.write(guide);
  }
}

// ---------------------------------------------------------------------------------------------

export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('write a configuration file: from a running emulator (--emulator), or by asking, followed by the app registration checklist')
    .option('--config <file>', `where to write it (default: $MAILBRIDGE_CONFIG or ${defaultConfigPath().replace(process.env.HOME ?? '\0', '~')})`)
    .option('--emulator <identity-url>', 'take apps, mailboxes and endpoints from a running `mailbridge emulator` (its "identity" line)')
    .option('--ca <file>', 'with --emulator: the CA to trust (its "ca" line); default NODE_EXTRA_CA_CERTS')
    .option('--force', 'replace an existing configuration (and certificate files)')
    .option('--json', 'print a JSON summary on stdout (never secrets)')
    .addHelpText(
      'after',
      `
Without --emulator it asks, one answer per line (type them, or pipe them on stdin):
  scenario (1 desktop/headless, 2 web app, 3 app-only), cloud, tenant, client id, credential,
  mailboxes, protocols; app-only also the Enterprise application's object id.
Then it prints the app registration checklist (and the Exchange PowerShell for app-only) on stdout.

The file is written with mode 0600 (it may hold a client secret); an existing one is kept unless
--force. Exit codes: 0 written, 2 wrong options or answers ran out, 3 the file exists or the
result is invalid, 4 the emulator could not be reached.`,
    )
    .action(async (flags: InitFlags) => {
      const configPath = resolve(flags.config ?? defaultConfigPath());
      try {
        if (flags.emulator !== undefined) await initFromEmulator(flags, configPath, process.env);
        else if (flags.ca !== undefined) throw new InitError('--ca goes with --emulator <identity-url>', 'usage');
        else await initInteractive(flags, configPath);
      } catch (err) {
        if (!(err instanceof InitError)) throw err;
        process.stderr.write(`mailbridge init: ${err.message}\n`);
        process.exitCode = exitCodeFor(err);
      }
    });
}
