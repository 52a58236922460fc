// The Message-ID a sent message will be kept under. A server that receives a message without one
// adds its own (Exchange does), which the sender never learns; so a sender gives the message one
// first, and the id it reports is the one stored. Bytes are left as they are otherwise.
import { randomUUID } from 'node:crypto';

/** Where the header ends: the empty line (CRLF CRLF or LF LF), or the end of a body-less message. */
export function headerEnd(raw: Buffer): number {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const ends = [crlf, lf].filter((i) => i >= 0);
  return ends.length > 0 ? Math.min(...ends) : raw.length;
}

/** The Message-ID header's value (unfolded, trimmed), or undefined when the message has none. */
export function messageIdOf(raw: Buffer | string): string | undefined {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  // Header field names and Message-IDs are ASCII; latin1 maps each byte to one character.
  const header = bytes.subarray(0, headerEnd(bytes)).toString('latin1');
  const match = /^message-id[ \t]*:((?:.*)(?:\r?\n[ \t].*)*)/im.exec(header);
  if (!match) return undefined;
  const value = match[1]!.replace(/\r?\n/g, '').trim();
  return value === '' ? undefined : value;
}

/**
 * The message with a Message-ID, and that id (with its angle brackets). A message that has one is
 * returned unchanged; otherwise `Message-ID: <uuid@domain>` is put first, with the message's own
 * line ending.
 */
export function withMessageId(raw: Buffer | string, domain: string): { raw: Buffer | string; messageId: string } {
  const existing = messageIdOf(raw);
  if (existing !== undefined) return { raw, messageId: existing };
  const messageId = `<${randomUUID()}@${domain}>`;
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  const firstBreak = bytes.indexOf('\n');
  const eol = firstBreak > 0 && bytes[firstBreak - 1] === 0x0d ? '\r\n' : firstBreak >= 0 ? '\n' : '\r\n';
  return { raw: Buffer.concat([Buffer.from(`Message-ID: ${messageId}${eol}`, 'latin1'), bytes]), messageId };
}
