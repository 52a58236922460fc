// The legacy proxy end to end against the emulator: every pre-login form a legacy client uses,
// on plain, STARTTLS and implicit TLS listeners; what goes through is the mailbox's own bytes;
// app passwords decide which mailbox a client reaches; tokens are refreshed once for many logins
// and once more when the server refuses one; and no log line ever holds a secret.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { LineClient } from '../helpers/line-client.ts';
import { startTestProxy, type TestProxy } from '../helpers/proxy.ts';

const ALICE = 'alice@contoso.com';
const SUPPORT = 'support@contoso.com';
const MESSAGE = [
  'From: Carol <carol@fabrikam.com>',
  'To: Alice <alice@contoso.com>',
  'Subject: proxy byte check',
  'Message-ID: <proxy-check@fabrikam.com>',
  'Date: Sat, 21 Nov 2026 10:00:00 +0000',
  '',
  '.a line starting with a dot',
  'tabs\tand trailing spaces   ',
  '',
].join('\r\n');

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('mailbridge proxy (upstream: the emulator)', () => {
  let emu: TestEmulator;
  let proxy: TestProxy;
  let alicePassword: string;
  let supportPassword: string;
  let proxyCert: string;

  before(async () => {
    emu = await startTestEmulator();
    const delivered = await emu.admin('POST', `/mailboxes/${ALICE}/messages`, { raw: MESSAGE });
    assert.equal(delivered.status, 201, delivered.text);
    proxy = await startTestProxy(emu, {
      listeners: [
        { protocol: 'imap' },
        { protocol: 'imap', security: 'starttls' },
        { protocol: 'imap', security: 'implicit' },
        { protocol: 'pop' },
        { protocol: 'pop', security: 'implicit' },
        { protocol: 'pop', security: 'starttls' },
        { protocol: 'smtp', security: 'starttls' },
        { protocol: 'smtp' },
      ],
      proxy: { failedLogins: { max: 8, windowSeconds: 300 } },
      debug: true,
    });
    alicePassword = await proxy.addClient('helpdesk', [ALICE]);
    supportPassword = await proxy.addClient('erp', [SUPPORT]);
    proxyCert = await readFile(proxy.running.listeners.find((l) => l.security === 'implicit')!.certificateFile!, 'utf8');
  });

  after(async () => {
    await proxy?.close();
    await emu?.close();
  });

  const connect = (protocol: 'imap' | 'pop' | 'smtp', n = 0, tlsCa?: string) =>
    LineClient.connect({ port: proxy.port(protocol, n), ...(tlsCa ? { tlsCa } : {}) });

  it("IMAP LOGIN with an app password, as an atom, quoted, a literal and a LITERAL+; the session is then the mailbox's", async () => {
    const forms: ((c: LineClient) => Promise<void>)[] = [
      async (c) => c.send(`a LOGIN ${ALICE} ${alicePassword}`),
      async (c) => c.send(`a LOGIN "${ALICE}" "${alicePassword}"`),
      async (c) => {
        c.send(`a LOGIN {${ALICE.length}}`);
        assert.match((await c.line())!, /^\+ /);
        c.send(`${ALICE} {${alicePassword.length}}`);
        assert.match((await c.line())!, /^\+ /);
        c.send(alicePassword);
      },
      async (c) => {
        c.socket.write(`a LOGIN {${ALICE.length}+}\r\n${ALICE} {${alicePassword.length}+}\r\n${alicePassword}\r\n`);
      },
    ];
    for (const form of forms) {
      const c = await connect('imap');
      const greeting = (await c.line())!;
      // The upstream's capabilities join the proxy's once a login has shown them (issue 12 point 6).
      assert.match(greeting, /^\* OK \[CAPABILITY IMAP4rev1 LITERAL\+ SASL-IR ID (\S+ )*AUTH=PLAIN\] .*mailbridge IMAP proxy ready/);
      await form(c);
      const ok = await c.untilTagged('a');
      assert.match(ok.at(-1)!, /^a OK /);
      c.send('b SELECT INBOX');
      const selected = await c.untilTagged('b');
      assert.match(selected.at(-1)!, /^b OK \[READ-WRITE\]/, selected.join('\n'));
      assert.ok(
        selected.some((l) => /^\* 1 EXISTS$/.test(l)),
        selected.join('\n'),
      );
      c.send('c LOGOUT');
      assert.match((await c.untilTagged('c')).at(-1)!, /^c OK/);
      c.close();
    }
  });

  it('IMAP AUTHENTICATE PLAIN with and without SASL-IR; a fetched message is byte-identical to the mailbox', async () => {
    for (const withIr of [true, false]) {
      const c = await connect('imap', 2, proxyCert);
      await c.line();
      const plain = b64(`\0${ALICE}\0${alicePassword}`);
      if (withIr) c.send(`a AUTHENTICATE PLAIN ${plain}`);
      else {
        c.send('a AUTHENTICATE PLAIN');
        assert.equal(await c.line(), '+ ');
        c.send(plain);
      }
      assert.match((await c.untilTagged('a')).at(-1)!, /^a OK/);
      c.send('b EXAMINE INBOX');
      await c.untilTagged('b');
      c.send('c FETCH 1 BODY.PEEK[]');
      const head = (await c.line())!;
      const size = Number(/\{(\d+)\}$/.exec(head)?.[1]);
      assert.equal(size, Buffer.byteLength(MESSAGE));
      assert.equal((await c.bytes(size))!.toString('utf8'), MESSAGE);
      assert.match((await c.untilTagged('c')).at(-1)!, /^c OK/);
      c.close();
    }
  });

  it('POP3 USER/PASS, AUTH PLAIN and AUTH LOGIN on plain, implicit TLS and STLS listeners; RETR is byte-identical', async () => {
    const logins: ((c: LineClient) => Promise<string | null>)[] = [
      async (c) => {
        assert.match((await c.ask(`USER ${ALICE}`))!, /^\+OK/);
        return c.ask(`PASS ${alicePassword}`);
      },
      async (c) => c.ask(`AUTH PLAIN ${b64(`\0${ALICE}\0${alicePassword}`)}`),
      async (c) => {
        assert.equal(await c.ask('AUTH LOGIN'), `+ ${b64('Username:')}`);
        assert.equal(await c.ask(b64(ALICE)), `+ ${b64('Password:')}`);
        return c.ask(b64(alicePassword));
      },
    ];
    for (const [n, tlsCa] of [
      [0, undefined],
      [1, proxyCert],
      [2, undefined],
    ] as const) {
      for (const login of logins) {
        const c = await connect('pop', n, tlsCa);
        assert.match((await c.line())!, /^\+OK .*mailbridge POP3 proxy ready/);
        if (n === 2) {
          c.send('CAPA');
          assert.match((await c.line())!, /^\+OK/);
          const caps = await c.block();
          assert.ok(caps.includes('STLS') && !caps.includes('USER'), `before STLS only STLS is offered: ${caps.join(',')}`);
          assert.match((await c.ask(`USER ${ALICE}`))!, /^-ERR \[AUTH\] TLS is required first/);
          assert.match((await c.ask('STLS'))!, /^\+OK/);
          await c.startTls(proxyCert);
        }
        assert.match((await login(c))!, /^\+OK/);
        assert.match((await c.ask('STAT'))!, /^\+OK 1 \d+$/);
        assert.match((await c.ask('RETR 1'))!, /^\+OK/);
        const lines = await c.block();
        assert.equal(`${lines.join('\r\n')}\r\n`, MESSAGE);
        assert.match((await c.ask('QUIT'))!, /^\+OK/);
        c.close();
      }
    }
  });

  it('SMTP: no AUTH before STARTTLS; after it AUTH PLAIN and AUTH LOGIN; the message sent arrives', async () => {
    const subject = `through the proxy ${Date.now()}`;
    const inboxOfBob = async () =>
      (await emu.admin('GET', '/mailboxes/bob@contoso.com/messages'))
        .json<{ folder: string; messages: { size: number }[] }[]>()
        .find((f) => f.folder === 'INBOX')!.messages;
    const countBefore = (await inboxOfBob()).length;
    for (const mechanism of ['PLAIN', 'LOGIN'] as const) {
      const c = await connect('smtp', 0);
      assert.match((await c.line())!, /^220 .*mailbridge ESMTP proxy ready/);
      c.send('EHLO client.example');
      const plainEhlo: string[] = [];
      for (let l = await c.line(); l !== null; l = await c.line()) {
        plainEhlo.push(l);
        if (l.startsWith('250 ')) break;
      }
      assert.ok(plainEhlo.some((l) => /STARTTLS/.test(l)) && !plainEhlo.some((l) => /AUTH/.test(l)), plainEhlo.join('\n'));
      assert.match((await c.ask(`AUTH PLAIN ${b64(`\0${ALICE}\0${alicePassword}`)}`))!, /^530 5\.7\.0 Must issue a STARTTLS command first/);
      assert.match((await c.ask('STARTTLS'))!, /^220 /);
      await c.startTls(proxyCert);
      c.send('EHLO client.example');
      const afterTls: string[] = [];
      for (let l = await c.line(); l !== null; l = await c.line()) {
        afterTls.push(l);
        if (l.startsWith('250 ')) break;
      }
      assert.ok(
        afterTls.some((l) => /^250[- ]AUTH PLAIN LOGIN$/.test(l)),
        afterTls.join('\n'),
      );
      if (mechanism === 'PLAIN') assert.match((await c.ask(`AUTH PLAIN ${b64(`\0${ALICE}\0${alicePassword}`)}`))!, /^235 /);
      else {
        assert.equal(await c.ask('AUTH LOGIN'), `334 ${b64('Username:')}`);
        assert.equal(await c.ask(b64(ALICE)), `334 ${b64('Password:')}`);
        assert.match((await c.ask(b64(alicePassword)))!, /^235 /);
      }
      assert.match((await c.ask(`MAIL FROM:<${ALICE}>`))!, /^250 /);
      assert.match((await c.ask('RCPT TO:<bob@contoso.com>'))!, /^250 /);
      assert.match((await c.ask('DATA'))!, /^354 /);
      c.socket.write(`From: ${ALICE}\r\nTo: bob@contoso.com\r\nSubject: ${subject} ${mechanism}\r\n\r\nHello from a legacy program.\r\n.\r\n`);
      assert.match((await c.line())!, /^250 /);
      assert.match((await c.ask('QUIT'))!, /^221 /);
      c.close();
    }
    assert.equal((await inboxOfBob()).length, countBefore + 2, "both messages are in bob's INBOX");
  });

  it("a wrong password, an unknown mailbox or another client's mailbox is refused without any token request", async () => {
    const before = (await emu.counters()).token?.total ?? 0;
    const attempts: [string, string][] = [
      [ALICE, `${alicePassword.slice(0, -1)}x`],
      ['nobody@contoso.com', alicePassword],
      [SUPPORT, alicePassword],
      [ALICE, 'password'],
    ];
    for (const [user, password] of attempts) {
      const c = await LineClient.connect({ port: proxy.port('imap'), host: '127.0.0.1' });
      await c.line();
      assert.equal(await c.ask(`a LOGIN "${user}" "${password}"`), 'a NO [AUTHENTICATIONFAILED] Authentication failed.');
      c.close();
    }
    assert.equal((await emu.counters()).token?.total ?? 0, before, 'no token was requested for a refused login');
    // The audit line tells an administrator what the client was not told.
    assert.deepEqual(
      proxy
        .audits()
        .slice(-4)
        .map((a) => a.result),
      ['bad_password', 'unknown_mailbox', 'mailbox_not_allowed', 'unknown_client'],
    );
  });

  it('a client-credentials mailbox is reached only with an app password mapped to it', async () => {
    const refused = await connect('pop', 0);
    await refused.line();
    assert.match((await refused.ask(`AUTH PLAIN ${b64(`\0${SUPPORT}\0${alicePassword}`)}`))!, /^-ERR \[AUTH\] Authentication failed\./);
    refused.close();
    const c = await connect('pop', 0);
    await c.line();
    assert.match((await c.ask(`USER ${SUPPORT}`))!, /^\+OK/);
    assert.match((await c.ask(`PASS ${supportPassword}`))!, /^\+OK/);
    assert.match((await c.ask('STAT'))!, /^\+OK \d+ \d+$/);
    c.close();
    // And the ERP's password opens nothing else.
    const other = await connect('pop', 0);
    await other.line();
    assert.match((await other.ask(`AUTH PLAIN ${b64(`\0${ALICE}\0${supportPassword}`)}`))!, /^-ERR \[AUTH\]/);
    other.close();
  });

  it('one audit line per session (client, mailbox, protocol, bytes each way, result); no log line holds a secret; the debug transcript redacts credentials', async () => {
    const c = await connect('pop', 0);
    await c.line();
    await c.ask(`USER ${ALICE}`);
    await c.ask(`PASS ${alicePassword}`);
    await c.ask('STAT');
    await c.ask('QUIT');
    c.close();
    const audit = await proxy.waitForAudit((a) => a.protocol === 'pop' && a.result === 'ok' && (a.bytesFromClient as number) === 'STAT\r\nQUIT\r\n'.length);
    assert.equal(audit.mailbox, ALICE);
    assert.equal(audit.appClient, 'helpdesk');
    assert.match(String(audit.client), /^127\.0\.0\.1:\d+$/);
    assert.match(String(audit.upstream), /^localhost:\d+$/);
    assert.ok((audit.bytesToClient as number) > 0);
    assert.equal(typeof audit.durationMs, 'number');

    const secrets = [alicePassword, supportPassword, b64(`\0${ALICE}\0${alicePassword}`), b64(alicePassword), b64(`\0${SUPPORT}\0${alicePassword}`)];
    for (const mailbox of [ALICE, SUPPORT]) {
      const record = await proxy.store.get(mailbox);
      for (const t of Object.values(record?.secrets.accessTokens ?? {})) if (t) secrets.push(t.token, t.token.split('.')[2]!);
    }
    assert.ok(secrets.length >= 8, 'tokens were found to look for');
    const all = proxy.logLines.join('\n');
    for (const secret of secrets) assert.ok(!all.includes(secret), `a log line holds a secret (${secret.slice(0, 6)}…)`);
    // The transcript is there and says where the credentials were.
    assert.ok(proxy.logLines.some((l) => l.includes('"client":"PASS [password]"')));
    assert.ok(proxy.logLines.some((l) => l.includes('LOGIN [credentials]')));
    assert.ok(proxy.logLines.some((l) => /"client":"AUTH PLAIN \[credentials\]"/.test(l)));
  });

  it('a script that sends everything and half-closes still gets every reply, through login and relay', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port('pop', 0) });
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.end(`USER ${ALICE}\r\nPASS ${alicePassword}\r\nRETR 1\r\nQUIT\r\n`);
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const lines = received.split('\r\n');
    assert.match(lines[0]!, /^\+OK .*proxy ready/);
    assert.match(lines[2]!, /^\+OK/, received.slice(0, 300));
    assert.ok(received.includes(MESSAGE.replace('\r\n.a line', '\r\n..a line')), 'the whole message, dot-stuffed, came back');
    assert.match(received, /\r\n\.\r\n\+OK[^\r]*\r\n$/, 'and the answer to QUIT');
  });
});
