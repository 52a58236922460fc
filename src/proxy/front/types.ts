// What a protocol front end (the client side of the proxy, before login) gets from the proxy,
// and what it hands back: the logged-in upstream connection, from which point bytes are relayed.
import type { LineSession, TlsMaterial } from '../../net/line-server.ts';
import type { UpstreamSession } from '../upstream/index.ts';
import type { FrontIo } from './io.ts';

/** Why a login was not let through, in words the client may see. */
export interface LoginFailure {
  /** credentials: wrong or not allowed (never says which); rate_limited; unavailable: mailbridge or the server could not log in. */
  kind: 'credentials' | 'rate_limited' | 'unavailable';
  /** Safe to show the client: no secret, nothing that tells a guesser which part was wrong. */
  text: string;
}

export type LoginResult = { ok: true; upstream: UpstreamSession } | { ok: false; failure: LoginFailure };

export interface FrontContext {
  session: LineSession;
  io: FrontIo;
  /** The name this proxy gives itself in greetings. */
  hostname: string;
  /** Certificate for STARTTLS/STLS when the listener offers it. */
  startTls: TlsMaterial | undefined;
  /** Logs in upstream as `mailbox` with the client's app password. */
  login(mailbox: string, password: string): Promise<LoginResult>;
  /** SMTP: the extensions to advertise (the upstream's, as last seen, without AUTH and STARTTLS). */
  smtpExtensions(): string[];
  /** IMAP: the upstream's capabilities after its last login (without AUTH=, SASL-IR, STARTTLS, LOGINDISABLED), [] before the first. */
  imapCapabilities(): string[];
}

/** Runs the pre-login dialog; the logged-in upstream, or undefined when the client left or failed. */
export type Front = (ctx: FrontContext) => Promise<UpstreamSession | undefined>;

/** True when logins must wait for STARTTLS/STLS. */
export function tlsRequired(ctx: FrontContext): boolean {
  return ctx.startTls !== undefined && !ctx.session.secure;
}

/**
 * STARTTLS/STLS: refused when not offered or already on; else the go-ahead and the handshake.
 * 'close' when the client sent more after the command (it would count as sent under TLS,
 * CVE-2011-0411) and has been told so.
 */
export async function startTlsCommand(
  ctx: FrontContext,
  replies: { notOffered: string; alreadyOn: string; go: string; early: string },
): Promise<'upgraded' | 'refused' | 'close'> {
  if (!ctx.startTls || ctx.session.secure) {
    await ctx.io.error(ctx.session.secure ? replies.alreadyOn : replies.notOffered);
    return 'refused';
  }
  await ctx.io.say(replies.go);
  if (await ctx.session.startTls(ctx.startTls)) return 'upgraded';
  await ctx.io.say(replies.early);
  return 'close';
}
