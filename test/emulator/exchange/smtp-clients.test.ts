// Real SMTP clients send through the emulated Exchange Online front end with emulator-issued
// tokens, exactly as they would through smtp.office365.com:587: STARTTLS, AUTH XOAUTH2 (the only
// OAuth mechanism offered), MAIL/RCPT/DATA. Each message must arrive in the recipient's INBOX
// with the body the client sent, with an ordinary token and with one over 4 KB (as tenants with
// many claims get them; MailKit #1948, msmtp #68). Clients: nodemailer (pinned in package.json),
// curl, Python's smtplib and msmtp (each skipped, saying why, where it is not installed).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import PostalMime from 'postal-mime';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { userToken } from '../../helpers/mail-tokens.ts';
import { needPeers, peerPath } from '../../helpers/peers.ts';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';

const CURL = peerPath('curl');
const PYTHON = peerPath('python3');
const MSMTP = peerPath('msmtp');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { timeout: 30_000, maxBuffer: 1 << 24, env: options.env ?? process.env }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

function rfc822(subject: string, body: string): string {
  return [
    `From: Alice Admin <${ALICE}>`,
    `To: Bob Example <${BOB}>`,
    `Subject: ${subject}`,
    'Date: Tue, 3 Mar 2026 09:30:00 +0000',
    `Message-ID: <${subject.replace(/\W/g, '-')}@client.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    body,
  ].join('\r\n');
}

const BODY = 'Hello Bob,\r\n\r\nsent through the emulated smtp.office365.com.\r\n.A line with a leading dot.\r\n\r\n-- \r\nAlice\r\n';

describe('real SMTP clients against the emulated smtp.office365.com', () => {
  let emu: TestEmulator;
  let port: number;
  let token: string;
  let bigToken: string;
  let dir: string;
  let caFile: string;

  before(async () => {
    emu = await startTestEmulator();
    port = emu.running.mailPorts.smtp;
    token = await userToken(emu, ALICE);
    emu.scenario.settings.accessTokenMinLength = 6000;
    try {
      bigToken = await userToken(emu, ALICE);
    } finally {
      emu.scenario.settings.accessTokenMinLength = 0;
    }
    assert.ok(bigToken.length >= 6000 && token.length < 4096);
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-smtp-clients-'));
    caFile = join(emu.dataDir, 'ca.crt');
  });
  after(async () => {
    await emu.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The newest message in Bob's INBOX whose Subject is this, parsed. */
  async function received(subject: string): Promise<{ raw: Buffer; text: string }> {
    const mailbox = await emu.running.exchange.store.open(BOB);
    const inbox = mailbox.requireFolder('INBOX');
    for (const meta of [...inbox.messages].reverse()) {
      const raw = await mailbox.read(inbox, meta.uid);
      const parsed = await PostalMime.parse(raw);
      if (parsed.subject === subject) return { raw, text: parsed.text ?? '' };
    }
    assert.fail(`no message "${subject}" in ${BOB}'s INBOX`);
  }

  function normalised(text: string): string {
    return text.replace(/\r\n/g, '\n').replace(/\n+$/, '');
  }

  /** Each client runs with an ordinary token and with one over 4 KB. */
  const TOKENS: [string, () => string][] = [
    ['', () => token],
    [' (token over 4 KB)', () => bigToken],
  ];

  describe('nodemailer 10.6.0 (auth type OAuth2 with an access token)', () => {
    for (const [label, tokenFor] of TOKENS) {
      it(`sends a message that arrives in the INBOX with the same body${label}`, async () => {
        const transport = nodemailer.createTransport({
          host: '127.0.0.1',
          port,
          secure: false,
          requireTLS: true,
          tls: { ca: emu.caPem },
          auth: { type: 'OAuth2', user: ALICE, accessToken: tokenFor() },
        });
        const subject = `nodemailer test${label}`;
        try {
          const info = await transport.sendMail({ from: ALICE, to: BOB, subject, text: 'Sent by nodemailer.\n.Leading dot.\nÜnïcödé.' });
          assert.match(info.response, /^250 2\.0\.0 OK <[^>]+> \[Hostname=[A-Z0-9]+MB\d+\.[A-Z0-9.]+\]$/);
          assert.ok(info.response.includes(info.messageId), `${info.response} / ${info.messageId}`);
          assert.deepEqual(info.accepted, [BOB]);
          const got = await received(subject);
          assert.equal(normalised(got.text), 'Sent by nodemailer.\n.Leading dot.\nÜnïcödé.');
        } finally {
          transport.close();
        }
      });
    }

    it("reports Exchange's refusal text when SMTP AUTH is disabled for the mailbox", async () => {
      await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: true });
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        secure: false,
        requireTLS: true,
        tls: { ca: emu.caPem },
        auth: { type: 'OAuth2', user: ALICE, accessToken: token },
      });
      try {
        await assert.rejects(transport.sendMail({ from: ALICE, to: BOB, subject: 'refused', text: 'x' }), (err: { code?: string; response?: string }) => {
          assert.equal(err.code, 'EAUTH');
          assert.match(err.response ?? '', /^535 5\.7\.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox\. /);
          return true;
        });
      } finally {
        transport.close();
        await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: null });
      }
    });
  });

  describe('curl (--oauth2-bearer: XOAUTH2, since no OAUTHBEARER is offered)', { skip: needPeers('curl') }, () => {
    for (const [label, tokenFor] of TOKENS) {
      it(`uploads a message that arrives byte for byte${label}`, async () => {
        const subject = `curl test${label}`;
        const raw = rfc822(subject, BODY);
        const file = join(dir, 'curl.eml');
        await writeFile(file, raw);
        const result = await run(CURL!, [
          '--silent',
          '--show-error',
          '--verbose',
          '--ssl-reqd',
          '--cacert',
          caFile,
          '--oauth2-bearer',
          tokenFor(),
          '--mail-from',
          ALICE,
          '--mail-rcpt',
          BOB,
          '-u',
          `${ALICE}:`,
          '--upload-file',
          file,
          `smtp://127.0.0.1:${port}`,
        ]);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /> AUTH XOAUTH2/);
        assert.doesNotMatch(result.stderr, /OAUTHBEARER/);
        const got = await received(subject);
        assert.ok(got.raw.toString('utf8').endsWith(raw), 'stored as sent, after the Received header');
        assert.equal(normalised(got.text), normalised(BODY));
      });
    }
  });

  describe("Python's smtplib (starttls, AUTH XOAUTH2 by docmd, sendmail)", { skip: needPeers('python3') }, () => {
    for (const [label, tokenFor] of TOKENS) {
      it(`sends a message that arrives byte for byte${label}`, async () => {
        const subject = `smtplib test${label}`;
        const raw = rfc822(subject, BODY);
        const script = [
          'import base64, smtplib, ssl, sys',
          'port, ca, user, token, sender, rcpt = sys.argv[1:7]',
          'message = sys.stdin.buffer.read()',
          'context = ssl.create_default_context(cafile=ca)',
          "s = smtplib.SMTP('127.0.0.1', int(port), timeout=20)",
          's.ehlo()',
          's.starttls(context=context)',
          's.ehlo()',
          "blob = base64.b64encode(('user=%s\\x01auth=Bearer %s\\x01\\x01' % (user, token)).encode()).decode()",
          "code, text = s.docmd('AUTH', 'XOAUTH2 ' + blob)",
          "print('auth', code, text.decode())",
          'assert code == 235, (code, text)',
          'refused = s.sendmail(sender, [rcpt], message)',
          "print('refused', refused)",
          'print(s.quit())',
        ].join('\n');
        const result = await run(PYTHON!, ['-c', script, String(port), caFile, ALICE, tokenFor(), ALICE, BOB], { input: Buffer.from(raw) });
        assert.equal(result.code, 0, result.stderr + result.stdout);
        assert.match(result.stdout, /^auth 235 2\.7\.0 Authentication successful$/m);
        assert.match(result.stdout, /^refused \{\}$/m);
        const got = await received(subject);
        assert.ok(got.raw.toString('utf8').endsWith(raw));
        assert.equal(normalised(got.text), normalised(BODY));
      });
    }
  });

  describe('msmtp (auth xoauth2, the token from passwordeval)', { skip: needPeers('msmtp') }, () => {
    for (const [label, tokenFor] of TOKENS) {
      it(`sends a message (recipients from its headers) that arrives with the same body${label}`, async (t) => {
        const config = join(dir, 'msmtprc');
        const tokenFile = join(dir, 'token');
        await writeFile(tokenFile, tokenFor(), { mode: 0o600 });
        await writeFile(
          config,
          [
            'defaults',
            'tls on',
            'tls_starttls on',
            `tls_trust_file ${caFile}`,
            `logfile ${join(dir, 'msmtp.log')}`,
            '',
            'account emulator',
            'host 127.0.0.1',
            `port ${port}`,
            `from ${ALICE}`,
            'auth xoauth2',
            `user ${ALICE}`,
            // msmtp refuses configuration lines over 500 characters (msmtp #68), so not `echo <token>`.
            `passwordeval "cat ${tokenFile}"`,
            '',
            'account default : emulator',
            '',
          ].join('\n'),
          { mode: 0o600 },
        );
        const subject = `msmtp test${label}`;
        const raw = rfc822(subject, BODY);
        const result = await run(MSMTP!, ['-C', config, '-t', '--debug'], { input: raw });
        if (label !== '' && result.code !== 0) {
          // msmtp (1.8.23, Debian 12) sends XOAUTH2 only as an initial response and caps a command
          // at 4094 characters: with a token over 4 KB it gives up before the server sees it.
          assert.match(result.stderr, /longer than 4094 characters/, result.stderr);
          t.diagnostic('msmtp refuses to send an AUTH line over 4094 characters (its SMTP_MAXCMDLEN): a client limit, not the server');
          return;
        }
        assert.equal(result.code, 0, result.stderr + result.stdout);
        assert.match(result.stdout + result.stderr, /AUTH XOAUTH2/);
        const got = await received(subject);
        assert.equal(normalised(got.text), normalised(BODY));
        assert.ok(got.raw.toString('utf8').includes(`Message-ID: <${subject.replace(/\W/g, '-')}@client.example>`));
      });
    }
  });
});
