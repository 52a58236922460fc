// `mailbridge proxy` as the process a user runs: it prints its listeners (with the generated
// certificate's fingerprint), serves a legacy login with an app password made by `proxy
// add-client`, writes audit lines without secrets, and on SIGTERM lets an open session finish.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/load.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { signInMailbox, writeTestConfig, type TestConfig } from '../helpers/identity-config.ts';
import { LineClient } from '../helpers/line-client.ts';

const CLI = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const run = promisify(execFile);
const ALICE = 'alice@contoso.com';

describe('mailbridge proxy (the command)', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;

  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu, { proxy: { listeners: [{ protocol: 'pop', port: 0, security: 'implicit' }] } });
    const loaded = await loadConfig(cfg.file);
    const store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key')));
    await signInMailbox(emu, loaded, store, ALICE);
    await store.close();
  });

  after(async () => {
    await emu?.close();
  });

  it('prints its listeners and the certificate fingerprint, serves an app password, and stops gracefully on SIGTERM', async () => {
    const added = await run(process.execPath, [CLI, 'proxy', 'add-client', 'scanner', '--mailbox', ALICE, '--json', '--config', cfg.file]);
    const { password } = JSON.parse(added.stdout) as { password: string };

    const child = spawn(process.execPath, [CLI, 'proxy', '--config', cfg.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0]!);
      });
      child.once('close', () => reject(new Error(`exited early: ${stderr}`)));
    });
    const m = /^pop pop3s:\/\/127\.0\.0\.1:(\d+) {2}implicit {2}upstream the mailbox's cloud {2}sha256 ([0-9A-F:]{95}) {2}certificate (\S+)$/.exec(line);
    assert.ok(m, line);
    const certPem = await readFile(m[3]!, 'utf8');
    assert.equal(new X509Certificate(certPem).fingerprint256, m[2]);
    assert.equal(m[3], join(cfg.dataDir, 'proxy', 'self-signed.crt'));

    const c = await LineClient.connect({ port: Number(m[1]), tlsCa: certPem });
    assert.match((await c.line())!, /^\+OK/);
    await c.ask(`USER ${ALICE}`);
    assert.match((await c.ask(`PASS ${password}`))!, /^\+OK/);
    child.kill('SIGTERM');
    // The open session goes on until the client is done.
    await new Promise((r) => setTimeout(r, 300));
    assert.match((await c.ask('STAT'))!, /^\+OK \d+ \d+$/);
    assert.match((await c.ask('QUIT'))!, /^\+OK/);
    c.close();
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /stopping; 1 session\(s\) open/);
    const audits = stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(
      audits.some((a) => a.msg === 'proxy session' && a.result === 'ok' && a.mailbox === ALICE && a.appClient === 'scanner'),
      stderr,
    );
    assert.ok(!stderr.includes(password) && !stdout.includes(password));
  });

  it('without listeners it says how to add one (exit 3)', async () => {
    const plain = await writeTestConfig(emu);
    await writeFile(plain.file, (await readFile(plain.file, 'utf8')).replace('"mailboxes"', '"proxy": { "listeners": [] }, "mailboxes"'));
    const result = await run(process.execPath, [CLI, 'proxy', '--config', plain.file]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((result as { code: number }).code, 3);
    assert.match(
      (result as { stderr: string }).stderr,
      /proxy\.listeners: no listeners are configured; add one, e\.g\. \{ "protocol": "imap", "port": 1143 \}/,
    );
  });
});
