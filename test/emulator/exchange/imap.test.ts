// The emulator's IMAP server answers as Exchange Online does (reference sections 4.4 and 8.3):
// greeting, capabilities before and after TLS and login, AUTHENTICATE XOAUTH2 with and without
// SASL-IR, every refusal of the section 4.4 table, throttling, and reading, flagging, moving and
// deleting mail with raw commands, reply for reply.
import assert from 'node:assert/strict';
import { upgradeToTls } from '../../helpers/line-client.ts';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LineReader } from '../../../src/net/line-reader.ts';
import { generatedMessage } from '../../../src/emulator/exchange/mail-store.ts';
import { encodeXoauth2 } from '../../../src/net/sasl-xoauth2.ts';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { appToken, SCOPES, userToken } from '../../helpers/mail-tokens.ts';

const CAPS_PRE = '* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+';
const CAPS_PLAIN = '* CAPABILITY IMAP4 IMAP4rev1 LOGINDISABLED STARTTLS UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+';
const CAPS_POST =
  '* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CLIENTACCESSRULES CLIENTNETWORKPRESENCELOCATION BACKENDAUTHENTICATE CHILDREN IDLE NAMESPACE LITERAL+';
const FLAGS = '(\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)';
const SERVICE_SP = 'b07c5e9b-3d8f-4b2a-8c4e-6f8d2b4a7c04';
const SIZE = 900;

/** A raw IMAP client for tests: reads responses with their literals inline (latin1). */
class Imap {
  socket: net.Socket | tls.TLSSocket;
  #reader: LineReader;

  private constructor(socket: net.Socket | tls.TLSSocket) {
    this.socket = socket;
    this.#reader = new LineReader(socket, { maxLineBytes: 4 * 1024 * 1024 });
    socket.on('error', () => {});
  }

  static async connect(port: number, ca?: string): Promise<Imap> {
    const socket = ca ? tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }) : net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(ca ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new Imap(socket);
  }

  async #timed<T>(work: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within 10 s`)), 10_000)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One response line, literals included (`{n}\r\n<bytes>`), or null when the server closed. */
  async read(): Promise<string | null> {
    let text = '';
    for (;;) {
      const line = await this.#timed(this.#reader.readLine(), 'response');
      if (line === null) return text === '' ? null : text;
      text += line.toString('latin1');
      const m = /\{(\d+)\}$/.exec(text);
      if (!m) return text;
      const bytes = await this.#timed(this.#reader.readBytes(Number(m[1])), 'literal');
      if (bytes === null) return null;
      text += `\r\n${bytes.toString('latin1')}`;
    }
  }

  send(text: string): void {
    this.socket.write(`${text}\r\n`);
  }

  /** Sends `tag text` and returns every line up to and including the tagged one. */
  async run(tag: string, text: string): Promise<string[]> {
    this.send(`${tag} ${text}`);
    return this.until(tag);
  }

  async until(tag: string): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.read();
      if (line === null) throw new Error(`closed before ${tag} completed: ${JSON.stringify(lines)}`);
      lines.push(line);
      if (line.startsWith(`${tag} `)) return lines;
    }
  }

  async startTls(ca: string): Promise<void> {
    this.#reader.detach();
    this.socket = await upgradeToTls(this.socket, ca);
    this.#reader = new LineReader(this.socket, { maxLineBytes: 4 * 1024 * 1024 });
  }

  /** Resolves when the server has closed the connection. */
  async closed(): Promise<void> {
    for (;;) if ((await this.read()) === null) return;
  }

  close(): void {
    this.socket.destroy();
  }
}

function bobMessage(n: number): string {
  return generatedMessage('bob@contoso.com', n, SIZE).toString('latin1');
}

