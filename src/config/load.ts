// Reads the configuration: the JSON file, then environment overrides (MAILBRIDGE__apps__web__
// clientSecret=... sets apps.web.clientSecret), then the schema and the checks of validate.ts.
// Every problem is reported at once, each with its path. A file validated before (same text,
// overrides and mailbridge) is taken from validated-cache.ts without loading the schema (zod).
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CLOUDS, OUTLOOK_COM_SMTP, parseMailUrl, type Cloud, type CloudName } from './clouds.ts';
import type { AppConfig, MailbridgeConfig, SecretRef } from './schema.ts';
import type { ConfigProblem } from './validate.ts';
import { cacheKey, readValidated, writeValidated } from './validated-cache.ts';
import { MailbridgeError } from '../errors.ts';

// Read synchronously through getBuiltinModule: an ESM import of node:fs or node:fs/promises loads
// their promise and stream machinery (~15-30 modules), a good part of `mailbridge token`'s start-up.
const { readFileSync } = process.getBuiltinModule('node:fs');

export class ConfigError extends MailbridgeError<'config_invalid'> {
  readonly file: string;
  readonly problems: ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    const lines = problems.map((p) => `${p.path || '(file)'}: ${p.message}`);
    // One problem stays on the first line: callers that quote only a first line (a grant's stored
    // reason, a one-line summary) must still say what is wrong, not "has a problem:".
    super(
      'config_invalid',
      problems.length === 1
        ? `The configuration in ${file} has a problem: ${lines[0]}`
        : `The configuration in ${file} has ${problems.length} problems:\n${lines.map((l) => `  ${l}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MAILBRIDGE_CONFIG) return env.MAILBRIDGE_CONFIG;
  const base = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'mailbridge', 'config.json');
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  return join(base, 'mailbridge');
}

const OVERRIDE_PREFIX = 'MAILBRIDGE__';
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** Applies MAILBRIDGE__a__b__c=value overrides onto the raw file contents. */
function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, problems: ConfigProblem[]): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(OVERRIDE_PREFIX) || value === undefined) continue;
    const path = name.slice(OVERRIDE_PREFIX.length).split('__');
    if (path.some((p) => p === '' || FORBIDDEN_KEYS.has(p))) {
      problems.push({ path: name, message: 'an override is MAILBRIDGE__ followed by a path such as apps__web__clientSecret' });
      continue;
    }
    let node: Record<string, unknown> = raw;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (next === undefined || next === null || typeof next !== 'object') node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path.at(-1)!] = value;
  }
}

export interface LoadedConfig {
  config: MailbridgeConfig;
  file: string;
  /** Folder of the file: relative paths in it (certificates, CA files) are resolved from here. */
  baseDir: string;
  dataDir: string;
}

export async function loadConfig(file = defaultConfigPath(), env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const why =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'there is no such file; create one with `mailbridge init` (or `mailbridge init --emulator <url>`)'
        : (err as Error).message;
    throw new ConfigError(file, [{ path: '', message: why }]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `not valid JSON: ${(err as Error).message}` }]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(file, [{ path: '', message: 'must be a JSON object' }]);
  const problems: ConfigProblem[] = [];
  applyEnvOverrides(raw as Record<string, unknown>, env, problems);
  const key = problems.length === 0 ? cacheKey(text, env) : undefined;
  let config = key ? ((await readValidated(file, key, raw, env)) as MailbridgeConfig | undefined) : undefined;
  if (!config) {
    config = await validate(file, raw, problems);
    if (key) await writeValidated(file, key, raw, config, env);
  }
  const baseDir = dirname(resolve(file));
  return { config, file, baseDir, dataDir: config.dataDir ? resolve(baseDir, config.dataDir) : defaultDataDir(env) };
}

/** The schema, then the checks of validate.ts; loaded here only, as they bring zod. */
async function validate(file: string, raw: unknown, problems: ConfigProblem[]): Promise<MailbridgeConfig> {
  const [{ configSchema }, { validateConfig, withOtherChecks }] = await Promise.all([import('./schema.ts'), import('./validate.ts')]);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    // The schema's problems do not hide the others: the checks run on what can still be read.
    const schemaProblems = parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
    problems.push(...withOtherChecks(schemaProblems, raw));
    throw new ConfigError(file, problems);
  }
  problems.push(...validateConfig(parsed.data));
  if (problems.length > 0) throw new ConfigError(file, problems);
  return parsed.data;
}

/** The cloud an app lives in, with a custom cloud's overrides applied. */
export function resolveCloud(loaded: LoadedConfig, app: AppConfig): Cloud {
  if (Object.hasOwn(CLOUDS, app.cloud)) {
    const cloud = CLOUDS[app.cloud as CloudName];
    // Personal Outlook.com accounts submit mail through their own host.
    return app.cloud === 'global' && app.tenant.toLowerCase() === 'consumers' ? { ...cloud, smtp: OUTLOOK_COM_SMTP } : cloud;
  }
  const custom = loaded.config.clouds[app.cloud];
  if (!custom) throw new ConfigError(loaded.file, [{ path: 'cloud', message: `unknown cloud ${app.cloud}` }]);
  const base = CLOUDS[custom.base as CloudName];
  return {
    ...base,
    name: app.cloud,
    ...(custom.loginUrl ? { loginUrl: custom.loginUrl.replace(/\/+$/, '') } : {}),
    ...(custom.imap ? { imap: parseMailUrl(custom.imap) } : {}),
    ...(custom.pop ? { pop: parseMailUrl(custom.pop) } : {}),
    ...(custom.smtp ? { smtp: parseMailUrl(custom.smtp) } : {}),
    ...(custom.caFile ? { caFile: resolve(loaded.baseDir, custom.caFile) } : {}),
    ...(custom.timeoutSeconds ? { identityTimeoutMs: custom.timeoutSeconds * 1000 } : {}),
  };
}

/** The value of a secret reference; its absence is a configuration problem that names where it was looked for. */
export async function resolveSecret(loaded: LoadedConfig, ref: SecretRef, path: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (typeof ref === 'string') return ref;
  if ('env' in ref) {
    const value = env[ref.env];
    if (!value) throw new ConfigError(loaded.file, [{ path, message: `the environment variable ${ref.env} is not set` }]);
    return value;
  }
  const file = resolve(loaded.baseDir, ref.file);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(loaded.file, [{ path, message: `cannot read ${file}: ${(err as Error).message}` }]);
  }
}
