// What happens to a submitted message: the SendAs check (reference 4.4: the From header and the
// envelope sender must be the authenticated mailbox or one it may send as), delivery into the
// INBOX of every recipient that is a mailbox of the emulator (other recipients are accepted and
// go nowhere, as if relayed to the Internet), and a copy in the sender's Sent Items, as Exchange
// keeps one for SMTP submissions. The message is stored byte for byte; only what a server adds
// goes in front of it: `Received:` for the recipients' copies, and `Message-ID:` / `Date:` when
// the client left them out.
import type { Mailbox } from '../../scenario/schema.ts';
import type { ExchangeContext } from '../context.ts';
import { rfc5322Date, type SmtpNames } from './names.ts';

/** Who authenticated: the mailbox named by `user=` and the token's principal (UPN or SP id). */
export interface Submitter {
  mailbox: Mailbox;
  principal: string;
  appOnly: boolean;
}

/** How the message came in, for its `Received:` line. */
export interface Arrival {
  helo: string;
  clientIp: string;
  tlsVersion: string | undefined;
  cipher: string | undefined;
}

const HEADER_SCAN_LIMIT = 1024 * 1024;

/** The header section (up to the first empty line), as text. */
export function headerBlock(raw: Buffer): string {
  const limit = Math.min(raw.length, HEADER_SCAN_LIMIT);
  if (raw[0] === 10 || (raw[0] === 13 && raw[1] === 10)) return '';
  let end = limit;
  for (let i = raw.indexOf(10); i >= 0 && i < limit; i = raw.indexOf(10, i + 1)) {
    if (raw[i + 1] === 10 || (raw[i + 1] === 13 && raw[i + 2] === 10)) {
      end = i + 1;
      break;
    }
  }
  return raw.subarray(0, end).toString('utf8');
}

/** Unfolded values of every header field with this name (case-insensitive). */
export function headerValues(block: string, name: string): string[] {
  const wanted = name.toLowerCase();
  const values: string[] = [];
  let current: { name: string; value: string } | undefined;
  const flush = () => {
    if (current && current.name === wanted) values.push(current.value.trim());
  };
  for (const line of block.split(/\r?\n/)) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && current) {
      current.value += ` ${line.trim()}`;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    current = colon > 0 ? { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1) } : undefined;
  }
  flush();
  return values;
}

/** The addr-specs of an address list (RFC 5322 section 3.4): display names, comments, groups. */
export function addressesOf(value: string): string[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  let angle = false;
  let comment = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
      current += c === '"' ? '' : 'x';
      continue;
    }
    if (comment > 0) {
      if (c === '\\') i++;
      else if (c === '(') comment++;
      else if (c === ')') comment--;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '(') comment = 1;
    else if (c === '<') {
      angle = true;
      current += c;
    } else if (c === '>') {
      angle = false;
      current += c;
    } else if ((c === ',' || c === ';') && !angle) {
      items.push(current);
      current = '';
    } else if (c === ':' && !angle)
      current = ''; // a group's name
    else current += c;
  }
  items.push(current);
  const addresses: string[] = [];
  for (const item of items) {
    const inAngle = /<([^<>]*)>/.exec(item);
    const address = (inAngle ? inAngle[1]! : item).trim();
    if (address.includes('@')) addresses.push(address);
  }
  return addresses;
}

function sameAddress(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/** May this submitter send as `address`? Its own mailbox, or one it has SendAs on. */
export function maySendAs(ctx: ExchangeContext, who: Submitter, address: string): boolean {
  // A user sends as themselves; an app as the mailbox it authenticated for (`user=`).
  const own = who.appOnly ? who.mailbox.address : who.principal;
  if (sameAddress(address, own)) return true;
  const target = ctx.findMailbox(address);
  return !!target?.permissions.some((p) => sameAddress(p.principal, who.principal) && p.accessRights.includes('SendAs'));
}

/** The first sender address (From header, then envelope) the submitter may not use, if any. */
export function sendAsRefusal(ctx: ExchangeContext, who: Submitter, envelopeFrom: string, raw: Buffer): string | undefined {
  const block = headerBlock(raw);
  const senders = headerValues(block, 'from').flatMap(addressesOf);
  if (envelopeFrom !== '') senders.push(envelopeFrom);
  return senders.find((address) => !maySendAs(ctx, who, address));
}

function receivedLine(names: SmtpNames, arrival: Arrival, now: Date): string {
  const tls = arrival.tlsVersion ? `(version=${arrival.tlsVersion.replace('TLSv', 'TLS').replace('.', '_')},\r\n cipher=${arrival.cipher ?? 'unknown'}) ` : '';
  return (
    `Received: from ${arrival.helo} (${arrival.clientIp}) by ${names.frontendHost}\r\n` +
    ` with Microsoft SMTP Server ${tls}id 15.20.9343.11 via Frontend Transport; ${rfc5322Date(now)}\r\n`
  );
}

export interface Submitted {
  messageId: string;
  /** Addresses of the emulator's mailboxes that received it. */
  delivered: string[];
}

export async function submitMessage(
  ctx: ExchangeContext,
  names: SmtpNames,
  who: Submitter,
  recipients: string[],
  raw: Buffer,
  arrival: Arrival,
  now: Date,
): Promise<Submitted> {
  const block = headerBlock(raw);
  let added = '';
  let messageId = /<[^<>\s]+>/.exec(headerValues(block, 'message-id')[0] ?? '')?.[0];
  if (!messageId) {
    messageId = names.messageId();
    added += `Message-ID: ${messageId}\r\n`;
  }
  if (headerValues(block, 'date').length === 0) added += `Date: ${rfc5322Date(now)}\r\n`;
  const submitted = added === '' ? raw : Buffer.concat([Buffer.from(added, 'latin1'), raw]);
  const received = Buffer.concat([Buffer.from(receivedLine(names, arrival, now), 'latin1'), submitted]);

  const delivered: string[] = [];
  const seen = new Set<string>();
  for (const recipient of recipients) {
    const key = recipient.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    const mailbox = ctx.findMailbox(recipient);
    if (!mailbox) continue;
    await ctx.deliver(mailbox.address, received);
    delivered.push(mailbox.address);
  }
  const own = await ctx.openMailbox(who.mailbox);
  await own.append('Sent Items', submitted, ['\\Seen'], now);
  return { messageId, delivered };
}
