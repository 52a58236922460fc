// The IMAP side of the proxy before login (RFC 3501, SASL-IR RFC 4959, LITERAL+ RFC 7888):
// CAPABILITY, NOOP, ID, LOGOUT, STARTTLS where offered, LOGIN with atoms, quoted strings and
// literals, and AUTHENTICATE PLAIN with or without an initial response. Every size is bounded:
// a line by the listener, a literal and a whole command by the limits below.
import { literalMarker, splitHead, tokenize, tokenText, ImapSyntaxError, type RawCommand } from '../../net/imap-syntax.ts';
import type { UpstreamSession } from '../upstream/index.ts';
import { saslCredentials } from '../sasl.ts';
import { printable, TOO_LONG, type FrontIo } from './io.ts';
import { startTlsCommand, tlsRequired, type FrontContext, type LoginFailure } from './types.ts';

/** A login name or password has no business being longer. */
const MAX_LITERAL = 4096;
const MAX_COMMAND = 16 * 1024;
const MAX_LITERALS = 4;

/** The proxy's own capabilities before login, and what only applies before login (never passed on from the upstream). */
const OWN = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'ID'];
const LOGIN_ONLY = /^(AUTH=.*|SASL-IR|LOGINDISABLED|STARTTLS)$/i;

/** The upstream's capabilities after login without those that no longer apply (logging in, TLS). */
export function afterLogin(upstreamCapabilities: string[]): string[] {
  return upstreamCapabilities.filter((c) => !LOGIN_ONLY.test(c));
}

/**
 * Before login: the proxy's own, then what the upstream offered after its last login (IDLE, MOVE,
 * UIDPLUS...) so that a client deciding from the greeting sees them, then how to log in here.
 */
function capabilities(ctx: FrontContext): string {
  const caps = [...OWN];
  for (const c of ctx.imapCapabilities()) if (!caps.some((o) => o.toUpperCase() === c.toUpperCase())) caps.push(c);
  if (ctx.startTls && !ctx.session.secure) caps.push('STARTTLS');
  caps.push(...(tlsRequired(ctx) ? ['LOGINDISABLED'] : ['AUTH=PLAIN']));
  return caps.join(' ');
}

