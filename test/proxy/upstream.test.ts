// The proxy's upstream login against real servers: the emulated Exchange Online (imaps, imap +
// STARTTLS, pop3s, pop3 + STLS, smtp + STARTTLS), a real Dovecot (IMAP, POP3, both TLS modes) and
// a real Postfix (SMTP submission, SASL through Dovecot), plus tiny scripted TLS servers for what
// real servers do not do on demand (bytes after the login answer in the same write, no SASL-IR, a
// BYE greeting, silence). After each login a raw command goes over the returned socket.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { LineReader } from '../../src/net/line-reader.ts';
import { parseXoauth2 } from '../../src/net/sasl-xoauth2.ts';
import { loginUpstream, UpstreamError, type UpstreamProtocol, type UpstreamSession, type UpstreamTarget } from '../../src/proxy/upstream/index.ts';
import { createAuthority, issueServerCertificate, type CertificateWithKey } from '../../src/tls/certificates.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { SCOPES, userToken } from '../helpers/mail-tokens.ts';
import { DOVECOT_ISSUER, message, peerTls } from '../imap/mail-context.ts';
import { seedMaildir, startDovecot, type Dovecot } from '../peers/dovecot.ts';
import { startPostfix, type Postfix } from '../peers/postfix.ts';
import { freePorts } from '../peers/probe.ts';
import { needPeers } from '../helpers/peers.ts';

const ALICE = 'alice@contoso.com';
const TIMEOUT = 5000;

/** Talks raw over a handed-over socket: the leftover first, then what arrives. */
class Relay {
  readonly socket: net.Socket;
  #text: string;

