// `mailbridge token --protocol smtp` as msmtp's passwordeval: msmtp sends through the emulated
// Exchange SMTP server and through Postfix (SASL by Dovecot) with the token mailbridge keeps
// fresh, and each message is read back over IMAP.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { DEFAULT_IDS } from '../../src/emulator/scenario/default.ts';
import { loadConfig } from '../../src/config/load.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { issueServerCertificate } from '../../src/tls/certificates.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig, signInMailbox } from '../helpers/identity-config.ts';
import { SCOPES, userToken } from '../helpers/mail-tokens.ts';
import { startDovecot, type Dovecot } from '../peers/dovecot.ts';
import { startPostfix, type Postfix } from '../peers/postfix.ts';
import { needPeers } from '../helpers/peers.ts';

const CLI = new URL('../../src/cli/main.ts', import.meta.url).pathname;

describe('mailbridge token as msmtp passwordeval', { skip: needPeers('msmtp', 'postfix', 'dovecot') }, () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let dovecot: Dovecot;
  let postfix: Postfix;
  const ca = () => join(emu.dataDir, 'ca.crt');

  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
    const loaded = await loadConfig(cfg.file, {});
    const store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
    await signInMailbox(emu, loaded, store, 'alice@contoso.com');
    await store.close();
    const tls = await issueServerCertificate(
      { certPem: emu.caPem, keyPem: await readFile(join(emu.dataDir, 'ca.key'), 'utf8') },
      { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
    );
    dovecot = await startDovecot({ issuer: `https://sts.windows.net/${DEFAULT_IDS.tenant}/`, keysDir: emu.running.dovecotKeysDir, tls });
    postfix = await startPostfix({ dovecot, tls, virtualDomains: ['contoso.com'] });
  });
  after(async () => {
    await postfix?.stop();
    await dovecot?.stop();
    await emu.close();
    await rm(cfg.dir, { recursive: true, force: true });
  });

  async function msmtp(port: number, subject: string): Promise<void> {
    const rc = join(cfg.dir, `msmtprc-${port}`);
    await writeFile(
      rc,
      [
        'defaults',
        'tls on',
        'tls_starttls on',
        `tls_trust_file ${ca()}`,
        'account mailbridge',
        'host 127.0.0.1',
        `port ${port}`,
        'from alice@contoso.com',
        'user alice@contoso.com',
        'auth xoauth2',
        // Short enough for msmtp's 500-character line limit: the token itself never sits in the file.
        `passwordeval "${process.execPath} ${CLI} token alice@contoso.com --protocol smtp --config ${cfg.file}"`,
        'account default : mailbridge',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const message = `From: alice@contoso.com\r\nTo: bob@contoso.com\r\nSubject: ${subject}\r\n\r\nSent by msmtp with a token from mailbridge.\r\n`;
    const child = execFile('msmtp', ['-C', rc, '-t'], (err) => void err);
    child.stdin!.end(message);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, `msmtp exited ${code}`);
  }

  async function subjectsOverImap(port: number): Promise<string[]> {
    const imap = new ImapFlow({
      host: '127.0.0.1',
      port,
      secure: true,
      auth: { user: 'bob@contoso.com', accessToken: await userToken(emu, 'bob@contoso.com', [SCOPES.imap]) },
      tls: { ca: emu.caPem, servername: 'localhost' },
      logger: false,
    });
    await imap.connect();
    try {
      const lock = await imap.getMailboxLock('INBOX');
      try {
        const subjects: string[] = [];
        for await (const m of imap.fetch('1:*', { envelope: true })) subjects.push(m.envelope?.subject ?? '');
        return subjects;
      } finally {
        lock.release();
      }
    } finally {
      await imap.logout();
    }
  }

  it('through the emulated Exchange SMTP, read back over its IMAP', async () => {
    await msmtp(emu.running.mailPorts.smtp, 'via Exchange (emulated)');
    assert.ok((await subjectsOverImap(emu.running.mailPorts.imaps)).includes('via Exchange (emulated)'));
  });

  it('through Postfix with Dovecot SASL, read back over Dovecot IMAP', async () => {
    await msmtp(postfix.submissionPort, 'via Postfix');
    let subjects: string[] = [];
    for (let i = 0; i < 40 && !subjects.includes('via Postfix'); i++) {
      await new Promise((r) => setTimeout(r, 250)); // LMTP delivery is asynchronous
      subjects = await subjectsOverImap(dovecot.imapsPort!);
    }
    assert.ok(subjects.includes('via Postfix'), `${subjects.join(', ')}\n${await postfix.log()}`);
  });
});
