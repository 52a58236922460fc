// Issue 12's proxy points against the emulator: IMAP capabilities (IDLE) in the login reply and
// before login (6), refusals that are ASCII, whole and within the protocols' line limits (7), an
// upstream that accepts the token but cannot open the mailbox refused at login (8), the
// self-signed certificate naming 127.0.0.1 as a DNS name too for fetchmail (9), and a flood of
// connections that never log in not keeping a client from another address out (27).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { LineClient } from '../helpers/line-client.ts';
import { startTestProxy, type TestProxy } from '../helpers/proxy.ts';

const ALICE = 'alice@contoso.com';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const ADVICE = `mailbridge verify ${ALICE}`;

/** An SMTP reply's lines (up to the one with a space after the code). */
async function smtpReply(c: LineClient): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await c.line();
    assert.ok(line !== null, `closed after ${JSON.stringify(lines)}`);
    lines.push(line);
    if (/^\d{3}( |$)/.test(line)) return lines;
  }
}

function assertAsciiWithin(line: string, maxBytesWithCrlf: number): void {
  assert.match(line, /^[\x20-\x7e]*$/, `not printable ASCII: ${JSON.stringify(line)}`);
  assert.ok(Buffer.byteLength(line) + 2 <= maxBytesWithCrlf, `${Buffer.byteLength(line) + 2} bytes: ${line}`);
}

