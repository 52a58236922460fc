// SMTP submission: greeting, EHLO, STARTTLS (587) or implicit TLS (465), EHLO again (AUTH must
// list XOAUTH2), AUTH XOAUTH2 with the initial response, then MAIL FROM + RCPT TO + RSET to the
// mailbox itself (nothing is sent), or with --send-test a short message to itself; QUIT
// (reference section 8.5).
import { randomUUID } from 'node:crypto';
import { encodeXoauth2 } from '../net/sasl-xoauth2.ts';
import { causes } from './causes.ts';
import { ConnectionError, type LineConnection } from '../net/connection.ts';
import { connectionLost, endpointLabel, loginAccepted, loginRefused, open, tokenStep, unexpected, upgrade, type ProbeInput } from './probe.ts';
import { Steps } from './steps.ts';
import type { Cause, ProtocolReport, StepName } from './types.ts';

interface Reply {
  code: number;
  lines: string[];
  /** All lines joined, for reports. */
  text: string;
}

async function reply(conn: LineConnection): Promise<Reply> {
  const lines: string[] = [];
  for (;;) {
    const line = await conn.line();
    lines.push(line);
    if (!/^\d{3}-/.test(line)) {
      const code = /^(\d{3})/.exec(line)?.[1];
      if (!code) throw new ConnectionError('closed', `malformed reply: ${line}`);
      return { code: Number(code), lines, text: lines.join(' / ') };
    }
  }
}

async function command(conn: LineConnection, line: string): Promise<Reply> {
  conn.send(line);
  return reply(conn);
}

/** EHLO's extensions, without the first (greeting) line. */
function extensions(r: Reply): string[] {
  return r.lines.slice(1).map((l) => l.slice(4).trim());
}

function ehloName(conn: LineConnection): string {
  const local = conn.socket.localAddress ?? '127.0.0.1';
  const address = local.startsWith('::ffff:') ? local.slice(7) : local;
  return address.includes(':') ? `[IPv6:${address}]` : `[${address}]`;
}

function sendAsOrUnexpected(p: ProbeInput, step: StepName, r: Reply): Cause {
  if (/5\.2\.252|SendAsDenied/i.test(r.text)) return causes.send_as_denied(p.context, r.text);
  return unexpected(p, step, r.text);
}

function testMessage(mailbox: string, host: string): string {
  const id = `<${randomUUID()}@mailbridge.verify>`;
  return [
    `From: <${mailbox}>`,
    `To: <${mailbox}>`,
    `Subject: mailbridge verify test message`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${id}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `This message was sent by \`mailbridge verify --send-test\` to check SMTP submission through ${host}.`,
    'It can be deleted.',
    '',
  ].join('\r\n');
}

