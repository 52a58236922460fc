// Real legacy clients through the proxy with an app password: curl (POP3, IMAP, SMTP), Python's
// poplib, imaplib and smtplib, mutt (IMAP LOGIN) and msmtp (AUTH PLAIN), against two upstreams:
// the emulated Exchange Online, and a real Dovecot (IMAP, POP3) + Postfix (SMTP submission, SASL
// by Dovecot, delivering into Dovecot over LMTP) that take the emulator's tokens. What the clients
// read is the mailbox's own bytes; what they send arrives; every session is audited as a login of
// alice's mailbox at the expected upstream; no log line holds the app password or a token.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { startTestProxy, type TestProxy } from '../helpers/proxy.ts';
import { DOVECOT_ISSUER, peerTls, until } from '../imap/mail-context.ts';
import { seedMaildir, startDovecot, type Dovecot } from '../peers/dovecot.ts';
import { startPostfix, type Postfix } from '../peers/postfix.ts';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';
/** In alice's mailbox before any client connects: dot lines to be stuffed and unstuffed on the way. */
const MESSAGE = [
  'From: Carol <carol@fabrikam.com>',
  'To: Alice <alice@contoso.com>',
  'Subject: legacy client byte check',
  'Message-ID: <legacy-clients@fabrikam.com>',
  'Date: Sat, 21 Nov 2026 10:00:00 +0000',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  '',
  '.a line starting with a dot',
  '..two dots',
  '.',
  'tabs\tand trailing spaces   ',
  'Gr\u00fc\u00dfe, caf\u00e9',
  'last line',
  '',
].join('\r\n');
const MESSAGE_BYTES = Buffer.from(MESSAGE, 'utf8');

const skipClients = needPeers('curl', 'mutt', 'msmtp', 'script', 'python3');
const skipPeers = skipClients || needPeers('dovecot', 'postfix');

/** A message alice sends to bob, with everything a server would otherwise add (so it arrives as sent). */
function outgoing(subject: string): string {
  return [
    'From: Alice <alice@contoso.com>',
    'To: Bob <bob@contoso.com>',
    `Subject: ${subject}`,
    `Message-ID: <${subject.replace(/\W+/g, '.')}@contoso.com>`,
    'Date: Sat, 21 Nov 2026 11:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Sent by a legacy client through the mailbridge proxy.',
    '.a line starting with a dot',
    '.',
    'last line',
    '',
  ].join('\r\n');
}

// ----- running the clients -----

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a client in its own process group with stdin closed (or fed `input`), killing the group
 * when it takes longer than `timeoutMs`.
 */
function run(file: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      detached: true,
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${options.timeoutMs ?? 20_000} ms]`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, options.timeoutMs ?? 20_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

function succeeded(ran: Ran, what: string): void {
  assert.equal(ran.code, 0, `${what} exited ${ran.code ?? ran.signal}; stderr: ${ran.stderr}; stdout: ${ran.stdout.toString('utf8').slice(-2000)}`);
}

/** Python's poplib, imaplib and smtplib, driven by a JSON argument; prints a JSON result. */
const PYTHON = `
import base64, imaplib, json, poplib, smtplib, ssl, sys
a = json.loads(sys.argv[1])
host, port, user, password = '127.0.0.1', a['port'], a['user'], a['password']
ctx = ssl.create_default_context(cafile=a['cafile']) if a.get('cafile') else None
out = {}
if a['kind'] in ('pop', 'pop3_ssl'):
    p = poplib.POP3_SSL(host, port, context=ctx, timeout=15) if a['kind'] == 'pop3_ssl' else poplib.POP3(host, port, timeout=15)
    out['user'] = p.user(user).decode()
    out['pass'] = p.pass_(password).decode()
    resp, lines, octets = p.retr(1)
    out['raw'] = base64.b64encode(b''.join(l + b'\\r\\n' for l in lines)).decode()
    p.quit()
