// `mailbridge proxy`: the listeners, each session's course (a connection cap, the pre-login
// dialog of the listener's protocol, the login, the relay), the audit line, and a shutdown that
// stops taking connections at once but lets sessions already relaying finish within a grace period.
import { hostname } from 'node:os';
import type { LoadedConfig } from '../config/load.ts';
import type { Protocol } from '../config/schema.ts';
import type { TokenProvider } from '../identity/token-provider.ts';
import { startLineServer, type LineSession, type RunningLineServer } from '../net/line-server.ts';
import type { Logger, SessionAudit } from './audit.ts';
import { FrontIo, printable } from './front/io.ts';
import { afterLogin, IMAP_TOO_MANY_ERRORS, imapFront } from './front/imap.ts';
import { POP3_TOO_MANY_ERRORS, pop3Front } from './front/pop3.ts';
import { SMTP_TOO_MANY_ERRORS, smtpFront } from './front/smtp.ts';
import type { Front } from './front/types.ts';
import { resolveListeners, UpstreamResolver, type ResolvedListener } from './listeners.ts';
import { proxyLogin, type Authenticator, type LoginFacts } from './login.ts';
import { relay, type Relay } from './relay.ts';
import type { UpstreamSession } from './upstream/index.ts';

const FRONTS: Record<Protocol, Front> = { imap: imapFront, pop: pop3Front, smtp: smtpFront };
const TOO_MANY_ERRORS: Record<Protocol, string> = { imap: IMAP_TOO_MANY_ERRORS, pop: POP3_TOO_MANY_ERRORS, smtp: SMTP_TOO_MANY_ERRORS };
const IDLE_DEFAULT_SECONDS: Record<Protocol, number> = { imap: 30 * 60, pop: 10 * 60, smtp: 5 * 60 };
/** Pre-login lines are commands and SASL responses: short. */
const MAX_LINE_BYTES = 8192;
/** What a busy proxy says before it hangs up. */
const BUSY: Record<Protocol, string> = {
  imap: '* BYE Too many connections to the mailbridge proxy; try again later.',
  pop: '-ERR [SYS/TEMP] Too many connections to the mailbridge proxy; try again later.',
  smtp: '421 4.3.2 Too many connections to the mailbridge proxy; try again later',
};
/** What a client address with too many connections not yet logged in hears. */
const BUSY_ADDRESS: Record<Protocol, (address: string) => string> = {
  imap: (a) => `* BYE Too many connections from ${a} not logged in; try again later.`,
  pop: (a) => `-ERR [SYS/TEMP] Too many connections from ${a} not logged in; try again later.`,
  smtp: (a) => `421 4.7.0 Too many connections from ${a} not logged in; try again later`,
};
/** Share of maxConnections past which a new or waiting client gets only SHORT_LOGIN_SECONDS to log in. */
const NEARLY_FULL = 0.9;
const SHORT_LOGIN_SECONDS = 10;
const BYE: Record<Protocol, string> = {
  imap: '* BYE mailbridge proxy: connection closed.',
  pop: '-ERR mailbridge proxy: connection closed.',
  smtp: '421 4.4.2 mailbridge proxy: connection closed',
};
/** SMTP extensions shown until the upstream's own have been seen once. */
const SMTP_EXTENSIONS_BEFORE_FIRST_LOGIN = ['SIZE', 'PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'];

export interface ProxyOptions {
  loaded: LoadedConfig;
  provider: TokenProvider;
  authenticator: Authenticator;
  logger: Logger;
  /** Log the pre-login dialog (credentials redacted). */
  debug?: boolean;
  /** Upstream connect and reply timeout (default 30 s). */
  upstreamTimeoutMs?: number;
}

export interface RunningListener {
  protocol: Protocol;
  host: string;
  port: number;
  security: ResolvedListener['security'];
  fingerprint?: string;
  certificateFile?: string;
  upstream?: string;
}

export interface RunningProxy {
  listeners: RunningListener[];
  /** Sessions open now (any state). */
  readonly sessionCount: number;
  /** Stops listening, says goodbye to sessions not yet logged in, lets relays run up to the grace period. */
  close(graceMs?: number): Promise<void>;
}

interface LiveSession {
  session: LineSession;
  protocol: Protocol;
  relay?: Relay;
  /** Set until the session has logged in or left. */
  waiting?: WaitingLogin | undefined;
}

