// `mailbridge proxy run` at rest holds only what waiting for a client needs (issue 11 point 6:
// memory follows what the command uses): no commander, no node:tls and no upstream half (sockets,
// DNS, TLS, the protocols' logins) before the first login on a plain listener.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const CLI = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const CLIENT = '4f2d8a1c-7b3e-4d9f-a6c5-1e8b2f7d3a90';

describe('mailbridge proxy run at rest', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-proxy-rest-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('has loaded neither commander, nor node:tls, nor the upstream modules when its plain listener is ready', async () => {
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        dataDir: 'data',
        apps: { desktop: { tenant: 'contoso.com', clientId: CLIENT } },
        mailboxes: { 'alice@contoso.com': { app: 'desktop', grant: 'authorization_code', protocols: ['imap'] } },
        proxy: { listeners: [{ protocol: 'imap', port: 0 }] },
      }),
    );
    // Records, as the process exits, the built-in modules it loaded and every module it resolved.
    const report = join(dir, 'loaded.json');
    const hook = join(dir, 'record-loads.mjs');
    await writeFile(
      hook,
      `import { registerHooks } from 'node:module';
       import { writeFileSync } from 'node:fs';
       const urls = [];
       registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
       process.on('exit', () => writeFileSync(${JSON.stringify(report)}, JSON.stringify({ builtins: process.moduleLoadList, urls })));`,
    );
    const child = spawn(process.execPath, ['--import', hook, CLI, 'proxy', 'run', '--json', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (t: string) => {
        out += t;
        if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
      });
      void exited.then((code) => reject(new Error(`the proxy exited (${code}) before it was ready: ${stderr}`)));
    });
    assert.match(line, /^\{"listeners":\[\{"protocol":"imap"/);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);

    const { builtins, urls } = JSON.parse(await readFile(report, 'utf8')) as { builtins: string[]; urls: string[] };
    assert.ok(builtins.includes('NativeModule net'), 'the record is of a process that listens');
    assert.deepEqual(
      builtins.filter((m) => /^NativeModule (tls|_tls_wrap|internal\/tls\/)/.test(m)),
      [],
    );
    assert.deepEqual(
      urls.filter((u) => /\/node_modules\/commander\/|\/src\/proxy\/upstream\/|\/src\/net\/connection\.ts|node:tls/.test(u)),
      [],
    );
  });
});
