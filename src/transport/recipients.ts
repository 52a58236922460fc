// Recipients for a message to send: parsed from the command line's --to/--cc/--bcc or from the
// message's own To:/Cc:/Bcc: header (as `sendmail -t` does), each checked locally, so that a
// mistyped address is named before anything is sent instead of surfacing as a server refusal
// ("No recipients defined"). nodemailer's address parser (its composer's own) reads the lists.
import { MailbridgeError } from '../errors.ts';
import { headerEnd } from './message-id.ts';

/** What the person gave to send cannot be sent (a bad address, a file that cannot be read): exit 2, nothing sent. */
export class SendInputError extends MailbridgeError<'usage'> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('usage', message, options);
    this.name = 'SendInputError';
  }
}

export interface Recipients {
  to: string[];
  cc: string[];
  bcc: string[];
}

/** A plain `local@domain`: no spaces, one @, something on both sides, a domain of labels. */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$|^[^\s@<>()[\]\\,;:"]+@\[[^\]\s]+\]$/;

/**
 * The bare addresses in an address list ("Bob <bob@x.example>, carol@y.example"). `where` names the
 * list in the error a bad entry gets (a SendInputError: the person typed or wrote it).
 */
export async function parseAddressList(text: string, where: string): Promise<string[]> {
  const { default: addressparser } = await import('nodemailer/lib/addressparser');
  const entries = addressparser(text, { flatten: true });
  const addresses: string[] = [];
  for (const entry of entries) {
    const address = entry.address.trim();
    if (!ADDRESS.test(address)) {
      const shown = address || entry.name || text.trim();
      throw new SendInputError(`"${shown}" (${where}) is not an email address; nothing was sent`);
    }
    addresses.push(address);
  }
  return addresses;
}

/** The unfolded values of a header field (case-insensitive name) in a message's header. */
function headerValues(raw: Buffer, name: string): string[] {
  const header = raw.subarray(0, headerEnd(raw)).toString('utf8');
  const values: string[] = [];
  const field = new RegExp(`^${name}[ \\t]*:((?:.*)(?:\\r?\\n[ \\t].*)*)`, 'gim');
  for (const m of header.matchAll(field)) values.push(m[1]!.replace(/\r?\n/g, ' ').trim());
  return values;
}

/** The recipients a message names in its To:, Cc: and Bcc: fields. */
export async function recipientsOf(raw: Buffer): Promise<Recipients> {
  const read = async (name: string) => (await Promise.all(headerValues(raw, name).map((v) => parseAddressList(v, `${name}: in the message`)))).flat();
  return { to: await read('To'), cc: await read('Cc'), bcc: await read('Bcc') };
}

/** The message without its Bcc: field (its recipients are in the envelope only); other bytes as they are. */
export function withoutBcc(raw: Buffer): Buffer {
  const end = headerEnd(raw);
  const header = raw.subarray(0, end).toString('latin1');
  const stripped = header.replace(/^bcc[ \t]*:.*(?:\r?\n[ \t].*)*(?:\r?\n|$)/gim, '');
  if (stripped === header) return raw;
  return Buffer.concat([Buffer.from(stripped, 'latin1'), raw.subarray(end)]);
}