describe('proxy sharp edges (issue 12)', () => {
  let emu: TestEmulator;
  let proxy: TestProxy;
  let password: string;

  before(async () => {
    emu = await startTestEmulator();
    proxy = await startTestProxy(emu, {
      listeners: [{ protocol: 'imap' }, { protocol: 'pop' }, { protocol: 'smtp' }, { protocol: 'imap', security: 'implicit' }],
      proxy: { maxConnections: 20, maxPreLoginPerAddress: 8, failedLogins: { max: 50, windowSeconds: 300 } },
    });
    password = await proxy.addClient('helpdesk', [ALICE]);
  });

  after(async () => {
    await proxy?.close();
    await emu?.close();
  });

  const setMailbox = async (fields: Record<string, unknown>) => {
    const r = await emu.admin('PATCH', `/mailboxes/${ALICE}`, fields);
    assert.ok(r.status < 300, r.text);
  };

  it('6: the IMAP login reply carries the upstream capabilities (IDLE), the greeting lists them as last seen, and IDLE works through the proxy', async () => {
    const c = await LineClient.connect({ port: proxy.port('imap') });
    await c.line();
    c.send(`a LOGIN ${ALICE} ${password}`);
    const ok = (await c.untilTagged('a')).at(-1)!;
    // A client that reads capabilities only from the login reply (fetchmail).
    const caps = /^a OK \[CAPABILITY ([^\]]*)\]/.exec(ok)?.[1]?.split(' ') ?? [];
    assert.ok(caps.includes('IDLE') && caps.includes('MOVE') && caps.includes('UIDPLUS'), ok);
    assert.ok(!caps.some((cap) => /^(AUTH=|SASL-IR$|LOGINDISABLED$|STARTTLS$)/i.test(cap)), ok);
    c.send('b SELECT INBOX');
    assert.match((await c.untilTagged('b')).at(-1)!, /^b OK/);
    c.send('i IDLE');
    assert.match((await c.line())!, /^\+ /);
    const delivered = await emu.admin('POST', `/mailboxes/${ALICE}/messages`, { raw: 'Subject: idle\r\n\r\nhello\r\n' });
    assert.equal(delivered.status, 201, delivered.text);
    assert.match((await c.line())!, /^\* \d+ EXISTS$/);
    c.send('DONE');
    assert.match((await c.untilTagged('i')).at(-1)!, /^i OK/);
    c.close();

    const next = await LineClient.connect({ port: proxy.port('imap') });
    const greeting = (await next.line())!;
    assert.match(greeting, /^\* OK \[CAPABILITY IMAP4rev1 LITERAL\+ SASL-IR ID .*\bIDLE\b.* AUTH=PLAIN\] /);
    next.send('c CAPABILITY');
    const listed = await next.untilTagged('c');
    assert.match(listed[0]!, /^\* CAPABILITY IMAP4rev1 .*\bIDLE\b/);
    assert.match(listed[0]!, /\bMOVE\b/);
    next.close();
  });

  it('7: a long SMTP refusal is ASCII, multi-line within 512 bytes a line, and keeps the whole advice; POP3 and IMAP refusals are one ASCII line with it', async () => {
    await setMailbox({ smtpClientAuthenticationDisabled: true, popEnabled: false });
    try {
      const s = await LineClient.connect({ port: proxy.port('smtp') });
      await s.line();
      s.send('EHLO client.example');
      await smtpReply(s);
      s.send(`AUTH PLAIN ${b64(`\0${ALICE}\0${password}`)}`);
      const reply = await smtpReply(s);
      for (const line of reply) assertAsciiWithin(line, 512);
      const code = reply.at(-1)!.slice(0, 3);
      assert.match(code, /^[45]\d\d$/);
      reply.slice(0, -1).forEach((line) => assert.ok(line.startsWith(`${code}-`), line));
      assert.ok(
        reply
          .map((l) => l.slice(4))
          .join(' ')
          .includes(ADVICE),
        reply.join('\n'),
      );
      s.close();

      const p = await LineClient.connect({ port: proxy.port('pop') });
      await p.line();
      await p.ask(`USER ${ALICE}`);
      const refused = (await p.ask(`PASS ${password}`))!;
      assert.match(refused, /^-ERR /);
      assertAsciiWithin(refused, 512);
      assert.ok(refused.endsWith(ADVICE) || refused.includes(`${ADVICE} `) || refused.includes(`${ADVICE})`) || refused.includes(`${ADVICE}.`), refused);
      p.close();
    } finally {
      await setMailbox({ smtpClientAuthenticationDisabled: false, popEnabled: true });
    }
  });

  it('8: upstream IMAP disabled: the login is refused with the reason and the fix, not "OK Logged in." and a BAD after', async () => {
    await setMailbox({ imapEnabled: false });
    try {
      const c = await LineClient.connect({ port: proxy.port('imap') });
      await c.line();
      c.send(`a LOGIN ${ALICE} ${password}`);
      const reply = (await c.untilTagged('a')).at(-1)!;
      assert.match(reply, /^a NO /);
      assert.match(reply, /cannot open the mailbox/);
      assert.ok(reply.includes(ADVICE), reply);
      assertAsciiWithin(reply, 1000);
      c.close();
      const audit = await proxy.waitForAudit((a) => a.result === 'upstream_not_connected');
      assert.equal(audit.mailbox, ALICE);
    } finally {
      await setMailbox({ imapEnabled: true });
    }
  });

  it('9: the self-signed listener certificate names 127.0.0.1 and localhost as DNS names (fetchmail matches no IP entry)', async () => {
    const file = proxy.running.listeners.find((l) => l.security === 'implicit')!.certificateFile!;
    const cert = new X509Certificate(await readFile(file));
    const names = (cert.subjectAltName ?? '').split(', ');
    assert.ok(names.includes('DNS:localhost'), cert.subjectAltName);
    assert.ok(names.includes('DNS:127.0.0.1'), cert.subjectAltName);
    assert.ok(names.includes('IP Address:127.0.0.1'), cert.subjectAltName);
  });

  it('27: a flood of connections that never log in from one address does not keep a client from another address out', async () => {
    const flood: LineClient[] = [];
    const busy: string[] = [];
    for (let i = 0; i < 25; i++) {
      const c = await LineClient.connect({ port: proxy.port('pop'), localAddress: '127.0.0.3' });
      const greeting = (await c.line())!;
      if (greeting.startsWith('+OK')) flood.push(c);
      else {
        busy.push(greeting);
        c.close();
      }
    }
    try {
      assert.equal(flood.length, 8, `admitted from one address: ${flood.length}`);
      assert.match(busy[0]!, /^-ERR \[SYS\/TEMP\] Too many connections from 127\.0\.0\.3/);

      const good = await LineClient.connect({ port: proxy.port('pop'), localAddress: '127.0.0.2' });
      assert.match((await good.line())!, /^\+OK/);
      await good.ask(`USER ${ALICE}`);
      assert.match((await good.ask(`PASS ${password}`))!, /^\+OK/);
      good.send('QUIT');
      good.close();
    } finally {
      for (const c of flood) c.close();
    }
  });
});