/** A tag as it may be echoed; `*` when the client's cannot be. */
function safeTag(tag: string): string {
  return /^[\x21-\x7e]{1,64}$/.test(tag) && !/[*+%(){"\\]/.test(tag) ? tag : '*';
}

type Incoming = { tag: string; name: string; restStart: number; raw: RawCommand } | { error: string; tag: string; fatal: boolean };

/** One command with its literals; null when the client left. */
async function readCommand(io: FrontIo): Promise<Incoming | null> {
  const first = await io.line();
  if (first === null) return null;
  if (first === TOO_LONG) return { error: 'Command line too long.', tag: '*', fatal: false };
  let line = Buffer.from(first, 'latin1');
  const head = splitHead(line);
  const lines = [line];
  const literals: Buffer[] = [];
  let total = line.length;
  for (;;) {
    const marker = literalMarker(line);
    if (!marker) break;
    if (marker.size > MAX_LITERAL || total + marker.size > MAX_COMMAND || literals.length >= MAX_LITERALS) {
      // The bytes of a refused LITERAL+ are already on their way and cannot be told from commands.
      return { error: `Literal too big (at most ${MAX_LITERAL} bytes before login).`, tag: head.tag, fatal: !marker.sync };
    }
    if (marker.sync) await io.say('+ Ready for literal data');
    const literal = await io.bytes(marker.size);
    if (literal === null) return null;
    literals.push(literal);
    total += marker.size;
    const next = await io.line();
    if (next === null) return null;
    if (next === TOO_LONG) return { error: 'Command line too long.', tag: head.tag, fatal: true };
    line = Buffer.from(next, 'latin1');
    lines.push(line);
    total += line.length;
    if (total > MAX_COMMAND) return { error: 'Command too long.', tag: head.tag, fatal: true };
  }
  return { tag: head.tag, name: head.name.toUpperCase(), restStart: head.restStart, raw: { lines, literals } };
}

function failureReply(tag: string, f: LoginFailure): string {
  if (f.kind === 'credentials') return `${tag} NO [AUTHENTICATIONFAILED] Authentication failed.`;
  return `${tag} NO [UNAVAILABLE] ${f.text}`;
}

/** The tagged OK for a login, with the upstream's capabilities (fetchmail, for one, does not ask again). */
function loginOk(tag: string, upstream: UpstreamSession): string {
  const caps = afterLogin(upstream.capabilities);
  const code = caps.length > 0 ? `[CAPABILITY ${caps.join(' ')}] ` : '';
  return `${tag} OK ${code}Logged in.`;
}

export const IMAP_TOO_MANY_ERRORS = '* BYE Too many errors; closing the connection.';

export async function imapFront(ctx: FrontContext): Promise<UpstreamSession | undefined> {
  const { io } = ctx;
  await io.say(`* OK [CAPABILITY ${capabilities(ctx)}] ${ctx.hostname} mailbridge IMAP proxy ready.`);
  const bad = (tag: string, text: string, fatal = false) => io.error(`${safeTag(tag)} BAD ${text}`, fatal);

  const login = async (tag: string, mailbox: string, password: string): Promise<UpstreamSession | undefined> => {
    const result = await ctx.login(mailbox, password);
    if (result.ok) {
      await io.say(loginOk(tag, result.upstream));
      return result.upstream;
    }
    await io.error(failureReply(tag, result.failure));
    return undefined;
  };

  for (;;) {
    if (io.closing || ctx.session.closed) return undefined;
    const incoming = await readCommand(io);
    if (incoming === null) return undefined;
    if ('error' in incoming) {
      io.heard(`[${incoming.error}]`);
      await bad(incoming.tag, incoming.error, incoming.fatal);
      continue;
    }
    const { name } = incoming;
    const tag = safeTag(incoming.tag);
    const first = incoming.raw.lines[0]!.toString('latin1');
    io.heard(
      name === 'LOGIN'
        ? `${tag} LOGIN [credentials]`
        : name === 'AUTHENTICATE'
          ? `${tag} AUTHENTICATE ${printable(first.split(' ')[2] ?? '', 20)}${first.split(' ').length > 3 ? ' [credentials]' : ''}`
          : printable(first),
    );
    if (incoming.tag === '' || tag === '*') {
      await bad('*', 'Missing or invalid tag.');
      continue;
    }
    let args;
    try {
      args = tokenize(incoming.raw, Math.min(incoming.restStart, incoming.raw.lines[0]!.length));
    } catch (err) {
      if (!(err instanceof ImapSyntaxError)) throw err;
      await bad(tag, `Invalid arguments: ${err.message}.`);
      continue;
    }

    switch (name) {
      case 'CAPABILITY':
        await io.say(`* CAPABILITY ${capabilities(ctx)}`);
        await io.say(`${tag} OK CAPABILITY completed.`);
        continue;
      case 'NOOP':
        await io.say(`${tag} OK NOOP completed.`);
        continue;
      case 'ID':
        await io.say('* ID ("name" "mailbridge")');
        await io.say(`${tag} OK ID completed.`);
        continue;
      case 'LOGOUT':
        await io.say('* BYE mailbridge IMAP proxy logging out.');
        await io.say(`${tag} OK LOGOUT completed.`);
        return undefined;
      case 'STARTTLS':
        if (
          (await startTlsCommand(ctx, {
            notOffered: `${tag} BAD STARTTLS is not offered here.`,
            alreadyOn: `${tag} BAD Already using TLS.`,
            go: `${tag} OK Begin TLS negotiation now.`,
            early: '* BYE Commands were sent after STARTTLS before the TLS handshake.',
          })) === 'close'
        ) {
          return undefined;
        }
        continue;
      case 'LOGIN': {
        if (tlsRequired(ctx)) {
          await io.error(`${tag} NO [PRIVACYREQUIRED] Use STARTTLS first.`);
          continue;
        }
        const user = tokenText(args[0]);
        const password = args[1]?.type === 'string' ? args[1].value.toString('utf8') : tokenText(args[1]);
        if (args.length !== 2 || user === undefined || password === undefined || user === '') {
          await bad(tag, 'LOGIN needs a user name and a password.');
          continue;
        }
        const upstream = await login(tag, user, password);
        if (upstream) return upstream;
        continue;
      }
      case 'AUTHENTICATE': {
        const mechanism = tokenText(args[0])?.toUpperCase();
        if (tlsRequired(ctx)) {
          await io.error(`${tag} NO [PRIVACYREQUIRED] Use STARTTLS first.`);
          continue;
        }
        if (mechanism !== 'PLAIN' || args.length > 2 || (args[1] && args[1].type !== 'atom')) {
          await io.error(`${tag} NO Unsupported authentication mechanism; use AUTHENTICATE PLAIN or LOGIN.`);
          continue;
        }
        const ask = () => io.saslResponse('+ ', { cancelled: `${tag} BAD AUTHENTICATE cancelled.`, tooLong: `${tag} BAD Authentication response too long.` });
        const got = await saslCredentials('PLAIN', args[1]?.type === 'atom' ? args[1].value : undefined, ask);
        if (got === null) return undefined;
        if (got === undefined) continue;
        if (got === 'malformed') {
          await bad(tag, 'Malformed PLAIN response.');
          continue;
        }
        const upstream = await login(tag, got.mailbox, got.password);
        if (upstream) return upstream;
        continue;
      }
      default:
        await bad(tag, /^[A-Z]+$/.test(name) ? 'Command not valid before login; log in with LOGIN or AUTHENTICATE PLAIN.' : 'Unknown command.');
    }
  }
}
