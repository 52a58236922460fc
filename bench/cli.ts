// bench/cli: how fast the command line starts and how small the proxy sits, from the package as
// published (compiled JS, built here into a temporary folder, never into the checkout's dist/).
//   1. `node -e 0`, `mailbridge --version` and `mailbridge token <mailbox>` with a cached token,
//      in alternating rounds (the order rotates): medians of wall time, and each command's ratio
//      to `node -e 0` in the same round (targets: --version <= 1.2x, token <= 1.5x);
//   2. `mailbridge proxy run`: resident memory once start-up has settled (target <= 60 MB), and
//      after 50 IMAP logins through it against the emulator (settled, and the highest seen).
//   node bench/cli.ts [--json] [--rounds 40] [--logins 50]
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config/load.ts';
import { TokenProvider } from '../src/identity/token-provider.ts';
import { loadKey } from '../src/store/encryption.ts';
import { SqliteTokenStore } from '../src/store/sqlite-token-store.ts';
import { startTestEmulator } from '../test/helpers/emulator.ts';
import { signInMailbox, writeTestConfig } from '../test/helpers/identity-config.ts';
import { imapLogin, Wire } from './lib/mail-wire.ts';
import { addProxyClient, ProxyProcess, rssOf } from './lib/proxy-process.ts';
import { argValue, printReport, type Row } from './lib/report.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const rounds = argValue('rounds', 40);
const logins = argValue('logins', 50);
const MAILBOX = 'alice@contoso.com';
const TARGET = { version: 1.2, token: 1.5, restMiB: 60 };
const MiB = 1024 * 1024;

const progress = (text: string) => {
  if (!process.argv.includes('--json')) process.stderr.write(`bench/cli: ${text}\n`);
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** CPU time (user + system, ms) of this process's children that have ended: /proc/self/stat's cutime and cstime. */
function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // Fields 16 and 17 of the whole line are the 14th and 15th after "(comm) "; clock ticks of 10 ms.
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** The package as `npm publish` ships it: package.json and dist/ compiled by tsconfig.build.json, its dependencies linked. */
async function buildPackage(into: string): Promise<string> {
  await mkdir(into, { recursive: true });
  await writeFile(join(into, 'package.json'), readFileSync(join(ROOT, 'package.json')));
  await symlink(join(ROOT, 'node_modules'), join(into, 'node_modules'), 'dir');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(into, 'dist')], { cwd: ROOT });
  } catch (err) {
    // tsc still emits on type errors (someone's work in progress): measure, but say so.
    const out = (err as { stdout?: string }).stdout ?? String(err);
    progress(`the build reported type errors (measuring what it emitted):\n${out.split('\n').slice(0, 5).join('\n')}`);
  }
  const main = join(into, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`the build made no ${main}`);
  return main;
}

interface Run {
  wallMs: number;
  cpuMs: number;
  stdout: string;
}

