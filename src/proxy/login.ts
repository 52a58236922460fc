// A proxy login, start to end: the app password is checked first (a wrong one never touches a
// token), then the mailbox's token comes from the token provider and the upstream server is
// logged in to with XOAUTH2. A token the server refuses is dropped, refreshed and tried once more
// before the client hears of it.
import type { Protocol } from '../config/schema.ts';
import { TokenError } from '../identity/token-errors.ts';
import type { TokenProvider } from '../identity/token-provider.ts';
import type { LoginResult } from './front/types.ts';
import type { ResolvedListener, UpstreamResolver } from './listeners.ts';
import type { UpstreamSession } from './upstream/index.ts';

export type AuthOutcome =
  | { ok: true; clientId: string; clientName: string; mailbox: string }
  | {
      ok: false;
      reason: 'rate_limited' | 'bad_password' | 'unknown_client' | 'revoked' | 'mailbox_not_allowed' | 'unknown_mailbox';
      retryAfterSeconds?: number;
    };

export interface Authenticator {
  authenticate(input: { username: string; password: string; remoteAddress: string; protocol: Protocol }): Promise<AuthOutcome>;
}

export interface LoginDeps {
  authenticator: Authenticator;
  provider: TokenProvider;
  upstreams: UpstreamResolver;
  /** For the upstream connection and each of its replies. */
  timeoutMs: number;
}

/** What the audit line says about a login (never a secret). */
export interface LoginFacts {
  outcome?: string;
  mailbox?: string;
  client?: string;
  upstream?: string;
  detail?: string;
  /** Upstream logins tried (2 when the first token was refused). */
  attempts?: number;
}

/** One printable ASCII line: server words go into a client reply (SMTP, POP3 and IMAP replies are ASCII). */
function oneLine(text: string, max = 300): string {
  const flat = text
    .normalize('NFKD')
    .replace(/[\u2026]/g, '...')
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
  return shorten(flat, max);
}

/** `text` at most `max` characters, cut between words and marked with "...". */
function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  const room = text.slice(0, max - 3);
  const space = room.lastIndexOf(' ');
  return `${(space > max / 2 ? room.slice(0, space) : room).trimEnd()}...`;
}

/** A refusal: what happened, the server's words (shortened if need be), and the advice, never cut. */
function refusal(what: string, serverWords: string | undefined, advice: string): string {
  const words = serverWords === undefined || serverWords === '' ? '' : ` (${oneLine(serverWords, 160)})`;
  return `${oneLine(what, 200)}${words}; ${advice}`;
}

export async function proxyLogin(
  deps: LoginDeps,
  listener: ResolvedListener,
  input: { mailbox: string; password: string; remoteAddress: string },
  facts: LoginFacts,
): Promise<LoginResult> {
  const protocol = listener.protocol;
  const auth = await deps.authenticator.authenticate({ username: input.mailbox, password: input.password, remoteAddress: input.remoteAddress, protocol });
  if (!auth.ok) {
    facts.outcome = auth.reason;
    facts.mailbox = oneLine(input.mailbox, 100);
    if (auth.reason === 'rate_limited') {
      const wait = auth.retryAfterSeconds ?? 60;
      return { ok: false, failure: { kind: 'rate_limited', text: `Too many failed logins from ${input.remoteAddress}; try again in ${wait} seconds.` } };
    }
    return { ok: false, failure: { kind: 'credentials', text: 'Authentication failed.' } };
  }
  facts.mailbox = auth.mailbox;
  facts.client = auth.clientName;

  let target;
  try {
    target = await deps.upstreams.targetFor(listener, auth.mailbox);
  } catch (err) {
    facts.outcome = 'configuration';
    facts.detail = oneLine((err as Error).message);
    return unavailable(`mailbridge cannot reach the server for ${auth.mailbox}: ${facts.detail}`);
  }
  facts.upstream = `${target.endpoint.host}:${target.endpoint.port}`;

  // The upstream half (sockets, DNS, TLS, each protocol's login) loads at the first login: a proxy
  // waiting for its first client does without it (node:tls alone is some megabytes).
  const { loginUpstream, UpstreamError } = await import('./upstream/index.ts');
  let refusedOnce = false;
  for (let attempt = 1; attempt <= 2; attempt++) {
    facts.attempts = attempt;
    let token: string;
    try {
      token = await deps.provider.getAccessToken(auth.mailbox, protocol);
    } catch (err) {
      facts.outcome = 'token';
      facts.detail = oneLine((err as Error).message);
      const signIn = err instanceof TokenError && err.code === 'needs_sign_in';
      return unavailable(
        signIn
          ? `mailbridge has no valid sign-in for ${auth.mailbox}; an administrator must run: mailbridge login ${auth.mailbox}`
          : `mailbridge could not get a token for ${auth.mailbox}; an administrator should run: mailbridge verify ${auth.mailbox}`,
      );
    }
    let upstream: UpstreamSession;
    try {
      upstream = await loginUpstream(protocol, { ...target, timeoutMs: deps.timeoutMs }, auth.mailbox, token);
    } catch (err) {
      if (err instanceof UpstreamError && err.code === 'auth_rejected' && !refusedOnce) {
        // The server refused this token (revoked, a changed policy, an early expiry): ask for a new one.
        refusedOnce = true;
        deps.provider.invalidate(auth.mailbox, protocol, token);
        continue;
      }
      const e = err as Error;
      facts.outcome = err instanceof UpstreamError && err.code === 'auth_rejected' ? 'upstream_refused' : 'upstream_unavailable';
      facts.detail = oneLine(e.message);
      if (err instanceof UpstreamError && err.code === 'auth_rejected') {
        return unavailable(
          refusal(
            `${target.endpoint.host} refused mailbridge's token for ${auth.mailbox}`,
            err.reply,
            `an administrator should run: mailbridge verify ${auth.mailbox}`,
          ),
        );
      }
      if (err instanceof UpstreamError && err.code === 'not_connected') {
        // IMAP disabled for the mailbox, no permission on it, no licence: the token was fine.
        facts.outcome = 'upstream_not_connected';
        return unavailable(
          refusal(
            `${target.endpoint.host} accepted mailbridge's token for ${auth.mailbox} but cannot open the mailbox (IMAP disabled for it, or no permission on it)`,
            err.reply,
            `an administrator should run: mailbridge verify ${auth.mailbox}`,
          ),
        );
      }
      return unavailable(
        `mailbridge could not log in to ${facts.upstream} for ${auth.mailbox} (${err instanceof UpstreamError ? err.code : 'error'}); try again later`,
      );
    }
    facts.outcome = 'ok';
    return { ok: true, upstream };
  }
  // Unreachable: the loop returns on the second attempt.
  return unavailable('mailbridge could not log in upstream');
}

function unavailable(text: string): LoginResult {
  // Built from oneLine() parts: ASCII already, and the advice at the end is never cut.
  return { ok: false, failure: { kind: 'unavailable', text } };
}
