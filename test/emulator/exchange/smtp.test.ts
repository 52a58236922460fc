// The emulated Exchange Online SMTP submission front end, reply for reply (reference sections
// 4.4 and 8.5), over real sockets and real TLS: greeting, EHLO before and after STARTTLS, AUTH
// XOAUTH2 in both forms, every refusal of the SMTP column of section 4.4 and of section 8.5 with
// its exact text, SendAs, delivery into the recipients' INBOX and the sender's Sent Items
// (byte-identical apart from the headers a server adds), pipelining, BDAT, limits, failures.
import assert from 'node:assert/strict';
import { upgradeToTls } from '../../helpers/line-client.ts';
import { encodeXoauth2 as xoauth2 } from '../../../src/net/sasl-xoauth2.ts';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { LineReader } from '../../../src/net/line-reader.ts';
import type { RunningLineServer } from '../../../src/net/line-server.ts';
import { startSmtpServer, type SmtpLimits } from '../../../src/emulator/exchange/smtp/server.ts';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { appById, startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { appToken, SCOPES, userToken } from '../../helpers/mail-tokens.ts';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';
const SUPPORT = 'support@contoso.com';
const CAROL = 'carol@outlook.com';
const SERVICE_SP = 'b07c5e9b-3d8f-4b2a-8c4e-6f8d2b4a7c04';

/** A bare SMTP client: every reply is read whole (all its lines), with a time limit. */
class SmtpClient {
  socket: net.Socket | tls.TLSSocket;
  #reader: LineReader;
  /** The session id of the greeting, which every diagnostic tail of the session repeats. */
  sessionId = '';
  greeting = '';

  private constructor(socket: net.Socket | tls.TLSSocket) {
    this.socket = socket;
    this.#reader = new LineReader(socket, { maxLineBytes: 1 << 20 });
    socket.on('error', () => {});
  }

  static async connect(port: number, tlsCa?: string): Promise<SmtpClient> {
    const socket = tlsCa ? tls.connect({ host: '127.0.0.1', port, ca: tlsCa, servername: 'localhost' }) : net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(tlsCa ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const client = new SmtpClient(socket);
    const greeting = await client.reply();
    client.greeting = greeting[0]!;
    client.sessionId = /\[([0-9A-F]{16})\]$/.exec(client.greeting)?.[1] ?? '';
    return client;
  }

  /** The lines of the next reply; throws when the server closed first. */
  async reply(): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const raw = await Promise.race([
        this.#reader.readLine(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no reply within 10 s (so far: ${lines.join(' | ')})`)), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
      if (raw === null) throw new Error(`connection closed (so far: ${lines.join(' | ')})`);
      const line = raw.toString('latin1');
      lines.push(line);
      if (line.length < 4 || line[3] === ' ') return lines;
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async ask(line: string): Promise<string[]> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** A one-line reply. */
  async one(line: string): Promise<string> {
    const reply = await this.ask(line);
    assert.equal(reply.length, 1, reply.join('\n'));
    return reply[0]!;
  }

  async startTls(ca: string): Promise<void> {
    assert.equal(await this.one('STARTTLS'), '220 2.0.0 SMTP server ready');
    this.#reader.detach();
    this.socket = await upgradeToTls(this.socket, ca);
    this.#reader = new LineReader(this.socket, { maxLineBytes: 1 << 20 });
  }

  /** Resolves when the server has closed the connection (after reading what is left). */
  async closed(): Promise<void> {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const raw = await Promise.race([
        this.#reader.readLine(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('the server did not close the connection within 10 s')), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
      if (raw === null) return;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('Exchange Online SMTP submission (emulated)', () => {
  let emu: TestEmulator;
  let port: number;
  let aliceToken: string;
  let names: { machine: string; frontend: string; diagnostic: string; mailbox: string };
  const open: SmtpClient[] = [];

  before(async () => {
    emu = await startTestEmulator();
    port = emu.running.mailPorts.smtp;
    aliceToken = await userToken(emu, ALICE);
    const backend = emu.running.exchange.backendHost;
    const [machine = '', ...rest] = backend.split('.');
    names = {
      machine,
      frontend: `${machine}.outlook.office365.com`,
      diagnostic: backend,
      mailbox: `${machine.replace(/CA(\d+)$/, 'MB$1')}.${rest.join('.')}`.toUpperCase(),
    };
  });
  after(async () => {
    for (const c of open) c.close();
    await emu.close();
  });

  async function connect(p = port, tlsCa?: string): Promise<SmtpClient> {
    const c = await SmtpClient.connect(p, tlsCa);
    open.push(c);
    return c;
  }

  /** Connected, STARTTLS done, EHLO said: ready for AUTH. */
  async function secured(p = port): Promise<SmtpClient> {
    const c = await connect(p);
    await c.ask('EHLO client.example');
    await c.startTls(emu.caPem);
    await c.ask('EHLO client.example');
    return c;
  }

  async function loggedIn(user = ALICE, token = aliceToken, p = port): Promise<SmtpClient> {
    const c = await secured(p);
    assert.equal(await c.one(`AUTH XOAUTH2 ${xoauth2(user, token)}`), '235 2.7.0 Authentication successful');
    return c;
  }

  /** Asserts an error reply: the exact text, then `[<FQDN> <ISO time> <session id>]`. */
  function assertError(line: string, text: string, c: SmtpClient): void {
    const tail = /^(.*) \[(\S+) (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ([0-9A-F]{16})\]$/.exec(line);
    assert.ok(tail, `no diagnostic tail in: ${line}`);
    assert.equal(tail[1], text);
    assert.equal(tail[2], names.diagnostic);
    assert.equal(tail[4], c.sessionId);
    assert.ok(Math.abs(Date.parse(tail[3]!) - emu.running.state.clock.nowMs()) < 60_000, `time ${tail[3]}`);
  }

  async function authReply(user: string, token: string): Promise<{ c: SmtpClient; line: string }> {
    const c = await secured();
    return { c, line: await c.one(`AUTH XOAUTH2 ${xoauth2(user, token)}`) };
  }

  async function assertAuthRefused(user: string, token: string, text = 'Authentication unsuccessful'): Promise<void> {
    const { c, line } = await authReply(user, token);
    const code = text === 'Authentication unsuccessful' ? '535 5.7.3' : '535 5.7.139';
    assertError(line, `${code} ${text}`, c);
    c.close();
  }

  function message(from: string, to: string, subject: string, body = 'Hello from the emulator test.\r\n'): string {
    return [
      `From: Test Sender <${from}>`,
      `To: <${to}>`,
      `Subject: ${subject}`,
      'Date: Mon, 2 Mar 2026 10:00:00 +0000',
      `Message-ID: <${subject.replace(/\W/g, '-')}@client.example>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      body,
    ].join('\r\n');
  }

  /** MAIL, RCPTs, DATA and the message; returns the final reply. */
  async function send(c: SmtpClient, from: string, to: string[], raw: string): Promise<string> {
    assert.equal(await c.one(`MAIL FROM:<${from}>`), '250 2.1.0 Sender OK');
    for (const r of to) assert.equal(await c.one(`RCPT TO:<${r}>`), '250 2.1.5 Recipient OK');
    assert.equal(await c.one('DATA'), '354 Start mail input; end with <CRLF>.<CRLF>');
    const stuffed = raw.replace(/^\./gm, '..');
    c.write(`${stuffed}${stuffed.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    const reply = await c.reply();
    assert.equal(reply.length, 1);
    return reply[0]!;
  }

  async function lastMessage(address: string, folder: string): Promise<Buffer> {
    const data = await emu.running.exchange.store.open(address);
    const f = data.requireFolder(folder);
    const meta = f.messages.at(-1);
    assert.ok(meta, `no message in ${address} ${folder}`);
    return data.read(f, meta.uid);
  }

  async function messageCount(address: string, folder: string): Promise<number> {
    return (await emu.running.exchange.store.open(address)).requireFolder(folder).messages.length;
  }

  /** The stored copy is the sent message with only a folded `Received:` header in front. */
  function assertReceivedCopy(stored: Buffer, sent: string): void {
    const text = stored.toString('utf8');
    assert.ok(text.endsWith(sent), 'the message body and headers are kept byte for byte');
    const added = text.slice(0, text.length - sent.length);
    assert.match(added, /^Received: from \S+ \(127\.0\.0\.1\) by \S+\r\n(?:[ \t][^\r\n]*\r\n)*$/);
    assert.ok(added.includes(`by ${names.frontend}`), added);
  }

  describe('session start, EHLO, STARTTLS', () => {
    it('greets like smtp.office365.com: front-end host, RFC 5322 date and session id', async () => {
      const c = await connect();
      const match =
        /^220 (\S+) Microsoft ESMTP MAIL Service ready at ((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000) \[([0-9A-F]{16})\]$/.exec(
          c.greeting,
        );
      assert.ok(match, c.greeting);
      assert.equal(match[1], names.frontend);
      assert.match(names.frontend, /^[A-Z0-9]+CA\d+\.outlook\.office365\.com$/);
      assert.ok(Math.abs(Date.parse(match[2]!) - Date.now()) < 60_000, match[2]);
      const second = await connect();
      assert.notEqual(second.sessionId, c.sessionId, 'each connection has its own id');
    });

    it('lists the extensions of reference 8.5 before STARTTLS, with no AUTH line', async () => {
      const c = await connect();
      assert.deepEqual(await c.ask('EHLO client.example'), [
        `250-${names.frontend} Hello [127.0.0.1]`,
        '250-SIZE 157286400',
        '250-PIPELINING',
        '250-DSN',
        '250-ENHANCEDSTATUSCODES',
        '250-STARTTLS',
        '250-8BITMIME',
        '250-BINARYMIME',
        '250-CHUNKING',
        '250 SMTPUTF8',
      ]);
    });

    it('refuses AUTH of any mechanism before STARTTLS as an unrecognized authentication type', async () => {
      const c = await connect();
      await c.ask('EHLO client.example');
      assertError(await c.one(`AUTH XOAUTH2 ${xoauth2(ALICE, aliceToken)}`), '504 5.7.4 Unrecognized authentication type', c);
      assertError(await c.one('AUTH LOGIN'), '504 5.7.4 Unrecognized authentication type', c);
      assertError(await c.one('AUTH PLAIN AGFsaWNlAHg='), '504 5.7.4 Unrecognized authentication type', c);
    });

    it('answers STARTTLS with 220 2.0.0 and then lists AUTH LOGIN XOAUTH2 instead of STARTTLS', async () => {
      const c = await connect();
      await c.ask('EHLO client.example');
      await c.startTls(emu.caPem);
      assert.ok(c.socket instanceof tls.TLSSocket && c.socket.encrypted);
      assert.deepEqual(await c.ask('EHLO client.example'), [
        `250-${names.frontend} Hello [127.0.0.1]`,
        '250-SIZE 157286400',
        '250-PIPELINING',
        '250-DSN',
        '250-ENHANCEDSTATUSCODES',
        '250-AUTH LOGIN XOAUTH2',
        '250-8BITMIME',
        '250-BINARYMIME',
        '250-CHUNKING',
        '250 SMTPUTF8',
      ]);
      assertError(await c.one('STARTTLS'), '503 5.5.2 Only one STARTTLS command can be issued per session', c);
    });

    it('ends the session, without a TLS handshake, when commands were pipelined after STARTTLS', async () => {
      const c = await connect();
      await c.ask('EHLO client.example');
      c.write('STARTTLS\r\nEHLO injected.example\r\n');
      assert.deepEqual(await c.reply(), ['220 2.0.0 SMTP server ready']);
      await c.closed();
    });

    it('answers HELO, NOOP, RSET, VRFY, HELP, unknown commands and QUIT', async () => {
      const c = await connect();
      assert.equal(await c.one('HELO client.example'), `250 ${names.frontend} Hello [127.0.0.1]`);
      assert.equal(await c.one('NOOP'), '250 2.0.0 OK');
      assert.equal(await c.one('RSET'), '250 2.0.0 Resetting');
      assert.equal(await c.one('VRFY alice'), '252 2.1.5 Cannot VRFY user');
      assert.deepEqual(await c.ask('HELP'), [
        '214-This server supports the following commands:',
        '214 HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP AUTH BDAT',
      ]);
      assertError(await c.one('XYZZY now'), "500 5.3.3 Unrecognized command 'XYZZY'", c);
      c.write(Buffer.from('\x00\x11\xac\x12EHLO x\r\n', 'latin1'));
      assertError((await c.reply())[0]!, "500 5.3.3 Unrecognized command 'unknown'", c);
      assert.equal(await c.one('QUIT'), '221 2.0.0 Service closing transmission channel');
      await c.closed();
    });

    it('asks for EHLO first, and for a domain with it', async () => {
      const c = await connect();
      await c.startTls(emu.caPem);
      assertError(await c.one(`AUTH XOAUTH2 ${xoauth2(ALICE, aliceToken)}`), '503 5.5.2 Send hello first', c);
      assertError(await c.one('EHLO'), '501 5.0.0 EHLO requires domain address', c);
      assertError(await c.one('HELO'), '501 5.0.0 HELO requires domain address', c);
    });

    it('runs with implicit TLS too, offering AUTH at once', async () => {
      const server = await startSmtpServer(emu.running.exchange, { host: '127.0.0.1', port: 0, implicitTls: true });
      try {
        const c = await connect(server.port, emu.caPem);
        assert.match(c.greeting, /^220 \S+ Microsoft ESMTP MAIL Service ready at /);
        assert.ok((await c.ask('EHLO client.example')).includes('250-AUTH LOGIN XOAUTH2'));
        assert.equal(await c.one(`AUTH XOAUTH2 ${xoauth2(ALICE, aliceToken)}`), '235 2.7.0 Authentication successful');
        c.close();
      } finally {
        await server.close();
      }
    });
  });

  describe('AUTH', () => {
    it('accepts AUTH XOAUTH2 with the initial response: 235 2.7.0 Authentication successful', async () => {
      const c = await secured();
      assert.equal(await c.one(`AUTH XOAUTH2 ${xoauth2(ALICE, aliceToken)}`), '235 2.7.0 Authentication successful');
      assertError(await c.one(`AUTH XOAUTH2 ${xoauth2(ALICE, aliceToken)}`), '503 5.5.2 Auth command already specified', c);
    });

    it('accepts the two-step form: "334 " then the response', async () => {
      const c = await secured();
      assert.equal(await c.one('AUTH XOAUTH2'), '334 ');
      assert.equal(await c.one(xoauth2(ALICE, aliceToken)), '235 2.7.0 Authentication successful');
    });

    it('takes tokens over 4 KB in both forms (no length limit on tokens)', async () => {
      emu.scenario.settings.accessTokenMinLength = 6000;
      let big: string;
      try {
        big = await userToken(emu, ALICE);
      } finally {
        emu.scenario.settings.accessTokenMinLength = 0;
      }
      assert.ok(big.length >= 6000);
      const c = await secured();
      assert.equal(await c.one(`AUTH XOAUTH2 ${xoauth2(ALICE, big)}`), '235 2.7.0 Authentication successful');
      const d = await secured();
      assert.equal(await d.one('AUTH XOAUTH2'), '334 ');
      assert.equal(await d.one(xoauth2(ALICE, big)), '235 2.7.0 Authentication successful');
    });

    it('takes the mechanism name in any case', async () => {
      const c = await secured();
      assert.equal(await c.one('auth xoauth2'), '334 ');
      assert.equal(await c.one(xoauth2(ALICE, aliceToken)), '235 2.7.0 Authentication successful');
    });

    it('cancels on "*" and refuses mechanisms it does not offer', async () => {
      const c = await secured();
      assert.equal(await c.one('AUTH XOAUTH2'), '334 ');
      assertError(await c.one('*'), '501 5.5.4 Authentication cancelled', c);
      assertError(await c.one('AUTH PLAIN AGFsaWNlAHNlY3JldA=='), '504 5.7.4 Unrecognized authentication type', c);
      assertError(await c.one('AUTH OAUTHBEARER bixhPWFsaWNlLAE='), '504 5.7.4 Unrecognized authentication type', c);
    });

    it('refuses AUTH LOGIN (basic) with the basic-authentication-disabled 535 5.7.139', async () => {
      const c = await secured();
      assert.equal(await c.one('AUTH LOGIN'), '334 VXNlcm5hbWU6');
      assert.equal(await c.one(Buffer.from(ALICE).toString('base64')), '334 UGFzc3dvcmQ6');
      assertError(await c.one(Buffer.from('Passw0rd!').toString('base64')), '535 5.7.139 Authentication unsuccessful, basic authentication is disabled.', c);
      // The one-line form too.
      assert.equal(await c.one(`AUTH LOGIN ${Buffer.from(ALICE).toString('base64')}`), '334 UGFzc3dvcmQ6');
      assertError(await c.one(Buffer.from('x').toString('base64')), '535 5.7.139 Authentication unsuccessful, basic authentication is disabled.', c);
    });

    it('counts successful and failed logins', async () => {
      await emu.admin('DELETE', '/counters');
      const good = await loggedIn();
      good.close();
      await assertAuthRefused(ALICE, 'not-a-token');
      const counts = (await emu.counters()).smtp;
      assert.equal(counts?.auth_ok, 1);
      assert.equal(counts?.auth_failed, 1);
    });

    it('never sends a token back, even when it arrives as a command', async () => {
      const c = await secured();
      const reply = await c.one(aliceToken);
      assertError(reply, "500 5.3.3 Unrecognized command 'unknown'", c);
      assert.ok(!reply.includes(aliceToken.slice(0, 20)));
    });
  });

  describe('the SMTP column of reference 4.4 and the failures of 8.5', () => {
    it('refuses a Graph token (wrong audience): 535 5.7.3', async () => {
      const graph = await userToken(emu, ALICE, ['SMTP.Send']);
      const { aud } = JSON.parse(Buffer.from(graph.split('.')[1]!, 'base64url').toString()) as { aud: string };
      assert.ok(aud === '00000003-0000-0000-c000-000000000000' || aud === 'https://graph.microsoft.com', `aud ${aud}`);
      await assertAuthRefused(ALICE, graph);
    });

    it('refuses an expired token: 535 5.7.3', async () => {
      const token = await userToken(emu, ALICE);
      await emu.admin('POST', '/clock', { advanceSeconds: 7200 });
      try {
        await assertAuthRefused(ALICE, token);
      } finally {
        await emu.admin('POST', '/clock', { reset: true });
      }
    });

    it('refuses a garbled token: 535 5.7.3', async () => {
      await assertAuthRefused(ALICE, `${aliceToken.slice(0, -10)}AAAAAAAAAA`);
      await assertAuthRefused(ALICE, 'eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.');
      const c = await secured();
      assertError(await c.one('AUTH XOAUTH2 !!!not-base64!!!'), '535 5.7.3 Authentication unsuccessful', c);
    });

    it('refuses a token without SMTP.Send: 535 5.7.3', async () => {
      await assertAuthRefused(ALICE, await userToken(emu, ALICE, [SCOPES.imap]));
    });

    it('refuses an app-only token without the SMTP.SendAsApp role: 535 5.7.3', async () => {
      const app = appById(emu, DEFAULT_IDS.serviceApp);
      const roles = app.appRoles.exchange;
      app.appRoles.exchange = ['IMAP.AccessAsApp', 'POP.AccessAsApp'];
      let token: string;
      try {
        token = await appToken(emu);
      } finally {
        app.appRoles.exchange = roles;
      }
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { roles?: string[] };
      assert.ok(claims.roles?.includes('IMAP.AccessAsApp') && !claims.roles.includes('SMTP.SendAsApp'), JSON.stringify(claims.roles));
      await assertAuthRefused(SUPPORT, token);
    });

    it('refuses an app when its service principal is not registered in Exchange: 535 5.7.3', async () => {
      const token = await appToken(emu);
      await emu.admin('DELETE', `/exchange/service-principals/${SERVICE_SP}`);
      try {
        await assertAuthRefused(SUPPORT, token);
      } finally {
        await emu.admin('POST', '/exchange/service-principals', { tenant: DEFAULT_IDS.tenant, appId: DEFAULT_IDS.serviceApp, objectId: SERVICE_SP });
      }
      const ok = await authReply(SUPPORT, token);
      assert.equal(ok.line, '235 2.7.0 Authentication successful');
    });

    it('refuses an app without FullAccess on the mailbox: 535 5.7.3', async () => {
      const token = await appToken(emu);
      await assertAuthRefused(ALICE, token);
      await emu.admin('DELETE', `/mailboxes/${SUPPORT}/permissions/${SERVICE_SP}`);
      try {
        await assertAuthRefused(SUPPORT, token);
      } finally {
        await emu.admin('POST', `/mailboxes/${SUPPORT}/permissions`, { principal: SERVICE_SP, accessRights: ['FullAccess'] });
      }
    });

    it("refuses a user's token for another user's mailbox: 535 5.7.3", async () => {
      await assertAuthRefused(BOB, aliceToken);
    });

    it('refuses when SMTP AUTH is disabled for the tenant: 535 5.7.139 ... for the Tenant', async () => {
      await emu.admin('PATCH', '/tenants/contoso.com', { smtpClientAuthenticationDisabled: true });
      try {
        await assertAuthRefused(
          ALICE,
          aliceToken,
          'Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.',
        );
        // Set-CASMailbox -SmtpClientAuthenticationDisabled $false wins over the tenant.
        await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: false });
        assert.equal((await authReply(ALICE, aliceToken)).line, '235 2.7.0 Authentication successful');
      } finally {
        await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: null });
        await emu.admin('PATCH', '/tenants/contoso.com', { smtpClientAuthenticationDisabled: false });
      }
    });

    it('refuses when SMTP AUTH is disabled for the mailbox: 535 5.7.139 ... for the Mailbox', async () => {
      await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: true });
      try {
        await assertAuthRefused(
          ALICE,
          aliceToken,
          'Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.',
        );
      } finally {
        await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: null });
      }
    });

    it('refuses under security defaults: 535 5.7.139 ... security defaults policy', async () => {
      await emu.admin('PATCH', '/tenants/contoso.com', { securityDefaults: true });
      try {
        await assertAuthRefused(
          ALICE,
          aliceToken,
          "Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.",
        );
      } finally {
        await emu.admin('PATCH', '/tenants/contoso.com', { securityDefaults: false });
      }
    });

    it('refuses MAIL before AUTH: 530 5.7.57, before and after STARTTLS', async () => {
      const c = await connect();
      await c.ask('EHLO client.example');
      assertError(await c.one(`MAIL FROM:<${ALICE}>`), '530 5.7.57 Client not authenticated to send mail.', c);
      await c.startTls(emu.caPem);
      await c.ask('EHLO client.example');
      assertError(await c.one(`MAIL FROM:<${ALICE}>`), '530 5.7.57 Client not authenticated to send mail.', c);
    });

    it('refuses sending as another mailbox at the end of DATA: 554 5.2.252 SendAsDenied', async () => {
      const c = await loggedIn();
      const before = await messageCount(BOB, 'INBOX');
      const reply = await send(c, BOB, [BOB], message(BOB, BOB, 'not allowed'));
      const expected =
        `554 5.2.252 SendAsDenied; ${ALICE} not allowed to send as ${BOB}; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; ` +
        'Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message. ';
      assert.ok(reply.startsWith(expected), reply);
      assert.ok(reply.endsWith(`[EndDiagnosticData] [Hostname=${names.mailbox}]`), reply);
      // The From header counts, not only the envelope.
      const header = await send(c, ALICE, [BOB], message(BOB, BOB, 'header only'));
      assert.ok(header.startsWith(`554 5.2.252 SendAsDenied; ${ALICE} not allowed to send as ${BOB}; `), header);
      assert.equal(await messageCount(BOB, 'INBOX'), before, 'nothing was delivered');
    });

    it('lets alice send as the shared mailbox she has SendAs on, and not once it is removed', async () => {
      const c = await loggedIn();
      const raw = message(SUPPORT, BOB, 'from the shared mailbox');
      assert.match(await send(c, SUPPORT, [BOB], raw), /^250 2\.0\.0 OK <from-the-shared-mailbox@client\.example> \[Hostname=/);
      assertReceivedCopy(await lastMessage(BOB, 'INBOX'), raw);
      await emu.admin('DELETE', `/mailboxes/${SUPPORT}/permissions/${ALICE}`);
      try {
        const denied = await send(c, SUPPORT, [BOB], message(SUPPORT, BOB, 'no longer'));
        assert.ok(denied.startsWith(`554 5.2.252 SendAsDenied; ${ALICE} not allowed to send as ${SUPPORT}; `), denied);
      } finally {
        await emu.admin('POST', `/mailboxes/${SUPPORT}/permissions`, { principal: ALICE, accessRights: ['FullAccess', 'SendAs'] });
      }
    });

    it('lets an app with SMTP.SendAsApp and FullAccess send as the mailbox it names', async () => {
      const c = await loggedIn(SUPPORT, await appToken(emu));
      const raw = message(SUPPORT, ALICE, 'app-only');
      assert.match(await send(c, SUPPORT, [ALICE], raw), /^250 2\.0\.0 OK <app-only@client\.example> \[Hostname=/);
      assertReceivedCopy(await lastMessage(ALICE, 'INBOX'), raw);
      assert.equal((await lastMessage(SUPPORT, 'Sent Items')).toString('utf8'), raw);
      const denied = await send(c, ALICE, [BOB], message(ALICE, BOB, 'app as alice'));
      assert.ok(denied.startsWith(`554 5.2.252 SendAsDenied; ${SUPPORT} not allowed to send as ${ALICE}; `), denied);
    });

    it('throttles when a throttling failure is armed: 421 4.4.2 and the connection ends', async () => {
      await emu.admin('POST', '/mail-failures', { protocol: 'smtp', mailbox: ALICE, kind: 'throttled', times: 1 });
      const { c, line } = await authReply(ALICE, aliceToken);
      assertError(line, '421 4.4.2 Message submission rate for this client has exceeded the configured limit', c);
      await c.closed();
      assert.equal((await authReply(ALICE, aliceToken)).line, '235 2.7.0 Authentication successful', 'only once');
    });

    it('says the service is not available when that failure is armed: 421 4.3.2 and the connection ends', async () => {
      await emu.admin('POST', '/mail-failures', { protocol: 'smtp', kind: 'unavailable', times: 1 });
      const { c, line } = await authReply(ALICE, aliceToken);
      assertError(line, '421 4.3.2 Service not available, closing transmission channel', c);
      await c.closed();
    });
  });

  describe('messages', () => {
    it("delivers into the recipients' INBOX and keeps a copy in the sender's Sent Items, byte for byte", async () => {
      const c = await loggedIn();
      const raw = message(ALICE, BOB, 'byte identical', 'Line one.\r\n.a line that starts with a dot\r\n..two dots\r\n\r\nÜnïcödé and \x01 controls.\r\n');
      const sentBefore = await messageCount(ALICE, 'Sent Items');
      const reply = await send(c, ALICE, [BOB, CAROL, 'someone@fabrikam.example'], raw);
      assert.equal(reply, `250 2.0.0 OK <byte-identical@client.example> [Hostname=${names.mailbox}]`);
      assertReceivedCopy(await lastMessage(BOB, 'INBOX'), raw);
      assertReceivedCopy(await lastMessage(CAROL, 'INBOX'), raw);
      const sent = await lastMessage(ALICE, 'Sent Items');
      assert.equal(sent.toString('utf8'), raw, 'the Sent Items copy is the message as submitted');
      assert.equal(await messageCount(ALICE, 'Sent Items'), sentBefore + 1);
      // The admin API sees the same.
      const listed = (await emu.admin('GET', `/mailboxes/${BOB}/messages`)).json<{ folder: string; messages: { size: number }[] }[]>();
      const inbox = listed.find((f) => f.folder === 'INBOX');
      assert.equal(inbox?.messages.at(-1)?.size, (await lastMessage(BOB, 'INBOX')).length);
      const flags = (await emu.running.exchange.store.open(ALICE)).requireFolder('Sent Items').messages.at(-1)?.flags;
      assert.deepEqual(flags, ['\\Seen']);
    });

    it('ends DATA only at CRLF.CRLF: a bare LF "." LF inside is message data (no SMTP smuggling)', async () => {
      const c = await loggedIn();
      assert.equal(await c.one(`MAIL FROM:<${ALICE}>`), '250 2.1.0 Sender OK');
      assert.equal(await c.one(`RCPT TO:<${BOB}>`), '250 2.1.5 Recipient OK');
      assert.equal(await c.one('DATA'), '354 Start mail input; end with <CRLF>.<CRLF>');
      // A smuggling attempt: "\n.\n" followed by a second transaction hidden in the data.
      const hidden = `From: <${ALICE}>\r\nTo: <${BOB}>\r\nSubject: outer\r\n\r\nvisible\n.\nMAIL FROM:<ceo@contoso.com>\r\nRCPT TO:<${BOB}>\r\nDATA\r\nSubject: smuggled\r\n`;
      c.write(`${hidden}.\r\n`);
      const reply = await c.reply();
      assert.equal(reply.length, 1, reply.join(' | '));
      assert.match(reply[0]!, /^250 2\.0\.0 OK /);
      const stored = (await lastMessage(BOB, 'INBOX')).toString('latin1');
      assert.ok(stored.endsWith(hidden), 'the "smuggled" commands stayed inside the one message');
      assert.equal(await c.one('NOOP'), '250 2.0.0 OK');
    });

    it('adds Message-ID and Date when the client left them out, and answers with that Message-ID', async () => {
      const c = await loggedIn();
      const raw = `From: <${ALICE}>\r\nTo: <${BOB}>\r\nSubject: bare\r\n\r\nNo id, no date.\r\n`;
      const reply = await send(c, ALICE, [BOB], raw);
      const id = /^250 2\.0\.0 OK (<[^>]+>) \[Hostname=(\S+)\]$/.exec(reply);
      assert.ok(id, reply);
      assert.equal(id[2], names.mailbox);
      const sent = (await lastMessage(ALICE, 'Sent Items')).toString('utf8');
      assert.ok(sent.startsWith(`Message-ID: ${id[1]}\r\nDate: `), sent);
      assert.ok(sent.endsWith(raw));
    });

    it('takes MAIL, RCPT and DATA pipelined in one write', async () => {
      const c = await loggedIn();
      c.write(`MAIL FROM:<${ALICE}> SIZE=300 BODY=8BITMIME\r\nRCPT TO:<${BOB}>\r\nRCPT TO:<nobody@fabrikam.example> NOTIFY=NEVER\r\nDATA\r\n`);
      assert.deepEqual(await c.reply(), ['250 2.1.0 Sender OK']);
      assert.deepEqual(await c.reply(), ['250 2.1.5 Recipient OK']);
      assert.deepEqual(await c.reply(), ['250 2.1.5 Recipient OK']);
      assert.deepEqual(await c.reply(), ['354 Start mail input; end with <CRLF>.<CRLF>']);
      const raw = message(ALICE, BOB, 'pipelined');
      c.write(`${raw}.\r\nRSET\r\nNOOP\r\n`);
      assert.match((await c.reply())[0]!, /^250 2\.0\.0 OK <pipelined@client\.example> /);
      assert.deepEqual(await c.reply(), ['250 2.0.0 Resetting']);
      assert.deepEqual(await c.reply(), ['250 2.0.0 OK']);
      assertReceivedCopy(await lastMessage(BOB, 'INBOX'), raw);
    });

    it('takes BDAT chunks (CHUNKING), the last one marked LAST', async () => {
      const c = await loggedIn();
      const raw = message(ALICE, BOB, 'chunked', 'A line.\r\n.a dot is not special in BDAT\r\n');
      const bytes = Buffer.from(raw);
      assert.equal(await c.one(`MAIL FROM:<${ALICE}> BODY=BINARYMIME`), '250 2.1.0 Sender OK');
      assert.equal(await c.one(`RCPT TO:<${BOB}>`), '250 2.1.5 Recipient OK');
      assertError(await c.one('DATA'), '503 5.5.1 Bad sequence of commands', c);
      const first = bytes.subarray(0, 50);
      c.write(Buffer.concat([Buffer.from(`BDAT ${first.length}\r\n`), first]));
      assert.deepEqual(await c.reply(), [`250 2.6.0 CHUNK received OK, ${first.length} octets`]);
      const rest = bytes.subarray(50);
      c.write(Buffer.concat([Buffer.from(`BDAT ${rest.length} LAST\r\n`), rest]));
      assert.match((await c.reply())[0]!, /^250 2\.0\.0 OK <chunked@client\.example> /);
      assertReceivedCopy(await lastMessage(BOB, 'INBOX'), raw);
    });

    it('answers transaction commands out of order and bad arguments with Exchange replies', async () => {
      const c = await loggedIn();
      assertError(await c.one(`RCPT TO:<${BOB}>`), '503 5.5.2 Need mail command', c);
      assertError(await c.one('DATA'), '503 5.5.2 Need mail command', c);
      assertError(await c.one('MAIL FROM alice'), '501 5.5.4 Invalid arguments', c);
      assertError(await c.one('MAIL FROM:<not an address>'), '501 5.1.7 Invalid address', c);
      const d = await loggedIn();
      assertError(await d.one(`MAIL FROM:<${ALICE}> COLOUR=blue`), '501 5.5.4 Unrecognized parameter', d);
      assertError(await d.one(`MAIL FROM:<${ALICE}> BODY=9BIT`), '501 5.5.4 Unsupported BODY type', d);
      assertError(await d.one(`MAIL FROM:<${ALICE}> SIZE=157286401`), '552 5.3.4 Message size exceeds fixed maximum message size', d);
      assert.equal(await d.one(`MAIL FROM:<${ALICE}>`), '250 2.1.0 Sender OK');
      assertError(await d.one(`MAIL FROM:<${ALICE}>`), '503 5.5.2 Sender already specified', d);
      assertError(await d.one('DATA'), '503 5.5.2 Need rcpt command', d);
      const e = await loggedIn();
      assert.equal(await e.one(`MAIL FROM:<${ALICE}>`), '250 2.1.0 Sender OK');
      assertError(await e.one('RCPT TO:<bad@@example>'), '501 5.1.3 Invalid address', e);
      assertError(await e.one('RCPT TO:<jürgen@fabrikam.example>'), '501 5.1.8 UTF-8 addresses not supported', e);
      assert.equal(await e.one('RSET'), '250 2.0.0 Resetting');
      assert.equal(await e.one(`MAIL FROM:<${ALICE}> SMTPUTF8`), '250 2.1.0 Sender OK');
      assert.equal(await e.one('RCPT TO:<jürgen@fabrikam.example>'), '250 2.1.5 Recipient OK');
    });

    it('refuses a submission beyond the per-mailbox connection limit: 432 4.3.2', async () => {
      // Bob, whom no other test logs in as, so that only these two sessions hold his slots.
      const bobToken = await userToken(emu, BOB);
      const settings = emu.running.exchange.settings;
      const saved = settings.maxConnectionsPerMailbox;
      settings.maxConnectionsPerMailbox = 1;
      try {
        const first = await loggedIn(BOB, bobToken);
        const second = await loggedIn(BOB, bobToken);
        const reply = await send(second, BOB, [ALICE], message(BOB, ALICE, 'too many at once'));
        assert.equal(
          reply,
          `432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information. [Hostname=${names.mailbox}]`,
        );
        assert.equal(await first.one('QUIT'), '221 2.0.0 Service closing transmission channel');
        await first.closed();
        assert.match(await send(second, BOB, [ALICE], message(BOB, ALICE, 'now it fits')), /^250 2\.0\.0 OK /);
      } finally {
        settings.maxConnectionsPerMailbox = saved;
      }
    });
  });

  describe('limits', () => {
    // Servers of the same emulator with small limits (tokens are longer than 4 KB at most here).
    let server: RunningLineServer;
    let idle: RunningLineServer;
    const limits: Partial<SmtpLimits> = { maxLineBytes: 8192, maxMessageBytes: 20_000, maxProtocolErrors: 3 };
    before(async () => {
      server = await startSmtpServer(emu.running.exchange, { host: '127.0.0.1', port: 0, implicitTls: false, limits });
      idle = await startSmtpServer(emu.running.exchange, { host: '127.0.0.1', port: 0, implicitTls: false, limits: { idleTimeoutMs: 300 } });
    });
    after(async () => {
      await server.close();
      await idle.close();
    });

    it('answers an over-long command line with 500 5.5.2 and goes on', async () => {
      const c = await connect(server.port);
      assertError(await c.one(`EHLO ${'x'.repeat(9000)}`), '500 5.5.2 Command too long', c);
      assert.equal((await c.ask('EHLO client.example'))[1], '250-SIZE 20000');
    });

    it('refuses a message over the size limit after its end: 552 5.3.4', async () => {
      const c = await secured(server.port);
      assert.equal(await c.one(`AUTH XOAUTH2 ${xoauth2(ALICE, aliceToken)}`), '235 2.7.0 Authentication successful');
      const before = await messageCount(BOB, 'INBOX');
      assert.equal(await c.one(`MAIL FROM:<${ALICE}>`), '250 2.1.0 Sender OK');
      assert.equal(await c.one(`RCPT TO:<${BOB}>`), '250 2.1.5 Recipient OK');
      assert.equal(await c.one('DATA'), '354 Start mail input; end with <CRLF>.<CRLF>');
      c.write(`${message(ALICE, BOB, 'big', `${'y'.repeat(500)}\r\n`.repeat(50))}.\r\n`);
      assertError((await c.reply())[0]!, '552 5.3.4 Message size exceeds fixed maximum message size', c);
      assert.equal(await messageCount(BOB, 'INBOX'), before);
      // A message line over the line bound cannot be kept: refused, session goes on.
      assert.equal(await c.one(`MAIL FROM:<${ALICE}>`), '250 2.1.0 Sender OK');
      assert.equal(await c.one(`RCPT TO:<${BOB}>`), '250 2.1.5 Recipient OK');
      assert.equal(await c.one('DATA'), '354 Start mail input; end with <CRLF>.<CRLF>');
      c.write(`Subject: x\r\n\r\n${'z'.repeat(9000)}\r\n.\r\n`);
      assertError((await c.reply())[0]!, '554 5.6.0 Invalid message content', c);
      assert.equal(await c.one('NOOP'), '250 2.0.0 OK');
    });

    it('closes the connection after too many errors: 421 4.7.0', async () => {
      const c = await connect(server.port);
      for (let i = 0; i < 3; i++) assertError(await c.one(`BOGUS${i}`), `500 5.3.3 Unrecognized command 'BOGUS${i}'`, c);
      assertError(await c.one('BOGUS3'), '421 4.7.0 Too many errors on this connection, closing transmission channel', c);
      await c.closed();
    });

    it('closes an idle connection: 451 4.7.0 Timeout waiting for client input', async () => {
      const c = await connect(idle.port);
      const started = Date.now();
      assertError((await c.reply())[0]!, '451 4.7.0 Timeout waiting for client input', c);
      await c.closed();
      assert.ok(Date.now() - started < 5000);
    });
  });
});
