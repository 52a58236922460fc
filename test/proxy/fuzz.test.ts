// The proxy's pre-login dialog under hostile input. A seeded fuzzer sends over 100,000 random and
// mutated lines to each of a POP3, an IMAP and an SMTP listener (and a smaller run to a STARTTLS
// listener of each, in clear and after a real upgrade), pipelined over many parallel
// connections: every byte the proxy answers must be a valid reply of its protocol, no session may
// hang, no session may fail inside the proxy, memory must stay bounded, and well-formed clients
// must keep logging in all along. Then the cases the issue names, one by one, with the exact
// reply: oversized lines and literals, CR/LF/NUL in user names, commands before login, and
// pipelined garbage (one error per line, then the close after the tenth).
//
// The fuzz clients run in a worker thread (test/helpers/proxy-fuzz.ts), from loopback addresses
// of their own (127.0.10-15.x), so their failed logins rate-limit only those; the named cases run
// from 127.0.0.3 and the well-formed clients from 127.0.0.2. The seed is printed; FUZZ_SEED=<n>
// replays a run.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { MAX_ERRORS } from '../../src/proxy/front/io.ts';
import { startTestEmulator } from '../helpers/emulator.ts';
import { LineClient } from '../helpers/line-client.ts';
import { settledMemoryBytes } from '../helpers/memory.ts';
import { startTestProxy } from '../helpers/proxy.ts';
import { isFuzzAddress, MAX_LINE, MAX_LITERAL, runProxyFuzz, type FuzzProtocol, type FuzzResult } from '../helpers/proxy-fuzz.ts';

type Protocol = FuzzProtocol;

const SEED = Number(process.env.FUZZ_SEED ?? 20261124);
/** Hostile lines the proxy must answer on each plain listener (a lower bound, see FuzzResult). */
const TARGET = 100_000;
/** The same on each STARTTLS listener: a quarter of its sessions pay for a TLS handshake. */
const TARGET_STARTTLS = 5_000;
/** Connections at once per listener. */
const PARALLEL = 8;
const ALICE = 'alice@contoso.com';
/** Each fuzz address's first hundred failed logins reach the app-password check, later ones the rate limit. */
const FUZZ_LOGINS = { max: 100, windowSeconds: 300 };
const GOOD_ADDRESS = '127.0.0.2';
const CASE_ADDRESS = '127.0.0.3';

const b64 = (s: string) => Buffer.from(s, 'latin1').toString('base64');

// ---------------------------------------------------------------------------------------------
// Well-formed clients

async function smtpReply(c: LineClient): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await c.line();
    assert.ok(line !== null, `closed inside a reply; got ${lines.join(' | ')}`);
    lines.push(line);
    if (/^\d{3} /.test(line)) return lines;
  }
}

/** A well-formed session that logs in and works, on a plain or (upgrading first) STARTTLS listener. */
async function goodSession(protocol: Protocol, port: number, password: string, starttlsCert?: string): Promise<void> {
  const c = await LineClient.connect({ port, localAddress: GOOD_ADDRESS });
  try {
    const greeting = (await c.line()) ?? '';
    if (protocol === 'pop') {
      assert.match(greeting, /^\+OK /);
      if (starttlsCert) {
        assert.equal(await c.ask('STLS'), '+OK Begin TLS negotiation.');
        await c.startTls(starttlsCert);
      }
      assert.equal(await c.ask(`USER ${ALICE}`), '+OK Send the password with PASS.');
      assert.match((await c.ask(`PASS ${password}`)) ?? '', /^\+OK/);
      assert.match((await c.ask('STAT')) ?? '', /^\+OK \d+ \d+$/);
      assert.match((await c.ask('QUIT')) ?? '', /^\+OK/);
    } else if (protocol === 'imap') {
      assert.match(greeting, /^\* OK /);
      if (starttlsCert) {
        c.send('s STARTTLS');
        assert.equal((await c.untilTagged('s')).at(-1), 's OK Begin TLS negotiation now.');
        await c.startTls(starttlsCert);
      }
      c.send(`a LOGIN "${ALICE}" "${password}"`);
      assert.match((await c.untilTagged('a')).at(-1)!, /^a OK /);
      c.send('b SELECT INBOX');
      assert.match((await c.untilTagged('b')).at(-1)!, /^b OK \[READ-WRITE\]/);
      c.send('c LOGOUT');
      assert.match((await c.untilTagged('c')).at(-1)!, /^c OK/);
    } else {
      assert.match(greeting, /^220 /);
      if (starttlsCert) {
        c.send('EHLO good.example');
        await smtpReply(c);
        assert.equal(await c.ask('STARTTLS'), '220 2.0.0 Ready to start TLS');
        await c.startTls(starttlsCert);
      }
      c.send('EHLO good.example');
      assert.ok((await smtpReply(c)).includes('250 AUTH PLAIN LOGIN'));
      assert.match((await c.ask(`AUTH PLAIN ${b64(`\0${ALICE}\0${password}`)}`)) ?? '', /^235 /);
      assert.match((await c.ask(`MAIL FROM:<${ALICE}>`)) ?? '', /^250 /);
      assert.match((await c.ask('RCPT TO:<bob@contoso.com>')) ?? '', /^250 /);
      assert.match((await c.ask('RSET')) ?? '', /^250 /);
      assert.match((await c.ask('QUIT')) ?? '', /^221 /);
    }
  } finally {
    c.close();
  }
}

