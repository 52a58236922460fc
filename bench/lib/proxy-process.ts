// The mailbridge CLI as a child process for benchmarks: `proxy add-client` for an app password,
// `proxy run --json` as its own process (as users run it), its listeners read from the line it
// prints, its resident memory read from /proc, and stopped however the benchmark ends.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

export interface ProxyListener {
  protocol: 'imap' | 'pop' | 'smtp';
  host: string;
  port: number;
  security: string;
  upstream?: string;
}

/** `mailbridge proxy add-client NAME --mailbox ... --json`: the new client's app password. `main`: another entry point (a build). */
export async function addProxyClient(configFile: string, name: string, mailboxes: string[], main = MAIN): Promise<string> {
  const args = [main, 'proxy', 'add-client', name, ...mailboxes.flatMap((m) => ['--mailbox', m]), '--json', '--config', configFile];
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: ROOT });
  const made = JSON.parse(stdout) as { password?: string };
  if (!made.password) throw new Error(`proxy add-client printed no password: ${stdout}`);
  return made.password;
}

/** Every child started here, killed when the benchmark exits whichever way (even process.exit). */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** VmRSS of a process, in bytes. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb[1]) * 1024;
}

/** Samples VmRSS every `everyMs` until stopped: the highest, and one sample per `keepEveryMs` kept. */
export function sampleRss(pid: number, everyMs = 100, keepEveryMs = 1000): RssSampler {
  const started = performance.now();
  const timeline: { ms: number; bytes: number }[] = [];
  let max = 0;
  let samples = 0;
  let lastKept = -Infinity;
  const take = () => {
    let bytes: number;
    try {
      bytes = rssOf(pid);
    } catch {
      return; // the process is gone: whoever waits on it will say so
    }
    samples++;
    max = Math.max(max, bytes);
    const ms = performance.now() - started;
    if (ms - lastKept >= keepEveryMs) {
      timeline.push({ ms: Math.round(ms), bytes });
      lastKept = ms;
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  let result: ReturnType<RssSampler['stop']> | undefined;
  return {
    stop: () => {
      if (!result) {
        clearInterval(timer);
        take();
        result = { maxBytes: max, samples, timeline };
      }
      return result;
    },
  };
}

/** Stops a child: SIGTERM, then SIGKILL after a few seconds. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([exited.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS)))]);
  clearTimeout(timer);
  if (late) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** bench/lib/bare-relay.ts as a child process: the floor a relay process costs. */
export class BareRelay {
  readonly child: ChildProcess;
  readonly port: number;

  private constructor(child: ChildProcess, port: number) {
    this.child = child;
    this.port = port;
  }

  static async start(upstreamPort: number, caFile: string): Promise<BareRelay> {
    const child = spawn(process.execPath, [join(ROOT, 'bench', 'lib', 'bare-relay.ts'), String(upstreamPort), caFile], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.setEncoding('utf8').once('data', (text: string) => resolve(Number(text.trim())));
      child.once('exit', (code, signal) => reject(new Error(`the bare relay exited (${code ?? signal})`)));
      child.once('error', reject);
    });
    return new BareRelay(child, port);
  }

  get pid(): number {
    return this.child.pid!;
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}

export interface RssSampler {
  stop(): { maxBytes: number; samples: number; timeline: { ms: number; bytes: number }[] };
}

export class ProxyProcess {
  readonly child: ChildProcess;
  readonly listeners: ProxyListener[];
  /** The last lines the proxy wrote on stderr (audit lines), for error messages. */
  readonly #stderr: string[];
  #stopped: Promise<void> | undefined;

  private constructor(child: ChildProcess, listeners: ProxyListener[], stderr: string[]) {
    this.child = child;
    this.listeners = listeners;
    this.#stderr = stderr;
  }

  /** `nodeFlags`: for investigations only, e.g. ['--trace-gc'] (its lines go to stderr's tail); `main`: another entry point (a build). */
  static async start(configFile: string, nodeFlags: string[] = [], main = MAIN): Promise<ProxyProcess> {
    const child = spawn(process.execPath, [...nodeFlags, main, 'proxy', 'run', '--json', '--config', configFile], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    const stderr: string[] = [];
    // Always drained, so the proxy never waits on a full pipe; the last lines are kept.
    let partial = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      stderr.push(...lines);
      if (stderr.length > 200) stderr.splice(0, stderr.length - 200);
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`the proxy printed no listeners within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
        child.stdout.setEncoding('utf8').on('data', (text: string) => {
          out += text;
          for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
            const line = out.slice(0, nl);
            out = out.slice(nl + 1);
            if (line.startsWith('{"listeners"')) {
              clearTimeout(timer);
              resolve(line);
            } else {
              stderr.push(line);
            }
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`the proxy exited (${code ?? signal}) before it was ready`));
        });
        child.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      const { listeners } = JSON.parse(line) as { listeners: ProxyListener[] };
      return new ProxyProcess(child, listeners, stderr);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n--- proxy stderr ---\n${stderr.join('\n')}${partial}`, { cause: err });
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  port(protocol: ProxyListener['protocol']): number {
    const l = this.listeners.find((x) => x.protocol === protocol);
    if (!l) throw new Error(`the proxy has no ${protocol} listener`);
    return l.port;
  }

  /** VmRSS of the proxy process, in bytes. */
  rss(): number {
    return rssOf(this.pid);
  }

  sampleRss(everyMs = 100, keepEveryMs = 1000): RssSampler {
    return sampleRss(this.pid, everyMs, keepEveryMs);
  }

  /** The last lines of stderr (and of stdout after the listeners, such as --trace-gc output). */
  stderrTail(lines = 20): string {
    return this.#stderr.slice(-lines).join('\n');
  }

  /** SIGTERM (open sessions get the configured grace period), SIGKILL after a few seconds. */
  stop(): Promise<void> {
    this.#stopped ??= stopChild(this.child);
    return this.#stopped;
  }
}
