// SMTP upstream login (reference section 8.5): the 220 greeting, EHLO, STARTTLS and EHLO again
// when the endpoint wants it (implicit TLS, smtps, too), then AUTH XOAUTH2 with the initial
// response. A "334 <base64 error>" after it (Gmail, Postfix through Dovecot) is answered with an
// empty line; the final reply follows. 235 is success.
import os from 'node:os';
import { decodeChallenge, redact } from '../../pop3/sasl.ts';
import { UpstreamError, greetingHint, serverWords, upstreamFailure } from './errors.ts';
import type { LoginContext, LoginResult } from './index.ts';

/** Lines accepted in one reply: an EHLO has a dozen. */
const MAX_REPLY_LINES = 1000;

interface Reply {
  code: number;
  /** Every line (redacted, whole). */
  lines: string[];
  /** The lines joined, short and printable, for messages. */
  words: string;
}

/** The default EHLO name: this host's name when it is one (RFC 5321 section 4.1.4), else localhost. */
function defaultEhloName(): string {
  const name = os.hostname();
  return /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name) ? name : 'localhost';
}

async function reply(ctx: LoginContext, waiting: string): Promise<Reply> {
  const { conn, where, secrets } = ctx;
  const lines: string[] = [];
  for (;;) {
    let line: string;
    try {
      line = redact(await conn.line(), secrets);
    } catch (err) {
      throw upstreamFailure(err, where, waiting, lines.length > 0 ? serverWords(lines.join(' / '), secrets) : undefined);
    }
    const match = /^(\d{3})([ -]|$)/.exec(line);
    if (!match)
      throw new UpstreamError('protocol', `${where}: not an SMTP reply to ${waiting}: ${serverWords(line, secrets)}`, { reply: serverWords(line, secrets) });
    lines.push(line);
    if (match[2] !== '-') return { code: Number(match[1]), lines, words: serverWords(lines.join(' / '), secrets) };
    if (lines.length >= MAX_REPLY_LINES) throw new UpstreamError('protocol', `${where}: more than ${MAX_REPLY_LINES} lines in the reply to ${waiting}`);
  }
}

async function command(ctx: LoginContext, line: string, waiting: string): Promise<Reply> {
  ctx.conn.send(line);
  return reply(ctx, waiting);
}

/** EHLO's extensions: every line but the first (the server's name), without "250-"/"250 ". */
function extensions(r: Reply): string[] {
  return r.lines.slice(1).map((l) => l.slice(4).trim());
}

async function ehlo(ctx: LoginContext, name: string): Promise<Reply> {
  const r = await command(ctx, `EHLO ${name}`, 'the reply to EHLO');
  if (r.code !== 250) throw new UpstreamError('protocol', `${ctx.where}: refused EHLO ${name}: ${r.words}`, { reply: r.words });
  return r;
}

export async function smtpLogin(ctx: LoginContext): Promise<LoginResult> {
  const { conn, target, where, secrets, user } = ctx;
  const name = target.ehloName ?? defaultEhloName();

  const greeting = await reply(ctx, 'the greeting').catch((err: unknown) => {
    throw greetingHint(err, target.endpoint.security);
  });
  // 554 (no service here) or 421 (busy): the server turns the connection away.
  if (greeting.code >= 400) throw new UpstreamError('closed', `${where}: refused the connection: ${greeting.words}`, { reply: greeting.words });
  if (greeting.code !== 220) throw new UpstreamError('protocol', `${where}: not an SMTP greeting: ${greeting.words}`, { reply: greeting.words });

  let hello = await ehlo(ctx, name);
  if (target.endpoint.security === 'starttls') {
    if (!extensions(hello).some((e) => e.toUpperCase() === 'STARTTLS'))
      throw new UpstreamError('tls', `${where}: does not offer STARTTLS (EHLO: ${hello.words})`, { reply: hello.words });
    const started = await command(ctx, 'STARTTLS', 'the reply to STARTTLS');
    if (started.code !== 220) throw new UpstreamError('tls', `${where}: refused STARTTLS: ${started.words}`, { reply: started.words });
    try {
      await conn.upgrade(target.endpoint.host, target.caPem);
    } catch (err) {
      throw upstreamFailure(err, where, 'the TLS handshake after STARTTLS');
    }
    // RFC 3207 section 4.2: forget what was said before TLS and ask again.
    hello = await ehlo(ctx, name);
  }
  const capabilities = extensions(hello);
  const auth = capabilities.find((e) => /^AUTH[ =]/i.test(e));
  if (!auth || !/[ =]XOAUTH2\b/i.test(auth))
    throw new UpstreamError('protocol', `${where}: does not offer AUTH XOAUTH2 (EHLO: ${hello.words})`, { reply: hello.words });

  let answer = await command(ctx, `AUTH XOAUTH2 ${secrets[1]!}`, 'the answer to AUTH XOAUTH2');
  let challenge: string | undefined;
  if (answer.code === 334) {
    // An error challenge: an empty line ends the exchange, then the server sends its failure.
    challenge = serverWords(decodeChallenge(answer.lines[0]!.slice(4)), secrets);
    answer = await command(ctx, '', 'the final answer to AUTH XOAUTH2 after the error challenge');
    if (answer.code === 334)
      throw new UpstreamError('protocol', `${where}: a second 334 challenge during AUTH XOAUTH2: ${answer.words}`, { reply: answer.words });
  }
  if (answer.code === 235) return { greeting: greeting.lines.join('\r\n'), capabilities, loginReply: answer.lines.join('\r\n') };
  const detail = challenge !== undefined && challenge !== '' ? ` (error challenge: ${challenge})` : '';
  // 500-504: the command or mechanism was not understood, which no fresh token changes.
  if (answer.code > 504 && answer.code < 600)
    throw new UpstreamError('auth_rejected', `${where}: refused the XOAUTH2 login for ${user}: ${answer.words}${detail}`, { reply: answer.words });
  throw new UpstreamError('protocol', `${where}: answered AUTH XOAUTH2 for ${user} with neither 235 nor a refusal of the token: ${answer.words}${detail}`, {
    reply: answer.words,
  });
}
