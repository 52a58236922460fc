// bench/pop3: 1,000 x 50 KB messages downloaded from a real Dovecot over pop3s, once with
// mailbridge's POP3 client (pipelined retrMany) and once with curl (one invocation, so it reuses
// one connection and logs in once), the same mailbox, in one run. Prints MB/s for each and the
// ratio client/curl (target: at least 0.9). For reference it also times the client without
// pipelining (one RETR at a time, as curl does).
//   node bench/pop3.ts [--json] [--count 1000] [--size 50000] [--runs 5]
// Timing covers the whole session for each: connect, TLS, login, every RETR, QUIT (for curl also
// its process start). curl's connection reuse is checked in its -v log before timing: one
// connection and one AUTH for all URLs, and every byte of every message counted.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_IDS } from '../src/emulator/scenario/default.ts';
import { generatedMessage } from '../src/emulator/exchange/mail-store.ts';
import { Pop3Client } from '../src/pop3/index.ts';
import { issueServerCertificate } from '../src/tls/certificates.ts';
import { startTestEmulator } from '../test/helpers/emulator.ts';
import { SCOPES, userToken } from '../test/helpers/mail-tokens.ts';
import { seedMaildir, startDovecot } from '../test/peers/dovecot.ts';
import { argValue, printReport } from './lib/report.ts';

const USER = 'bob@contoso.com';
const count = argValue('count', 1000);
const size = argValue('size', 50_000);
const runs = argValue('runs', 5);

