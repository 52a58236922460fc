// The Postfix harness (test/peers/postfix.ts) against a real Dovecot (test/peers/dovecot.ts) and
// the emulator's tokens: submission with STARTTLS, AUTH only after TLS, XOAUTH2 and OAUTHBEARER
// checked by Dovecot, delivery over LMTP into Dovecot, read back over IMAP; two instances side by
// side; nothing left running after stop().
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { encodeXoauth2 } from '../../src/net/sasl-xoauth2.ts';
import { DEFAULT_IDS } from '../../src/emulator/scenario/default.ts';
import { issueServerCertificate } from '../../src/tls/certificates.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { LineClient } from '../helpers/line-client.ts';
import { userToken } from '../helpers/mail-tokens.ts';
import { startDovecot, type Dovecot } from './dovecot.ts';
import { startPostfix, type Postfix } from './postfix.ts';
import { needPeers } from '../helpers/peers.ts';

/** Reads one SMTP reply (all its lines); returns the lines. */
async function reply(client: LineClient): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await client.line();
    if (line === null) throw new Error(`connection closed after ${JSON.stringify(lines)}`);
    lines.push(line);
    if (!/^\d{3}-/.test(line)) return lines;
  }
}

async function ask(client: LineClient, command: string): Promise<string[]> {
  client.send(command);
  return reply(client);
}

/** Connects, reads the greeting, and (unless plain) does STARTTLS; returns the EHLO reply lines. */
async function smtpSession(port: number, caPem: string, secure: boolean): Promise<{ client: LineClient; ehlo: string[] }> {
  const client = await LineClient.connect({ port });
  assert.match((await reply(client))[0]!, /^220 /);
  let ehlo = await ask(client, 'EHLO client.example');
  if (secure) {
    assert.match((await ask(client, 'STARTTLS'))[0]!, /^220 /);
    await client.startTls(caPem);
    ehlo = await ask(client, 'EHLO client.example');
  }
  return { client, ehlo };
}

/** AUTH with an initial response; answers a 334 challenge (Dovecot's error JSON) with an empty line. */
async function auth(client: LineClient, mechanism: string, initial: string): Promise<string> {
  let lines = await ask(client, `AUTH ${mechanism} ${initial}`);
  if (lines[0]!.startsWith('334 ')) lines = await ask(client, '');
  return lines.join('\n');
}

