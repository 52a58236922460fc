// mailbridge's POP3 client against real servers: ONE suite, run against the emulated Exchange
// Online (pop3s and pop3 + STLS) and against a real Dovecot 2.3 (pop3s and pop3 + STLS), with the
// same messages in both. What differs between the two (texts, OAUTHBEARER, PIPELINING, the
// longest token) is stated by each server's fixture, never guessed by the suite.
import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IDS } from '../../src/emulator/scenario/default.ts';
import { Pop3Client, Pop3Error, type Pop3ConnectOptions } from '../../src/pop3/index.ts';
import { issueServerCertificate } from '../../src/tls/certificates.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { SCOPES, userToken } from '../helpers/mail-tokens.ts';
import { seedMaildir, startDovecot, type Dovecot } from '../peers/dovecot.ts';

const USER = 'bob@contoso.com';

interface ServerFixture {
  name: string;
  /** Implicit TLS (995). */
  pop3s(): Pop3ConnectOptions;
  /** Plain, STLS offered (110). */
  plain(): Pop3ConnectOptions;
  token(): Promise<string>;
  /** A token longer than 4 KB that this server takes. */
  longToken(): Promise<string>;
  /** Makes the inbox hold exactly these messages, in this order. */
  reset(messages: Buffer[]): Promise<void>;
  greeting: RegExp;
  loginReply: string;
  /** The exact -ERR line for a refused token. */
  refusal: string;
  /** Text of the -ERR for RETR of a message deleted in this session. */
  deletedReply: RegExp;
  capaAfterTls: (raw: string[]) => void;
  oauthbearer: boolean;
  pipelining: boolean;
}

function message(n: number, body: string, extraHeader = ''): Buffer {
  return Buffer.from(
    `From: Sender ${n} <s${n}@fabrikam.example>\r\nTo: <${USER}>\r\nSubject: Test ${n}\r\nMessage-ID: <t${n}@fabrikam.example>\r\n${extraHeader}\r\n${body}`,
    'latin1',
  );
}

/** Messages with the awkward cases: lines starting with dots, a lone ".", an empty body, many chunks. */
function basicMessages(): Buffer[] {
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++)
    lines.push(i % 7 === 0 ? `.${'.'.repeat(i % 3)}dot line ${i}\r\n` : i % 11 === 0 ? '.\r\n' : `plain line ${i} ${'x'.repeat(i % 90)}\r\n`);
  return [
    message(1, 'first message\r\n'),
    message(2, '.leading dot\r\n..two dots\r\n.\r\n...\r\n. \r\nend\r\n'),
    message(3, ''),
    message(4, lines.join('')),
    message(5, '.\r\n'),
  ];
}

