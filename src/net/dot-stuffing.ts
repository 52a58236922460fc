// The multi-line framing of POP3 responses and SMTP DATA (RFC 1939 / RFC 5321): a line that
// starts with "." gets another "." in front, and a line holding only "." ends the block.
import { Transform, type TransformCallback } from 'node:stream';

const DOT = 0x2e;
const LF = 0x0a;

/**
 * `body` framed for the wire: dot-stuffed, ending in CRLF, then ".\r\n". Line ends are sent as
 * they are stored (messages keep their own CRLFs).
 */
export function dotStuff(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  if (body.length > 0 && body[0] === DOT) parts.push(Buffer.from('.'));
  for (let i = body.indexOf(LF); i >= 0 && i < body.length - 1; i = body.indexOf(LF, i + 1)) {
    if (body[i + 1] === DOT) {
      parts.push(body.subarray(start, i + 1), Buffer.from('.'));
      start = i + 1;
    }
  }
  parts.push(body.subarray(start));
  const endsWithLine = body.length >= 2 && body[body.length - 2] === 0x0d && body[body.length - 1] === LF;
  parts.push(Buffer.from(endsWithLine || body.length === 0 ? '.\r\n' : '\r\n.\r\n'));
  return Buffer.concat(parts);
}

/** One received line of a dot-stuffed block: the end marker, or the line with its stuffing removed. */
export function unstuffLine(line: Buffer): { end: true } | { end: false; line: Buffer } {
  if (line.length === 1 && line[0] === DOT) return { end: true };
  return { end: false, line: line.length > 0 && line[0] === DOT ? line.subarray(1) : line };
}

/**
 * dotStuff() for a stream: the same framing, chunk by chunk, so a large message never sits whole
 * in memory. Ends with the block's terminating ".\r\n".
 */
export class DotStuffer extends Transform {
  /** Whether the next byte starts a line (the message's first byte does). */
  #lineStart = true;
  /** The last two bytes passed on, to know whether the message ended with CRLF. */
  #tail = Buffer.alloc(0);
  #empty = true;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length === 0) return callback();
    this.#empty = false;
    const parts: Buffer[] = [];
    let start = 0;
    if (this.#lineStart && chunk[0] === DOT) parts.push(Buffer.from('.'));
    for (let i = chunk.indexOf(LF); i >= 0 && i < chunk.length - 1; i = chunk.indexOf(LF, i + 1)) {
      if (chunk[i + 1] === DOT) {
        parts.push(chunk.subarray(start, i + 1), Buffer.from('.'));
        start = i + 1;
      }
    }
    parts.push(chunk.subarray(start));
    this.#lineStart = chunk[chunk.length - 1] === LF;
    this.#tail = Buffer.concat([this.#tail, chunk.subarray(-2)]).subarray(-2);
    callback(null, parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  override _flush(callback: TransformCallback): void {
    const endsWithLine = this.#tail.length === 2 && this.#tail[0] === 0x0d && this.#tail[1] === LF;
    callback(null, Buffer.from(endsWithLine || this.#empty ? '.\r\n' : '\r\n.\r\n'));
  }
}