function oauthbearer(user: string, token: string): string {
  return Buffer.from(`n,a=${user},\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}

/** Processes (not zombies) in the given process group, from ps. */
function runningInGroup(pgid: number): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => {
      const [, group, stat] = l.split(/\s+/);
      return Number(group) === pgid && !stat!.startsWith('Z');
    });
}

async function masterPid(postfix: Postfix): Promise<number> {
  return Number((await readFile(join(postfix.dir, 'queue', 'pid', 'master.pid'), 'utf8')).trim());
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('Postfix submission through Dovecot SASL, delivering into Dovecot', { skip: needPeers('postfix', 'dovecot') }, () => {
  let emu: TestEmulator;
  let dovecot: Dovecot;
  let postfix: Postfix;
  let tls: { certPem: string; keyPem: string };
  let aliceToken: string;
  let bobToken: string;

  before(async () => {
    emu = await startTestEmulator();
    const authority = { certPem: emu.caPem, keyPem: await readFile(join(emu.dataDir, 'ca.key'), 'utf8') };
    tls = await issueServerCertificate(authority, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    dovecot = await startDovecot({ issuer: `https://sts.windows.net/${DEFAULT_IDS.tenant}/`, keysDir: emu.running.dovecotKeysDir, tls });
    postfix = await startPostfix({ dovecot, tls, virtualDomains: ['contoso.com'] });
    aliceToken = await userToken(emu, 'alice@contoso.com');
    bobToken = await userToken(emu, 'bob@contoso.com');
  });

  after(async () => {
    await postfix?.stop();
    await dovecot?.stop();
    await emu?.close();
  });

  it('offers STARTTLS and no AUTH before TLS, and refuses AUTH until then', async () => {
    const { client, ehlo } = await smtpSession(postfix.submissionPort, emu.caPem, false);
    try {
      assert.ok(
        ehlo.some((l) => /^250[- ]STARTTLS$/.test(l)),
        ehlo.join('\n'),
      );
      assert.ok(!ehlo.some((l) => /^250[- ]AUTH/.test(l)), `no AUTH before STARTTLS: ${ehlo.join('\n')}`);
      assert.match(await auth(client, 'XOAUTH2', encodeXoauth2('alice@contoso.com', aliceToken)), /^530 5\.7\.0 Must issue a STARTTLS command first/);
      assert.match((await ask(client, 'MAIL FROM:<alice@contoso.com>'))[0]!, /^530 /);
    } finally {
      client.close();
    }
  });

  it('advertises AUTH XOAUTH2 OAUTHBEARER after STARTTLS and takes both with an emulator token', async () => {
    for (const [mechanism, initial] of [
      ['XOAUTH2', encodeXoauth2('alice@contoso.com', aliceToken)],
      ['OAUTHBEARER', oauthbearer('alice@contoso.com', aliceToken)],
    ] as const) {
      const { client, ehlo } = await smtpSession(postfix.submissionPort, emu.caPem, true);
      try {
        assert.ok(ehlo.includes('250-AUTH XOAUTH2 OAUTHBEARER'), ehlo.join('\n'));
        assert.match(await auth(client, mechanism, initial), /^235 2\.7\.0 Authentication successful/, mechanism);
      } finally {
        client.close();
      }
    }
  });

  it('refuses a bad token, and a good token for someone else, with 535', async () => {
    for (const [user, token] of [
      ['alice@contoso.com', 'not-a-token'],
      ['alice@contoso.com', `${aliceToken.slice(0, -4)}AAAA`],
      ['alice@contoso.com', bobToken],
    ] as const) {
      const { client } = await smtpSession(postfix.submissionPort, emu.caPem, true);
      try {
        assert.match(await auth(client, 'XOAUTH2', encodeXoauth2(user, token)), /^535 5\.7\.8 /m);
      } finally {
        client.close();
      }
    }
  });

  it('relays nothing without AUTH', async () => {
    const { client } = await smtpSession(postfix.submissionPort, emu.caPem, true);
    try {
      assert.match((await ask(client, 'MAIL FROM:<alice@contoso.com>'))[0]!, /^250 /);
      assert.match((await ask(client, 'RCPT TO:<bob@contoso.com>'))[0]!, /^554 5\.7\.1 /);
    } finally {
      client.close();
    }
  });

  it('delivers a message sent by nodemailer (XOAUTH2) into Dovecot, where bob reads it over IMAP', async () => {
    const subject = `Postfix to Dovecot ${randomUUID()}`;
    const body = 'Sent through Postfix, delivered over LMTP.\n';
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: postfix.submissionPort,
      secure: false,
      requireTLS: true,
      tls: { ca: emu.caPem, servername: 'localhost' },
      auth: { type: 'OAuth2', user: 'alice@contoso.com', accessToken: aliceToken },
    });
    const info = await transport.sendMail({ from: 'alice@contoso.com', to: 'bob@contoso.com', subject, text: body });
    transport.close();
    assert.deepEqual(info.accepted, ['bob@contoso.com']);
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as /);

    const imap = new ImapFlow({
      host: '127.0.0.1',
      port: dovecot.imapsPort!,
      secure: true,
      auth: { user: 'bob@contoso.com', accessToken: bobToken },
      tls: { ca: emu.caPem, servername: 'localhost' },
      logger: false,
    });
    await imap.connect();
    try {
      // LMTP delivery happens after "queued": poll for it.
      const deadline = Date.now() + 10_000;
      const delivered = async (): Promise<boolean> => {
        const status = await imap.status('INBOX', { messages: true });
        return status !== false && (status.messages ?? 0) > 0;
      };
      while (!(await delivered())) {
        if (Date.now() > deadline) assert.fail(`nothing delivered to bob within 10 s\n--- postfix log ---\n${await postfix.log()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const lock = await imap.getMailboxLock('INBOX');
      try {
        const message = await imap.fetchOne('*', { envelope: true, source: true });
        assert.ok(message && message.envelope && message.source);
        assert.equal(message.envelope.subject, subject);
        assert.deepEqual(
          message.envelope.from?.map((a) => a.address),
          ['alice@contoso.com'],
        );
        const source = message.source.toString('utf8');
        assert.ok(source.replace(/\r\n/g, '\n').endsWith(`\n\n${body}`), source);
        assert.match(source, /^Return-Path: <alice@contoso.com>/m);
        assert.match(source, /Authenticated sender|ESMTPSA/);
      } finally {
        lock.release();
      }
    } finally {
      await imap.logout();
    }
  });

  it('runs a second instance beside the first, and stop() leaves nothing running', async () => {
    const second = await startPostfix({ dovecot, tls, virtualDomains: ['contoso.com', 'fabrikam.example'] });
    let stopped = false;
    try {
      assert.notEqual(second.submissionPort, postfix.submissionPort);
      assert.notEqual(second.dir, postfix.dir);
      const [first, other] = [await masterPid(postfix), await masterPid(second)];
      assert.notEqual(first, other);
      const { client, ehlo } = await smtpSession(second.submissionPort, emu.caPem, true);
      try {
        assert.ok(ehlo.includes('250-AUTH XOAUTH2 OAUTHBEARER'), ehlo.join('\n'));
        assert.match(await auth(client, 'XOAUTH2', encodeXoauth2('alice@contoso.com', aliceToken)), /^235 /);
      } finally {
        client.close();
      }
      assert.ok(runningInGroup(other).length > 0, 'the second master runs');

      await second.stop();
      stopped = true;
      assert.deepEqual(runningInGroup(other), [], 'nothing of the second instance runs after stop()');
      assert.equal(existsSync(second.dir), false, 'its folder is gone');
      assert.equal(await portAnswers(second.submissionPort), false, 'its port is closed');
      // The first instance is untouched.
      assert.ok(runningInGroup(first).length > 0);
      const again = await smtpSession(postfix.submissionPort, emu.caPem, false);
      again.client.close();
    } finally {
      if (!stopped) await second.stop();
    }
  });
});