export async function probeSmtp(p: ProbeInput): Promise<ProtocolReport> {
  const steps = new Steps(endpointLabel(p.endpoint));
  const conn = await open(steps, p);
  if (!conn) return steps.report();
  let step: StepName = 'greeting';
  let last: string | undefined;
  const name = ehloName(conn);
  try {
    steps.begin();
    const greeting = await reply(conn);
    last = greeting.text;
    if (greeting.code !== 220) {
      steps.fail('greeting', greeting.text, unexpected(p, 'greeting', greeting.text));
      return steps.report();
    }
    steps.pass('greeting', greeting.text);

    if (p.endpoint.security === 'starttls') {
      step = 'tls';
      steps.begin();
      const ehlo = await command(conn, `EHLO ${name}`);
      last = ehlo.text;
      if (ehlo.code !== 250 || !extensions(ehlo).some((e) => e.toUpperCase() === 'STARTTLS')) {
        steps.fail(
          'tls',
          ehlo.text,
          causes.tls(
            p.endpoint.host,
            p.endpoint.port,
            ehlo.code === 250 ? 'the server does not offer STARTTLS' : `EHLO refused: ${ehlo.text}`,
            undefined,
            'other',
          ),
        );
        return steps.report();
      }
      const started = await command(conn, 'STARTTLS');
      last = started.text;
      if (started.code !== 220) {
        steps.fail(
          'tls',
          started.text,
          started.code === 421
            ? unexpected(p, 'tls', started.text)
            : causes.tls(p.endpoint.host, p.endpoint.port, `STARTTLS refused: ${started.text}`, undefined, 'other'),
        );
        return steps.report();
      }
      if (!(await upgrade(steps, p, conn, started.text))) return steps.report();
    }

    step = 'capabilities';
    steps.begin();
    const ehlo = await command(conn, `EHLO ${name}`);
    last = ehlo.text;
    const ext = extensions(ehlo);
    const auth = ext.find((e) => /^AUTH[ =]/i.test(e));
    if (ehlo.code !== 250 || !auth || !/\bXOAUTH2\b/i.test(auth)) {
      const text = ehlo.code !== 250 ? ehlo.text : `no AUTH XOAUTH2 in: ${ext.join(', ')}`;
      steps.fail('capabilities', text, unexpected(p, 'capabilities', text));
      return steps.report();
    }
    steps.pass('capabilities', ext.join(', '));

    const token = await tokenStep(steps, p);
    if (token === undefined) {
      await quit(steps, p, conn);
      return steps.report();
    }

    step = 'login';
    steps.begin();
    let authReply = await command(conn, `AUTH XOAUTH2 ${encodeXoauth2(p.mailbox, token)}`);
    // A 334 here is an error challenge (Gmail-style JSON): an empty line ends the exchange.
    if (authReply.code === 334) authReply = await command(conn, '');
    last = authReply.text;
    if (authReply.code !== 235) {
      steps.fail('login', authReply.text, authReply.code === 535 ? await loginRefused(p, authReply.text, token) : unexpected(p, 'login', authReply.text));
      await quit(steps, p, conn);
      return steps.report();
    }
    loginAccepted(p);
    steps.pass('login', authReply.text);

    step = 'mailbox';
    steps.begin();
    const seen: string[] = [];
    for (const line of [`MAIL FROM:<${p.mailbox}>`, `RCPT TO:<${p.mailbox}>`, 'RSET']) {
      const r = await command(conn, line);
      last = r.text;
      seen.push(`${line.split(':')[0]}: ${r.text}`);
      if (r.code !== 250) {
        steps.fail('mailbox', seen.join('; '), sendAsOrUnexpected(p, 'mailbox', r));
        await quit(steps, p, conn);
        return steps.report();
      }
    }
    steps.pass('mailbox', seen.join('; '));

    if (p.sendTest) {
      step = 'send';
      steps.begin();
      const sent: string[] = [];
      for (const line of [`MAIL FROM:<${p.mailbox}>`, `RCPT TO:<${p.mailbox}>`, 'DATA']) {
        const r = await command(conn, line);
        last = r.text;
        sent.push(`${line.split(':')[0]}: ${r.text}`);
        if (r.code !== (line === 'DATA' ? 354 : 250)) {
          steps.fail('send', sent.join('; '), sendAsOrUnexpected(p, 'send', r));
          await quit(steps, p, conn);
          return steps.report();
        }
      }
      // The message has no line starting with "." (no dot-stuffing needed).
      conn.write(`${testMessage(p.mailbox, p.endpoint.host)}.\r\n`);
      const done = await reply(conn);
      last = done.text;
      if (done.code !== 250) {
        steps.fail('send', done.text, sendAsOrUnexpected(p, 'send', done));
        await quit(steps, p, conn);
        return steps.report();
      }
      steps.pass('send', `a test message to ${p.mailbox}: ${done.text}`);
    }

    step = 'logout';
    await quit(steps, p, conn, true);
    return steps.report();
  } catch (err) {
    connectionLost(steps, p, step, err, last);
    return steps.report();
  } finally {
    conn.close();
  }
}

async function quit(steps: Steps, p: ProbeInput, conn: LineConnection, strict = false): Promise<void> {
  steps.begin();
  try {
    const r = await command(conn, 'QUIT');
    if (r.code === 221 || !strict) steps.pass('logout', r.text);
    else steps.fail('logout', r.text, unexpected(p, 'logout', r.text));
  } catch (err) {
    if (!(err instanceof ConnectionError)) throw err;
    if (strict) steps.fail('logout', err.message, unexpected(p, 'logout', err.message));
  }
}