/** One process, start to exit; fails on a non-zero exit. */
function run(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const cpu0 = childrenCpuMs();
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.once('error', reject);
    child.once('exit', (code) => {
      const wallMs = performance.now() - t0;
      if (code !== 0) reject(new Error(`node ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve({ wallMs, cpuMs: childrenCpuMs() - cpu0, stdout });
    });
  });
}

/** Samples the proxy's RSS every 250 ms until it has not moved by more than 1% for 2 s (at most 20 s). */
async function settledRss(pid: number): Promise<number> {
  const window: number[] = [];
  const deadline = performance.now() + 20_000;
  for (;;) {
    window.push(rssOf(pid));
    if (window.length > 8) window.shift();
    if (window.length === 8 && Math.max(...window) <= Math.min(...window) * 1.01) return median(window);
    if (performance.now() > deadline) return median(window);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const work = await mkdtemp(join(tmpdir(), 'mailbridge-bench-cli-'));
// The children's caches (validated configuration, Node's compile cache) live in the work folder.
process.env.XDG_CACHE_HOME = join(work, 'cache');
process.env.NODE_COMPILE_CACHE = join(work, 'compile-cache');
const emu = await startTestEmulator();
let proxy: ProxyProcess | undefined;
try {
  progress('building the package (tsc -p tsconfig.build.json into a temporary folder)');
  const main = await buildPackage(join(work, 'package'));
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  const cfg = await writeTestConfig(emu, { proxy: { listeners: [{ protocol: 'imap', port: 0 }] } });
  const loaded = await loadConfig(cfg.file, {});
  const store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
  await signInMailbox(emu, loaded, store, MAILBOX);
  // The token `mailbridge token` will find in the store (valid for the emulator's hour).
  const token = await new TokenProvider({ loaded, store }).getAccessToken(MAILBOX, 'imap');
  await store.close();

  // 1. Start-up.
  const commands = {
    node: ['-e', '0'],
    version: [main, '--version'],
    token: [main, 'token', MAILBOX, '--config', cfg.file],
  } as const;
  type Name = keyof typeof commands;
  const names = Object.keys(commands) as Name[];
  const expect = (name: Name, out: string) => {
    if (name === 'version' && out !== `${version}\n`) throw new Error(`--version printed ${JSON.stringify(out)}`);
    if (name === 'token' && out !== `${token}\n`) throw new Error('token printed something other than the cached token');
  };
  progress(`start-up: ${rounds} rounds of ${names.join(', ')} (after 2 warm-up rounds that fill the caches)`);
  for (let i = 0; i < 2; i++) for (const name of names) expect(name, (await run([...commands[name]])).stdout);
  const wall: Record<Name, number[]> = { node: [], version: [], token: [] };
  const cpu: Record<Name, number[]> = { node: [], version: [], token: [] };
  const ratios: Record<'version' | 'token', number[]> = { version: [], token: [] };
  for (let r = 0; r < rounds; r++) {
    const got = {} as Record<Name, number>;
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length]!;
      const result = await run([...commands[name]]);
      expect(name, result.stdout);
      got[name] = result.wallMs;
      wall[name].push(result.wallMs);
      cpu[name].push(result.cpuMs);
    }
    ratios.version.push(got.version / got.node);
    ratios.token.push(got.token / got.node);
  }

  // 2. The proxy's memory.
  progress('proxy run: resident memory at rest');
  const password = await addProxyClient(cfg.file, 'bench', [MAILBOX], main);
  proxy = await ProxyProcess.start(cfg.file, [], main);
  const atRest = await settledRss(proxy.pid);
  progress(`proxy run: ${logins} IMAP logins through it`);
  const sampler = proxy.sampleRss(50);
  for (let i = 0; i < logins; i++) {
    const wire = await Wire.plain(proxy.port('imap'));
    await imapLogin(wire, { kind: 'password', user: MAILBOX, secret: password });
    await wire.imap('l2', 'LOGOUT');
    wire.close();
  }
  const peak = sampler.stop().maxBytes;
  const afterLogins = await settledRss(proxy.pid);
  await proxy.stop();

  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const mib = (v: number) => `${(v / MiB).toFixed(1)} MB`;
  const nodeWall = median(wall.node);
  const startRow = (name: Name, label: string, target?: number): Row => {
    const ratio = name === 'node' ? 1 : median(ratios[name]);
    return {
      measure: label,
      'median wall': ms(median(wall[name])),
      'median CPU': ms(median(cpu[name])),
      'x node -e 0': name === 'node' ? '1.00' : ratio.toFixed(2),
      'ratio of medians': name === 'node' ? '1.00' : (median(wall[name]) / nodeWall).toFixed(2),
      target: target ? `<= ${target.toFixed(2)}x` : '-',
      met: target ? (ratio <= target ? 'yes' : 'NO') : '-',
    };
  };
  const memRow = (label: string, value: string, target?: string, met?: boolean): Row => ({
    measure: label,
    'median wall': value,
    'median CPU': '-',
    'x node -e 0': '-',
    'ratio of medians': '-',
    target: target ?? '-',
    met: met === undefined ? '-' : met ? 'yes' : 'NO',
  });
  printReport(
    'bench/cli: start-up of the built command line, and the proxy at rest (emulator, SQLite store)',
    [
      startRow('node', 'node -e 0'),
      startRow('version', 'mailbridge --version', TARGET.version),
      startRow('token', 'mailbridge token (cached token)', TARGET.token),
      memRow('proxy run: RSS at rest', mib(atRest), `<= ${TARGET.restMiB} MB`, atRest <= TARGET.restMiB * MiB),
      memRow(`proxy run: RSS after ${logins} logins (settled)`, mib(afterLogins)),
      memRow(`proxy run: RSS peak during ${logins} logins`, mib(peak)),
    ],
    {
      build: 'tsc -p tsconfig.build.json into a temporary package (node_modules linked); Node compile cache and mailbridge config cache warm',
      rounds: `${rounds} (+2 warm-up), order rotated each round; "x node -e 0" is the median of each round's ratio`,
      cpu: "children's user+system time from /proc/self/stat (10 ms ticks)",
      proxy: `one IMAP listener (plain), ${logins} sequential LOGIN/LOGOUT with an app password, XOAUTH2 upstream to the emulator; RSS = VmRSS, settled = within 1% for 2 s`,
    },
  );
} finally {
  await proxy?.stop();
  await emu.close();
  await rm(work, { recursive: true, force: true });
}
