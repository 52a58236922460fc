// A `mailbridge fetch --delete` killed with SIGKILL half way (issue 12, point 22): the next run
// removes from the server what the killed run had saved, every message ends up exactly once as a
// file, and the killed run's `.part` files are gone. The kill is made independent of speed: the
// mail server is reached through a relay that passes only a fixed number of bytes to mailbridge,
// so the killed run cannot get further than a few messages, however fast or slow the machine is.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig, signInConfigured } from '../helpers/identity-config.ts';
import { MAILBRIDGE_CLI, runCli } from '../helpers/cli.ts';

/** A TCP relay to `port` that passes at most `budget` bytes from the server to each client (everything the other way). */
async function startRelay(port: number, budget: number): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let passed = 0;
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      const allowed = chunk.subarray(0, Math.max(0, budget - passed));
      passed += allowed.length;
      if (allowed.length > 0) client.write(allowed);
      if (passed >= budget) upstream.pause();
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

const MESSAGES = 30;
const SIZE = 64 * 1024;
/** Files the killed run must have written before it is killed. */
const SAVED_BEFORE_KILL = 4;

describe('mailbridge fetch --delete killed with SIGKILL, then run again', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let out: string;
  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
    out = await mkdtemp(join(tmpdir(), 'mailbridge-fetch-kill-'));
    await signInConfigured(emu, cfg.file, 'alice@contoso.com');
  });
  after(async () => {
    await emu.close();
    await rm(out, { recursive: true, force: true });
  });

  /** A message of SIZE bytes in whole lines, told apart by its number. */
  const message = (protocol: string, n: number) => {
    const head = `Subject: ${protocol} ${n}\r\nFrom: <s@fabrikam.example>\r\n\r\n`;
    const line = `${String(n).padStart(6, '0')}${'x'.repeat(70)}\r\n`;
    return Buffer.from(head + line.repeat(Math.floor((SIZE - head.length) / line.length)));
  };

  for (const protocol of ['pop', 'imap'] as const) {
    it(`${protocol}: the re-run deletes what the killed run saved; every message is one file; no .part is left`, async () => {
      const data = await emu.running.exchange.store.open('alice@contoso.com');
      await data.expunge(
        'INBOX',
        data.requireFolder('INBOX').messages.map((m) => m.uid),
      );
      const sent = Array.from({ length: MESSAGES }, (_, i) => message(protocol, i + 1));
      for (const raw of sent) await data.append('INBOX', raw);

      // Enough for the TLS handshake, login, listing and SAVED_BEFORE_KILL messages and a half, never all.
      const ports = emu.running.mailPorts;
      const relay = await startRelay(protocol === 'pop' ? ports.pop3s : ports.imaps, 40_000 + (SAVED_BEFORE_KILL + 0.5) * SIZE * 1.05);
      const config = JSON.parse(await readFile(cfg.file, 'utf8')) as { clouds: { emulator: Record<string, string> } };
      config.clouds.emulator[protocol] = `${protocol === 'pop' ? 'pop3s' : 'imaps'}://localhost:${relay.port}`;
      const slowConfig = join(cfg.dir, `slow-${protocol}.json`);
      await writeFile(slowConfig, JSON.stringify(config), { mode: 0o600 });

      const dir = join(out, protocol);
      const child = spawn(
        process.execPath,
        [MAILBRIDGE_CLI, 'fetch', 'alice@contoso.com', '--protocol', protocol, '--out', dir, '--delete', '--config', slowConfig],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = once(child, 'exit');
      // A path on stdout means that file has its final name.
      while (stdout.split('\n').filter(Boolean).length < SAVED_BEFORE_KILL) {
        if (child.exitCode !== null) assert.fail(`the fetch ended before it was killed: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      child.kill('SIGKILL');
      assert.deepEqual(await exited, [null, 'SIGKILL']);
      await relay.close();
      const savedByKilled = (await readdir(dir)).filter((f) => f.endsWith('.eml'));
      assert.ok(savedByKilled.length >= SAVED_BEFORE_KILL && savedByKilled.length < MESSAGES, `the killed run saved ${savedByKilled.length}`);
      assert.equal(data.requireFolder('INBOX').messages.length, MESSAGES, 'the killed run deleted nothing');
      // As a run killed in the middle of a message would leave it.
      await writeFile(join(dir, `.half.eml.${child.pid}.part`), 'half a message');

      const rerun = await runCli(['fetch', 'alice@contoso.com', '--protocol', protocol, '--out', dir, '--delete', '--config', cfg.file]);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.equal(
        rerun.stdout.trim().split('\n').filter(Boolean).length,
        MESSAGES - savedByKilled.length,
        'the re-run writes only what the killed run had not',
      );
      assert.equal(data.requireFolder('INBOX').messages.length, 0, 'the server holds none of the saved messages');

      const names = await readdir(dir);
      assert.deepEqual(
        names.filter((f) => f.endsWith('.part')),
        [],
        'no .part file is left',
      );
      const files = names.filter((f) => f.endsWith('.eml'));
      const contents = await Promise.all(files.map((f) => readFile(join(dir, f))));
      assert.equal(files.length, MESSAGES, 'one file per message');
      for (const raw of sent) assert.equal(contents.filter((c) => c.equals(raw)).length, 1, 'each message exactly once, whole');
    });
  }
});