interface Download {
  bytes: number;
  seconds: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The POP3 client: connect, XOAUTH2, RETR 1..count (pipelined unless `window` is 1), QUIT. */
async function withClient(port: number, ca: string, token: string, window = 32): Promise<Download> {
  const started = process.hrtime.bigint();
  const client = await Pop3Client.connect({ host: '127.0.0.1', port, security: 'implicit', ca, servername: 'localhost', pipelineWindow: window });
  let bytes = 0;
  try {
    await client.authXoauth2(USER, token);
    const ns = Array.from({ length: count }, (_, i) => i + 1);
    await client.retrMany(ns, (_n, message) => {
      return new Promise<void>((resolve, reject) => {
        message.on('data', (chunk: Buffer) => (bytes += chunk.length));
        message.once('end', resolve);
        message.once('error', reject);
      });
    });
    await client.quit();
  } finally {
    client.close();
  }
  return { bytes, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/**
 * curl with every URL in one config file (`-K`), so one process reuses one connection. The token
 * stays in the 0600 config file, never on a command line. Timed runs send the messages to
 * /dev/null; the checking run (`verbose`) pipes them here to count them and keeps curl's log.
 * (curl's own %{size_download} undercounts POP3 transfers, so it is not used.)
 */
async function withCurl(configFile: string, verbose: boolean): Promise<Download & { stderr: string }> {
  const started = process.hrtime.bigint();
  const child = spawn('curl', ['-K', configFile, ...(verbose ? ['-v'] : [])], { stdio: ['ignore', verbose ? 'pipe' : 'ignore', 'pipe'] });
  let bytes = 0;
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (bytes += d.length));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (code !== 0) throw new Error(`curl exited with ${code}: ${stderr.slice(-2000)}`);
  return { bytes, seconds, stderr };
}

const emu = await startTestEmulator();
const work = await mkdtemp(join(tmpdir(), 'mailbridge-bench-pop3-'));
try {
  const token = await userToken(emu, USER, [SCOPES.pop]);
  const authority = { certPem: emu.caPem, keyPem: await readFile(join(emu.dataDir, 'ca.key'), 'utf8') };
  const tls = await issueServerCertificate(authority, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const dovecot = await startDovecot({ issuer: `https://sts.windows.net/${DEFAULT_IDS.tenant}/`, keysDir: emu.running.dovecotKeysDir, tls });
  try {
    const messages = Array.from({ length: count }, (_, i) => generatedMessage(USER, i + 1, size));
    const expected = messages.reduce((sum, m) => sum + m.length, 0);
    await seedMaildir(dovecot, USER, messages);
    const port = dovecot.pop3sPort!;

    const caFile = join(work, 'ca.pem');
    await writeFile(caFile, emu.caPem);
    const configFile = join(work, 'curl.conf');
    const quoted = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    const config = [
      `cacert = ${quoted(caFile)}`,
      `oauth2-bearer = ${quoted(token)}`,
      `user = ${quoted(`${USER}:`)}`,
      'silent',
      'show-error',
      'fail-early',
      ...messages.map((_, i) => `url = "pop3s://localhost:${port}/${i + 1}"`),
    ];
    await writeFile(configFile, `${config.join('\n')}\n`, { mode: 0o600 });

    // Check curl's connection reuse (and warm both servers' caches): one login for all URLs.
    const probe = await withCurl(configFile, true);
    const logins = probe.stderr.split('\n').filter((l) => /^> AUTH /.test(l)).length;
    const connects = probe.stderr.split('\n').filter((l) => /^\* Connected to /.test(l)).length;
    const reuses = probe.stderr.split('\n').filter((l) => /Re-using existing connection/.test(l)).length;
    if (logins !== 1 || connects !== 1) throw new Error(`curl did not reuse its connection: ${connects} connects, ${logins} AUTH commands`);
    if (probe.bytes !== expected) throw new Error(`curl downloaded ${probe.bytes} bytes, expected ${expected}`);
    const warm = await withClient(port, emu.caPem, token);
    if (warm.bytes !== expected) throw new Error(`the POP3 client downloaded ${warm.bytes} bytes, expected ${expected}`);

    const clientRates: number[] = [];
    const curlRates: number[] = [];
    const oneByOneRates: number[] = [];
    const pairRatios: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate which goes first, so neither always meets the warmer cache.
      const order = i % 2 === 0 ? (['client', 'curl', 'oneByOne'] as const) : (['curl', 'client', 'oneByOne'] as const);
      const rate: Record<string, number> = {};
      for (const who of order) {
        const d =
          who === 'client'
            ? await withClient(port, emu.caPem, token)
            : who === 'oneByOne'
              ? await withClient(port, emu.caPem, token, 1)
              : { ...(await withCurl(configFile, false)), bytes: expected };
        if (d.bytes !== expected) throw new Error(`${who} downloaded ${d.bytes} bytes, expected ${expected}`);
        rate[who] = d.bytes / 1e6 / d.seconds;
      }
      clientRates.push(rate['client']!);
      curlRates.push(rate['curl']!);
      oneByOneRates.push(rate['oneByOne']!);
      pairRatios.push(rate['client']! / rate['curl']!);
    }
    const client = median(clientRates);
    const curl = median(curlRates);
    printReport(
      'bench/pop3: download every message from Dovecot over pop3s, one session each',
      [
        { downloader: 'mailbridge Pop3Client (retrMany, pipelined)', 'MB/s': client, 'runs (MB/s)': clientRates.map((r) => r.toFixed(1)).join(' ') },
        { downloader: 'curl (one invocation, one connection)', 'MB/s': curl, 'runs (MB/s)': curlRates.map((r) => r.toFixed(1)).join(' ') },
        {
          downloader: 'for reference: Pop3Client, one RETR at a time',
          'MB/s': median(oneByOneRates),
          'runs (MB/s)': oneByOneRates.map((r) => r.toFixed(1)).join(' '),
        },
      ],
      {
        messages: `${count} x ${size} bytes (${(expected / 1e6).toFixed(1)} MB)`,
        runs: `median of ${runs}, alternating order, after one warm-up each`,
        'curl connection reuse': `${connects} connection, ${logins} AUTH, ${reuses} reuses for ${count} URLs`,
        'ratio client / curl (medians)': Number((client / curl).toFixed(2)),
        'ratio client / curl (median of pairs)': Number(median(pairRatios).toFixed(2)),
        target: '>= 0.90',
      },
    );
  } finally {
    await dovecot.stop();
  }
} finally {
  await rm(work, { recursive: true, force: true });
  await emu.close();
}