elif a['kind'] in ('imap', 'imap4_ssl'):
    m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=15) if a['kind'] == 'imap4_ssl' else imaplib.IMAP4(host, port, timeout=15)
    out['login'] = m.login(user, password)[0]
    out['select'] = m.select('INBOX', readonly=True)[0]
    typ, data = m.fetch('1', '(BODY.PEEK[])')
    out['fetch'] = typ
    out['raw'] = base64.b64encode(data[0][1]).decode()
    m.logout()
elif a['kind'] == 'smtp':
    s = smtplib.SMTP(host, port, timeout=15)
    s.starttls(context=ctx)
    code, text = s.login(user, password)
    out['login'] = code
    out['refused'] = s.sendmail(user, a['rcpt'], sys.stdin.buffer.read())
    s.quit()
print(json.dumps(out))
`;
import { needPeers } from '../helpers/peers.ts';

// ----- what each upstream provides -----

interface Setup {
  proxy: TestProxy;
  password: string;
  /** The proxy's certificate (self-signed, generated), as a file the clients trust. */
  cert: string;
  dir: string;
  /** host:port the audit line names for logins of each protocol. */
  upstream: { imap: string; pop: string; smtp: string };
  /** The bytes of the message with this Subject once it is in bob's mailbox (as stored there). */
  arrived: (subject: string) => Promise<Buffer>;
  /** What the mailbox store keeps of a sent message: the bytes as sent, with its own line ends. */
  stored: (sent: string) => string;
}

/** The listeners every setup has, in this order (upstream fields added per setup). */
const LISTENERS = [
  { protocol: 'imap', security: 'plain' },
  { protocol: 'imap', security: 'implicit' },
  { protocol: 'pop', security: 'plain' },
  { protocol: 'pop', security: 'implicit' },
  { protocol: 'smtp', security: 'starttls' },
] as const;

function legacyClientTests(get: () => Setup): void {
  const port = (protocol: 'imap' | 'pop' | 'smtp', security: 'plain' | 'implicit' | 'starttls'): number => {
    const found = get().proxy.running.listeners.find((l) => l.protocol === protocol && l.security === security);
    assert.ok(found, `a ${security} ${protocol} listener`);
    return found.port;
  };

  /**
   * Runs `work` (one or more client runs, `sessions` proxy sessions in all) and returns their
   * audit lines, each checked to be an ok login of alice's at the protocol's upstream, and the
   * client side of their transcripts.
   */
  const sessions = async (
    protocol: 'imap' | 'pop' | 'smtp',
    count: number,
    work: () => Promise<void>,
  ): Promise<{ audits: Record<string, unknown>[]; heard: string[][] }> => {
    const { proxy, upstream } = get();
    const before = proxy.audits().length;
    await work();
    const audits = await until(`${count} ${protocol} session(s) audited`, () => {
      const got = proxy.audits().slice(before);
      return got.length >= count ? got : undefined;
    });
    assert.equal(audits.length, count, JSON.stringify(audits));
    for (const a of audits) {
      assert.equal(a.protocol, protocol, JSON.stringify(a));
      assert.equal(a.result, 'ok', JSON.stringify(a));
      assert.equal(a.mailbox, ALICE);
      assert.equal(a.appClient, 'legacy clients');
      assert.equal(a.upstream, upstream[protocol], 'the login went to the expected upstream');
      assert.ok((a.bytesToClient as number) > 0 && (a.bytesFromClient as number) > 0, JSON.stringify(a));
    }
    const lines = proxy.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'transcript');
    const heard = audits.map((a) => lines.filter((l) => l.session === a.session && typeof l.client === 'string').map((l) => l.client as string));
    return { audits, heard };
  };

  const curl = async (url: string, extra: string[] = []): Promise<Buffer> => {
    const { password } = get();
    const ran = await run('curl', ['-sS', '--max-time', '20', url, '-u', `${ALICE}:${password}`, ...extra]);
    succeeded(ran, `curl ${url}`);
    return ran.stdout;
  };

  const python = async (args: Record<string, unknown>, input?: string): Promise<Record<string, unknown>> => {
    const { dir, password, cert } = get();
    const ran = await run(
      'python3',
      [join(dir, 'clients.py'), JSON.stringify({ user: ALICE, password, cafile: cert, ...args })],
      input === undefined ? {} : { input },
    );
    succeeded(ran, `python ${String(args.kind)}`);
    return JSON.parse(ran.stdout.toString('utf8')) as Record<string, unknown>;
  };

  /** Sends `subject` with `send` and checks that it arrives in bob's mailbox as sent. */
  const sendsAndArrives = async (subject: string, send: (message: string, file: string) => Promise<void>): Promise<void> => {
    const { dir, arrived, stored } = get();
    const message = outgoing(subject);
    const file = join(dir, `${subject.replace(/\W+/g, '-')}.eml`);
    await writeFile(file, message);
    await send(message, file);
    const raw = (await arrived(subject)).toString('utf8');
    const expected = stored(message);
    assert.ok(raw.endsWith(expected), `arrived as sent (after the trace headers the servers add):\n${raw}`);
    const added = raw.slice(0, raw.length - expected.length);
    assert.doesNotMatch(added, /\r?\n\r?\n/, 'only header lines in front of it');
  };

  it("curl POP3: RETR over a plain listener (curl picks AUTH PLAIN) and over pop3s with AUTH=LOGIN is the mailbox's bytes", async () => {
    const { cert } = get();
    const { heard } = await sessions('pop', 2, async () => {
      assert.deepEqual(await curl(`pop3://127.0.0.1:${port('pop', 'plain')}/1`), MESSAGE_BYTES);
      assert.deepEqual(await curl(`pop3s://127.0.0.1:${port('pop', 'implicit')}/1`, ['--cacert', cert, '--login-options', 'AUTH=LOGIN']), MESSAGE_BYTES);
    });
    // curl offered "SASL PLAIN LOGIN" and USER chooses SASL, PLAIN first.
    assert.ok(heard[0]!.includes('AUTH PLAIN'), heard[0]!.join(' | '));
    assert.ok(heard[1]!.includes('AUTH LOGIN'), heard[1]!.join(' | '));
  });

  it("curl IMAP: INBOX;UID=1 over a plain listener and INBOX;MAILINDEX=1 over imaps (AUTHENTICATE PLAIN) are the mailbox's bytes", async () => {
    const { cert } = get();
    const { heard } = await sessions('imap', 2, async () => {
      assert.deepEqual(await curl(`imap://127.0.0.1:${port('imap', 'plain')}/INBOX;UID=1`), MESSAGE_BYTES);
      assert.deepEqual(await curl(`imaps://127.0.0.1:${port('imap', 'implicit')}/INBOX;MAILINDEX=1`, ['--cacert', cert]), MESSAGE_BYTES);
    });
    for (const h of heard)
      assert.ok(
        h.some((l) => /^A\d+ AUTHENTICATE PLAIN/.test(l)),
        h.join(' | '),
      );
  });

  it('curl SMTP: --ssl-reqd over STARTTLS, AUTH PLAIN (its choice) and AUTH=LOGIN; both messages arrive as sent', async () => {
    const { cert } = get();
    const { heard } = await sessions('smtp', 2, async () => {
      for (const [mechanism, extra] of [
        ['PLAIN', []],
        ['LOGIN', ['--login-options', 'AUTH=LOGIN']],
      ] as const) {
        await sendsAndArrives(`curl smtp ${mechanism} ${Date.now()}`, async (_message, file) => {
          await curl(`smtp://127.0.0.1:${port('smtp', 'starttls')}/client.example`, [
            '--ssl-reqd',
            '--cacert',
            cert,
            '--mail-from',
            ALICE,
            '--mail-rcpt',
            BOB,
            '-T',
            file,
            ...extra,
          ]);
        });
      }
    });
    assert.ok(heard[0]!.includes('STARTTLS') && heard[0]!.some((l) => /^AUTH PLAIN\b/.test(l)), heard[0]!.join(' | '));
    assert.ok(
      heard[1]!.some((l) => /^AUTH LOGIN\b/.test(l)),
      heard[1]!.join(' | '),
    );
  });

  it("Python poplib: USER/PASS over a plain listener and over POP3_SSL; RETR 1 is the mailbox's bytes", async () => {
    const { heard } = await sessions('pop', 2, async () => {
      for (const [kind, security] of [
        ['pop', 'plain'],
        ['pop3_ssl', 'implicit'],
      ] as const) {
        const got = await python({ kind, port: port('pop', security) });
        assert.match(String(got.pass), /^\+OK/);
        assert.deepEqual(Buffer.from(String(got.raw), 'base64'), MESSAGE_BYTES, kind);
      }
    });
    for (const h of heard) assert.ok(h.includes(`USER ${ALICE}`) && h.includes('PASS [password]'), h.join(' | '));
  });

  it("Python imaplib: login() over a plain listener and over IMAP4_SSL; FETCH BODY.PEEK[] is the mailbox's bytes", async () => {
    const { heard } = await sessions('imap', 2, async () => {
      for (const [kind, security] of [
        ['imap', 'plain'],
        ['imap4_ssl', 'implicit'],
      ] as const) {
        const got = await python({ kind, port: port('imap', security) });
        assert.deepEqual([got.login, got.select, got.fetch], ['OK', 'OK', 'OK']);
        assert.deepEqual(Buffer.from(String(got.raw), 'base64'), MESSAGE_BYTES, kind);
      }
    });
    for (const h of heard)
      assert.ok(
        h.some((l) => /^\S+ LOGIN \[credentials\]$/.test(l)),
        h.join(' | '),
      );
  });

  it('Python smtplib: starttls() and login() (AUTH PLAIN); the message arrives as sent', async () => {
    const { heard } = await sessions('smtp', 1, async () => {
      await sendsAndArrives(`smtplib ${Date.now()}`, async (message) => {
        const got = await python({ kind: 'smtp', port: port('smtp', 'starttls'), rcpt: [BOB] }, message);
        assert.equal(got.login, 235);
        assert.deepEqual(got.refused, {});
      });
    });
    assert.ok(heard[0]!.includes('STARTTLS') && heard[0]!.some((l) => /^AUTH PLAIN\b/.test(l)), heard[0]!.join(' | '));
  });

  it("mutt: IMAP LOGIN over a plain listener and over imaps, opens INBOX and pipes message 1 out: the mailbox's text", async () => {
    const { dir, password, cert } = get();
    const { audits, heard } = await sessions('imap', 2, async () => {
      for (const [scheme, security] of [
        ['imap', 'plain'],
        ['imaps', 'implicit'],
      ] as const) {
        const out = join(dir, `mutt-${scheme}.eml`);
        const muttrc = join(dir, `muttrc-${scheme}`);
        await writeFile(
          muttrc,
          [
            `set folder="${scheme}://127.0.0.1:${port('imap', security)}/"`,
            'set spoolfile="+INBOX"',
            `set imap_user="${ALICE}"`,
            `set imap_pass="${password}"`,
            'set imap_authenticators="login"',
            'set ssl_starttls=no',
            `set ssl_force_tls=${scheme === 'imaps' ? 'yes' : 'no'}`,
            `set ssl_ca_certificates_file="${cert}"`,
            'set certificate_file="/dev/null"',
            'set header_cache="" message_cachedir=""',
            'set wait_key=no pipe_decode=no quit=yes move=no timeout=5',
            // What mutt does once the index is shown: message 1 to a file, then leave.
            `push "<pipe-message>cat > ${out}<enter><exit>"`,
            '',
          ].join('\n'),
          { mode: 0o600 },
        );
        // mutt is a curses program: it gets a terminal from script(1); stdin stays closed.
        const ran = await run('script', ['-qec', `mutt -n -R -F ${muttrc}`, '/dev/null'], {
          env: { ...process.env, TERM: 'vt100', HOME: dir, LANG: 'C.UTF-8' },
          timeoutMs: 15_000,
        });
        const screen = ran.stdout.toString('utf8');
        succeeded(ran, `mutt ${scheme}`);
        assert.match(screen, /Msgs:1\b/, 'mutt showed INBOX with one message');
        assert.match(screen, /legacy client byte check/);
        // mutt keeps messages with Unix line ends: the same text, CRLF read as LF.
        assert.equal(await readFile(out, 'utf8'), MESSAGE.replace(/\r\n/g, '\n'), `piped by mutt over ${scheme}`);
      }
    });
    for (const a of audits) assert.ok((a.bytesToClient as number) > MESSAGE_BYTES.length, JSON.stringify(a));
    for (const h of heard)
      assert.ok(
        h.some((l) => /^\S+ LOGIN \[credentials\]$/.test(l)),
        h.join(' | '),
      );
  });

  it('msmtp: --auth=plain over STARTTLS trusting the proxy certificate; the message arrives as sent', async () => {
    const { dir, password, cert } = get();
    const { heard } = await sessions('smtp', 1, async () => {
      await sendsAndArrives(`msmtp ${Date.now()}`, async (message) => {
        const rc = join(dir, 'msmtprc');
        await writeFile(rc, '', { mode: 0o600 });
        const ran = await run(
          'msmtp',
          [
            '-C',
            rc,
            '--host',
            '127.0.0.1',
            '--port',
            String(port('smtp', 'starttls')),
            '--auth=plain',
            '--user',
            ALICE,
            '--passwordeval',
            `echo ${password}`,
            '--tls=on',
            '--tls-starttls=on',
            '--tls-trust-file',
            cert,
            '--from',
            ALICE,
            BOB,
          ],
          { input: message },
        );
        succeeded(ran, 'msmtp');
      });
    });
    assert.ok(heard[0]!.includes('STARTTLS') && heard[0]!.some((l) => /^AUTH PLAIN\b/.test(l)), heard[0]!.join(' | '));
  });

  it('no log line holds the app password (in any encoding the clients sent it) or an access token', async () => {
    const { proxy, password } = get();
    const secret = password.split('-').at(-1)!;
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
    const tokens = await Promise.all((['imap', 'pop', 'smtp'] as const).map((p) => proxy.provider.getAccessToken(ALICE, p)));
    for (const t of tokens) assert.match(t, /^eyJ[\w-]{10,}\.eyJ[\w-]{10,}\./, 'the tokens are JWTs, so the pattern below would catch one');
    const secrets = [
      password,
      secret,
      b64(password),
      b64(`\0${ALICE}\0${password}`),
      ...tokens,
      ...tokens.map((t) => b64(`user=${ALICE}\x01auth=Bearer ${t}\x01\x01`)),
    ];
    assert.ok(proxy.logLines.length > 0);
    for (const line of proxy.logLines) {
      for (const s of secrets) assert.ok(!line.includes(s), `a secret in a log line: ${line.slice(0, 200)}`);
      assert.doesNotMatch(line, /eyJ[\w-]{10,}\.eyJ[\w-]{10,}/, 'nothing shaped like a JWT');
    }
    // Every session of this file was a client logging in and working.
    const audits = proxy.audits();
    assert.equal(audits.length, 14, 'one session per client run');
    assert.deepEqual(
      audits.filter((a) => a.result !== 'ok'),
      [],
    );
  });
}

