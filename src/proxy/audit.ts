// One audit line per proxy session (who, which mailbox, which protocol, bytes each way, how it
// ended) and, with --debug, the pre-login transcript with every credential already redacted.
// The lines are pino's, byte for byte ({"level":30,"time":…,"service":"proxy",…,"msg":…}), written
// here without pino: pino brings worker_threads and its transports, ~7 MB of a proxy at rest.

// Through getBuiltinModule: an ESM import of node:fs also builds fs.promises and its streams.
const { writeSync } = process.getBuiltinModule('node:fs');

/** What the proxy logs through; a pino logger fits it too (the tests give one). */
export interface Logger {
  info(fields: object, msg: string): void;
  debug(fields: object, msg: string): void;
  /** Writes whatever is still buffered (nothing here: every line is written when logged). */
  flush(): void;
}

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

const LEVELS = { debug: 20, info: 30 } as const;

/** pino's line: level, time, the base fields, then each field as given (undefined ones left out), then msg. */
function jsonLine(level: number, fields: object, msg: string): string {
  let line = `{"level":${level},"time":${Date.now()},"service":"proxy"`;
  for (const [key, value] of Object.entries(fields)) {
    const json = value === undefined ? undefined : (JSON.stringify(value) as string | undefined);
    if (json !== undefined) line += `,${JSON.stringify(key)}:${json}`;
  }
  return `${line},"msg":${JSON.stringify(msg)}}\n`;
}

/** Whole lines to fd 2 at once; a non-blocking stderr that is full is waited for, never dropped. */
function writeStderr(text: string): void {
  let rest = Buffer.from(text, 'utf8');
  while (rest.length > 0) {
    try {
      rest = rest.subarray(writeSync(2, rest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return; // stderr is gone: logging must not stop the proxy
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

/**
 * The proxy's logger: JSON lines on stderr (or the given destination), debug when asked. Written
 * synchronously, one line per session end (and per pre-login line with --debug): nothing is lost
 * when the process exits, and a stalled reader of stderr holds the proxy rather than its memory.
 */
export function proxyLogger(options: { debug?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const destination = options.destination;
  const write = destination ? (line: string) => void destination.write(line) : writeStderr;
  return {
    info: (fields, msg) => write(jsonLine(LEVELS.info, fields, msg)),
    debug: options.debug ? (fields, msg) => write(jsonLine(LEVELS.debug, fields, msg)) : () => {},
    flush: () => {},
  };
}