// ---------------------------------------------------------------------------------------------

// Started when the module loads, outside every test and hook: node:test follows each async
// resource created inside a test or hook (an async hook on every promise), which costs the proxy
// much of its speed under the fuzz; its sessions now start outside that bookkeeping.
const emu = await startTestEmulator();
const proxy = await startTestProxy(emu, {
  listeners: [
    { protocol: 'pop' },
    { protocol: 'imap' },
    { protocol: 'smtp' },
    { protocol: 'pop', security: 'starttls' },
    { protocol: 'imap', security: 'starttls' },
    { protocol: 'smtp', security: 'starttls' },
  ],
  proxy: { failedLogins: FUZZ_LOGINS },
});
const password = await proxy.addClient('x', [ALICE]);
const proxyCert = await readFile(proxy.running.listeners.find((l) => l.security === 'starttls')!.certificateFile!, 'utf8');

describe('proxy pre-login dialog under hostile input', { timeout: 120_000 }, () => {
  after(async () => {
    await proxy.close();
    await emu.close();
  });

  /** A client of the named cases: from its own address, its replies read line by line. */
  const caseClient = async (protocol: Protocol): Promise<LineClient> => {
    const c = await LineClient.connect({ port: proxy.port(protocol), localAddress: CASE_ADDRESS });
    await c.line();
    return c;
  };

  /** The audit line of a session that has ended (found by the client's port). */
  const auditOf = async (c: LineClient): Promise<Record<string, unknown>> => {
    const client = `${CASE_ADDRESS}:${c.socket.localPort}`;
    c.close();
    for (let i = 0; i < 200; i++) {
      const found = proxy.audits().find((a) => a.client === client);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`no audit line for ${client}`);
  };

  /** All lines until the proxy closes the connection. */
  const rest = async (c: LineClient): Promise<string[]> => {
    const lines: string[] = [];
    for (let l = await c.line(); l !== null; l = await c.line()) lines.push(l);
    return lines;
  };

  it("answers an oversized line with the protocol's error, discards all of it, and goes on", async () => {
    const long = 'A'.repeat(MAX_LINE + 1);
    // The bound itself is allowed.
    const pop = await caseClient('pop');
    assert.equal(await pop.ask(`USER ${'a'.repeat(MAX_LINE - 5)}`), '+OK Send the password with PASS.');
    // What follows the bound on the same line is dropped with it, not read as a command.
    pop.send(`${long}QUIT`);
    assert.equal(await pop.line(), '-ERR Line too long.');
    assert.equal(await pop.ask('CAPA'), '+OK Capability list follows');
    await pop.block();
    pop.socket.write(`${'B'.repeat(3 * MAX_LINE)}\r\nQUIT\r\n`);
    assert.deepEqual(await rest(pop), ['-ERR Line too long.', '+OK Bye.']);

    const imap = await caseClient('imap');
    assert.equal(await imap.ask(`a NOOP ${'x'.repeat(MAX_LINE - 7)}`), 'a OK NOOP completed.');
    imap.socket.write(`${long}zz LOGOUT\r\nb NOOP\r\n`);
    assert.equal(await imap.line(), '* BAD Command line too long.');
    assert.equal(await imap.line(), 'b OK NOOP completed.');
    imap.socket.write(`c LOGIN {3+}\r\nabc ${long}\r\nd NOOP\r\n`);
    assert.equal(await imap.line(), 'c BAD Command line too long.');
    assert.deepEqual(await rest(imap), ['* BYE Too many errors; closing the connection.']);

    const smtp = await caseClient('smtp');
    assert.equal(await smtp.ask(`NOOP ${'x'.repeat(MAX_LINE - 5)}`), '250 2.0.0 OK');
    smtp.socket.write(`${long}QUIT\r\nNOOP\r\n`);
    assert.equal(await smtp.line(), '500 5.5.2 Line too long');
    assert.equal(await smtp.line(), '250 2.0.0 OK');
    // Bare LFs do not end an SMTP line: the QUIT between them is part of the oversized line.
    smtp.socket.write(`${'C'.repeat(5000)}\nQUIT\n${'C'.repeat(5000)}\r\nNOOP\r\n`);
    assert.equal(await smtp.line(), '500 5.5.2 Line too long');
    assert.equal(await smtp.line(), '250 2.0.0 OK');
    smtp.close();
  });

  it('refuses an oversized IMAP literal without a continuation, and closes on an oversized LITERAL+', async () => {
    const c = await caseClient('imap');
    c.send('a LOGIN {100000}');
    assert.equal(await c.line(), 'a BAD Literal too big (at most 4096 bytes before login).');
    c.send(`b LOGIN {${MAX_LITERAL + 1}}`);
    assert.equal(await c.line(), 'b BAD Literal too big (at most 4096 bytes before login).');
    c.send('c LOGIN {99999999999999999999}');
    assert.equal(await c.line(), 'c BAD Literal too big (at most 4096 bytes before login).');
    // Nothing was waiting for the literal: the next line is a command again.
    assert.equal(await c.ask('d NOOP'), 'd OK NOOP completed.');
    // The limit itself is accepted.
    c.send(`e LOGIN {${MAX_LITERAL}}`);
    assert.equal(await c.line(), '+ Ready for literal data');
    c.socket.write(`${'u'.repeat(MAX_LITERAL)} x\r\n`);
    assert.equal(await c.line(), 'e NO [AUTHENTICATIONFAILED] Authentication failed.');
    assert.equal((await auditOf(c)).result, 'bad_password');

    // A LITERAL+ too big: its bytes are on the way and cannot be told from commands, so the session ends.
    const plus = await caseClient('imap');
    plus.socket.write(`a LOGIN {100000+}\r\n${`z LOGOUT\r\n`.repeat(10_000)}`);
    assert.deepEqual(await rest(plus), ['a BAD Literal too big (at most 4096 bytes before login).', '* BYE Too many errors; closing the connection.']);
    assert.equal((await auditOf(plus)).result, 'no_login');
  });

  it('never logs in, nor runs what follows, when a user name carries CR, LF or NUL (even with the right password)', async () => {
    // POP3
    for (const user of ['alice\r@contoso.com', `${ALICE}\0`, `${ALICE}\r`, `${ALICE}\x1b`]) {
      const c = await caseClient('pop');
      assert.equal(await c.ask(`USER ${user}`), '-ERR USER needs a mailbox address.');
      assert.equal(await c.ask(`PASS ${password}`), '-ERR Send USER first.');
      assert.equal(await c.ask('STAT'), '-ERR Command not valid before login; log in with USER and PASS or AUTH PLAIN.');
      assert.equal((await auditOf(c)).result, 'no_login');
    }
    for (const [line, next] of [
      [`AUTH PLAIN ${b64(`\0${ALICE}\r\nSTAT\0${password}`)}`, undefined],
      [`AUTH PLAIN ${b64(`${ALICE}\r\n\0${ALICE}\0${password}`)}`, undefined],
      [`AUTH PLAIN ${b64(`\0${ALICE}\0${password}\r\nSTAT`)}`, undefined],
      [`AUTH LOGIN ${b64(`${ALICE}\nQUIT`)}`, b64(password)],
    ] as const) {
      const c = await caseClient('pop');
      if (next) {
        assert.equal(await c.ask(line), `+ ${b64('Password:')}`);
        assert.equal(await c.ask(next), '-ERR [AUTH] Authentication failed.');
      } else assert.equal(await c.ask(line), '-ERR [AUTH] Authentication failed.');
      assert.equal(await c.ask('STAT'), '-ERR Command not valid before login; log in with USER and PASS or AUTH PLAIN.');
      assert.equal((await auditOf(c)).result, 'bad_password');
    }
    // A bare LF ends a POP3 line (as with RFC 1939 clients that send one): the user is "alice", and
    // the rest is a line of its own that is not a command.
    {
      const c = await caseClient('pop');
      c.socket.write(`USER alice\n@contoso.com\r\nPASS ${password}\r\n`);
      assert.equal(await c.line(), '+OK Send the password with PASS.');
      assert.equal(await c.line(), '-ERR Command not valid before login; log in with USER and PASS or AUTH PLAIN.');
      assert.equal(await c.line(), '-ERR [AUTH] Authentication failed.');
      assert.equal((await auditOf(c)).result, 'unknown_mailbox');
    }

    // IMAP: a CRLF inside a quoted string ends the line there; the rest is no LOGOUT.
    {
      const c = await caseClient('imap');
      c.socket.write(`a LOGIN "${ALICE}\r\nb LOGOUT" "${password}"\r\n`);
      assert.equal(await c.line(), 'a BAD Invalid arguments: unterminated quoted string.');
      assert.equal(await c.line(), 'b BAD Unknown command.');
      assert.equal(await c.ask('c NOOP'), 'c OK NOOP completed.');
      assert.equal((await auditOf(c)).result, 'no_login');
    }
    // Inside literals and quoted strings the bytes reach the login, which refuses them.
    const userWithCrlf = `${ALICE}\r\nb LOGOUT`;
    for (const send of [
      (c: LineClient) => c.socket.write(`a LOGIN {${userWithCrlf.length}+}\r\n${userWithCrlf} "${password}"\r\n`),
      async (c: LineClient) => {
        c.send(`a LOGIN {${userWithCrlf.length}}`);
        assert.equal(await c.line(), '+ Ready for literal data');
        c.socket.write(`${userWithCrlf} "${password}"\r\n`);
      },
      (c: LineClient) => c.socket.write(`a LOGIN "${ALICE}\0" "${password}"\r\n`),
      (c: LineClient) => c.socket.write(`a LOGIN "${ALICE}\r" "${password}"\r\n`),
      (c: LineClient) => c.send(`a AUTHENTICATE PLAIN ${b64(`\0${ALICE}\r\n\0${password}`)}`),
      (c: LineClient) => c.send(`a AUTHENTICATE PLAIN ${b64(`${ALICE}\r\nb LOGOUT\0${ALICE}\0${password}`)}`),
      async (c: LineClient) => {
        c.send('a AUTHENTICATE PLAIN');
        assert.equal(await c.line(), '+ ');
        c.send(b64(`\0${ALICE}\0\r\n${password}`));
      },
    ] as ((c: LineClient) => void | Promise<void>)[]) {
      const c = await caseClient('imap');
      await send(c);
      assert.equal(await c.line(), 'a NO [AUTHENTICATIONFAILED] Authentication failed.');
      assert.equal(await c.ask('c SELECT INBOX'), 'c BAD Command not valid before login; log in with LOGIN or AUTHENTICATE PLAIN.');
      assert.equal((await auditOf(c)).result, 'bad_password');
    }

    // SMTP
    for (const [lines, replies, result] of [
      [[`AUTH PLAIN ${b64(`\0${ALICE}\r\nMAIL FROM:<x@y>\0${password}`)}`], ['535 5.7.8 Authentication credentials invalid'], 'bad_password'],
      [
        ['AUTH LOGIN', b64(`${ALICE}\r\n`), b64(password)],
        [`334 ${b64('Username:')}`, `334 ${b64('Password:')}`, '535 5.7.8 Authentication credentials invalid'],
        'bad_password',
      ],
      // Only CRLF ends an SMTP line: the MAIL after the bare LF is part of the AUTH line.
      [[`AUTH PLAIN ${b64(`\0${ALICE}\0${password}`)}\nMAIL FROM:<${ALICE}>`], ['501 5.5.2 Malformed PLAIN response'], 'no_login'],
    ] as const) {
      const c = await caseClient('smtp');
      c.send('EHLO case.example');
      await smtpReply(c);
      for (const [i, l] of lines.entries()) assert.equal(await c.ask(l), replies[i]);
      assert.equal(await c.ask(`MAIL FROM:<${ALICE}>`), '530 5.7.0 Authentication required');
      assert.equal((await auditOf(c)).result, result);
    }
    {
      const c = await caseClient('smtp');
      assert.equal(await c.ask(`EHLO case.example\rAUTH PLAIN ${b64(`\0${ALICE}\0${password}`)}`), '501 5.5.4 EHLO needs a domain or address');
      assert.equal((await auditOf(c)).result, 'no_login');
    }
    assert.ok(!proxy.audits().some((a) => String(a.client).startsWith(`${CASE_ADDRESS}:`) && a.result === 'ok'), 'no login from the named cases');
  });

  it("answers commands before login with the protocol's error and opens no upstream connection", async () => {
    const pick2 = (a: Record<string, unknown>) => ({ result: a.result, upstream: a.upstream });
    const pop = await caseClient('pop');
    for (const command of ['STAT', 'LIST', 'RETR 1', 'DELE 1', 'UIDL', 'TOP 1 0']) {
      assert.equal(await pop.ask(command), '-ERR Command not valid before login; log in with USER and PASS or AUTH PLAIN.', command);
    }
    assert.deepEqual(pick2(await auditOf(pop)), { result: 'no_login', upstream: undefined });

    const imap = await caseClient('imap');
    imap.socket.write('a SELECT INBOX\r\nb FETCH 1 BODY[]\r\nc LIST "" "*"\r\nd EXAMINE INBOX\r\ne APPEND INBOX {10+}\r\nf LOGOUT\r\n\r\ng IDLE\r\n');
    const before = 'Command not valid before login; log in with LOGIN or AUTHENTICATE PLAIN.';
    // The LITERAL+ of APPEND is read as data (the LOGOUT in it is not run), then refused with its command.
    for (const tag of ['a', 'b', 'c', 'd', 'e', 'g']) assert.equal(await imap.line(), `${tag} BAD ${before}`);
    assert.deepEqual(pick2(await auditOf(imap)), { result: 'no_login', upstream: undefined });

    const smtp = await caseClient('smtp');
    // DATA is refused, so what would be the message is read as (unknown) commands.
    smtp.socket.write(`MAIL FROM:<${ALICE}>\r\nRCPT TO:<bob@contoso.com>\r\nBDAT 5 LAST\r\nDATA\r\nSubject: x\r\n.\r\n`);
    for (const expected of [
      '530 5.7.0 Authentication required',
      '530 5.7.0 Authentication required',
      '530 5.7.0 Authentication required',
      '530 5.7.0 Authentication required',
      '500 5.5.1 Command unrecognized',
      '500 5.5.1 Command unrecognized',
    ]) {
      assert.equal(await smtp.line(), expected);
    }
    smtp.send('EHLO case.example');
    await smtpReply(smtp);
    assert.equal(await smtp.ask(`MAIL FROM:<${ALICE}>`), '530 5.7.0 Authentication required');
    assert.equal(await smtp.ask('RCPT TO:<bob@contoso.com>'), '530 5.7.0 Authentication required');
    assert.deepEqual(pick2(await auditOf(smtp)), { result: 'no_login', upstream: undefined });
  });

  it('answers pipelined garbage with one error per line, then closes after the tenth', async () => {
    const long = 'Z'.repeat(MAX_LINE + 100);
    const notBefore = '-ERR Command not valid before login; log in with USER and PASS or AUTH PLAIN.';
    const cases: Record<Protocol, [string, string][]> = {
      pop: [
        ['\x00\x01\x02', notBefore],
        ['', '-ERR Empty command.'],
        [long, '-ERR Line too long.'],
        ['\xff\xfe\xfd garbage', notBefore],
        ['STAT', notBefore],
        ['RETR 1', notBefore],
        ['AUTH XOAUTH2', '-ERR Unsupported mechanism XOAUTH2; use PLAIN or LOGIN.'],
        ['PASS x', '-ERR Send USER first.'],
        ['USER', '-ERR USER needs a mailbox address.'],
        ['STLS', '-ERR STLS is not offered here.'],
      ],
      imap: [
        ['g1 \x00\x01', 'g1 BAD Unknown command.'],
        ['', '* BAD Missing or invalid tag.'],
        [long, '* BAD Command line too long.'],
        ['g4 SELECT INBOX', 'g4 BAD Command not valid before login; log in with LOGIN or AUTHENTICATE PLAIN.'],
        ['g5 LOGIN', 'g5 BAD LOGIN needs a user name and a password.'],
        ['g6 LOGIN "a', 'g6 BAD Invalid arguments: unterminated quoted string.'],
        ['g7 ID ((((', 'g7 BAD Invalid arguments: unbalanced (.'],
        ['g8 STARTTLS', 'g8 BAD STARTTLS is not offered here.'],
        ['g(9 NOOP', '* BAD Missing or invalid tag.'],
        ['g10 FETCH 1 BODY[]', 'g10 BAD Command not valid before login; log in with LOGIN or AUTHENTICATE PLAIN.'],
      ],
      smtp: [
        ['\x00\x01', '500 5.5.1 Command unrecognized'],
        ['', '500 5.5.1 Command unrecognized'],
        [long, '500 5.5.2 Line too long'],
        ['MAIL FROM:<a@b.example>', '530 5.7.0 Authentication required'],
        ['RCPT TO:<b@c.example>', '530 5.7.0 Authentication required'],
        ['DATA', '530 5.7.0 Authentication required'],
        ['AUTH PLAIN', '503 5.5.1 Send EHLO first'],
        ['EHLO', '501 5.5.4 EHLO needs a domain or address'],
        ['STARTTLS', '502 5.5.1 STARTTLS is not offered here'],
        ['garbage\nQUIT', '500 5.5.1 Command unrecognized'],
      ],
    };
    const closing: Record<Protocol, string> = {
      pop: '-ERR Too many errors; closing the connection.',
      imap: '* BYE Too many errors; closing the connection.',
      smtp: '421 4.7.0 Too many errors; closing the connection',
    };
    // After the tenth error nothing is answered, not even a QUIT or LOGOUT.
    const afterwards: Record<Protocol, string[]> = {
      pop: ['QUIT', 'CAPA', 'garbage'],
      imap: ['g11 LOGOUT', 'g12 NOOP', 'garbage'],
      smtp: ['QUIT', 'NOOP', 'garbage'],
    };
    for (const protocol of ['pop', 'imap', 'smtp'] as const) {
      assert.equal(cases[protocol].length, MAX_ERRORS);
      const c = await caseClient(protocol);
      c.socket.write(Buffer.from([...cases[protocol].map(([line]) => line), ...afterwards[protocol]].map((l) => `${l}\r\n`).join(''), 'latin1'));
      assert.deepEqual(await rest(c), [...cases[protocol].map(([, reply]) => reply), closing[protocol]], protocol);
      assert.equal((await auditOf(c)).result, 'no_login');
    }

    // The same close notice when the tenth error is a refused login or an IMAP NO.
    const fake = 'mbp-zzzzzzzz-abcdefghijklmnopqrstuvwxyz';
    const lastErrors: Record<Protocol, [string, string][]> = {
      pop: [[`AUTH PLAIN ${b64(`\0${ALICE}\0${fake}`)}`, '-ERR [AUTH] Authentication failed.']],
      imap: [
        ['h9 AUTHENTICATE CRAM-MD5', 'h9 NO Unsupported authentication mechanism; use AUTHENTICATE PLAIN or LOGIN.'],
        [`h10 LOGIN ${ALICE} ${fake}`, 'h10 NO [AUTHENTICATIONFAILED] Authentication failed.'],
      ],
      smtp: [[`AUTH PLAIN ${b64(`\0${ALICE}\0${fake}`)}`, '535 5.7.8 Authentication credentials invalid']],
    };
    const garbage: Record<Protocol, (i: number) => [string, string]> = {
      pop: (i) => [`\x00garbage ${i}`, notBefore],
      imap: (i) => [`x${i} \x00garbage`, `x${i} BAD Unknown command.`],
      smtp: (i) => [`\x00garbage ${i}`, '500 5.5.1 Command unrecognized'],
    };
    for (const protocol of ['pop', 'imap', 'smtp'] as const) {
      const c = await caseClient(protocol);
      const errors = [...Array.from({ length: MAX_ERRORS - lastErrors[protocol].length }, (_, i) => garbage[protocol](i + 1)), ...lastErrors[protocol]];
      // SMTP takes AUTH only after EHLO (no error; its reply is left out below).
      const lines = [...(protocol === 'smtp' ? ['EHLO case.example'] : []), ...errors.map(([line]) => line), ...afterwards[protocol]];
      c.socket.write(Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1'));
      const replies = (await rest(c)).filter((l) => !/^250[ -]/.test(l));
      assert.deepEqual(replies, [...errors.map(([, reply]) => reply), closing[protocol]], protocol);
    }
  });

  it(`survives ${TARGET.toLocaleString('en')}+ hostile lines per listener: valid replies only, no hang, bounded memory, good clients served throughout`, async () => {
    console.log(`# fuzz seed ${SEED} (FUZZ_SEED=<n> to replay another)`);
    const listeners = (['pop', 'imap', 'smtp'] as const).flatMap((protocol) => [
      { label: `${protocol} plain`, protocol, port: proxy.port(protocol, 0), starttls: false },
      { label: `${protocol} starttls`, protocol, port: proxy.port(protocol, 1), starttls: true },
    ]);
    const good = (l: (typeof listeners)[number]) => goodSession(l.protocol, l.port, password, l.starttls ? proxyCert : undefined);
    // A good client on every listener first: warms the token cache and the upstream path before memory is measured.
    for (const l of listeners) await good(l);
    const settledBefore = settledMemoryBytes();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    /** RSS when a quarter, half, three quarters and all of the lines had been answered. */
    const rssAt: number[] = [];
    const started = performance.now();

    // Well-formed clients keep logging in while the fuzz runs: one at a time, each listener in turn.
    let fuzzing = true;
    let goodSessions = 0;
    let slowestGood = 0;
    const goodFailures: string[] = [];
    const goodLoop = (async () => {
      for (let i = 0; fuzzing; i++) {
        const l = listeners[i % listeners.length]!;
        const t = performance.now();
        try {
          await good(l);
          goodSessions++;
          slowestGood = Math.max(slowestGood, performance.now() - t);
        } catch (err) {
          goodFailures.push(`${l.label}: ${(err as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    })();
    let runs: FuzzResult[];
    try {
      const plan = listeners.map((l) => ({
        label: l.label,
        protocol: l.protocol,
        port: l.port,
        upgrade: l.starttls ? 0.25 : 0,
        target: l.starttls ? TARGET_STARTTLS : TARGET,
      }));
      runs = await runProxyFuzz({ seed: SEED, runs: plan, parallel: PARALLEL, proxyCert }, (fraction) => {
        const rss = process.memoryUsage().rss;
        rssPeak = Math.max(rssPeak, rss);
        while (rssAt.length < 4 && fraction >= (rssAt.length + 1) / 4) rssAt.push(rss);
      });
    } finally {
      fuzzing = false;
      await goodLoop;
    }
    const seconds = (performance.now() - started) / 1000;

    // No session is left behind.
    for (let i = 0; i < 300 && proxy.running.sessionCount > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(proxy.running.sessionCount, 0, 'sessions still open after every fuzz connection closed');

    // Every session's audit line: none failed inside the proxy (a front's exception ends its session
    // quietly, so this is where a crash shows), none logged in from the fuzz.
    const results = new Map<string, number>();
    const failures: string[] = [];
    for (const a of proxy.audits()) {
      const key = String(a.result);
      results.set(key, (results.get(key) ?? 0) + 1);
      const fromFuzz = isFuzzAddress(String(a.client));
      if (fromFuzz && a.result === 'ok') failures.push(`a fuzz session logged in: ${JSON.stringify(a)}`);
      // A STARTTLS handshake that meets fuzz bytes instead of a ClientHello fails; nothing else may.
      const onStarttls = listeners.some((l) => l.starttls && String(a.listener).endsWith(`:${l.port}`));
      if (a.result === 'error' && !(fromFuzz && onStarttls && /ssl|tls|handshake|wrong version|closed during/i.test(String(a.detail))))
        failures.push(`a session failed in the proxy: ${JSON.stringify(a)}`);
    }
    // The log sink is the test's (a real proxy writes to stdout): not the proxy's memory.
    proxy.logLines.length = 0;

    const mb = (n: number) => n / 1024 / 1024;
    const settledGrowth = mb(settledMemoryBytes() - settledBefore);
    const rssGrowth = mb(process.memoryUsage().rss - rssBefore);
    const lastQuarter = mb(rssAt[3]! - rssAt[2]!);
    for (const r of runs) {
      console.log(
        `# ${r.label}: ${r.answered} hostile lines answered (${r.sent} sent) over ${r.connections} connections${r.upgraded ? ` (${r.upgraded} after STARTTLS)` : ''}; slowest connection ${r.slowestMs.toFixed(0)} ms`,
      );
    }
    console.log(
      `# ${seconds.toFixed(1)} s; ${goodSessions} good sessions during the fuzz (slowest ${slowestGood.toFixed(0)} ms); sessions by result ${JSON.stringify(Object.fromEntries(results))}`,
    );
    console.log(
      `# memory: settled heap+buffers ${settledGrowth >= 0 ? '+' : ''}${settledGrowth.toFixed(1)} MB; rss +${rssGrowth.toFixed(0)} MB after, peak +${mb(rssPeak - rssBefore).toFixed(0)} MB, at 25/50/75/100 %: ${rssAt.map((r) => `+${mb(r - rssBefore).toFixed(0)}`).join(' ')} MB`,
    );

    const problems = runs.flatMap((r) => r.problems);
    assert.deepEqual(problems, [], `${runs.reduce((n, r) => n + r.problemCount, 0)} problems`);
    assert.deepEqual(failures.slice(0, 10), []);
    for (const r of runs) assert.ok(r.answered >= r.target, `${r.label}: ${r.answered} lines answered`);
    // The fuzz's logins got as far as each kind of refusal, the rate limit included.
    for (const refusal of ['bad_password', 'unknown_mailbox', 'unknown_client', 'rate_limited'])
      assert.ok((results.get(refusal) ?? 0) > 0, `no ${refusal} session`);
    assert.deepEqual(goodFailures, [], 'a well-formed client failed during the fuzz');
    assert.ok(goodSessions >= listeners.length, `only ${goodSessions} good sessions during the fuzz`);
    // Bounded: after garbage collection nothing of the fuzz remains, and the process stops
    // growing once the heap has reached its working size (the RSS itself includes the fuzz
    // client's thread and pages the allocators keep). How soon it gets there depends on the pace
    // the two cores allow: in one run out of three it was still growing at 75 % (+191 +264 +335
    // +333 MB), so the last quarter is where growth must have stopped; a leak grows in every one.
    assert.ok(settledGrowth < 30, `heap and buffers grew by ${settledGrowth.toFixed(1)} MB`);
    assert.ok(lastQuarter < 50, `rss grew by ${lastQuarter.toFixed(0)} MB in the last quarter of the fuzz`);

    // And afterwards, on every listener.
    for (const l of listeners) await good(l);
  });
});