describe('legacy clients through the proxy (upstream: the emulated Exchange Online)', { skip: skipClients }, () => {
  let emu: TestEmulator;
  let setup: Setup;

  before(async () => {
    emu = await startTestEmulator();
    const delivered = await emu.admin('POST', `/mailboxes/${ALICE}/messages`, { raw: MESSAGE });
    assert.equal(delivered.status, 201, delivered.text);
    const proxy = await startTestProxy(emu, { listeners: LISTENERS.map((l) => ({ ...l })), debug: true });
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-legacy-clients-'));
    await writeFile(join(dir, 'clients.py'), PYTHON);
    const ports = emu.running.mailPorts;
    setup = {
      proxy,
      password: await proxy.addClient('legacy clients', [ALICE]),
      cert: proxy.running.listeners.find((l) => l.certificateFile)!.certificateFile!,
      dir,
      upstream: { imap: `localhost:${ports.imaps}`, pop: `localhost:${ports.pop3s}`, smtp: `localhost:${ports.smtp}` },
      arrived: (subject) =>
        until(`"${subject}" in ${BOB}'s INBOX`, async () => {
          const mailbox = await emu.running.exchange.store.open(BOB);
          const inbox = mailbox.requireFolder('INBOX');
          for (const meta of inbox.messages) {
            const raw = await mailbox.read(inbox, meta.uid);
            if (raw.includes(`\r\nSubject: ${subject}\r\n`)) return raw;
          }
          return undefined;
        }),
      stored: (sent) => sent,
    };
  });

  after(async () => {
    await setup?.proxy.close();
    await emu?.close();
    if (setup) await rm(setup.dir, { recursive: true, force: true });
  });

  it("the admin API lists alice's message as the one the clients read", async () => {
    const folders = (await emu.admin('GET', `/mailboxes/${ALICE}/messages`)).json<{ folder: string; messages: { uid: number; size: number }[] }[]>();
    assert.deepEqual(
      folders.find((f) => f.folder === 'INBOX')?.messages.map((m) => [m.uid, m.size]),
      [[1, MESSAGE_BYTES.length]],
    );
  });

  legacyClientTests(() => setup);
});