describe('emulated Exchange IMAP', () => {
  let emu: TestEmulator;
  let greeting: string;
  before(async () => {
    emu = await startTestEmulator((s) => {
      const bob = s.exchange!.mailboxes!.find((m) => m.address === 'bob@contoso.com')!;
      bob.seed = { generate: { count: 4, sizeBytes: SIZE } };
    });
    greeting = `* OK The Microsoft Exchange IMAP4 service is ready. ${emu.running.exchange.greetingTag}`;
  });
  after(() => emu.close());

  const imaps = () => Imap.connect(emu.running.mailPorts.imaps, emu.caPem);

  /** UIDVALIDITY and UIDNEXT of one of bob's folders, from the admin API. */
  async function folderInfo(name: string): Promise<{ uidValidity: number; uidNext: number }> {
    const res = await emu.admin('GET', '/mailboxes/bob@contoso.com/messages');
    return res.json<{ folder: string; uidValidity: number; uidNext: number }[]>().find((f) => f.folder === name)!;
  }

  /** Connects over imaps and logs in with SASL-IR; returns the client and the tagged reply. */
  async function login(user: string, token: string): Promise<{ c: Imap; reply: string }> {
    const c = await imaps();
    assert.equal(await c.read(), greeting);
    const lines = await c.run('a1', `AUTHENTICATE XOAUTH2 ${encodeXoauth2(user, token)}`);
    return { c, reply: lines[lines.length - 1]! };
  }

  describe('before login', () => {
    it('greets with the backend name tag and lists the capabilities of port 993', async () => {
      assert.match(greeting, /^\* OK The Microsoft Exchange IMAP4 service is ready\. \[[A-Za-z0-9+/]+=*\]$/);
      const c = await imaps();
      assert.equal(await c.read(), greeting);
      assert.deepEqual(await c.run('a', 'CAPABILITY'), [CAPS_PRE, 'a OK CAPABILITY completed.']);
      assert.deepEqual(await c.run('b', 'NOOP'), ['b OK NOOP completed.']);
      assert.deepEqual(await c.run('c', 'LOGOUT'), ['* BYE Microsoft Exchange Server IMAP4 server signing off.', 'c OK LOGOUT completed.']);
      await c.closed();
    });

    it('port 143: LOGINDISABLED and STARTTLS first, no login before TLS, the 993 list after it', async () => {
      const c = await Imap.connect(emu.running.mailPorts.imap);
      assert.equal(await c.read(), greeting);
      assert.deepEqual(await c.run('a', 'CAPABILITY'), [CAPS_PLAIN, 'a OK CAPABILITY completed.']);
      const token = await userToken(emu, 'bob@contoso.com', [SCOPES.imap]);
      assert.deepEqual(await c.run('b', `AUTHENTICATE XOAUTH2 ${encodeXoauth2('bob@contoso.com', token)}`), ['b BAD Command received in Invalid state.']);
      assert.deepEqual(await c.run('c', 'STARTTLS'), ['c OK Begin TLS negotiation now.']);
      await c.startTls(emu.caPem);
      assert.deepEqual(await c.run('d', 'CAPABILITY'), [CAPS_PRE, 'd OK CAPABILITY completed.']);
      assert.deepEqual(await c.run('e', `AUTHENTICATE XOAUTH2 ${encodeXoauth2('bob@contoso.com', token)}`), ['e OK AUTHENTICATE completed.']);
      assert.deepEqual(await c.run('f', 'STARTTLS'), ['f BAD Command received in Invalid state.']);
      c.close();
    });

    it('AUTHENTICATE with SASL-IR, then the post-login capabilities', async () => {
      const { c, reply } = await login('bob@contoso.com', await userToken(emu, 'bob@contoso.com', [SCOPES.imap]));
      assert.equal(reply, 'a1 OK AUTHENTICATE completed.');
      assert.deepEqual(await c.run('a2', 'CAPABILITY'), [CAPS_POST, 'a2 OK CAPABILITY completed.']);
      assert.deepEqual(await c.run('a3', 'AUTHENTICATE XOAUTH2 x'), ['a3 BAD Command received in Invalid state.']);
      c.close();
    });

    it('AUTHENTICATE without an initial response: "+ ", then the credentials; "*" cancels', async () => {
      const c = await imaps();
      await c.read();
      c.send('t1 AUTHENTICATE XOAUTH2');
      assert.equal(await c.read(), '+ ');
      c.send('*');
      assert.equal(await c.read(), 't1 NO The AUTH protocol exchange was canceled by the client.');
      c.send('t2 AUTHENTICATE XOAUTH2');
      assert.equal(await c.read(), '+ ');
      c.send(encodeXoauth2('bob@contoso.com', await userToken(emu, 'bob@contoso.com', [SCOPES.imap])));
      assert.equal(await c.read(), 't2 OK AUTHENTICATE completed.');
      c.close();
    });

    it('refuses LOGIN and AUTHENTICATE PLAIN as Exchange does for OAuth-only tenants', async () => {
      const c = await imaps();
      await c.read();
      assert.deepEqual(await c.run('a', 'LOGIN bob@contoso.com secret'), ['a NO LOGIN failed.']);
      assert.deepEqual(await c.run('b', `AUTHENTICATE PLAIN ${Buffer.from('\0bob@contoso.com\0secret').toString('base64')}`), ['b NO AUTHENTICATE failed.']);
      c.send('c AUTHENTICATE PLAIN');
      assert.equal(await c.read(), '+ ');
      c.send(Buffer.from('\0bob@contoso.com\0secret').toString('base64'));
      assert.equal(await c.read(), 'c NO AUTHENTICATE failed.');
      assert.deepEqual(await c.run('d', 'AUTHENTICATE CRAM-MD5'), ['d BAD Command Argument Error. 11']);
      c.close();
    });

    it('mailbox commands before login, unknown commands, and the third BAD closes the session', async () => {
      const c = await imaps();
      await c.read();
      assert.deepEqual(await c.run('a', 'SELECT INBOX'), ['a BAD Command received in Invalid state.']);
      assert.deepEqual(await c.run('b', 'FROB'), ['b BAD Command Error. 12']);
      assert.deepEqual(await c.run('c', 'UID FROB 1'), ['c BAD Command Error. 12']);
      assert.equal(await c.read(), '* BYE Connection closed. 14');
      await c.closed();
    });

    it('counts logins for the admin API', async () => {
      const before = (await emu.counters())['imap'] ?? {};
      const ok = await login('bob@contoso.com', await userToken(emu, 'bob@contoso.com', [SCOPES.imap]));
      ok.c.close();
      const bad = await login('bob@contoso.com', 'not-a-token');
      assert.equal(bad.reply, 'a1 NO AUTHENTICATE failed.');
      bad.c.close();
      const now = (await emu.counters())['imap'] ?? {};
      assert.equal((now['auth_ok'] ?? 0) - (before['auth_ok'] ?? 0), 1);
      assert.equal((now['auth_failed'] ?? 0) - (before['auth_failed'] ?? 0), 1);
    });
  });

  describe('refusals (reference section 4.4, IMAP column)', () => {
    beforeEach(async () => {
      await emu.admin('DELETE', '/mail-failures');
    });

    const refused = async (user: string, token: string) => {
      const { c, reply } = await login(user, token);
      c.close();
      assert.equal(reply, 'a1 NO AUTHENTICATE failed.');
    };

    /** AUTHENTICATE succeeds; the next mailbox command is refused and the session closed. */
    const notConnected = async (user: string, token: string) => {
      const { c, reply } = await login(user, token);
      assert.equal(reply, 'a1 OK AUTHENTICATE completed.');
      assert.deepEqual(await c.run('a2', 'CAPABILITY'), [CAPS_POST, 'a2 OK CAPABILITY completed.']);
      assert.deepEqual(await c.run('a3', 'SELECT INBOX'), ['a3 BAD User is authenticated but not connected.']);
      assert.equal(await c.read(), '* BYE Connection closed. 14');
      await c.closed();
    };

    it('a Graph token (unprefixed scope)', async () => {
      await refused('bob@contoso.com', await userToken(emu, 'bob@contoso.com', ['IMAP.AccessAsUser.All']));
    });
    it('an expired token', async () => {
      const token = await userToken(emu, 'bob@contoso.com', [SCOPES.imap]);
      await emu.admin('POST', '/clock', { advanceSeconds: 7200 });
      try {
        await refused('bob@contoso.com', token);
      } finally {
        await emu.admin('POST', '/clock', { reset: true });
      }
    });
    it('a garbled token and a garbled XOAUTH2 string', async () => {
      await refused('bob@contoso.com', 'eyJhbGciOi.garbage.x');
      const c = await imaps();
      await c.read();
      assert.deepEqual(await c.run('a', 'AUTHENTICATE XOAUTH2 bm90IHhvYXV0aDI='), ['a NO AUTHENTICATE failed.']);
      c.close();
    });
    it('an app-only token without the IMAP role', async () => {
      const service = emu.scenario.apps.find((a) => a.clientId === DEFAULT_IDS.serviceApp)!;
      const roles = service.appRoles.exchange!;
      service.appRoles.exchange = ['POP.AccessAsApp'];
      try {
        await refused('support@contoso.com', await appToken(emu));
      } finally {
        service.appRoles.exchange = roles;
      }
    });
    it('an app-only token whose service principal is not registered in Exchange', async () => {
      const token = await appToken(emu);
      await emu.admin('DELETE', `/exchange/service-principals/${SERVICE_SP}`);
      try {
        await refused('support@contoso.com', token);
      } finally {
        await emu.admin('POST', '/exchange/service-principals', { tenant: DEFAULT_IDS.tenant, appId: DEFAULT_IDS.serviceApp, objectId: SERVICE_SP });
      }
    });
    it('an app-only token for a mailbox the service principal has no FullAccess on', async () => {
      await notConnected('bob@contoso.com', await appToken(emu));
    });
    it("a user's token for another user's mailbox", async () => {
      await notConnected('bob@contoso.com', await userToken(emu, 'alice@contoso.com', [SCOPES.imap]));
    });
    it('IMAP switched off for the mailbox', async () => {
      await emu.admin('PATCH', '/mailboxes/bob@contoso.com', { imapEnabled: false });
      try {
        await notConnected('bob@contoso.com', await userToken(emu, 'bob@contoso.com', [SCOPES.imap]));
      } finally {
        await emu.admin('PATCH', '/mailboxes/bob@contoso.com', { imapEnabled: true });
      }
    });
    it('a shared mailbox opens with a delegate token (FullAccess) and with the app token (FullAccess)', async () => {
      for (const token of [await userToken(emu, 'alice@contoso.com', [SCOPES.imap]), await appToken(emu)]) {
        const { c, reply } = await login('support@contoso.com', token);
        assert.equal(reply, 'a1 OK AUTHENTICATE completed.');
        const select = await c.run('a2', 'EXAMINE INBOX');
        assert.equal(select[select.length - 1], 'a2 OK [READ-ONLY] EXAMINE completed.');
        c.close();
      }
    });
    it('throttled (with the backoff time), unavailable, and armed not-connected', async () => {
      const token = await userToken(emu, 'bob@contoso.com', [SCOPES.imap]);
      await emu.admin('POST', '/mail-failures', { protocol: 'imap', kind: 'throttled', backoffMs: 12345, times: 1 });
      assert.equal((await login('bob@contoso.com', token)).reply, 'a1 BAD Request is throttled. Suggested Backoff Time: 12345 milliseconds');
      await emu.admin('POST', '/mail-failures', { protocol: 'imap', kind: 'unavailable', times: 1 });
      assert.equal((await login('bob@contoso.com', token)).reply, 'a1 BAD Server Unavailable. 15');
      await emu.admin('POST', '/mail-failures', { protocol: 'imap', mailbox: 'bob@contoso.com', kind: 'not-connected', times: 1 });
      await notConnected('bob@contoso.com', token);
      const { c, reply } = await login('bob@contoso.com', token);
      assert.equal(reply, 'a1 OK AUTHENTICATE completed.');
      c.close();
    });
  });

  describe('mail (bob: four generated messages)', () => {
    let token: string;
    before(async () => {
      token = await userToken(emu, 'bob@contoso.com', [SCOPES.imap]);
    });

    it('lists folders, reads a message exactly, flags it, and a second session sees the flags', async () => {
      const { c } = await login('bob@contoso.com', token);
      assert.deepEqual(await c.run('n', 'NAMESPACE'), ['* NAMESPACE (("" "/")) NIL NIL', 'n OK NAMESPACE completed.']);
      assert.deepEqual(await c.run('l', 'LIST "" "*"'), [
        '* LIST (\\HasNoChildren \\Archive) "/" Archive',
        '* LIST (\\HasNoChildren \\Trash) "/" "Deleted Items"',
        '* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
        '* LIST (\\Marked \\HasNoChildren) "/" INBOX',
        '* LIST (\\HasNoChildren \\Junk) "/" "Junk Email"',
        '* LIST (\\HasNoChildren) "/" Outbox',
        '* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"',
        'l OK LIST completed.',
      ]);
      const inbox = await folderInfo('INBOX');
      assert.deepEqual(await c.run('s', 'SELECT INBOX'), [
        '* 4 EXISTS',
        '* 0 RECENT',
        `* FLAGS ${FLAGS}`,
        `* OK [PERMANENTFLAGS ${FLAGS}] Permanent flags`,
        '* OK [UNSEEN 1] Is the first unseen message',
        `* OK [UIDVALIDITY ${inbox.uidValidity}] UIDVALIDITY value`,
        `* OK [UIDNEXT ${inbox.uidNext}] The next unique identifier value`,
        's OK [READ-WRITE] SELECT completed.',
      ]);
      assert.deepEqual(await c.run('st', 'STATUS INBOX (MESSAGES UNSEEN UIDNEXT)'), [
        `* STATUS INBOX (MESSAGES 4 UNSEEN 4 UIDNEXT ${inbox.uidNext}) `,
        'st OK STATUS completed.',
      ]);
      const raw = bobMessage(1);
      assert.deepEqual(await c.run('f1', 'FETCH 1 (UID RFC822.SIZE FLAGS BODY.PEEK[])'), [
        `* 1 FETCH (UID 1 RFC822.SIZE ${SIZE} FLAGS () BODY[] {${SIZE}}\r\n${raw})`,
        'f1 OK FETCH completed.',
      ]);
      const header = raw.slice(0, raw.indexOf('\r\n\r\n') + 4);
      assert.deepEqual(await c.run('f2', 'UID FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.20>)'), [
        `* 1 FETCH (BODY[HEADER] {${header.length}}\r\n${header} BODY[TEXT]<0> {20}\r\n${raw.slice(header.length, header.length + 20)} UID 1)`,
        'f2 OK FETCH completed.',
      ]);
      const fields = 'Subject: Generated message 1\r\nMessage-ID: <generated-1@fabrikam.example>\r\n\r\n';
      assert.deepEqual(await c.run('f3', 'FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject Message-ID)])'), [
        `* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)] {${fields.length}}\r\n${fields})`,
        'f3 OK FETCH completed.',
      ]);
      assert.deepEqual(await c.run('f4', 'FETCH 1 (ENVELOPE BODYSTRUCTURE)'), [
        `* 1 FETCH (ENVELOPE ("Thu, 01 Jan 2026 08:01:00 +0000" "Generated message 1" (("Sender 1" NIL "sender1" "fabrikam.example")) (("Sender 1" NIL "sender1" "fabrikam.example")) (("Sender 1" NIL "sender1" "fabrikam.example")) ((NIL NIL "bob" "contoso.com")) NIL NIL NIL "<generated-1@fabrikam.example>") BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" ${SIZE - header.length} ${raw.slice(header.length).split('\n').length - 1} NIL NIL NIL NIL))`,
        'f4 OK FETCH completed.',
      ]);
      // BODY[] without PEEK sets \Seen; the new flags follow as a notification.
      assert.deepEqual(await c.run('f5', 'FETCH 2 BODY[]<0.10>'), [
        `* 2 FETCH (BODY[]<0> {10}\r\n${bobMessage(2).slice(0, 10)})`,
        '* 2 FETCH (FLAGS (\\Seen))',
        'f5 OK FETCH completed.',
      ]);
      assert.deepEqual(await c.run('st1', 'STORE 1 +FLAGS (\\Flagged)'), ['* 1 FETCH (FLAGS (\\Flagged))', 'st1 OK STORE completed.']);
      assert.deepEqual(await c.run('st2', 'UID STORE 1:2 +FLAGS.SILENT (\\Answered)'), ['st2 OK STORE completed.']);
      assert.deepEqual(await c.run('st3', 'STORE 1 +FLAGS (Custom)'), ['st3 BAD Command Argument Error. 11']);
      assert.deepEqual(await c.run('se', 'SEARCH FLAGGED'), ['* SEARCH 1', 'se OK SEARCH completed.']);
      assert.deepEqual(await c.run('se2', 'UID SEARCH OR SEEN SUBJECT "message 3"'), ['* SEARCH 2 3', 'se2 OK SEARCH completed.']);
      assert.deepEqual(await c.run('se3', 'SEARCH NOT ANSWERED SINCE 1-Jan-2026 LARGER 100'), ['* SEARCH 3 4', 'se3 OK SEARCH completed.']);

      const second = await login('bob@contoso.com', token);
      await second.c.run('s', 'EXAMINE INBOX');
      assert.deepEqual(await second.c.run('f', 'FETCH 1:2 FLAGS'), [
        '* 1 FETCH (FLAGS (\\Answered \\Flagged))',
        '* 2 FETCH (FLAGS (\\Seen \\Answered))',
        'f OK FETCH completed.',
      ]);
      assert.deepEqual(await second.c.run('st', 'STORE 1 +FLAGS (\\Seen)'), ['st NO Command received in Invalid state.']);
      second.c.close();
      // The first session hears of nothing it did not do; NOOP is quiet.
      assert.deepEqual(await c.run('n2', 'NOOP'), ['n2 OK NOOP completed.']);
      c.close();
    });

    it('moves and deletes; another session hears EXPUNGE at its next command; APPEND with literals', async () => {
      const { c } = await login('bob@contoso.com', token);
      const watcher = (await login('bob@contoso.com', token)).c;
      await c.run('s', 'SELECT INBOX');
      await watcher.run('s', 'SELECT INBOX');
      const archive = await folderInfo('Archive');
      const trash = await folderInfo('Deleted Items');
      const drafts = await folderInfo('Drafts');
      const inbox = await folderInfo('INBOX');
      assert.deepEqual(await c.run('m', `UID MOVE 3 Archive`), [
        `* OK [COPYUID ${archive.uidValidity} 3 ${archive.uidNext}]`,
        '* 3 EXPUNGE',
        '* 3 EXISTS',
        'm OK MOVE completed.',
      ]);
      assert.deepEqual(await c.run('c', 'COPY 1 "Deleted Items"'), [`c OK [COPYUID ${trash.uidValidity} 1 ${trash.uidNext}] COPY completed.`]);
      assert.deepEqual(await c.run('m2', 'MOVE 1 Nowhere'), ['m2 NO [TRYCREATE] The destination mailbox could not be found.']);
      assert.deepEqual(await c.run('d', 'STORE 1 +FLAGS.SILENT (\\Deleted)'), ['d OK STORE completed.']);
      assert.deepEqual(await c.run('e', 'EXPUNGE'), ['* 1 EXPUNGE', '* 2 EXISTS', 'e OK EXPUNGE completed.']);
      // The watcher: FETCH holds EXPUNGE back (flags may come), NOOP delivers it.
      assert.deepEqual(await watcher.run('w1', 'FETCH 2 (UID)'), ['* 2 FETCH (UID 2)', 'w1 OK FETCH completed.']);
      assert.deepEqual(await watcher.run('w0', 'FETCH 1 (UID)'), ['w0 NO Some of the requested messages no longer exist.']);
      assert.deepEqual(await watcher.run('w2', 'NOOP'), ['* 3 EXPUNGE', '* 1 EXPUNGE', '* 2 EXISTS', 'w2 OK NOOP completed.']);
      assert.deepEqual(await watcher.run('w3', 'UID FETCH 1:* (UID)'), ['* 1 FETCH (UID 2)', '* 2 FETCH (UID 4)', 'w3 OK FETCH completed.']);

      // APPEND: a synchronizing literal gets "+ Ready for additional command text.", LITERAL+ none.
      const msg = 'From: <x@fabrikam.example>\r\nSubject: appended\r\n\r\nhello\r\n';
      c.send(`a1 APPEND INBOX (\\Seen) "05-Jan-2026 10:00:00 +0100" {${msg.length}}`);
      assert.equal(await c.read(), '+ Ready for additional command text.');
      c.socket.write(`${msg}\r\n`);
      assert.deepEqual(await c.until('a1'), ['* 3 EXISTS', `a1 OK [APPENDUID ${inbox.uidValidity} ${inbox.uidNext}] APPEND completed.`]);
      c.socket.write(`a2 APPEND Drafts (\\Draft $Label1) {${msg.length}+}\r\n${msg}\r\n`);
      assert.deepEqual(await c.until('a2'), [
        '* NO Keywords are not supported!',
        `a2 OK [APPENDUID ${drafts.uidValidity} ${drafts.uidNext}] APPEND completed.`,
      ]);
      assert.deepEqual(await c.run('a3', 'FETCH 3 (FLAGS INTERNALDATE RFC822.SIZE RFC822)'), [
        `* 3 FETCH (FLAGS (\\Seen) INTERNALDATE "05-Jan-2026 09:00:00 +0000" RFC822.SIZE ${msg.length} RFC822 {${msg.length}}\r\n${msg})`,
        'a3 OK FETCH completed.',
      ]);
      c.send('a4 APPEND INBOX {999999999}');
      assert.equal(await c.read(), 'a4 BAD Command Argument Error. 11');
      assert.deepEqual(await c.run('a5', 'APPEND Nowhere {1+}\r\nx'), ['a5 NO [TRYCREATE] Folder is not found.']);
      assert.deepEqual(await c.run('cl', 'CLOSE'), ['cl OK CLOSE completed.']);
      assert.deepEqual(await c.run('lo', 'LOGOUT'), ['* BYE Microsoft Exchange Server IMAP4 server signing off.', 'lo OK LOGOUT completed.']);
      await c.closed();
      watcher.close();
    });

    it('IDLE pushes mail delivered through the admin API as EXISTS; DONE ends it', async () => {
      const { c } = await login('bob@contoso.com', token);
      const select = await c.run('s', 'SELECT INBOX');
      const exists = Number(/^\* (\d+) EXISTS$/.exec(select[0]!)![1]);
      c.send('i IDLE');
      assert.equal(await c.read(), '+ IDLE accepted, awaiting DONE command.');
      const res = await emu.admin('POST', '/mailboxes/bob@contoso.com/messages', { raw: 'Subject: pushed\r\n\r\nhi\r\n' });
      assert.equal(res.status, 201, res.text);
      assert.equal(await c.read(), `* ${exists + 1} EXISTS`);
      c.send('DONE');
      assert.equal(await c.read(), 'i OK IDLE completed.');
      c.close();
    });

    it('folder commands: CREATE, RENAME, SUBSCRIBE, LSUB, DELETE, and their refusals', async () => {
      const { c } = await login('bob@contoso.com', token);
      assert.deepEqual(await c.run('c1', 'CREATE Projects/2026'), ['c1 OK CREATE completed.']);
      assert.deepEqual(await c.run('c2', 'CREATE INBOX'), ['c2 NO Mailbox already exists.']);
      assert.deepEqual(await c.run('l1', 'LIST "" "Projects*"'), [
        '* LIST (\\HasChildren) "/" Projects',
        '* LIST (\\HasNoChildren) "/" Projects/2026',
        'l1 OK LIST completed.',
      ]);
      assert.deepEqual(await c.run('l2', 'LIST "" "Projects/%"'), ['* LIST (\\HasNoChildren) "/" Projects/2026', 'l2 OK LIST completed.']);
      assert.deepEqual(await c.run('d1', 'DELETE Projects'), ['d1 NO The mailbox has inferiors.']);
      assert.deepEqual(await c.run('r1', 'RENAME Projects Work'), ['r1 OK RENAME completed.']);
      assert.deepEqual(await c.run('l3', 'LIST "" "Work*"'), [
        '* LIST (\\HasChildren) "/" Work',
        '* LIST (\\HasNoChildren) "/" Work/2026',
        'l3 OK LIST completed.',
      ]);
      assert.deepEqual(await c.run('r2', 'RENAME Missing Other'), ['r2 NO Source folder is not found.']);
      assert.deepEqual(await c.run('u1', 'UNSUBSCRIBE Work/2026'), ['u1 OK UNSUBSCRIBE completed.']);
      assert.deepEqual(await c.run('ls', 'LSUB "" "Work*"'), ['* LSUB () "/" Work', 'ls OK LSUB completed.']);
      assert.deepEqual(await c.run('d2', 'DELETE Work/2026'), ['d2 OK DELETE completed.']);
      assert.deepEqual(await c.run('d3', 'DELETE INBOX'), ['d3 NO The special name INBOX cannot be used in this context.']);
      assert.deepEqual(await c.run('d4', 'DELETE Nowhere'), ['d4 NO The requested item could not be found.']);
      assert.deepEqual(await c.run('s1', 'SELECT Nowhere'), ["s1 NO Nowhere doesn't exist."]);
      assert.deepEqual(await c.run('st', 'STATUS Nowhere (MESSAGES)'), ["st NO Nowhere doesn't exist."]);
      assert.deepEqual(await c.run('id', 'ID ("name" "test")'), [
        '* ID ("name" "Microsoft.Exchange.Imap4.Imap4Server" "version" "15.20")',
        'id OK ID completed',
      ]);
      c.close();
    });

    it('a nested multipart message: BODYSTRUCTURE, ENVELOPE with a group, sections by part, SEARCH on decoded text', async () => {
      const raw = [
        'From: "Doe, Jane" <jane@fabrikam.example>',
        'To: team: a@x.example, "B" <b@x.example>;, c@y.example',
        'Subject: =?UTF-8?B?SGVsbG8g4pyT?=',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="outer"',
        '',
        'preamble',
        '--outer',
        'Content-Type: multipart/alternative; boundary=inner',
        '',
        '--inner',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: quoted-printable',
        '',
        'caf=C3=A9',
        '--inner',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<p>hi</p>',
        '--inner--',
        '--outer',
        'Content-Type: application/pdf; name="a.pdf"',
        'Content-Disposition: attachment; filename="a.pdf"',
        'Content-Transfer-Encoding: base64',
        '',
        'JVBERi0=',
        '--outer',
        'Content-Type: message/rfc822',
        '',
        'From: inner@z.example',
        'Subject: nested',
        '',
        'nested body',
        '--outer--',
        '',
      ].join('\r\n');
      const { c } = await login('bob@contoso.com', token);
      assert.deepEqual(await c.run('c', 'CREATE Multipart'), ['c OK CREATE completed.']);
      c.socket.write(`a APPEND Multipart {${raw.length}+}\r\n${raw}\r\n`);
      assert.match((await c.until('a')).pop()!, /^a OK \[APPENDUID \d+ 1\] APPEND completed\.$/);
      await c.run('s', 'SELECT Multipart');
      assert.deepEqual(await c.run('f', 'FETCH 1 (ENVELOPE BODYSTRUCTURE)'), [
        '* 1 FETCH (ENVELOPE (NIL "=?UTF-8?B?SGVsbG8g4pyT?=" (("Doe, Jane" NIL "jane" "fabrikam.example")) (("Doe, Jane" NIL "jane" "fabrikam.example")) (("Doe, Jane" NIL "jane" "fabrikam.example")) ((NIL NIL "team" NIL)(NIL NIL "a" "x.example")("B" NIL "b" "x.example")(NIL NIL NIL NIL)(NIL NIL "c" "y.example")) NIL NIL NIL NIL) ' +
          'BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 9 1 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 9 1 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)' +
          '("application" "pdf" ("name" "a.pdf") NIL NIL "base64" 8 NIL ("attachment" ("filename" "a.pdf")) NIL NIL)' +
          '("message" "rfc822" NIL NIL NIL "7bit" 53 (NIL "nested" ((NIL NIL "inner" "z.example")) ((NIL NIL "inner" "z.example")) ((NIL NIL "inner" "z.example")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL))',
        'f OK FETCH completed.',
      ]);
      assert.deepEqual(await c.run('p', 'FETCH 1 (BODY.PEEK[1.1] BODY.PEEK[1.2.MIME] BODY.PEEK[2] BODY.PEEK[3.HEADER] BODY.PEEK[3.1] BODY.PEEK[9])'), [
        '* 1 FETCH (BODY[1.1] {9}\r\ncaf=C3=A9 BODY[1.2.MIME] {42}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n BODY[2] {8}\r\nJVBERi0= BODY[3.HEADER] {42}\r\nFrom: inner@z.example\r\nSubject: nested\r\n\r\n BODY[3.1] {11}\r\nnested body BODY[9] NIL)',
        'p OK FETCH completed.',
      ]);
      // UTF-8 search strings come as literals; subjects and bodies are matched decoded.
      c.socket.write('q SEARCH CHARSET UTF-8 SUBJECT {9+}\r\nHello \u2713\r\n'.replace('\u2713', '\xe2\x9c\x93'), 'latin1');
      assert.deepEqual(await c.until('q'), ['* SEARCH 1', 'q OK SEARCH completed.']);
      c.socket.write(Buffer.from('r SEARCH CHARSET UTF-8 BODY {5+}\r\ncafé NOT TO nobody\r\n', 'utf8'));
      assert.deepEqual(await c.until('r'), ['* SEARCH 1', 'r OK SEARCH completed.']);
      assert.deepEqual(await c.run('t', 'SEARCH CHARSET KOI8-R BODY x'), ['t NO [BADCHARSET (US-ASCII UTF-8)] The specified charset is not supported.']);
      c.close();
    });

    it("malformed commands get Exchange's BAD texts; a too long line closes the session", async () => {
      const { c } = await login('bob@contoso.com', token);
      await c.run('s', 'SELECT INBOX');
      assert.deepEqual(await c.run('b1', 'FETCH 0:x FLAGS'), ['b1 BAD The specified message set is invalid.']);
      assert.deepEqual(await c.run('b2', 'FETCH 1 (FLAGS'), ['b2 BAD Command Argument Error. 11']);
      assert.deepEqual(await c.run('n1', 'FETCH 99 FLAGS'), ['n1 NO The specified message set is invalid.']);
      c.socket.write(`x ${'A'.repeat(40 * 1024)}\r\n`);
      assert.equal(await c.read(), '* BAD Command Error. 12');
      assert.equal(await c.read(), '* BYE Connection closed. 14');
      await c.closed();
    });
  });

  describe('limits (connection cap, idle timeout)', () => {
    let small: TestEmulator;
    before(async () => {
      small = await startTestEmulator((s) => {
        s.settings = { ...s.settings, mail: { maxLineBytes: 32 * 1024, maxMessageBytes: 1024 * 1024, idleTimeoutSeconds: 2, maxConnectionsPerMailbox: 2 } };
      });
    });
    after(() => small.close());

    it('over the per-mailbox cap a login is "authenticated but not connected"; a slot frees on logout', async () => {
      const token = await userToken(small, 'bob@contoso.com', [SCOPES.imap]);
      const open = async () => {
        const c = await Imap.connect(small.running.mailPorts.imaps, small.caPem);
        await c.read();
        const lines = await c.run('a', `AUTHENTICATE XOAUTH2 ${encodeXoauth2('bob@contoso.com', token)}`);
        assert.equal(lines[lines.length - 1], 'a OK AUTHENTICATE completed.');
        return c;
      };
      const one = await open();
      const two = await open();
      const three = await open();
      assert.deepEqual(await three.run('b', 'NOOP'), ['b OK NOOP completed.']);
      assert.deepEqual(await three.run('c', 'SELECT INBOX'), ['c BAD User is authenticated but not connected.']);
      assert.equal(await three.read(), '* BYE Connection closed. 14');
      await three.closed();
      await one.run('z', 'LOGOUT');
      await one.closed();
      const four = await open();
      assert.equal((await four.run('s', 'SELECT INBOX')).pop(), 's OK [READ-WRITE] SELECT completed.');
      two.close();
      four.close();
    });

    it('a silent session is closed after idleTimeoutSeconds with "* BYE Connection closed. 14"', async () => {
      const c = await Imap.connect(small.running.mailPorts.imaps, small.caPem);
      await c.read();
      const started = Date.now();
      assert.equal(await c.read(), '* BYE Connection closed. 14');
      assert.ok(Date.now() - started >= 1500, String(Date.now() - started));
      await c.closed();
    });
  });
});
