// Reads IMAP responses from a server we do not trust (verify's probe, the proxy's upstream login):
// one response at a time, its literals folded in, every size bounded. Lines are bounded by the
// LineConnection (64 KiB); literals here, by size and by count, so a server that announces
// `{4294967296}` gets a clear error instead of the memory it asked for.
import { ConnectionError, type LineConnection } from './connection.ts';

export interface ImapReaderLimits {
  /** Largest literal accepted inside one response. */
  maxLiteralBytes: number;
  /** Most literals accepted inside one response. */
  maxLiterals: number;
}

/** Enough for greetings, capabilities, logins and SELECT/STATUS, where no literal is expected at all. */
export const LOGIN_READ_LIMITS: ImapReaderLimits = { maxLiteralBytes: 64 * 1024, maxLiterals: 16 };

/** `{123}` or `{123+}` ending a line. */
const LITERAL_AT_END = /\{(\d+)\+?\}$/;

export class ImapResponseReader {
  readonly #conn: LineConnection;
  readonly #limits: ImapReaderLimits;

  constructor(conn: LineConnection, limits: ImapReaderLimits = LOGIN_READ_LIMITS) {
    this.#conn = conn;
    this.#limits = limits;
  }

  /**
   * One response as latin1 text: its line, then for each literal marker ending a line the
   * literal's bytes and the line after it. Throws ConnectionError 'literal_too_large' when a
   * literal is over the bound (before reading any of it), and the LineConnection's errors
   * ('closed', 'timeout', 'line_too_long') otherwise.
   */
  async response(): Promise<string> {
    let line = await this.#conn.line();
    for (let count = 1, m = LITERAL_AT_END.exec(line); m; count++, m = LITERAL_AT_END.exec(line)) {
      const { maxLiteralBytes, maxLiterals } = this.#limits;
      if (count > maxLiterals) throw new ConnectionError('literal_too_large', `the server sent more than ${maxLiterals} literals in one response`);
      // The digits, not Number(): a size past 2^53 would be rounded.
      if (m[1]!.length > 16 || Number(m[1]) > maxLiteralBytes)
        throw new ConnectionError(
          'literal_too_large',
          `the server announced a literal of ${m[1]!.length > 20 ? `${m[1]!.slice(0, 20)}...` : m[1]} bytes, over the bound of ${maxLiteralBytes}`,
        );
      const bytes = await this.#conn.bytes(Number(m[1]));
      line = `${line}${bytes.toString('latin1')}${await this.#conn.line()}`;
    }
    return line;
  }
}