describe('legacy clients through the proxy (upstream: Dovecot for IMAP and POP3, Postfix for SMTP)', { skip: skipPeers }, () => {
  let emu: TestEmulator;
  let dovecot: Dovecot;
  let postfix: Postfix;
  let setup: Setup;

  before(async () => {
    emu = await startTestEmulator();
    const certificate = await peerTls(emu);
    dovecot = await startDovecot({ issuer: DOVECOT_ISSUER, keysDir: emu.running.dovecotKeysDir, tls: certificate });
    await seedMaildir(dovecot, ALICE, [MESSAGE_BYTES]);
    postfix = await startPostfix({ dovecot, tls: certificate, virtualDomains: ['contoso.com'] });
    const ca = join(emu.dataDir, 'ca.crt');
    const upstreams = {
      imap: `imaps://localhost:${dovecot.imapsPort!}`,
      pop: `pop3s://localhost:${dovecot.pop3sPort!}`,
      smtp: `smtp://localhost:${postfix.submissionPort}`,
    };
    const proxy = await startTestProxy(emu, { listeners: LISTENERS.map((l) => ({ ...l, upstream: upstreams[l.protocol], upstreamCaFile: ca })), debug: true });
    const dir = await mkdtemp(join(tmpdir(), 'mailbridge-legacy-clients-'));
    await writeFile(join(dir, 'clients.py'), PYTHON);
    const bobMaildir = join(dovecot.mailRoot, BOB, 'Maildir');
    setup = {
      proxy,
      password: await proxy.addClient('legacy clients', [ALICE]),
      cert: proxy.running.listeners.find((l) => l.certificateFile)!.certificateFile!,
      dir,
      upstream: { imap: `localhost:${dovecot.imapsPort!}`, pop: `localhost:${dovecot.pop3sPort!}`, smtp: `localhost:${postfix.submissionPort}` },
      // Postfix hands the message to Dovecot's LMTP asynchronously; Dovecot writes it with LF line ends.
      arrived: (subject) =>
        until(
          `"${subject}" in ${BOB}'s Maildir`,
          async () => {
            for (const sub of ['new', 'cur']) {
              let names: string[];
              try {
                names = await readdir(join(bobMaildir, sub));
              } catch {
                continue; // not delivered to yet
              }
              for (const name of names) {
                const raw = await readFile(join(bobMaildir, sub, name));
                if (raw.includes(`\nSubject: ${subject}\n`)) return raw;
              }
            }
            return undefined;
          },
          15_000,
        ),
      stored: (sent) => sent.replace(/\r\n/g, '\n'),
    };
  });

  after(async () => {
    await setup?.proxy.close();
    await postfix?.stop();
    await dovecot?.stop();
    await emu?.close();
    if (setup) await rm(setup.dir, { recursive: true, force: true });
  });

  legacyClientTests(() => setup);
});
