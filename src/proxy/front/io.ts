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
  errors = 0;

  constructor(session: LineSession, transcript: Transcript | undefined) {
    this.#session = session;
    this.#transcript = transcript;
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

  /** Counts a protocol error; true when the session should now be closed. */
  failed(): boolean {
    this.errors++;
    return this.errors >= MAX_ERRORS;
  }
}

/** A client line for the transcript: control characters shown escaped, long lines cut. */
export function printable(line: string, max = 200): string {
  const shown = line.length > max ? `${line.slice(0, max)}… (${line.length} bytes)` : line;
  return shown.replace(/[\x00-\x1f\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
