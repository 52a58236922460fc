// One audit line per proxy session (who, which mailbox, which protocol, bytes each way, how it
// ended) and, with --debug, the pre-login transcript with every credential already redacted.
import pino, { type Logger } from 'pino';

export interface SessionAudit {
  session: number;
  listener: string;
  protocol: string;
  client: string;
  mailbox?: string;
  appClient?: string;
  upstream?: string;
  /** ok (relayed), or why not: bad_password, rate_limited, upstream_refused, no_login, busy, … */
  result: string;
  detail?: string;
  loginAttempts?: number;
  bytesFromClient: number;
  bytesToClient: number;
  durationMs: number;
  endedBy?: string;
}

/** The proxy's logger: JSON lines on stderr (or the given destination), debug when asked. */
export function proxyLogger(options: { debug?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino({ level: options.debug ? 'debug' : 'info', base: { service: 'proxy' } }, options.destination ?? pino.destination({ fd: 2, sync: false }));
}
