// A project outside the checkout with mailbridge installed from its packed tarball, as a user would
// have it: the package (package.json, lockfile, tsconfig files, src) is copied to a temporary
// folder, packed there (`npm pack` runs prepack, which builds: nothing is built into the
// checkout's dist/), and the tarball installed with `npm ci --offline`.
//
// No registry is needed: the scratch project's lockfile is the checkout's, cut down to what the
// tarball and the type-checker need, so npm takes every package from its cache by integrity,
// where the checkout's own `npm ci` put them.
//
// Building takes about a minute, so the tests share one project per content of the package: the
// folder is named by a hash of the inputs, and a lock folder makes a second test process wait for
// the first one's build instead of doing it again.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const CHECKOUT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** What a packed mailbridge is made from. */
const PACKAGE_FILES = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];
const SCRATCH_PREFIX = 'mailbridge-scratch-';

export interface ScratchProject {
  /** The consumer project: `node_modules/mailbridge` is the installed tarball. */
  dir: string;
  /** The packed tarball's path. */
  tarball: string;
  /** TypeScript's compiler in the scratch project (installed there as a dev dependency). */
  tsc: string;
}

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  peer?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  [field: string]: unknown;
}

interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
  [field: string]: unknown;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** A hash of everything that goes into the package, so a changed source gets a fresh project. */
async function packageHash(): Promise<string> {
  const hash = createHash('sha256');
  const files = [...PACKAGE_FILES.map((f) => join(CHECKOUT, f)), ...(await filesUnder(join(CHECKOUT, 'src')))];
  for (const file of files) {
    hash.update(relative(CHECKOUT, file));
    hash.update('\0');
    hash.update(await readFile(file));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** Where `name` resolves from the package at `from` (a lockfile key), as Node's lookup walks up. */
function resolveIn(packages: Lockfile['packages'], from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!base) return undefined;
    const up = base.lastIndexOf('/node_modules/');
    base = up < 0 ? '' : base.slice(0, up);
  }
}

/**
 * The scratch project's lockfile: its root, mailbridge from the tarball, and the checkout's
 * entries reachable from mailbridge's dependencies (production) or from TypeScript and
 * @types/node (development).
 */
export function scratchLockfile(checkout: Lockfile, pkg: Record<string, unknown>, tarballName: string, integrity: string): Lockfile {
  const deps = (pkg.dependencies ?? {}) as Record<string, string>;
  const devDeps = (pkg.devDependencies ?? {}) as Record<string, string>;
  const dev = { typescript: devDeps.typescript!, '@types/node': devDeps['@types/node']! };
  const packages: Lockfile['packages'] = {};
  const kinds = new Map<string, 'prod' | 'dev'>();
  const walk = (from: string, names: string[], kind: 'prod' | 'dev') => {
    const queue = names.map((name) => ({ from, name }));
    while (queue.length > 0) {
      const { from: at, name } = queue.shift()!;
      const key = resolveIn(checkout.packages, at, name);
      if (!key) throw new Error(`the checkout's package-lock.json has no ${name} (needed from ${at || 'the root'})`);
      if (kinds.get(key) === 'prod' || kinds.get(key) === kind) continue;
      kinds.set(key, kind);
      const entry = checkout.packages[key]!;
      const edges = { ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies };
      for (const dep of Object.keys(edges)) {
        if (resolveIn(checkout.packages, key, dep) || !(dep in (entry.peerDependencies ?? {}))) queue.push({ from: key, name: dep });
      }
    }
  };
  walk('node_modules/mailbridge', Object.keys(deps), 'prod');
  walk('', Object.keys(dev), 'dev');

  packages[''] = { name: 'mailbridge-consumer', dependencies: { mailbridge: `file:${tarballName}` }, devDependencies: dev };
  packages['node_modules/mailbridge'] = {
    version: pkg.version as string,
    resolved: `file:${tarballName}`,
    integrity,
    license: pkg.license,
    dependencies: deps,
    ...(pkg.bin ? { bin: pkg.bin } : {}),
    ...(pkg.engines ? { engines: pkg.engines } : {}),
  };
  for (const [key, kind] of [...kinds].sort(([a], [b]) => a.localeCompare(b))) {
    const { dev: _dev, devOptional: _devOptional, ...entry } = checkout.packages[key]!;
    packages[key] = { ...entry, ...(kind === 'dev' ? { dev: true } : {}) };
  }
  return { name: 'mailbridge-consumer', lockfileVersion: checkout.lockfileVersion, requires: true, packages };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** npm as a child process, quiet and offline, in `cwd`. */
async function npm(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run('npm', [...args, '--offline', '--no-audit', '--no-fund', '--no-update-notifier', '--loglevel=error'], {
    cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

async function build(target: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'mailbridge-pack-'));
  try {
    // The package, copied: `npm pack` builds it there (prepack), never in the checkout.
    const pkgDir = join(work, 'package');
    await mkdir(pkgDir);
    for (const file of PACKAGE_FILES) await cp(join(CHECKOUT, file), join(pkgDir, file));
    await cp(join(CHECKOUT, 'src'), join(pkgDir, 'src'), { recursive: true });
    // The build's compiler and types: the checkout's installed packages, not a second install.
    await symlink(join(CHECKOUT, 'node_modules'), join(pkgDir, 'node_modules'), 'dir');

    const project = join(work, 'project');
    await mkdir(project);
    await npm(pkgDir, ['pack', '--pack-destination', project]);
    const tarballName = (await readdir(project)).find((f) => f.endsWith('.tgz'));
    if (!tarballName) throw new Error('npm pack wrote no tarball');
    const tarball = await readFile(join(project, tarballName));

    const pkg = JSON.parse(await readFile(join(CHECKOUT, 'package.json'), 'utf8')) as Record<string, unknown>;
    const checkoutLock = JSON.parse(await readFile(join(CHECKOUT, 'package-lock.json'), 'utf8')) as Lockfile;
    const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
    const lock = scratchLockfile(checkoutLock, pkg, tarballName, integrity);
    await writeFile(join(project, 'package.json'), `${JSON.stringify({ ...lock.packages[''], private: true, type: 'module' }, null, 2)}\n`);
    await writeFile(join(project, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
    await npm(project, ['ci']);
    await rename(project, target);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Removes scratch projects of other package contents (older sources), unless one is being built. */
async function removeStale(keep: string): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(SCRATCH_PREFIX) || name.endsWith('.lock') || join(tmpdir(), name) === keep) continue;
    if (await exists(join(tmpdir(), `${name}.lock`))) continue;
    await rm(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/** The scratch project for the checkout's current package, built once and shared between test files. */
export async function scratchProject(): Promise<ScratchProject> {
  const dir = join(tmpdir(), `${SCRATCH_PREFIX}${await packageHash()}`);
  const lock = `${dir}.lock`;
  const done = async (): Promise<ScratchProject> => {
    const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'))!;
    return { dir, tarball: join(dir, tarball), tsc: join(dir, 'node_modules', 'typescript', 'bin', 'tsc') };
  };
  for (;;) {
    if (await exists(join(dir, 'node_modules', 'mailbridge', 'package.json'))) return done();
    try {
      await mkdir(lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another test process is building it: wait for it, or take over if that process is gone.
      const owner = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => '0'));
      if (owner > 0 && !alive(owner)) await rm(lock, { recursive: true, force: true });
      else await delay(250);
      continue;
    }
    try {
      await writeFile(join(lock, 'pid'), String(process.pid));
      if (!(await exists(dir))) await build(dir);
      await removeStale(dir);
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}