  constructor(session: UpstreamSession) {
    this.socket = session.socket;
    this.#text = session.leftover.toString('latin1');
    this.socket.on('data', (chunk: Buffer) => {
      this.#text += chunk.toString('latin1');
    });
    // Handed over paused: a 'data' listener alone does not resume it (pipe() would).
    this.socket.resume();
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Waits until what was received matches `pattern`; returns everything received so far and forgets it. */
  async until(pattern: RegExp): Promise<string> {
    const deadline = Date.now() + TIMEOUT;
    while (!pattern.test(this.#text)) {
      if (Date.now() > deadline) assert.fail(`no ${String(pattern)} within ${TIMEOUT} ms; received ${JSON.stringify(this.#text)}`);
      if (this.socket.destroyed) assert.fail(`closed before ${String(pattern)}; received ${JSON.stringify(this.#text)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const text = this.#text;
    this.#text = '';
    return text;
  }

  async command(line: string, pattern: RegExp): Promise<string> {
    this.send(line);
    return this.until(pattern);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The state the proxy gets the socket in: TLS, paused, nobody reading. */
function assertHandedOver(session: UpstreamSession): void {
  assert.ok(session.socket instanceof tls.TLSSocket && session.socket.encrypted, 'a TLS socket');
  assert.equal(session.socket.authorized, true);
  assert.equal(session.socket.isPaused(), true, 'paused');
  assert.equal(session.socket.listenerCount('data'), 0, 'no data listener');
  assert.equal(session.socket.listenerCount('readable'), 0, 'no readable listener');
  assert.equal(session.socket.destroyed, false);
}

async function rejectsWith(work: Promise<unknown>, code: UpstreamError['code'], secrets: string[] = []): Promise<UpstreamError> {
  try {
    await work;
  } catch (err) {
    assert.ok(err instanceof UpstreamError, `expected an UpstreamError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const s of secrets) {
      for (const text of [err.message, err.reply ?? '', err.stack ?? '', JSON.stringify(err)]) {
        assert.ok(!text.includes(s), 'the token (or its SASL string) must not appear in the error');
      }
    }
    return err;
  }
  assert.fail(`expected an UpstreamError '${code}'`);
}

/** A token the servers refuse but that looks like one: the signature of a real one broken. */
function broken(token: string): string {
  const last = token.at(-2) === 'A' ? 'B' : 'A';
  return `${token.slice(0, -2)}${last}${token.at(-1)}`;
}

function sasl(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}

// ----- scripted TLS servers -----

interface ScriptIo {
  line(): Promise<string>;
  write(text: string): void;
  socket: tls.TLSSocket;
}

interface Scripted {
  port: number;
  /** Resolves when the script ended (or rejects with its failure). */
  done: Promise<void>;
  close(): Promise<void>;
}

/** One connection served by `script` over implicit TLS with a certificate for localhost. */
async function scripted(cert: CertificateWithKey, script: (io: ScriptIo) => Promise<void>): Promise<Scripted> {
  let finish!: (err?: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = (err?: Error) => (err === undefined ? resolve() : reject(err));
  });
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key: cert.keyPem, cert: cert.certPem }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const reader = new LineReader(socket, { maxLineBytes: 64 * 1024 });
    const io: ScriptIo = {
      socket,
      line: async () => {
        const raw = await reader.readLine();
        if (raw === null) throw new Error('the client closed');
        return raw.toString('latin1');
      },
      write: (text) => void socket.write(text),
    };
    script(io).then(() => finish(), finish);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    done,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('proxy upstream login', () => {
  let emu: TestEmulator;
  let scriptCert: CertificateWithKey;
  let scriptCa: string;
  let aliceToken: string;

  before(async () => {
    emu = await startTestEmulator();
    aliceToken = await userToken(emu, ALICE, [SCOPES.imap, SCOPES.pop, SCOPES.smtp]);
    const authority = await createAuthority('upstream test CA');
    scriptCa = authority.certPem;
    scriptCert = await issueServerCertificate(authority, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  });
  after(async () => {
    await emu?.close();
  });

  const emuTarget = (port: number, security: 'implicit' | 'starttls', extra: Partial<UpstreamTarget> = {}): UpstreamTarget => ({
    endpoint: { host: 'localhost', port, security },
    caPem: emu.caPem,
    timeoutMs: TIMEOUT,
    ...extra,
  });

  describe('against the emulated Exchange Online', () => {
    for (const [label, port, security] of [
      ['imaps (implicit TLS)', () => emu.running.mailPorts.imaps, 'implicit'],
      ['imap + STARTTLS', () => emu.running.mailPorts.imap, 'starttls'],
    ] as const) {
      it(`IMAP ${label}: logs in with SASL-IR; SELECT INBOX over the returned socket`, async () => {
        const session = await loginUpstream('imap', emuTarget(port(), security), ALICE, aliceToken);
        assertHandedOver(session);
        assert.match(session.greeting, /^\* OK The Microsoft Exchange IMAP4 service is ready\. \[[A-Za-z0-9+/]*=*\]$/);
        assert.equal(session.loginReply, 'OK AUTHENTICATE completed.');
        // Exchange states none with its OK: they come from the CAPABILITY asked after it (issue 12 point 6).
        assert.ok(session.capabilities.includes('IDLE') && session.capabilities.includes('MOVE'), session.capabilities.join(' '));
        assert.equal(session.leftover.length, 0);
        const relay = new Relay(session);
        try {
          const answer = await relay.command('x SELECT INBOX', /^x (OK|NO|BAD)\b.*\r\n/m);
          assert.match(answer, /^\* \d+ EXISTS\r$/m);
          assert.match(answer, /^x OK \[READ-WRITE\] SELECT completed\.\r\n$/m);
          await relay.command('x2 LOGOUT', /^x2 OK/m);
        } finally {
          relay.close();
        }
      });
    }

    for (const [label, port, security] of [
      ['pop3s (implicit TLS)', () => emu.running.mailPorts.pop3s, 'implicit'],
      ['pop3 + STLS', () => emu.running.mailPorts.pop3, 'starttls'],
    ] as const) {
      it(`POP3 ${label}: two-step XOAUTH2; STAT over the returned socket`, async () => {
        const session = await loginUpstream('pop', emuTarget(port(), security), ALICE, aliceToken);
        assertHandedOver(session);
        assert.match(session.greeting, /^\+OK The Microsoft Exchange POP3 service is ready\./);
        assert.equal(session.loginReply, '+OK User successfully authenticated.');
        assert.deepEqual(session.capabilities, []);
        assert.equal(session.leftover.length, 0);
        const relay = new Relay(session);
        try {
          assert.match(await relay.command('STAT', /\r\n/), /^\+OK \d+ \d+\r\n$/);
          assert.match(await relay.command('QUIT', /\r\n/), /^\+OK /);
        } finally {
          relay.close();
        }
      });
    }

    it('SMTP + STARTTLS: EHLO again after TLS, AUTH XOAUTH2; MAIL FROM then RSET over the returned socket', async () => {
      const session = await loginUpstream('smtp', emuTarget(emu.running.mailPorts.smtp, 'starttls', { ehloName: 'proxy.example' }), ALICE, aliceToken);
      assertHandedOver(session);
      assert.match(session.greeting, /^220 \S+ Microsoft ESMTP MAIL Service ready at /);
      assert.equal(session.loginReply, '235 2.7.0 Authentication successful');
      // The extensions after TLS: AUTH in STARTTLS's place, no hostname line, no "250-" prefix.
      assert.equal(session.capabilities.length, 9);
      assert.match(session.capabilities[0]!, /^SIZE \d+$/);
      assert.deepEqual(session.capabilities.slice(1), [
        'PIPELINING',
        'DSN',
        'ENHANCEDSTATUSCODES',
        'AUTH LOGIN XOAUTH2',
        '8BITMIME',
        'BINARYMIME',
        'CHUNKING',
        'SMTPUTF8',
      ]);
      assert.equal(session.leftover.length, 0);
      const relay = new Relay(session);
      try {
        assert.equal(await relay.command(`MAIL FROM:<${ALICE}>`, /\r\n/), '250 2.1.0 Sender OK\r\n');
        assert.equal(await relay.command('RSET', /\r\n/), '250 2.0.0 Resetting\r\n');
        assert.match(await relay.command('QUIT', /\r\n/), /^221 /);
      } finally {
        relay.close();
      }
    });

    it("a refused token is 'auth_rejected' with Exchange's words, on each protocol, and the token appears nowhere", async () => {
      const bad = broken(aliceToken);
      const secrets = [bad, sasl(ALICE, bad), bad.slice(-60)];
      const imap = await rejectsWith(loginUpstream('imap', emuTarget(emu.running.mailPorts.imaps, 'implicit'), ALICE, bad), 'auth_rejected', secrets);
      assert.equal(imap.reply, 'NO AUTHENTICATE failed.');
      assert.match(
        imap.message,
        new RegExp(`^IMAP server localhost:${emu.running.mailPorts.imaps}: refused the XOAUTH2 login for alice@contoso\\.com: NO AUTHENTICATE failed\\.$`),
      );
      const pop = await rejectsWith(loginUpstream('pop', emuTarget(emu.running.mailPorts.pop3, 'starttls'), ALICE, bad), 'auth_rejected', secrets);
      assert.equal(pop.reply, '-ERR Authentication failure: unknown user name or bad password.');
      assert.match(pop.message, new RegExp(`^POP3 server localhost:${emu.running.mailPorts.pop3}: `));
      const smtp = await rejectsWith(loginUpstream('smtp', emuTarget(emu.running.mailPorts.smtp, 'starttls'), ALICE, bad), 'auth_rejected', secrets);
      assert.match(smtp.reply ?? '', /^535 5\.7\.3 Authentication unsuccessful/);
    });

    it("a certificate not trusted (no emulator CA): 'tls', for implicit TLS and after STARTTLS/STLS", async () => {
      for (const [protocol, port, security] of [
        ['imap', emu.running.mailPorts.imaps, 'implicit'],
        ['imap', emu.running.mailPorts.imap, 'starttls'],
        ['pop', emu.running.mailPorts.pop3s, 'implicit'],
        ['smtp', emu.running.mailPorts.smtp, 'starttls'],
      ] as const) {
        const { caPem: _ignored, ...untrusting } = emuTarget(port, security);
        const err = await rejectsWith(loginUpstream(protocol, untrusting, ALICE, aliceToken), 'tls', [aliceToken]);
        assert.match(err.message, /localhost:\d+/);
        assert.match(err.message, /certificate/i, err.message);
      }
    });
  });

  describe('connection failures', () => {
    it("nothing listening: 'unreachable' naming host:port", async () => {
      const [port] = (await freePorts(1)) as [number];
      for (const protocol of ['imap', 'pop', 'smtp'] as const) {
        const err = await rejectsWith(
          loginUpstream(protocol, { endpoint: { host: '127.0.0.1', port, security: 'implicit' }, timeoutMs: TIMEOUT }, ALICE, aliceToken),
          'unreachable',
        );
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
        assert.match(err.message, /ECONNREFUSED/);
      }
    });

    it("a silent server: 'timeout' within timeoutMs, during the TLS handshake and while waiting for the greeting", async () => {
      const sockets = new Set<net.Socket>();
      const server = net.createServer((s) => {
        sockets.add(s);
        s.on('error', () => {});
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as net.AddressInfo).port;
      try {
        const cases: [UpstreamProtocol, 'implicit' | 'starttls'][] = [
          ['imap', 'implicit'],
          ['imap', 'starttls'],
          ['pop', 'implicit'],
          ['pop', 'starttls'],
          ['smtp', 'starttls'],
        ];
        for (const [protocol, security] of cases) {
          const started = Date.now();
          const err = await rejectsWith(
            loginUpstream(protocol, { endpoint: { host: '127.0.0.1', port, security }, timeoutMs: 200 }, ALICE, aliceToken),
            'timeout',
          );
          assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
          assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
        }
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  });

  describe('scripted servers', () => {
    const target = (port: number): UpstreamTarget => ({ endpoint: { host: 'localhost', port, security: 'implicit' }, caPem: scriptCa, timeoutMs: TIMEOUT });

    it('IMAP without SASL-IR: the two-step AUTHENTICATE, then LIST; bytes sent with its OK come back as leftover, later ones over the socket', async () => {
      const server = await scripted(scriptCert, async (io) => {
        io.write('* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] scripted ready\r\n');
        const auth = await io.line();
        const tag = auth.split(' ')[0]!;
        assert.equal(auth, `${tag} AUTHENTICATE XOAUTH2`);
        io.write('+ \r\n');
        assert.deepEqual(parseXoauth2(await io.line()), { user: ALICE, token: 'scripted-token' });
        io.write(`${tag} OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in\r\n`);
        // The check that the mailbox opens (issue 12 point 8): the capabilities were stated, so only LIST.
        assert.equal(await io.line(), 'mb2 LIST "" ""');
        // Its answer and more in one write: the proxy must relay what follows the OK.
        io.write(`* LIST (\\Noselect) "/" ""\r\nmb2 OK LIST completed.\r\n* 3 EXISTS\r\n* 1 RECENT\r\n* partial`);
        assert.equal(await io.line(), 'x NOOP');
        io.write(' line\r\nx OK NOOP completed\r\n');
      });
      try {
        const session = await loginUpstream('imap', target(server.port), ALICE, 'scripted-token');
        assertHandedOver(session);
        assert.equal(session.greeting, '* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] scripted ready');
        assert.equal(session.loginReply, 'OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in');
        assert.deepEqual(session.capabilities, ['IMAP4rev1', 'IDLE', 'MOVE']);
        assert.equal(session.leftover.toString('latin1'), '* 3 EXISTS\r\n* 1 RECENT\r\n* partial');
        const relay = new Relay(session);
        assert.equal(await relay.command('x NOOP', /^x OK/m), '* 3 EXISTS\r\n* 1 RECENT\r\n* partial line\r\nx OK NOOP completed\r\n');
        relay.close();
        await server.done;
      } finally {
        await server.close();
      }
    });

    it('POP3 and SMTP: bytes after the login answer in the same write come back as leftover', async () => {
      const pop = await scripted(scriptCert, async (io) => {
        io.write('+OK scripted POP3\r\n');
        assert.equal(await io.line(), 'AUTH XOAUTH2');
        io.write('+ \r\n');
        assert.deepEqual(parseXoauth2(await io.line()), { user: ALICE, token: 'scripted-token' });
        io.write('+OK welcome\r\n+OK 2 320\r\n');
        assert.equal(await io.line(), 'NOOP');
        io.write('+OK\r\n');
      });
      const smtp = await scripted(scriptCert, async (io) => {
        io.write('220-scripted.example ESMTP\r\n220 second greeting line\r\n');
        assert.equal(await io.line(), 'EHLO proxy.example');
        io.write('250-scripted.example hello\r\n250-AUTH=XOAUTH2\r\n250 8BITMIME\r\n');
        assert.equal(await io.line(), `AUTH XOAUTH2 ${sasl(ALICE, 'scripted-token')}`);
        io.write('235 2.7.0 Accepted\r\n250 early');
        assert.equal(await io.line(), 'NOOP');
        io.write(' bird\r\n250 OK\r\n');
      });
      try {
        const p = await loginUpstream('pop', target(pop.port), ALICE, 'scripted-token');
        assertHandedOver(p);
        assert.equal(p.loginReply, '+OK welcome');
        assert.equal(p.leftover.toString('latin1'), '+OK 2 320\r\n');
        const popRelay = new Relay(p);
        assert.equal(await popRelay.command('NOOP', /\r\n.*\r\n/), '+OK 2 320\r\n+OK\r\n');
        popRelay.close();
        await pop.done;

        const s = await loginUpstream('smtp', { ...target(smtp.port), ehloName: 'proxy.example' }, ALICE, 'scripted-token');
        assertHandedOver(s);
        assert.equal(s.greeting, '220-scripted.example ESMTP\r\n220 second greeting line');
        assert.deepEqual(s.capabilities, ['AUTH=XOAUTH2', '8BITMIME']);
        assert.equal(s.loginReply, '235 2.7.0 Accepted');
        assert.equal(s.leftover.toString('latin1'), '250 early');
        const smtpRelay = new Relay(s);
        assert.equal(await smtpRelay.command('NOOP', /250 OK\r\n/), '250 early bird\r\n250 OK\r\n');
        smtpRelay.close();
        await smtp.done;
      } finally {
        await pop.close();
        await smtp.close();
      }
    });

    it("a BYE greeting is 'closed' with the server's words; a broken reply is 'protocol'", async () => {
      const bye = await scripted(scriptCert, async (io) => {
        io.write('* BYE Too many connections, try later\r\n');
        io.socket.end();
      });
      const garbage = await scripted(scriptCert, async (io) => {
        io.write('HTTP/1.1 400 Bad Request\r\n');
        io.socket.end();
      });
      try {
        const err = await rejectsWith(loginUpstream('imap', target(bye.port), ALICE, 'scripted-token'), 'closed');
        assert.equal(err.reply, '* BYE Too many connections, try later');
        assert.match(err.message, new RegExp(`^IMAP server localhost:${bye.port}: refused the connection: \\* BYE Too many`));
        const broken = await rejectsWith(loginUpstream('smtp', target(garbage.port), ALICE, 'scripted-token'), 'protocol');
        assert.match(broken.message, /not an SMTP reply to the greeting: HTTP\/1\.1 400 Bad Request/);
      } finally {
        await bye.close();
        await garbage.close();
      }
    });
  });

  const skipDovecot = needPeers('dovecot');
  const skipPostfix = needPeers('postfix');

  describe("against Dovecot (IMAP, POP3) and Postfix (SMTP) with the emulator's tokens", { skip: skipDovecot }, () => {
    let dovecot: Dovecot;
    let postfix: Postfix | undefined;
    const peer = (port: number, security: 'implicit' | 'starttls'): UpstreamTarget => ({
      endpoint: { host: 'localhost', port, security },
      caPem: emu.caPem,
      timeoutMs: TIMEOUT,
    });

    before(async () => {
      const certificate = await peerTls(emu);
      dovecot = await startDovecot({ issuer: DOVECOT_ISSUER, keysDir: emu.running.dovecotKeysDir, tls: certificate });
      await seedMaildir(dovecot, ALICE, [Buffer.from(message('carol@fabrikam.example', ALICE, 'Seeded for the proxy', 'Hello.'))]);
      if (!skipPostfix) postfix = await startPostfix({ dovecot, tls: certificate, virtualDomains: ['contoso.com'] });
    });
    after(async () => {
      await postfix?.stop();
      await dovecot?.stop();
    });

    for (const [label, port, security] of [
      ['imaps (implicit TLS)', () => dovecot.imapsPort!, 'implicit'],
      ['imap + STARTTLS', () => dovecot.imapPort, 'starttls'],
    ] as const) {
      it(`IMAP ${label}: capabilities from the greeting and the login OK; SELECT INBOX over the returned socket`, async () => {
        const session = await loginUpstream('imap', peer(port(), security), ALICE, aliceToken);
        assertHandedOver(session);
        assert.match(session.greeting, /^\* OK \[CAPABILITY [^\]]*\] Dovecot \(Debian\) ready\.$/);
        assert.match(session.loginReply, /^OK \[CAPABILITY IMAP4rev1 [^\]]*\] Logged in$/);
        assert.ok(session.capabilities.includes('IMAP4rev1') && session.capabilities.includes('IDLE'), session.capabilities.join(' '));
        assert.ok(!session.capabilities.some((c) => /^AUTH=/i.test(c)), 'capabilities after login, not before');
        assert.equal(session.leftover.length, 0);
        const relay = new Relay(session);
        try {
          const answer = await relay.command('x SELECT INBOX', /^x (OK|NO|BAD)\b.*\r\n/m);
          assert.match(answer, /^\* 1 EXISTS\r$/m);
          assert.match(answer, /^x OK \[READ-WRITE\] Select completed/m);
          await relay.command('x2 LOGOUT', /^x2 OK/m);
        } finally {
          relay.close();
        }
      });
    }

    for (const [label, port, security] of [
      ['pop3s (implicit TLS)', () => dovecot.pop3sPort!, 'implicit'],
      ['pop3 + STLS', () => dovecot.pop3Port, 'starttls'],
    ] as const) {
      it(`POP3 ${label}: STAT over the returned socket`, async () => {
        const session = await loginUpstream('pop', peer(port(), security), ALICE, aliceToken);
        assertHandedOver(session);
        assert.equal(session.greeting, '+OK Dovecot (Debian) ready.');
        assert.equal(session.loginReply, '+OK Logged in.');
        const relay = new Relay(session);
        try {
          assert.match(await relay.command('STAT', /\r\n/), /^\+OK 1 \d+\r\n$/);
          await relay.command('QUIT', /\r\n/);
        } finally {
          relay.close();
        }
      });
    }

    it("a refused token: Dovecot's error challenge answered, then 'auth_rejected' with its NO / -ERR", async () => {
      const secrets = ['not-a-valid-token', sasl(ALICE, 'not-a-valid-token')];
      const imap = await rejectsWith(loginUpstream('imap', peer(dovecot.imapsPort!, 'implicit'), ALICE, 'not-a-valid-token'), 'auth_rejected', secrets);
      assert.equal(imap.reply, 'NO [AUTHENTICATIONFAILED] Authentication failed.');
      assert.match(imap.message, /\(error challenge: \{"status":/);
      const pop = await rejectsWith(loginUpstream('pop', peer(dovecot.pop3Port, 'starttls'), ALICE, 'not-a-valid-token'), 'auth_rejected', secrets);
      assert.equal(pop.reply, '-ERR [AUTH] Authentication failed.');
    });

    describe('Postfix', { skip: skipPostfix }, () => {
      it('SMTP + STARTTLS: the EHLO extensions after TLS; MAIL FROM then RSET over the returned socket', async () => {
        const session = await loginUpstream('smtp', peer(postfix!.submissionPort, 'starttls'), ALICE, aliceToken);
        assertHandedOver(session);
        assert.match(session.greeting, /^220 /);
        assert.match(session.loginReply, /^235 2\.7\.0 Authentication successful$/);
        assert.ok(session.capabilities.includes('AUTH XOAUTH2 OAUTHBEARER'), session.capabilities.join(', '));
        assert.ok(!session.capabilities.includes('STARTTLS'), 'the list from after TLS');
        const relay = new Relay(session);
        try {
          assert.match(await relay.command(`MAIL FROM:<${ALICE}>`, /\r\n/), /^250 2\.1\.0 Ok\r\n$/);
          assert.match(await relay.command('RSET', /\r\n/), /^250 2\.0\.0 Ok\r\n$/);
          await relay.command('QUIT', /\r\n/);
        } finally {
          relay.close();
        }
      });

      it("a refused token: the 334 error challenge answered, then 'auth_rejected' with Postfix's 535", async () => {
        const secrets = ['not-a-valid-token', sasl(ALICE, 'not-a-valid-token')];
        const err = await rejectsWith(loginUpstream('smtp', peer(postfix!.submissionPort, 'starttls'), ALICE, 'not-a-valid-token'), 'auth_rejected', secrets);
        assert.match(err.reply ?? '', /^535 5\.7\.8 Error: authentication failed/);
        assert.match(err.message, /\(error challenge: \{"status":/);
      });
    });
  });
});
