// Line I/O for the pre-login dialog of every front end: bounded lines, replies written with
// backpressure, a transcript (debug) in which credentials are already redacted by the caller,
// and a count of protocol errors after which the session is closed.
import { LineTooLongError } from '../../net/line-reader.ts';
import type { LineSession } from '../../net/line-server.ts';

export const TOO_LONG = Symbol('line too long');

export interface Transcript {
  (direction: 'C' | 'S', line: string): void;
}

/** Protocol errors before login after which a session is closed (hostile or lost clients). */
export const MAX_ERRORS = 10;

export class FrontIo {
  readonly #session: LineSession;
  readonly #transcript: Transcript | undefined;
  /** The protocol's last words when a session has made too many errors. */
  readonly #tooManyErrors: string;
  errors = 0;
  /** Set once the session is to be closed (too many errors, a fatal one). */
  closing = false;

  constructor(session: LineSession, transcript: Transcript | undefined, tooManyErrors: string) {
    this.#session = session;
    this.#transcript = transcript;
    this.#tooManyErrors = tooManyErrors;
  }

  /** The next line as latin1 (bytes kept one to one), null when the client left, TOO_LONG past the bound. */
  async line(): Promise<string | null | typeof TOO_LONG> {
    try {
      const raw = await this.#session.reader.readLine();
      return raw === null ? null : raw.toString('latin1');
    } catch (err) {
      if (err instanceof LineTooLongError) return TOO_LONG;
      throw err;
    }
  }

  async bytes(n: number): Promise<Buffer | null> {
    return this.#session.reader.readBytes(n);
  }

  /** Records what the client said, as the caller made it safe to log. */
  heard(safeText: string): void {
    this.#transcript?.('C', safeText);
  }

  async say(line: string): Promise<void> {
    this.#transcript?.('S', line);
    await this.#session.write(`${line}\r\n`);
  }

  /** Answers a protocol error; at the limit (or when `fatal`) the session is told and marked closing. */
  async error(reply: string, fatal = false): Promise<void> {
    await this.say(reply);
    this.errors++;
    if (fatal || this.errors >= MAX_ERRORS) {
      await this.say(this.#tooManyErrors);
      this.closing = true;
    }
  }

  /**
   * One SASL response after the continuation line `prompt` (`+ …` or `334 …`): the line, or
   * undefined when the client cancelled with `*` or sent too much (answered as an error), or null
   * when the client left.
   */
  async saslResponse(prompt: string, replies: { cancelled: string; tooLong: string }): Promise<string | undefined | null> {
    await this.say(prompt);
    const line = await this.line();
    if (line === null) return null;
    this.heard('[credentials]');
    if (line === TOO_LONG || line === '*') {
      await this.error(line === '*' ? replies.cancelled : replies.tooLong);
      return undefined;
    }
    return line;
  }
}

/** A POP3 or SMTP command line as verb (upper case) and argument. */
export function splitCommand(line: string): { verb: string; arg: string } {
  const space = line.indexOf(' ');
  return { verb: (space < 0 ? line : line.slice(0, space)).toUpperCase(), arg: space < 0 ? '' : line.slice(space + 1) };
}

/** A command as the transcript may show it: passwords and SASL responses replaced. */
export function redactedCommand(line: string): string {
  const { verb, arg } = splitCommand(line);
  if (verb === 'PASS') return 'PASS [password]';
  if (verb === 'AUTH') return `AUTH ${printable(arg.split(' ')[0] ?? '', 20)}${arg.includes(' ') ? ' [credentials]' : ''}`;
  return printable(line);
}

/** A client line for the transcript: control characters shown escaped, long lines cut. */
export function printable(line: string, max = 200): string {
  const shown = line.length > max ? `${line.slice(0, max)}… (${line.length} bytes)` : line;
  return shown.replace(/[\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
