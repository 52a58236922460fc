// The emulator's POP3 server answers as Exchange Online does (reference sections 4.4 and 8.4):
// greeting, CAPA, the two-step AUTH XOAUTH2 only, each refusal, and the RFC 1939 transaction.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { encodeXoauth2 } from '../../../src/net/sasl-xoauth2.ts';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { LineClient } from '../../helpers/line-client.ts';
import { appToken, SCOPES, userToken } from '../../helpers/mail-tokens.ts';

const GREETING = /^\+OK The Microsoft Exchange POP3 service is ready\. \[[A-Za-z0-9+/]+=*\]$/;
const AUTH_FAILURE = '-ERR Authentication failure: unknown user name or bad password.';
const SERVICE_SP = 'b07c5e9b-3d8f-4b2a-8c4e-6f8d2b4a7c04';

function message(n: number, body: string): string {
  return `From: Sender <s${n}@fabrikam.example>\r\nTo: <bob@contoso.com>\r\nSubject: Test ${n}\r\nMessage-ID: <m${n}@fabrikam.example>\r\n\r\n${body}`;
}

describe('emulated Exchange POP3', () => {
  let emu: TestEmulator;
  let ca: string;
  before(async () => {
    emu = await startTestEmulator();
    ca = emu.caPem;
    // Bob's inbox: three messages, one of them with lines that start with a dot.
    for (const [n, body] of [
      [1, 'first\r\n'],
      [2, '.leading dot\r\n..two dots\r\nline 3\r\nline 4\r\n'],
      [3, 'third\r\n'],
    ] as const) {
      const res = await emu.admin('POST', '/mailboxes/bob@contoso.com/messages', { raw: message(n, body) });
      assert.equal(res.status, 201, res.text);
    }
  });
  after(() => emu.close());

  const pop3s = () => LineClient.connect({ port: emu.running.mailPorts.pop3s, tlsCa: ca });

  /** Logs in over pop3s with the two-step form; returns the client and the reply. */
  async function login(user: string, token: string): Promise<{ c: LineClient; reply: string | null }> {
    const c = await pop3s();
    assert.match((await c.line()) ?? '', GREETING);
    assert.equal(await c.ask('AUTH XOAUTH2'), '+ ');
    return { c, reply: await c.ask(encodeXoauth2(user, token)) };
  }

  describe('before login', () => {
    it('greets and lists the capabilities of port 995', async () => {
      const c = await pop3s();
      assert.match((await c.line()) ?? '', GREETING);
      assert.equal(await c.ask('CAPA'), '+OK');
      assert.deepEqual(await c.block(), ['TOP', 'UIDL', 'SASL PLAIN XOAUTH2', 'USER']);
      assert.equal(await c.ask('QUIT'), '+OK Microsoft Exchange Server POP3 server signing off.');
      await c.closed();
    });

    it('offers STLS on the plain port and lists the same capabilities after it', async () => {
      const c = await LineClient.connect({ port: emu.running.mailPorts.pop3 });
      assert.match((await c.line()) ?? '', GREETING);
      c.send('CAPA');
      assert.equal(await c.line(), '+OK');
      assert.ok((await c.block()).includes('STLS'));
      assert.equal(await c.ask('STLS'), '+OK Begin TLS negotiation.');
      await c.startTls(ca);
      c.send('CAPA');
      assert.equal(await c.line(), '+OK');
      assert.deepEqual(await c.block(), ['TOP', 'UIDL', 'SASL PLAIN XOAUTH2', 'USER']);
      c.close();
    });

    it('refuses USER/PASS as Exchange refuses basic authentication', async () => {
      const c = await pop3s();
      await c.line();
      assert.equal(await c.ask('USER bob@contoso.com'), '+OK');
      assert.equal(await c.ask('PASS secret'), '-ERR Logon failure: unknown user name or bad password.');
      c.close();
    });

    it('closes the session on the one-line AUTH XOAUTH2 form', async () => {
      const c = await pop3s();
      await c.line();
      assert.equal(
        await c.ask(`AUTH XOAUTH2 ${encodeXoauth2('bob@contoso.com', await userToken(emu, 'bob@contoso.com'))}`),
        '-ERR Protocol error. Connection is closed. 10',
      );
      await c.closed();
    });

    it('answers transaction commands before login with an error', async () => {
      const c = await pop3s();
      await c.line();
      assert.equal(await c.ask('STAT'), '-ERR Command is not valid in this state.');
      assert.equal(await c.ask('FROB'), '-ERR Protocol error. 14');
      c.close();
    });
  });

  describe('refusals (reference section 4.4, POP column)', () => {
    beforeEach(async () => {
      await emu.admin('DELETE', '/mail-failures');
    });

    const refused = async (user: string, token: string) => {
      const { c, reply } = await login(user, token);
      c.close();
      assert.equal(reply, AUTH_FAILURE);
    };

    it('a Graph token', async () => {
      await refused('bob@contoso.com', await userToken(emu, 'bob@contoso.com', ['POP.AccessAsUser.All']));
    });
    it('an expired token', async () => {
      const token = await userToken(emu, 'bob@contoso.com', [SCOPES.pop]);
      await emu.admin('POST', '/clock', { advanceSeconds: 7200 });
      try {
        await refused('bob@contoso.com', token);
      } finally {
        await emu.admin('POST', '/clock', { reset: true });
      }
    });
    it('a token without the POP scope', async () => {
      await refused('bob@contoso.com', await userToken(emu, 'bob@contoso.com', [SCOPES.imap]));
    });
    it("another user's mailbox without FullAccess", async () => {
      await refused('alice@contoso.com', await userToken(emu, 'bob@contoso.com', [SCOPES.pop]));
    });
    it('POP switched off for the mailbox', async () => {
      await emu.admin('PATCH', '/mailboxes/bob@contoso.com', { popEnabled: false });
      try {
        await refused('bob@contoso.com', await userToken(emu, 'bob@contoso.com', [SCOPES.pop]));
      } finally {
        await emu.admin('PATCH', '/mailboxes/bob@contoso.com', { popEnabled: true });
      }
    });
    it('an app-only token: without the role, without the service principal, without mailbox permission', async () => {
      const token = await appToken(emu);
      // With all three in place the shared mailbox opens...
      const ok = await login('support@contoso.com', token);
      assert.equal(ok.reply, '+OK User successfully authenticated.');
      ok.c.close();
      // ...but not alice's, on which the service principal has no FullAccess.
      await refused('alice@contoso.com', token);
      await emu.admin('DELETE', `/exchange/service-principals/${SERVICE_SP}`);
      try {
        await refused('support@contoso.com', token);
      } finally {
        await emu.admin('POST', '/exchange/service-principals', { tenant: DEFAULT_IDS.tenant, appId: DEFAULT_IDS.serviceApp, objectId: SERVICE_SP });
      }
      const service = emu.scenario.apps.find((a) => a.clientId === DEFAULT_IDS.serviceApp)!;
      const roles = service.appRoles.exchange!;
      service.appRoles.exchange = ['IMAP.AccessAsApp'];
      try {
        await refused('support@contoso.com', await appToken(emu));
      } finally {
        service.appRoles.exchange = roles;
      }
    });
    it('a shared mailbox with the delegate token of a user who has FullAccess', async () => {
      const { c, reply } = await login('support@contoso.com', await userToken(emu, 'alice@contoso.com', [SCOPES.pop]));
      c.close();
      assert.equal(reply, '+OK User successfully authenticated.');
    });
    it('throttled, with the backoff time; unavailable', async () => {
      await emu.admin('POST', '/mail-failures', { protocol: 'pop', kind: 'throttled', backoffMs: 12345, times: 1 });
      const token = await userToken(emu, 'bob@contoso.com', [SCOPES.pop]);
      assert.equal((await login('bob@contoso.com', token)).reply, '-ERR Request is throttled. Suggested Backoff Time: 12345 milliseconds');
      await emu.admin('POST', '/mail-failures', { protocol: 'pop', kind: 'unavailable', times: 1 });
      assert.equal((await login('bob@contoso.com', token)).reply, '-ERR Server Unavailable. 21');
      const ok = await login('bob@contoso.com', token);
      ok.c.close();
      assert.equal(ok.reply, '+OK User successfully authenticated.');
    });
  });

  describe('limits', () => {
    it('refuses a login beyond the per-mailbox connection cap, and frees the slot on QUIT', async () => {
      await emu.admin('PATCH', '/settings', { mail: { maxConnectionsPerMailbox: 1 } });
      try {
        const token = await userToken(emu, 'bob@contoso.com', [SCOPES.pop]);
        const first = await login('bob@contoso.com', token);
        assert.equal(first.reply, '+OK User successfully authenticated.');
        assert.equal((await login('bob@contoso.com', token)).reply, '-ERR Too many concurrent connections for this mailbox.');
        assert.equal(await first.c.ask('QUIT'), '+OK Microsoft Exchange Server POP3 server signing off.');
        await first.c.closed();
        const third = await login('bob@contoso.com', token);
        assert.equal(third.reply, '+OK User successfully authenticated.');
        third.c.close();
      } finally {
        await emu.admin('PATCH', '/settings', { mail: { maxConnectionsPerMailbox: 20 } });
      }
    });

    it('answers a line over the bound with an error and goes on serving the session', async () => {
      const c = await pop3s();
      await c.line();
      c.send('X'.repeat(40 * 1024));
      assert.equal(await c.line(), '-ERR Protocol error. Line is too long.');
      assert.equal(await c.ask('CAPA'), '+OK');
      c.close();
    });
  });

  describe('transaction', () => {
    it('STAT, LIST, UIDL, TOP and RETR (dot-stuffed) over a pipelined batch', async () => {
      const { c, reply } = await login('bob@contoso.com', await userToken(emu, 'bob@contoso.com', [SCOPES.pop]));
      assert.equal(reply, '+OK User successfully authenticated.');
      const sizes = [message(1, 'first\r\n'), message(2, '.leading dot\r\n..two dots\r\nline 3\r\nline 4\r\n'), message(3, 'third\r\n')].map((m) =>
        Buffer.byteLength(m),
      );
      // Everything at once, as a pipelining client sends it.
      c.socket.write('STAT\r\nLIST\r\nUIDL\r\nTOP 2 1\r\nRETR 2\r\nLIST 9\r\n');
      assert.equal(await c.line(), `+OK 3 ${sizes.reduce((a, b) => a + b)}`);
      assert.equal(await c.line(), `+OK 3 messages (${sizes.reduce((a, b) => a + b)} octets)`);
      assert.deepEqual(
        await c.block(),
        sizes.map((s, i) => `${i + 1} ${s}`),
      );
      assert.equal(await c.line(), '+OK');
      const uids = await c.block();
      assert.equal(new Set(uids.map((l) => l.split(' ')[1])).size, 3);
      assert.equal(await c.line(), '+OK');
      assert.deepEqual(await c.block(), [
        'From: Sender <s2@fabrikam.example>',
        'To: <bob@contoso.com>',
        'Subject: Test 2',
        'Message-ID: <m2@fabrikam.example>',
        '',
        '.leading dot',
      ]);
      assert.equal(await c.line(), '+OK');
      assert.deepEqual((await c.block()).slice(5), ['.leading dot', '..two dots', 'line 3', 'line 4']);
      assert.equal(await c.line(), '-ERR The specified message is out of range.');
      c.close();
    });

    it('DELE marks, RSET unmarks, QUIT removes; the UIDL of the rest stays the same', async () => {
      const token = await userToken(emu, 'bob@contoso.com', [SCOPES.pop]);
      const first = await login('bob@contoso.com', token);
      first.c.send('UIDL');
      assert.equal(await first.c.line(), '+OK');
      const before = await first.c.block();
      assert.equal(await first.c.ask('DELE 1'), '+OK');
      assert.equal(await first.c.ask('RETR 1'), '-ERR The specified message has been deleted.');
      assert.equal(await first.c.ask('RSET'), '+OK');
      assert.equal(await first.c.ask('DELE 3'), '+OK');
      assert.equal(await first.c.ask('NOOP'), '+OK');
      assert.equal(await first.c.ask('QUIT'), '+OK Microsoft Exchange Server POP3 server signing off.');
      await first.c.closed();

      const second = await login('bob@contoso.com', token);
      second.c.send('UIDL');
      assert.equal(await second.c.line(), '+OK');
      assert.deepEqual(await second.c.block(), before.slice(0, 2));
      second.c.close();
    });

    it('LIST, STAT and LIST n state the octets RETR sends, also for a message without a final CRLF', async () => {
      // Alice's inbox: one message that ends mid-line (fetchmail warned about it), one that does not.
      const unterminated = message(4, 'no line end at the end');
      const terminated = message(5, '.dot\r\nend\r\n');
      for (const raw of [unterminated, terminated]) assert.equal((await emu.admin('POST', '/mailboxes/alice@contoso.com/messages', { raw })).status, 201);
      const { c, reply } = await login('alice@contoso.com', await userToken(emu, 'alice@contoso.com', [SCOPES.pop]));
      assert.equal(reply, '+OK User successfully authenticated.');
      // What a client receives of each message: its lines, unstuffed, each ended by CRLF.
      const received: number[] = [];
      for (const n of [1, 2]) {
        assert.equal(await c.ask(`RETR ${n}`), '+OK');
        received.push((await c.block()).reduce((sum, line) => sum + Buffer.byteLength(line, 'latin1') + 2, 0));
      }
      assert.deepEqual(received, [Buffer.byteLength(unterminated) + 2, Buffer.byteLength(terminated)]);
      assert.equal(await c.ask('STAT'), `+OK 2 ${received[0]! + received[1]!}`);
      c.send('LIST');
      assert.equal(await c.line(), `+OK 2 messages (${received[0]! + received[1]!} octets)`);
      assert.deepEqual(await c.block(), [`1 ${received[0]}`, `2 ${received[1]}`]);
      assert.equal(await c.ask('LIST 1'), `+OK 1 ${received[0]}`);
      c.close();
    });

    it('a token over 4 KB is accepted (no field has a length limit)', async () => {
      await emu.admin('PATCH', '/settings', { accessTokenMinLength: 6000 });
      try {
        const token = await userToken(emu, 'bob@contoso.com', [SCOPES.pop]);
        assert.ok(token.length >= 6000, String(token.length));
        const { c, reply } = await login('bob@contoso.com', token);
        c.close();
        assert.equal(reply, '+OK User successfully authenticated.');
      } finally {
        await emu.admin('PATCH', '/settings', { accessTokenMinLength: 0 });
      }
    });
  });
});
