// IMAP: greeting, CAPABILITY (STARTTLS on 143), AUTHENTICATE XOAUTH2 with SASL-IR when offered,
// then SELECT INBOX and STATUS INBOX (MESSAGES UIDNEXT), LOGOUT (reference section 8.3). Exchange
// can accept the login and refuse every mailbox command ("authenticated but not connected"),
// which is why the mailbox is touched.
import { encodeXoauth2 } from '../net/sasl-xoauth2.ts';
import { ConnectionError, type LineConnection } from '../net/connection.ts';
import { ImapResponseReader } from '../net/imap-reader.ts';
import { causes } from './causes.ts';
import { connectionLost, endpointLabel, loginAccepted, loginRefused, notConnected, open, tokenStep, unexpected, upgrade, type ProbeInput } from './probe.ts';
import { Steps } from './steps.ts';
import type { ProtocolReport } from './types.ts';

interface Tagged {
  status: 'OK' | 'NO' | 'BAD';
  /** The whole tagged line. */
  line: string;
  untagged: string[];
}

/** verify's IMAP conversation: tagged commands, every response read through the bounded reader. */
export class ImapProbeSession {
  readonly conn: LineConnection;
  readonly #reader: ImapResponseReader;
  #n = 0;
  /** The last `* BYE` seen, to explain a close. */
  bye: string | undefined;
  constructor(conn: LineConnection) {
    this.conn = conn;
    this.#reader = new ImapResponseReader(conn);
  }

  nextTag(): string {
    return `V${++this.#n}`;
  }

  /** One response line with its literals folded in (each bounded). */
  response(): Promise<string> {
    return this.#reader.response();
  }

  /**
   * Sends a command and reads to its tagged reply. `onContinue` answers a `+` request; without it
   * a `+` is answered with an empty line (which cancels or completes a SASL exchange).
   */
  async command(text: string, onContinue?: (line: string) => string): Promise<Tagged> {
    const tag = this.nextTag();
    this.conn.send(`${tag} ${text}`);
    const untagged: string[] = [];
    for (;;) {
      const line = await this.response();
      if (line.startsWith(`${tag} `)) {
        const status = line
          .slice(tag.length + 1)
          .split(' ')[0]!
          .toUpperCase();
        if (status !== 'OK' && status !== 'NO' && status !== 'BAD') throw new ConnectionError('closed', `malformed reply: ${line}`);
        return { status, line, untagged };
      }
      if (line.startsWith('+')) {
        this.conn.send(onContinue ? onContinue(line) : '');
        continue;
      }
      if (/^\* BYE\b/i.test(line)) this.bye = line;
      untagged.push(line);
    }
  }
}

export function capabilitiesOf(untagged: string[]): string[] {
  const line = untagged.find((l) => /^\* CAPABILITY /i.test(l));
  return line ? line.slice('* CAPABILITY '.length).trim().split(/\s+/) : [];
}

