// The POP3 side of the proxy before login (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH RFC 5034):
// USER/PASS, AUTH PLAIN and AUTH LOGIN with an app password, STLS where the listener offers it.
// Everything else before login is an -ERR; after login the session is the upstream's.
import type { UpstreamSession } from '../upstream/index.ts';
import { saslCredentials } from '../sasl.ts';
import { redactedCommand, splitCommand, TOO_LONG } from './io.ts';
import { startTlsCommand, tlsRequired, type FrontContext, type LoginFailure } from './types.ts';

const CAPABILITIES = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'USER', 'SASL PLAIN LOGIN'];

export const POP3_TOO_MANY_ERRORS = '-ERR Too many errors; closing the connection.';

function failureReply(f: LoginFailure): string {
  if (f.kind === 'credentials') return '-ERR [AUTH] Authentication failed.';
  return `-ERR [SYS/TEMP] ${f.text}`;
}

export async function pop3Front(ctx: FrontContext): Promise<UpstreamSession | undefined> {
  const { io } = ctx;
  await io.say(`+OK ${ctx.hostname} mailbridge POP3 proxy ready.`);
  let user: string | undefined;
  const error = (text: string) => io.error(`-ERR ${text}`);

  /** The login itself; the upstream on success, else the failure was answered. */
  const login = async (mailbox: string, password: string): Promise<UpstreamSession | undefined> => {
    const result = await ctx.login(mailbox, password);
    if (result.ok) {
      const reply = result.upstream.loginReply.trim();
      await io.say(reply.startsWith('+OK') ? reply : '+OK Logged in.');
      return result.upstream;
    }
    await io.error(failureReply(result.failure));
    return undefined;
  };

  const ask = (prompt: string) =>
    io.saslResponse(`+ ${prompt}`, { cancelled: '-ERR Authentication cancelled.', tooLong: '-ERR Authentication response too long.' });

  for (;;) {
    if (io.closing || ctx.session.closed) return undefined;
    const line = await io.line();
    if (line === null) return undefined;
    if (line === TOO_LONG) {
      io.heard('[line too long]');
      await error('Line too long.');
      continue;
    }
    const { verb, arg } = splitCommand(line);
    io.heard(redactedCommand(line));

    switch (verb) {
      case 'CAPA': {
        const caps = tlsRequired(ctx) ? ['STLS', 'RESP-CODES', 'AUTH-RESP-CODE'] : [...CAPABILITIES, ...(ctx.startTls && !ctx.session.secure ? ['STLS'] : [])];
        await io.say('+OK Capability list follows');
        for (const c of [...caps, 'IMPLEMENTATION mailbridge']) await io.say(c);
        await io.say('.');
        continue;
      }
      case 'QUIT':
        await io.say('+OK Bye.');
        return undefined;
      case 'STLS': {
        const upgraded = await startTlsCommand(ctx, {
          notOffered: '-ERR STLS is not offered here.',
          alreadyOn: '-ERR Already using TLS.',
          go: '+OK Begin TLS negotiation.',
          early: '-ERR Commands were sent after STLS before the TLS handshake; closing.',
        });
        if (upgraded === 'close') return undefined;
        if (upgraded === 'upgraded') user = undefined;
        continue;
      }
      case 'USER':
      case 'PASS':
      case 'AUTH':
        if (tlsRequired(ctx)) {
          await error('[AUTH] TLS is required first: send STLS.');
          continue;
        }
        break;
      default:
        await error(verb === '' ? 'Empty command.' : 'Command not valid before login; log in with USER and PASS or AUTH PLAIN.');
        continue;
    }

    if (verb === 'USER') {
      if (arg === '' || /[\x00-\x1f]/.test(arg)) {
        await error('USER needs a mailbox address.');
        continue;
      }
      user = arg;
      await io.say('+OK Send the password with PASS.');
      continue;
    }
    if (verb === 'PASS') {
      if (user === undefined) {
        await error('Send USER first.');
        continue;
      }
      const mailbox = user;
      user = undefined;
      const upstream = await login(mailbox, arg);
      if (upstream) return upstream;
      continue;
    }
    // AUTH <mechanism> [initial response]
    const [mechanismRaw = '', initial] = arg.split(' ', 2);
    const mechanism = mechanismRaw.toUpperCase();
    if (mechanism !== 'PLAIN' && mechanism !== 'LOGIN') {
      // Named back only when it is a SASL mechanism name (RFC 4422): a reply carries no client bytes
      // that are not ASCII (upper-casing turns latin1 ones into other characters, sent as UTF-8).
      await error(
        mechanism === ''
          ? 'AUTH needs a mechanism: PLAIN or LOGIN.'
          : `Unsupported mechanism${/^[A-Z0-9_-]{1,20}$/.test(mechanism) ? ` ${mechanism}` : ''}; use PLAIN or LOGIN.`,
      );
      continue;
    }
    const got = await saslCredentials(mechanism, initial, ask);
    if (got === null) return undefined;
    if (got === undefined) continue;
    if (got === 'malformed') {
      await error(`[AUTH] Malformed ${mechanism} response.`);
      continue;
    }
    const upstream = await login(got.mailbox, got.password);
    if (upstream) return upstream;
  }
}
