// A cache of validated configurations, so that `mailbridge token` (run by mutt and msmtp on every
// connection) does not load zod and validate an unchanged file each time. An entry is used only
// when its key matches a hash of everything validation depends on: the file's text, the
// MAILBRIDGE__ overrides, package.json (mailbridge's and zod's versions) and the source of this
// folder (the schema and its checks live here). Any mismatch or damage means a full validation.
//
// The entry holds no value from the configuration: each value the file (or an override) gave is
// stored as a reference to its place, and filled in from the file read now. Only the schema's
// defaults and the shape are stored, so no secret (an inline clientSecret, an override) is ever
// written, and env/file secret references are still resolved when used, as before.
import { homedir } from 'node:os';
import { extname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// A hit (every `mailbridge token`) reads synchronously through getBuiltinModule: ESM imports of
// node:fs and node:crypto also load fs.promises with its streams and WebCrypto. A miss writes with
// node:fs/promises, loaded then.
const { readdirSync, readFileSync } = process.getBuiltinModule('node:fs');
const { createHash, randomBytes } = process.getBuiltinModule('node:crypto');

/** What an entry stores per node: the file's value (r), a default (v), an object (o), an array (a). */
type Tree = { r: 1 } | { v: unknown } | { o: Record<string, Tree> } | { a: Tree[] };

interface Entry {
  format: typeof FORMAT;
  key: string;
  tree: Tree;
}

const FORMAT = 1;
/** Entries kept (one per configuration file); the oldest go first (tests make many temporary files). */
const MAX_ENTRIES = 64;
const OVERRIDE_PREFIX = 'MAILBRIDGE__';

/** Where entries live: $XDG_CACHE_HOME/mailbridge/config, else ~/.cache/mailbridge/config. */
export function configCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'mailbridge', 'config');
}

/** The entry's file for one configuration file. */
export function configCacheFile(configFile: string, env: NodeJS.ProcessEnv = process.env): string {
  const name = createHash('sha256').update(resolve(configFile)).digest('hex').slice(0, 32);
  return join(configCacheDir(env), `${name}.json`);
}

let validatorFingerprint: string | undefined;

/** package.json and every module of this folder (.ts from a checkout, .js when built). */
function fingerprint(): string {
  if (validatorFingerprint) return validatorFingerprint;
  const hash = createHash('sha256');
  hash.update(readFileSync(new URL('../../package.json', import.meta.url)));
  const here = fileURLToPath(new URL('.', import.meta.url));
  const ext = extname(fileURLToPath(import.meta.url));
  // Sync and sorted: a few small files, read once per process.
  for (const name of readdirSync(here).sort()) {
    if (name.endsWith(ext)) hash.update(`\u0000${name}\u0000`).update(readFileSync(join(here, name)));
  }
  validatorFingerprint = hash.digest('hex');
  return validatorFingerprint;
}

/** The hash an entry must carry to be used for this text and these overrides. */
export function cacheKey(text: string, env: NodeJS.ProcessEnv): string {
  const overrides = Object.entries(env)
    .filter(([name, value]) => name.startsWith(OVERRIDE_PREFIX) && value !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256')
    .update(JSON.stringify([FORMAT, fingerprint(), text, overrides]))
    .digest('hex');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The validated value as references into `raw` plus the schema's defaults; undefined when the
 * validated value has a leaf that differs from the file's (a transform), which could hold user data.
 */
function encode(value: unknown, raw: unknown): Tree | undefined {
  if (raw === undefined) return { v: value }; // a default the schema added
  if (Array.isArray(value)) {
    if (!Array.isArray(raw)) return undefined;
    const items: Tree[] = [];
    for (const [i, item] of value.entries()) {
      const tree = encode(item, raw[i]);
      if (!tree) return undefined;
      items.push(tree);
    }
    return { a: items };
  }
  if (isRecord(value)) {
    if (!isRecord(raw)) return undefined;
    const entries: [string, Tree][] = [];
    for (const [k, v] of Object.entries(value)) {
      const tree = encode(v, Object.hasOwn(raw, k) ? raw[k] : undefined);
      if (!tree) return undefined;
      entries.push([k, tree]);
    }
    return { o: Object.fromEntries(entries) };
  }
  return value === raw ? { r: 1 } : undefined;
}

class Mismatch extends Error {}

function decode(tree: Tree, raw: unknown): unknown {
  if ('v' in tree) return tree.v;
  if ('r' in tree) {
    if (raw === undefined || (raw !== null && typeof raw === 'object')) throw new Mismatch();
    return raw;
  }
  if ('a' in tree) {
    if (!Array.isArray(raw) || !Array.isArray(tree.a)) throw new Mismatch();
    return tree.a.map((item, i) => decode(item, raw[i]));
  }
  if (!isRecord(raw) || !isRecord(tree.o)) throw new Mismatch();
  // fromEntries defines keys as data properties: a "__proto__" key stays a key.
  return Object.fromEntries(Object.entries(tree.o).map(([k, t]) => [k, decode(t, Object.hasOwn(raw, k) ? raw[k] : undefined)]));
}

/** The validated configuration for `raw` (the file with overrides applied) if an entry with `key` holds it. */
export async function readValidated(configFile: string, key: string, raw: unknown, env: NodeJS.ProcessEnv): Promise<unknown> {
  try {
    const entry = JSON.parse(readFileSync(configCacheFile(configFile, env), 'utf8')) as Entry;
    if (entry.format !== FORMAT || entry.key !== key) return undefined;
    return decode(entry.tree, raw);
  } catch {
    return undefined; // none yet, unreadable, damaged or not for this file: validate in full
  }
}

/** Remembers that `raw` validated to `validated`; best effort (a read-only home only costs speed). */
export async function writeValidated(configFile: string, key: string, raw: unknown, validated: unknown, env: NodeJS.ProcessEnv): Promise<void> {
  const tree = encode(validated, raw);
  if (!tree) return;
  const file = configCacheFile(configFile, env);
  const dir = configCacheDir(env);
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const { mkdir, rename, rm, writeFile } = await import('node:fs/promises');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(temp, JSON.stringify({ format: FORMAT, key, tree } satisfies Entry), { mode: 0o600 });
    await rename(temp, file);
    await prune(dir);
  } catch {
    await rm(temp, { force: true }).catch(() => {});
  }
}

/** Keeps the newest MAX_ENTRIES entries. */
async function prune(dir: string): Promise<void> {
  const { readdir, rm, stat } = await import('node:fs/promises');
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
  if (names.length <= MAX_ENTRIES) return;
  const dated = await Promise.all(
    names.map(async (n) => ({
      path: join(dir, n),
      mtime: await stat(join(dir, n)).then(
        (s) => s.mtimeMs,
        () => Infinity,
      ),
    })),
  );
  dated.sort((a, b) => b.mtime - a.mtime);
  await Promise.all(dated.slice(MAX_ENTRIES).map((d) => rm(d.path, { force: true })));
}