export async function probeImap(p: ProbeInput): Promise<ProtocolReport> {
  const steps = new Steps(endpointLabel(p.endpoint));
  const conn = await open(steps, p);
  if (!conn) return steps.report();
  const imap = new ImapProbeSession(conn);
  let step: 'greeting' | 'tls' | 'capabilities' | 'login' | 'mailbox' | 'logout' = 'greeting';
  let last: string | undefined;
  try {
    steps.begin();
    const greeting = await imap.response();
    last = greeting;
    if (!/^\* (OK|PREAUTH)\b/i.test(greeting)) {
      steps.fail('greeting', greeting, unexpected(p, 'greeting', greeting));
      return steps.report();
    }
    steps.pass('greeting', greeting);

    if (p.endpoint.security === 'starttls') {
      step = 'tls';
      steps.begin();
      const caps = await imap.command('CAPABILITY');
      if (!capabilitiesOf(caps.untagged).some((c) => c.toUpperCase() === 'STARTTLS')) {
        steps.fail(
          'tls',
          `no STARTTLS in: ${caps.untagged.join(' ')}`,
          causes.tls(p.endpoint.host, p.endpoint.port, 'the server does not offer STARTTLS', undefined, 'other'),
        );
        return steps.report();
      }
      const started = await imap.command('STARTTLS');
      last = started.line;
      if (started.status !== 'OK') {
        steps.fail('tls', started.line, causes.tls(p.endpoint.host, p.endpoint.port, `STARTTLS refused: ${started.line}`, undefined, 'other'));
        return steps.report();
      }
      if (!(await upgrade(steps, p, conn, started.line))) return steps.report();
    }

    step = 'capabilities';
    steps.begin();
    const caps = await imap.command('CAPABILITY');
    last = caps.line;
    const list = capabilitiesOf(caps.untagged);
    const upper = list.map((c) => c.toUpperCase());
    if (caps.status !== 'OK' || !upper.includes('AUTH=XOAUTH2')) {
      const text = caps.status !== 'OK' ? caps.line : `no AUTH=XOAUTH2 in: ${list.join(' ')}`;
      steps.fail('capabilities', text, unexpected(p, 'capabilities', text));
      return steps.report();
    }
    steps.pass('capabilities', list.join(' '));

    const token = await tokenStep(steps, p);
    if (token === undefined) {
      step = 'logout';
      await logout(steps, p, imap);
      return steps.report();
    }

    step = 'login';
    steps.begin();
    const sasl = encodeXoauth2(p.mailbox, token);
    const auth = upper.includes('SASL-IR')
      ? await imap.command(`AUTHENTICATE XOAUTH2 ${sasl}`)
      : await imap.command('AUTHENTICATE XOAUTH2', (line) => (line.trim() === '+' ? sasl : ''));
    last = auth.line;
    if (auth.status === 'OK') {
      loginAccepted(p);
      steps.pass('login', auth.line);
    } else {
      steps.fail('login', auth.line, auth.status === 'NO' ? await loginRefused(p, auth.line, token) : unexpected(p, 'login', auth.line));
      step = 'logout';
      await logout(steps, p, imap);
      return steps.report();
    }

    step = 'mailbox';
    steps.begin();
    const select = await imap.command('SELECT INBOX');
    last = select.line;
    if (select.status !== 'OK') {
      const cause = /authenticated but not connected/i.test(select.line) ? notConnected(p, select.line) : unexpected(p, 'mailbox', select.line);
      steps.fail('mailbox', select.line, cause);
      step = 'logout';
      await logout(steps, p, imap);
      return steps.report();
    }
    const exists = select.untagged.map((l) => /^\* (\d+) EXISTS/i.exec(l)?.[1]).find((x) => x !== undefined);
    const status = await imap.command('STATUS INBOX (MESSAGES UIDNEXT)');
    last = status.line;
    if (status.status !== 'OK') {
      const cause = /authenticated but not connected/i.test(status.line) ? notConnected(p, status.line) : unexpected(p, 'mailbox', status.line);
      steps.fail('mailbox', status.line, cause);
      step = 'logout';
      await logout(steps, p, imap);
      return steps.report();
    }
    const counts = status.untagged.map((l) => /^\* STATUS .*\((.*)\)\s*$/i.exec(l)?.[1]).find((x) => x !== undefined) ?? '';
    const messages = /MESSAGES (\d+)/i.exec(counts)?.[1] ?? exists ?? '?';
    const uidNext = /UIDNEXT (\d+)/i.exec(counts)?.[1] ?? '?';
    steps.pass('mailbox', `SELECT INBOX: ${exists ?? '?'} messages; STATUS INBOX: MESSAGES ${messages} UIDNEXT ${uidNext}`);

    step = 'logout';
    await logout(steps, p, imap, true);
    return steps.report();
  } catch (err) {
    connectionLost(steps, p, step, err, imap.bye ?? last);
    return steps.report();
  } finally {
    conn.close();
  }
}

/**
 * LOGOUT. After a failure the server may already have closed (`* BYE Connection closed.`); that
 * is not another failure. After a clean run a missing `OK LOGOUT` is reported.
 */
async function logout(steps: Steps, p: ProbeInput, imap: ImapProbeSession, strict = false): Promise<void> {
  steps.begin();
  try {
    const reply = await imap.command('LOGOUT');
    if (reply.status === 'OK' || !strict) steps.pass('logout', [imap.bye, reply.line].filter(Boolean).join(' / '));
    else steps.fail('logout', reply.line, unexpected(p, 'logout', reply.line));
  } catch (err) {
    if (!(err instanceof ConnectionError)) throw err;
    if (strict) steps.fail('logout', err.message, unexpected(p, 'logout', err.message));
  }
}
