// One message's way through the emulated Exchange: sent by nodemailer over SMTP (STARTTLS,
// XOAUTH2), then read by the recipient over IMAP (imapflow) and over POP3, byte-identical to
// what was sent apart from the trace header a server adds.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { encodeXoauth2 } from '../../../src/net/sasl-xoauth2.ts';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { LineClient } from '../../helpers/line-client.ts';
import { SCOPES, userToken } from '../../helpers/mail-tokens.ts';

const RAW = [
  'From: Alice Admin <alice@contoso.com>',
  'To: Bob Example <bob@contoso.com>',
  'Subject: =?UTF-8?Q?Caf=C3=A9_order?=',
  'Message-ID: <order-4711@contoso.com>',
  'Date: Sat, 21 Nov 2026 10:00:00 +0000',
  'MIME-Version: 1.0',
  'Content-Type: multipart/alternative; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 8bit',
  '',
  'Two coffees, please.',
  '.this line starts with a dot',
  '',
  '--b1',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>Two coffees, please.</p>',
  '--b1--',
  '',
].join('\r\n');

describe('send through SMTP, read through IMAP and POP3', () => {
  let emu: TestEmulator;
  before(async () => {
    emu = await startTestEmulator();
  });
  after(() => emu.close());

  it('arrives byte-identical apart from the Received header the server adds', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: emu.running.mailPorts.smtp,
      secure: false,
      requireTLS: true,
      tls: { ca: emu.caPem, servername: 'localhost' },
      auth: { type: 'OAuth2', user: 'alice@contoso.com', accessToken: await userToken(emu, 'alice@contoso.com', [SCOPES.smtp]) },
    });
    const info = await transport.sendMail({ envelope: { from: 'alice@contoso.com', to: ['bob@contoso.com'] }, raw: RAW });
    assert.deepEqual(info.accepted, ['bob@contoso.com']);

    const bobToken = await userToken(emu, 'bob@contoso.com', [SCOPES.imap, SCOPES.pop]);
    const imap = new ImapFlow({
      host: '127.0.0.1',
      port: emu.running.mailPorts.imaps,
      secure: true,
      auth: { user: 'bob@contoso.com', accessToken: bobToken },
      tls: { ca: emu.caPem, servername: 'localhost' },
      logger: false,
    });
    await imap.connect();
    let overImap: Buffer;
    try {
      const lock = await imap.getMailboxLock('INBOX');
      try {
        const message = await imap.fetchOne('*', { source: true });
        assert.ok(message && message.source);
        overImap = message.source;
      } finally {
        lock.release();
      }
    } finally {
      await imap.logout();
    }

    const pop = await LineClient.connect({ port: emu.running.mailPorts.pop3s, tlsCa: emu.caPem });
    await pop.line();
    await pop.ask('AUTH XOAUTH2');
    assert.equal(await pop.ask(encodeXoauth2('bob@contoso.com', bobToken)), '+OK User successfully authenticated.');
    const count = Number(((await pop.ask('STAT')) ?? '').split(' ')[1]);
    assert.equal(await pop.ask(`RETR ${count}`), '+OK');
    const overPop = Buffer.from(`${(await pop.block()).join('\r\n')}\r\n`, 'latin1');
    pop.close();

    assert.equal(overPop.toString('latin1'), overImap.toString('latin1'), 'IMAP and POP3 give the same bytes');
    const text = overImap.toString('utf8');
    assert.ok(text.endsWith(RAW), 'everything the sender wrote arrives unchanged');
    const added = text.slice(0, text.length - RAW.length);
    assert.match(added, /^Received: [^\r\n]+\r\n(?:[ \t][^\r\n]*\r\n)*$/, `only a Received header is added: ${JSON.stringify(added)}`);
  });
});