/** What TOP n k returns: the header, the blank line, then k lines of the body. */
function topOf(raw: Buffer, lines: number): Buffer {
  const split = raw.indexOf('\r\n\r\n');
  let end = split + 4;
  for (let i = 0; i < lines && end < raw.length; i++) {
    const lf = raw.indexOf(10, end);
    end = lf < 0 ? raw.length : lf + 1;
  }
  return raw.subarray(0, end);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function rejectsWith(work: Promise<unknown>, code: Pop3Error['code']): Promise<Pop3Error> {
  try {
    await work;
  } catch (err) {
    assert.ok(err instanceof Pop3Error, `expected a Pop3Error, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected a Pop3Error '${code}'`);
}

function pop3ClientSuite(fixture: () => ServerFixture): void {
  let f: ServerFixture;
  let token: string;
  let messages: Buffer[];
  before(async () => {
    f = fixture();
    token = await f.token();
    messages = basicMessages();
    await f.reset(messages);
  });

  async function login(options: Pop3ConnectOptions = f.pop3s()): Promise<Pop3Client> {
    const client = await Pop3Client.connect(options);
    assert.equal(await client.authXoauth2(USER, token), f.loginReply);
    return client;
  }

  it('connects over implicit TLS and reads the greeting', async () => {
    const client = await Pop3Client.connect(f.pop3s());
    try {
      assert.match(client.greeting, f.greeting);
      assert.equal(client.secure, true);
      assert.match(client.tlsProtocol ?? '', /^TLSv1\.[23]$/);
      assert.equal(client.peerCertificate?.subject.CN, 'localhost');
    } finally {
      await client.quit();
    }
  });

  it('lists the capabilities (CAPA) after TLS', async () => {
    const client = await Pop3Client.connect(f.pop3s());
    try {
      const caps = await client.capabilities();
      f.capaAfterTls(caps.raw);
      assert.ok(caps.sasl.includes('XOAUTH2'));
      assert.equal(caps.sasl.includes('OAUTHBEARER'), f.oauthbearer);
      assert.equal(caps.top && caps.uidl && caps.user, true);
      assert.equal(caps.stls, false);
      assert.equal(caps.pipelining, f.pipelining);
    } finally {
      await client.quit();
    }
  });

  it('upgrades with STLS on the plain port, then logs in', async () => {
    const plain = await Pop3Client.connect({ ...f.plain(), security: 'none' });
    assert.equal(plain.secure, false);
    assert.equal((await plain.capabilities()).stls, true);
    await plain.quit();

    const client = await Pop3Client.connect({ ...f.plain(), security: 'starttls' });
    try {
      assert.match(client.greeting, f.greeting);
      assert.equal(client.secure, true);
      assert.match(client.tlsProtocol ?? '', /^TLSv1\.[23]$/);
      assert.equal((await client.capabilities()).stls, false);
      assert.equal(await client.authXoauth2(USER, token), f.loginReply);
      assert.equal((await client.stat()).count, messages.length);
    } finally {
      await client.quit();
    }
  });

  it('logs in with XOAUTH2 (two-step)', async () => {
    const client = await login();
    try {
      assert.equal((await client.stat()).count, messages.length);
    } finally {
      await client.quit();
    }
  });

  it('logs in with OAUTHBEARER where offered, and is refused by name where not', async () => {
    const client = await Pop3Client.connect(f.pop3s());
    try {
      if (f.oauthbearer) {
        assert.equal(await client.authOauthbearer(USER, token), f.loginReply);
        assert.equal((await client.stat()).count, messages.length);
      } else {
        const err = await rejectsWith(client.authOauthbearer(USER, token), 'auth_rejected');
        assert.match(err.reply ?? '', /^-ERR /);
        // The connection is still usable: XOAUTH2 works next.
        assert.equal(await client.authXoauth2(USER, token), f.loginReply);
      }
    } finally {
      await client.quit();
    }
  });

  it('logs in with a token over 4 KB', async () => {
    const long = await f.longToken();
    assert.ok(long.length > 4096, `token is ${long.length} characters`);
    const client = await Pop3Client.connect(f.pop3s());
    try {
      assert.equal(await client.authXoauth2(USER, long), f.loginReply);
      assert.equal((await client.stat()).count, messages.length);
    } finally {
      await client.quit();
    }
  });

  it('STAT, LIST, UIDL, TOP and RETR give exactly the stored messages (dot lines included)', async () => {
    const client = await login();
    try {
      assert.deepEqual(await client.stat(), { count: messages.length, octets: messages.reduce((s, m) => s + m.length, 0) });
      assert.deepEqual(
        await client.list(),
        messages.map((m, i) => ({ n: i + 1, size: m.length })),
      );
      const uids = await client.uidl();
      assert.deepEqual(
        uids.map((u) => u.n),
        messages.map((_, i) => i + 1),
      );
      assert.equal(new Set(uids.map((u) => u.uid)).size, messages.length);
      for (const [i, m] of messages.entries()) {
        assert.deepEqual(await client.top(i + 1, 0), topOf(m, 0), `TOP ${i + 1} 0`);
        assert.deepEqual(await client.top(i + 1, 3), topOf(m, 3), `TOP ${i + 1} 3`);
        assert.deepEqual(await readAll(client.retr(i + 1)), m, `RETR ${i + 1}`);
      }
      await client.noop();
      await client.quit();
      // UIDs stay the same in the next session.
      const again = await login();
      assert.deepEqual(await again.uidl(), uids);
      await again.quit();
    } finally {
      client.close();
    }
  });

  it('a missing message is an -ERR on the stream; the connection stays usable', async () => {
    const client = await login();
    try {
      const err = await rejectsWith(readAll(client.retr(999)), 'server');
      assert.match(err.reply ?? '', /^-ERR /);
      assert.deepEqual(await readAll(client.retr(1)), messages[0]);
    } finally {
      await client.quit();
    }
  });

  it('retrieves 200 messages with retrMany, in order, byte for byte', async () => {
    const many = Array.from({ length: 200 }, (_, i) =>
      message(
        100 + i,
        `${i % 5 === 0 ? '.dotted first line\r\n' : ''}${`line ${i} of a message\r\n`.repeat(1 + ((i * 37) % 400))}${i % 3 === 0 ? '.\r\n' : ''}`,
      ),
    );
    await f.reset(many);
    try {
      const client = await login();
      try {
        assert.equal((await client.capabilities()).pipelining, f.pipelining);
        const seen: number[] = [];
        await client.retrMany(
          many.map((_, i) => i + 1),
          async (n, stream) => {
            seen.push(n);
            assert.deepEqual(await readAll(stream), many[n - 1], `message ${n}`);
          },
        );
        assert.deepEqual(
          seen,
          many.map((_, i) => i + 1),
        );
        // The session is in step afterwards.
        assert.equal((await client.stat()).count, 200);
      } finally {
        await client.quit();
      }
    } finally {
      await f.reset(messages);
    }
  });

  it('DELE then RSET keeps every message', async () => {
    const client = await login();
    try {
      await client.dele(1);
      await client.dele(3);
      assert.equal((await client.stat()).count, messages.length - 2);
      assert.deepEqual(
        (await client.list()).map((l) => l.n),
        [2, 4, 5],
      );
      const err = await rejectsWith(readAll(client.retr(1)), 'server');
      assert.match(err.reply ?? '', f.deletedReply);
      await client.rset();
      assert.equal((await client.stat()).count, messages.length);
      await client.quit();
      const again = await login();
      assert.equal((await again.stat()).count, messages.length);
      await again.quit();
    } finally {
      client.close();
    }
  });

  it('DELE then QUIT removes the messages', async () => {
    const client = await login();
    const before = await client.uidl();
    await client.dele(1);
    await client.dele(2);
    await client.quit();
    await rejectsWith(client.noop(), 'closed');
    const again = await login();
    try {
      assert.deepEqual(await again.stat(), { count: messages.length - 2, octets: messages.slice(2).reduce((s, m) => s + m.length, 0) });
      assert.deepEqual(
        (await again.uidl()).map((u) => u.uid),
        before.slice(2).map((u) => u.uid),
      );
      assert.deepEqual(await readAll(again.retr(1)), messages[2]);
    } finally {
      await again.quit();
      await f.reset(messages);
    }
  });

  it("a refused login is a Pop3Error 'auth_rejected' with the server's exact text, and never the token", async () => {
    const client = await Pop3Client.connect(f.pop3s());
    try {
      const bogus = `${token.slice(0, -10)}AAAAAAAAAA`;
      const err = await rejectsWith(client.authXoauth2(USER, bogus), 'auth_rejected');
      assert.equal(err.reply, f.refusal);
      assert.ok(err.message.includes(f.refusal));
      for (const text of [err.message, err.reply ?? '', err.challenge ?? '', JSON.stringify(err)]) {
        assert.ok(!text.includes(bogus) && !text.includes(bogus.slice(0, 40)), 'token in the error');
      }
      // The same connection can log in afterwards.
      assert.equal(await client.authXoauth2(USER, token), f.loginReply);
    } finally {
      await client.quit();
    }
  });
}

// ----- the two servers -----

let emu: TestEmulator;
let dovecot: Dovecot;

before(async () => {
  emu = await startTestEmulator();
  const authority = { certPem: emu.caPem, keyPem: await readFile(join(emu.dataDir, 'ca.key'), 'utf8') };
  const tls = await issueServerCertificate(authority, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  dovecot = await startDovecot({ issuer: `https://sts.windows.net/${DEFAULT_IDS.tenant}/`, keysDir: emu.running.dovecotKeysDir, tls });
});

after(async () => {
  await dovecot?.stop();
  await emu?.close();
});

/** A token of at least `minLength` characters from the emulator (setting restored afterwards). */
async function tokenOfLength(minLength: number): Promise<string> {
  await emu.admin('PATCH', '/settings', { accessTokenMinLength: minLength });
  try {
    return await userToken(emu, USER, [SCOPES.pop]);
  } finally {
    await emu.admin('PATCH', '/settings', { accessTokenMinLength: 0 });
  }
}

describe('POP3 client against the emulated Exchange Online', () => {
  pop3ClientSuite(() => ({
    name: 'emulator',
    pop3s: () => ({ host: '127.0.0.1', port: emu.running.mailPorts.pop3s, security: 'implicit', ca: emu.caPem }),
    plain: () => ({ host: '127.0.0.1', port: emu.running.mailPorts.pop3, security: 'starttls', ca: emu.caPem }),
    token: () => userToken(emu, USER, [SCOPES.pop]),
    longToken: () => tokenOfLength(6000),
    reset: async (messages) => {
      const exchange = emu.running.exchange;
      const data = await exchange.openMailbox(exchange.findMailbox(USER)!);
      await data.expunge(
        'INBOX',
        data.requireFolder('INBOX').messages.map((m) => m.uid),
      );
      for (const raw of messages) {
        const res = await emu.admin('POST', `/mailboxes/${USER}/messages`, { raw: raw.toString('latin1') });
        assert.equal(res.status, 201, res.text);
      }
    },
    greeting: /^\+OK The Microsoft Exchange POP3 service is ready\. \[[A-Za-z0-9+/]*=*\]$/,
    loginReply: '+OK User successfully authenticated.',
    refusal: '-ERR Authentication failure: unknown user name or bad password.',
    deletedReply: /^-ERR The specified message has been deleted\.$/,
    capaAfterTls: (raw) => assert.deepEqual(raw, ['TOP', 'UIDL', 'SASL PLAIN XOAUTH2', 'USER']),
    oauthbearer: false,
    pipelining: false,
  }));
});

describe('POP3 client against Dovecot', () => {
  pop3ClientSuite(() => ({
    name: 'dovecot',
    pop3s: () => ({ host: '127.0.0.1', port: dovecot.pop3sPort!, security: 'implicit', ca: emu.caPem }),
    plain: () => ({ host: '127.0.0.1', port: dovecot.pop3Port, security: 'starttls', ca: emu.caPem }),
    token: () => userToken(emu, USER, [SCOPES.pop]),
    // Dovecot 2.3's login process takes SASL responses of up to 8192 bytes (base64), that is
    // tokens up to about 6,100 characters (see the test below): 4200 gives about 5,100.
    longToken: () => tokenOfLength(4200),
    reset: async (messages) => {
      await rm(join(dovecot.mailRoot, USER, 'Maildir'), { recursive: true, force: true });
      await mkdir(join(dovecot.mailRoot, USER), { recursive: true });
      await seedMaildir(dovecot, USER, messages);
    },
    greeting: /^\+OK Dovecot \(Debian\) ready\.$/,
    loginReply: '+OK Logged in.',
    refusal: '-ERR [AUTH] Authentication failed.',
    deletedReply: /^-ERR Message is deleted\.$/,
    capaAfterTls: (raw) => assert.deepEqual(raw, ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE', 'USER', 'SASL XOAUTH2 OAUTHBEARER']),
    oauthbearer: true,
    pipelining: true,
  }));

  it("a refused token gets Dovecot's error challenge, answered, then its -ERR", async () => {
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: dovecot.pop3sPort!, security: 'implicit', ca: emu.caPem });
    try {
      for (const auth of [client.authXoauth2.bind(client), client.authOauthbearer.bind(client)]) {
        const err = await rejectsWith(auth(USER, 'not-a-token'), 'auth_rejected');
        assert.equal(err.reply, '-ERR [AUTH] Authentication failed.');
        // Dovecot's RFC 7628 error JSON, e.g. {"status":"invalid_token"} for a token that is no JWT.
        assert.equal(typeof (JSON.parse(err.challenge ?? '') as { status?: unknown }).status, 'string');
      }
    } finally {
      await client.quit();
    }
  });

  it("a token beyond Dovecot 2.3's 8 KB SASL response limit: Dovecot hangs up, the client says so", async () => {
    const huge = await tokenOfLength(7000);
    assert.ok(Buffer.from(`user=${USER}\x01auth=Bearer ${huge}\x01\x01`).toString('base64').length > 8192);
    const client = await Pop3Client.connect({ host: '127.0.0.1', port: dovecot.pop3sPort!, security: 'implicit', ca: emu.caPem });
    const err = await rejectsWith(client.authXoauth2(USER, huge), 'closed');
    assert.ok(!err.message.includes(huge.slice(0, 40)));
    assert.match(await dovecot.log(), /Authentication response too large/);
  });
});
