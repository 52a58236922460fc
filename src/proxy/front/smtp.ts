// The SMTP submission side of the proxy before login (RFC 5321, AUTH RFC 4954, STARTTLS RFC 3207):
// EHLO/HELO, AUTH PLAIN and AUTH LOGIN with an app password, STARTTLS where offered, RSET, NOOP,
// QUIT. The extensions shown are the upstream's (as last seen) so that what the client then sends
// through the relay is understood there.
import type { UpstreamSession } from '../upstream/index.ts';
import { saslCredentials } from '../sasl.ts';
import { redactedCommand, splitCommand, TOO_LONG } from './io.ts';
import { startTlsCommand, tlsRequired, type FrontContext, type LoginFailure } from './types.ts';

export const SMTP_TOO_MANY_ERRORS = '421 4.7.0 Too many errors; closing the connection';

/** Text per reply line: well within SMTP's 512 bytes a line (RFC 5321 section 4.5.3.1.5), and readable. */
const REPLY_TEXT_WIDTH = 200;

/** The reply lines for a refused login; a long reason goes over several `454-` lines, cut between words. */
function failureReply(f: LoginFailure): string[] {
  if (f.kind === 'credentials') return ['535 5.7.8 Authentication credentials invalid'];
  const parts = wrap(f.text, REPLY_TEXT_WIDTH);
  return parts.map((part, i) => `454${i === parts.length - 1 ? ' ' : '-'}4.7.0 ${part}`);
}

/** Lines of at most `width` characters, broken at spaces (a longer word is split). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(' ')) {
    for (let piece = word; piece !== '';) {
      const room = current === '' ? width : width - current.length - 1;
      if (piece.length <= room) {
        current = current === '' ? piece : `${current} ${piece}`;
        piece = '';
      } else if (current !== '') {
        lines.push(current);
        current = '';
      } else {
        lines.push(piece.slice(0, width));
        piece = piece.slice(width);
      }
    }
  }
  if (current !== '' || lines.length === 0) lines.push(current);
  return lines;
}

export async function smtpFront(ctx: FrontContext): Promise<UpstreamSession | undefined> {
  const { io } = ctx;
  await io.say(`220 ${ctx.hostname} mailbridge ESMTP proxy ready`);
  let greeted = false;

  const login = async (mailbox: string, password: string): Promise<UpstreamSession | undefined> => {
    const result = await ctx.login(mailbox, password);
    if (result.ok) {
      const reply = result.upstream.loginReply.trim();
      await io.say(/^235[ -]/.test(reply) ? reply : '235 2.7.0 Authentication successful');
      return result.upstream;
    }
    const lines = failureReply(result.failure);
    for (const line of lines.slice(0, -1)) await io.say(line);
    await io.error(lines.at(-1)!);
    return undefined;
  };

  const ask = (prompt: string) =>
    io.saslResponse(`334 ${prompt}`, { cancelled: '501 5.7.0 Authentication cancelled', tooLong: '500 5.5.6 Authentication exchange line is too long' });

  for (;;) {
    if (io.closing || ctx.session.closed) return undefined;
    const line = await io.line();
    if (line === null) return undefined;
    if (line === TOO_LONG) {
      io.heard('[line too long]');
      await io.error('500 5.5.2 Line too long');
      continue;
    }
    const command = splitCommand(line);
    const verb = command.verb;
    const arg = command.arg.trim();
    io.heard(redactedCommand(line));

    switch (verb) {
      case 'EHLO':
      case 'HELO': {
        if (arg === '' || /[\x00-\x1f]/.test(arg)) {
          await io.error(`501 5.5.4 ${verb} needs a domain or address`);
          continue;
        }
        greeted = true;
        if (verb === 'HELO') {
          await io.say(`250 ${ctx.hostname} Hello`);
          continue;
        }
        const lines = [`${ctx.hostname} Hello [${ctx.session.remoteAddress}]`, ...ctx.smtpExtensions()];
        if (ctx.startTls && !ctx.session.secure) lines.push('STARTTLS');
        if (!tlsRequired(ctx)) lines.push('AUTH PLAIN LOGIN');
        for (let i = 0; i < lines.length; i++) await io.say(`250${i === lines.length - 1 ? ' ' : '-'}${lines[i]}`);
        continue;
      }
      case 'STARTTLS': {
        const upgraded = await startTlsCommand(ctx, {
          notOffered: '502 5.5.1 STARTTLS is not offered here',
          alreadyOn: '503 5.5.1 TLS already active',
          go: '220 2.0.0 Ready to start TLS',
          early: '421 4.7.0 Commands were sent after STARTTLS before the TLS handshake',
        });
        if (upgraded === 'close') return undefined;
        if (upgraded === 'upgraded') greeted = false;
        continue;
      }
      case 'NOOP':
      case 'RSET':
        await io.say('250 2.0.0 OK');
        continue;
      case 'QUIT':
        await io.say('221 2.0.0 Bye');
        return undefined;
      case 'MAIL':
      case 'RCPT':
      case 'DATA':
      case 'BDAT':
        await io.error('530 5.7.0 Authentication required');
        continue;
      case 'AUTH':
        break;
      default:
        await io.error('500 5.5.1 Command unrecognized');
        continue;
    }

    // AUTH <mechanism> [initial response]
    if (!greeted) {
      await io.error('503 5.5.1 Send EHLO first');
      continue;
    }
    if (tlsRequired(ctx)) {
      await io.error('530 5.7.0 Must issue a STARTTLS command first');
      continue;
    }
    const [mechanismRaw = '', initial] = arg.split(' ', 2);
    const mechanism = mechanismRaw.toUpperCase();
    if (mechanism !== 'PLAIN' && mechanism !== 'LOGIN') {
      await io.error('504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN');
      continue;
    }
    const got = await saslCredentials(mechanism, initial, ask);
    if (got === null) return undefined;
    if (got === undefined) continue;
    if (got === 'malformed') {
      await io.error(`501 5.5.2 Malformed ${mechanism} response`);
      continue;
    }
    const upstream = await login(got.mailbox, got.password);
    if (upstream) return upstream;
  }
}
