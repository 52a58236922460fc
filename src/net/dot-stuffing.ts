// The multi-line framing of POP3 responses and SMTP DATA (RFC 1939 / RFC 5321): a line that
// starts with "." gets another "." in front, and a line holding only "." ends the block.

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
