// Decodes a POP3 multi-line block (RFC 1939 section 3) as it arrives, chunk by chunk: drops the
// stuffing dot of lines that start with "..", stops at the line holding only ".", and hands on
// everything else as slices of the received chunks (no copies, CRLFs kept). Each line is bounded.
//
// Speed matters here (a mailbox download is all block content), so a chunk costs a handful of
// native searches, not one per line: "\n." finds the lines that start with a dot, and the line
// bound is checked from the first and last line feed of the chunk (a line inside a chunk no
// longer than the bound cannot exceed it).
import { Pop3Error } from './errors.ts';

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const LF_DOT = Buffer.from('\n.', 'latin1');

export class DotBlockDecoder {
  readonly #maxLine: number;
  /** The next byte begins a line. A block begins at a line start. */
  #atLineStart = true;
  /** 1: the current line began with "." (dropped); 2: it began with ".\r". */
  #dot: 0 | 1 | 2 = 0;
  /** Bytes of the current line received so far (raw, before its LF). */
  #run = 0;
  /** Content bytes handed on so far. */
  bytes = 0;

  constructor(maxLineBytes: number) {
    this.#maxLine = maxLineBytes;
  }

  /**
   * Decodes `chunk` from `from` on, calling `emit` with each run of content. Returns the index
   * just past the end marker when the block ends in this chunk (the rest belongs to the next
   * reply), or -1 when all of it was content. Throws a Pop3Error for bad stuffing or a long line.
   */
  decode(chunk: Buffer, from: number, emit: (content: Buffer) => void): number {
    const len = chunk.length;
    let p = from;
    let start = p;
    let end = -1;
    while (p < len) {
      if (this.#dot !== 0) {
        const b = chunk[p];
        if (this.#dot === 1 && b === DOT) {
          // "..": the first dot was stuffing, the second is content.
          this.#dot = 0;
          start = p;
        } else if (this.#dot === 1 && b === CR) {
          this.#dot = 2;
          p++;
          start = p;
          continue;
        } else if (b === LF) {
          end = p + 1;
          break;
        } else {
          throw new Pop3Error(
            'protocol',
            'invalid dot-stuffing in a multi-line reply: a line starts with a single "." followed by other text (RFC 1939 requires "..")',
          );
        }
      } else if (this.#atLineStart) {
        this.#atLineStart = false;
        if (chunk[p] === DOT) {
          if (p > start) this.#emit(chunk.subarray(start, p), emit);
          this.#dot = 1;
          p++;
          start = p;
          continue;
        }
      }
      const hit = chunk.indexOf(LF_DOT, p);
      if (hit < 0) {
        this.#atLineStart = chunk[len - 1] === LF;
        p = len;
        break;
      }
      this.#emit(chunk.subarray(start, hit + 1), emit);
      p = hit + 2;
      start = p;
      this.#dot = 1;
    }
    if (end < 0 && p > start) this.#emit(chunk.subarray(start, p), emit);
    this.#checkLines(chunk, from, end < 0 ? len : end);
    return end;
  }

  #emit(content: Buffer, emit: (content: Buffer) => void): void {
    this.bytes += content.length;
    emit(content);
  }

  /** Every line in chunk[a, b), together with what came before, within the bound (plus a CR). */
  #checkLines(chunk: Buffer, a: number, b: number): void {
    const max = this.#maxLine + 1;
    const first = chunk.indexOf(LF, a);
    if (first < 0 || first >= b) {
      this.#run += b - a;
    } else {
      if (this.#run + (first - a) > max) throw this.#tooLong();
      let last: number;
      if (b - first - 1 > max) {
        // A long stretch after the first LF: look at every line in it.
        last = first;
        for (;;) {
          const next = chunk.indexOf(LF, last + 1);
          if (next < 0 || next >= b) break;
          if (next - last - 1 > max) throw this.#tooLong();
          last = next;
        }
      } else {
        last = chunk.lastIndexOf(LF, b - 1);
      }
      this.#run = b - 1 - last;
    }
    if (this.#run > max) throw this.#tooLong();
  }

  #tooLong(): Pop3Error {
    return new Pop3Error('line_too_long', `a line of a multi-line reply is longer than ${this.#maxLine} bytes`);
  }
}
