// A 100 MB message retrieved with Pop3Client.retr into a file, from the emulated Exchange and from
// Dovecot: the file is byte for byte the message, and the client's settled memory (JS heap +
// Buffers after GC) grows by less than 30 MB. The client runs in a child process (retr-child.ts)
// because the emulated server runs in this process, and when this test was written that server
// did not stream: it read the whole message and dot-stuffed it into another buffer before writing
// (about 95 MiB alive while sending), which a same-process measurement would have counted. The
// server's own growth is reported as a diagnostic, so a change there shows.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generatedMessage } from '../../src/emulator/exchange/mail-store.ts';
import { DEFAULT_IDS } from '../../src/emulator/scenario/default.ts';
import type { Pop3ConnectOptions } from '../../src/pop3/index.ts';
import { issueServerCertificate } from '../../src/tls/certificates.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { SCOPES, userToken } from '../helpers/mail-tokens.ts';
import { settledMemoryBytes } from '../helpers/memory.ts';
import { seedMaildir, startDovecot, type Dovecot } from '../peers/dovecot.ts';
import type { ChildReport, ChildRequest } from './retr-child.ts';

const USER = 'bob@contoso.com';
const SIZE = 100 * 1000 * 1000;
const LIMIT = 30 * 1024 * 1024;
const MB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

let emu: TestEmulator;
let dovecot: Dovecot;
let work: string;
let token: string;
let digest: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'mailbridge-pop3-stream-'));
  emu = await startTestEmulator();
  const authority = { certPem: emu.caPem, keyPem: await readFile(join(emu.dataDir, 'ca.key'), 'utf8') };
  const tls = await issueServerCertificate(authority, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  dovecot = await startDovecot({ issuer: `https://sts.windows.net/${DEFAULT_IDS.tenant}/`, keysDir: emu.running.dovecotKeysDir, tls });
  token = await userToken(emu, USER, [SCOPES.pop]);
  // ~1.25 million CRLF lines, ending in a line of dots (stuffed on the wire).
  const big = generatedMessage(USER, 7, SIZE);
  assert.equal(big.length, SIZE);
  digest = createHash('sha256').update(big).digest('hex');
  // Straight into the store: the admin API takes bodies of up to 256 KB.
  const exchange = emu.running.exchange;
  await (await exchange.openMailbox(exchange.findMailbox(USER)!)).append('INBOX', big);
  await seedMaildir(dovecot, USER, [big]);
});

after(async () => {
  await dovecot?.stop();
  await emu?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function fileDigest(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Runs retr-child.ts; meanwhile samples this process's settled memory (the emulator's side). */
async function retrieveInChild(connect: Pop3ConnectOptions, file: string): Promise<{ child: ChildReport; serverPeakGrowth: number }> {
  const serverBaseline = settledMemoryBytes();
  let serverPeakGrowth = 0;
  const sampler = setInterval(() => (serverPeakGrowth = Math.max(serverPeakGrowth, settledMemoryBytes() - serverBaseline)), 100);
  const child = fork(join(import.meta.dirname, 'retr-child.ts'), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  try {
    const report = new Promise<ChildReport>((resolve, reject) => {
      child.once('message', (m) => resolve(m as ChildReport));
      child.once('exit', (code, signal) => reject(new Error(`retr-child exited (${code ?? signal}) without a report`)));
    });
    const request: ChildRequest = { connect, user: USER, token, n: 1, file };
    child.send(request);
    return { child: await report, serverPeakGrowth };
  } finally {
    clearInterval(sampler);
    clearTimeout(killer);
    child.kill();
  }
}

describe('RETR of a 100 MB message streams to a file', () => {
  const cases: [string, () => Pop3ConnectOptions, boolean][] = [
    [
      'the emulated Exchange (pop3s)',
      () => ({ host: '127.0.0.1', port: emu.running.mailPorts.pop3s, security: 'implicit', ca: emu.caPem, timeoutMs: 60_000 }),
      true,
    ],
    ['Dovecot (pop3s)', () => ({ host: '127.0.0.1', port: dovecot.pop3sPort!, security: 'implicit', ca: emu.caPem, timeoutMs: 60_000 }), false],
  ];
  for (const [name, connect, serverInProcess] of cases) {
    it(`from ${name}: exact bytes, client memory grows by less than 30 MB`, { timeout: 300_000 }, async (t) => {
      const file = join(work, `${name.split(' ')[0]}.eml`);
      const { child, serverPeakGrowth } = await retrieveInChild(connect(), file);
      assert.equal(child.bytes, SIZE);
      assert.equal((await stat(file)).size, SIZE);
      assert.equal(await fileDigest(file), digest, 'file differs from the message');
      assert.ok(child.samples >= 20, `only ${child.samples} memory samples`);
      t.diagnostic(
        `client: settled memory grew by at most ${MB(child.peakGrowth)} (baseline ${MB(child.baseline)}, ${child.samples} samples), peak RSS ${MB(child.peakRss)}, ${(SIZE / 1e6 / child.seconds).toFixed(0)} MB/s`,
      );
      if (serverInProcess) t.diagnostic(`emulated server (this process): settled memory grew by up to ${MB(serverPeakGrowth)} while sending`);
      assert.ok(child.peakGrowth < LIMIT, `client memory grew by ${MB(child.peakGrowth)}`);
      await rm(file);
    });
  }
});
