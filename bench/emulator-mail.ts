// bench/emulator-mail: 1,000 x 50 KB messages fetched over POP3 and over IMAP (TLS, XOAUTH2, one
// pipelined session each) from the emulator and from a real Dovecot holding the same messages,
// in one run. Prints MB/s and the ratio emulator/Dovecot (target: at least 0.5, so the emulator
// is never the bottleneck of later benchmarks).
//   node bench/emulator-mail.ts [--json] [--count 1000] [--size 50000] [--runs 3]
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_IDS } from '../src/emulator/scenario/default.ts';
import { generatedMessage } from '../src/emulator/exchange/mail-store.ts';
import { issueServerCertificate } from '../src/tls/certificates.ts';
import { startTestEmulator } from '../test/helpers/emulator.ts';
import { SCOPES, userToken } from '../test/helpers/mail-tokens.ts';
import { seedMaildir, startDovecot } from '../test/peers/dovecot.ts';
import { argValue, printReport } from './lib/report.ts';
import { imapDownloadAll, pop3DownloadAll, type Download } from './lib/raw-mail.ts';

const USER = 'bob@contoso.com';
const count = argValue('count', 1000);
const size = argValue('size', 50_000);
const runs = argValue('runs', 3);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(download: () => Promise<Download>): Promise<number> {
  await download(); // warm-up: first access builds indexes and caches on both servers
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const d = await download();
    rates.push(d.bytes / 1e6 / d.seconds);
  }
  return median(rates);
}

const emu = await startTestEmulator((s) => {
  const bob = s.exchange!.mailboxes!.find((m) => m.address === USER)!;
  bob.seed = { generate: { count, sizeBytes: size } };
});
try {
  const token = await userToken(emu, USER, [SCOPES.imap, SCOPES.pop]);
  const authority = { certPem: emu.caPem, keyPem: await readFile(join(emu.dataDir, 'ca.key'), 'utf8') };
  const tls = await issueServerCertificate(authority, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const dovecot = await startDovecot({ issuer: `https://sts.windows.net/${DEFAULT_IDS.tenant}/`, keysDir: emu.running.dovecotKeysDir, tls });
  try {
    await seedMaildir(
      dovecot,
      USER,
      Array.from({ length: count }, (_, i) => generatedMessage(USER, i + 1, size)),
    );
    const ports = emu.running.mailPorts;
    const rows = [];
    for (const protocol of ['POP3', 'IMAP'] as const) {
      const fetchAll = protocol === 'POP3' ? pop3DownloadAll : imapDownloadAll;
      const emulatorRate = await measure(() => fetchAll(protocol === 'POP3' ? ports.pop3s : ports.imaps, emu.caPem, USER, token, count));
      const dovecotRate = await measure(() => fetchAll(protocol === 'POP3' ? dovecot.pop3sPort! : dovecot.imapsPort!, emu.caPem, USER, token, count));
      rows.push({
        protocol,
        'emulator MB/s': emulatorRate,
        'Dovecot MB/s': dovecotRate,
        'emulator / Dovecot': emulatorRate / dovecotRate,
        target: '>= 0.50',
      });
    }
    printReport('bench/emulator-mail: fetch every message over TLS with XOAUTH2, one pipelined session', rows, {
      messages: `${count} x ${size} bytes`,
      runs: `median of ${runs} after one warm-up, per server and protocol`,
    });
  } finally {
    await dovecot.stop();
  }
} finally {
  await emu.close();
}