interface WaitingLogin {
  timer: NodeJS.Timeout;
  /** performance.now() at which the login time is up. */
  deadline: number;
  timeUp: () => void;
}

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const { loaded, logger } = options;
  const settings = loaded.config.proxy;
  const listeners = await resolveListeners(loaded);
  const upstreams = new UpstreamResolver(loaded);
  const loginDeps = { authenticator: options.authenticator, provider: options.provider, upstreams, timeoutMs: options.upstreamTimeoutMs ?? 30_000 };
  const smtpExtensions = new Map<string, string[]>();
  /** IMAP capabilities after login, per upstream, as last seen (shown before login too). */
  const imapCapabilities = new Map<string, string[]>();
  const live = new Set<LiveSession>();
  const name = hostname();
  /** Sessions not yet logged in, per client address. */
  const preLogin = new Map<string, number>();
  let nextSession = 1;

  /** Nearly full: every client still to log in gets at most SHORT_LOGIN_SECONDS from now. */
  const shortenWaitingLogins = () => {
    const latest = performance.now() + SHORT_LOGIN_SECONDS * 1000;
    for (const s of live) {
      const w = s.waiting;
      if (!w || w.deadline <= latest) continue;
      clearTimeout(w.timer);
      w.deadline = latest;
      w.timer = setTimeout(w.timeUp, SHORT_LOGIN_SECONDS * 1000);
    }
  };
  let stopping = false;

  const runSession = async (listener: ResolvedListener, label: string, session: LineSession): Promise<void> => {
    const started = performance.now();
    const id = nextSession++;
    const audit: SessionAudit = {
      session: id,
      listener: label,
      protocol: listener.protocol,
      client: `${session.remoteAddress}:${session.socket.remotePort ?? ''}`,
      result: 'no_login',
      bytesFromClient: 0,
      bytesToClient: 0,
      durationMs: 0,
    };
    const me: LiveSession = { session, protocol: listener.protocol };
    if (stopping || live.size >= settings.maxConnections) {
      audit.result = stopping ? 'shutting_down' : 'busy';
      await session.write(`${BUSY[listener.protocol]}\r\n`);
      logger.info({ ...audit, durationMs: Math.round(performance.now() - started) }, 'proxy session');
      return;
    }
    const address = session.remoteAddress;
    if ((preLogin.get(address) ?? 0) >= settings.maxPreLoginPerAddress) {
      audit.result = 'busy_address';
      await session.write(`${BUSY_ADDRESS[listener.protocol](printable(address, 64))}\r\n`);
      logger.info({ ...audit, durationMs: Math.round(performance.now() - started) }, 'proxy session');
      return;
    }
    preLogin.set(address, (preLogin.get(address) ?? 0) + 1);
    live.add(me);
    const transcript = options.debug
      ? (direction: 'C' | 'S', line: string) =>
          logger.debug({ session: id, [direction === 'C' ? 'client' : 'proxy']: direction === 'S' ? printable(line) : line }, 'transcript')
      : undefined;
    const io = new FrontIo(session, transcript, TOO_MANY_ERRORS[listener.protocol]);
    // A client that never logs in is let go after loginTimeoutSeconds, or sooner when the proxy is nearly full.
    const timeUp = () => {
      audit.result = 'login_timeout';
      void session.write(`${BYE[listener.protocol]}\r\n`).then(() => session.destroy());
    };
    const nearlyFull = () => live.size >= Math.max(1, Math.floor(settings.maxConnections * NEARLY_FULL));
    const loginSeconds = nearlyFull() ? Math.min(settings.loginTimeoutSeconds, SHORT_LOGIN_SECONDS) : settings.loginTimeoutSeconds;
    const waiting: WaitingLogin = { timer: setTimeout(timeUp, loginSeconds * 1000), deadline: performance.now() + loginSeconds * 1000, timeUp };
    me.waiting = waiting;
    if (nearlyFull()) shortenWaitingLogins();
    let upstream: UpstreamSession | undefined;
    try {
      const facts: LoginFacts = {};
      upstream = await FRONTS[listener.protocol]({
        session,
        io,
        hostname: name,
        startTls: listener.security === 'starttls' ? listener.tls : undefined,
        login: async (mailbox, password) => {
          const result = await proxyLogin(loginDeps, listener, { mailbox, password, remoteAddress: session.remoteAddress }, facts);
          Object.assign(audit, {
            result: facts.outcome ?? 'error',
            ...(facts.mailbox ? { mailbox: facts.mailbox } : {}),
            ...(facts.client ? { appClient: facts.client } : {}),
            ...(facts.upstream ? { upstream: facts.upstream } : {}),
            ...(facts.detail ? { detail: facts.detail } : {}),
            ...(facts.attempts ? { loginAttempts: facts.attempts } : {}),
          });
          if (result.ok && listener.protocol === 'smtp' && facts.upstream) smtpExtensions.set(facts.upstream, withoutAuth(result.upstream.capabilities));
          if (result.ok && listener.protocol === 'imap' && facts.upstream && result.upstream.capabilities.length > 0) {
            imapCapabilities.set(facts.upstream, afterLogin(result.upstream.capabilities));
          }
          transcript?.('S', `[login ${facts.outcome} ${facts.upstream ?? ''}${facts.attempts === 2 ? ' after a refused token was refreshed' : ''}]`);
          return result;
        },
        smtpExtensions: () => smtpExtensions.get(lastUpstreamKey(listener, smtpExtensions)) ?? SMTP_EXTENSIONS_BEFORE_FIRST_LOGIN,
        imapCapabilities: () => imapCapabilities.get(lastUpstreamKey(listener, imapCapabilities)) ?? [],
      });
    } catch (err) {
      audit.result = 'error';
      audit.detail = (err as Error).message;
    } finally {
      clearTimeout(waiting.timer);
      me.waiting = undefined;
      const left = (preLogin.get(address) ?? 1) - 1;
      if (left > 0) preLogin.set(address, left);
      else preLogin.delete(address);
    }
    try {
      if (upstream && !session.closed) {
        if (stopping) {
          upstream.socket.destroy();
          audit.result = 'shutting_down';
        } else {
          const early = session.reader.detach();
          me.relay = relay(session.socket, early, upstream.socket, upstream.leftover);
          const result = await me.relay.done;
          audit.bytesFromClient = result.bytesFromClient;
          audit.bytesToClient = result.bytesToClient;
          audit.endedBy = result.endedBy;
        }
      } else if (upstream) {
        upstream.socket.destroy();
      }
    } finally {
      live.delete(me);
      audit.durationMs = Math.round(performance.now() - started);
      logger.info(audit, 'proxy session');
    }
  };

  const servers: RunningLineServer[] = [];
  const running: RunningListener[] = [];
  try {
    for (const listener of listeners) {
      const holder: { label: string } = { label: '' };
      const server = await startLineServer(
        {
          host: listener.host,
          port: listener.port,
          ...(listener.security === 'implicit' && listener.tls ? { implicitTls: listener.tls } : {}),
          maxLineBytes: MAX_LINE_BYTES,
          crlfOnly: listener.protocol === 'smtp',
          idleTimeoutMs: (settings.idleTimeoutSeconds ?? IDLE_DEFAULT_SECONDS[listener.protocol]) * 1000,
          backlog: 4096,
          allowHalfOpen: true,
        },
        (session) => runSession(listener, holder.label, session),
        (session) => session.write(`${BYE[listener.protocol]}\r\n`),
      );
      holder.label = `${listener.protocol} ${listener.host}:${server.port}`;
      servers.push(server);
      running.push({
        protocol: listener.protocol,
        host: listener.host,
        port: server.port,
        security: listener.security,
        ...(listener.fingerprint ? { fingerprint: listener.fingerprint } : {}),
        ...(listener.certificateFile ? { certificateFile: listener.certificateFile } : {}),
        ...(listener.upstream ? { upstream: `${listener.upstream.endpoint.host}:${listener.upstream.endpoint.port}` } : {}),
      });
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }

  return {
    listeners: running,
    get sessionCount() {
      return live.size;
    },
    close: async (graceMs = settings.shutdownGraceSeconds * 1000) => {
      stopping = true;
      await Promise.all(servers.map((s) => s.stopAccepting()));
      // Not logged in yet: nothing to lose; told and closed.
      for (const s of live) {
        if (!s.relay) void s.session.write(`${BYE[s.protocol]}\r\n`).then(() => s.session.destroy());
      }
      const relays = [...live].filter((s) => s.relay).map((s) => s.relay!.done);
      if (relays.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(relays), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
        clearTimeout(timer);
      }
      for (const s of live) s.relay?.stop();
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

/** SMTP extensions without the ones the proxy answers itself. */
function withoutAuth(extensions: string[]): string[] {
  return extensions.filter((e) => !/^(AUTH|STARTTLS)\b/i.test(e));
}

/** The upstream this listener logged in to last (a fixed one, or the last mailbox's). */
function lastUpstreamKey(listener: ResolvedListener, seen: Map<string, string[]>): string {
  if (listener.upstream) return `${listener.upstream.endpoint.host}:${listener.upstream.endpoint.port}`;
  return [...seen.keys()].at(-1) ?? '';
}
