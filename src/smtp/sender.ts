// SMTP as a MailSender: sendMessage (nodemailer, a token from the provider per connection, one
// refresh-and-retry) with the raw message as it is, after giving it a Message-ID when it has
// none, so the id returned is the one the recipients' servers keep.
import { resolveGrant } from '../identity/grants.ts';
import { withMessageId } from '../transport/message-id.ts';
import type { MailContext, MailSender, SendEnvelope, SendResult } from '../transport/types.ts';
import { sendMessage, type SmtpOptions } from './send.ts';

export class SmtpSender implements MailSender {
  readonly mailbox: string;
  readonly #ctx: MailContext;
  readonly #options: SmtpOptions;

  /** Resolves the mailbox at once (a TokenError when it is not configured); connects per send. */
  constructor(ctx: MailContext, mailbox: string, options: SmtpOptions = {}) {
    this.mailbox = resolveGrant(ctx.loaded, mailbox).address;
    this.#ctx = ctx;
    this.#options = options;
  }

  async send(raw: Buffer | string, envelope: SendEnvelope): Promise<SendResult> {
    const domain = this.mailbox.slice(this.mailbox.lastIndexOf('@') + 1) || 'localhost';
    const message = withMessageId(raw, domain);
    const info = await sendMessage(
      this.#ctx,
      this.mailbox,
      { to: [...envelope.to], raw: message.raw, ...(envelope.from !== undefined ? { from: envelope.from } : {}) },
      this.#options,
    );
    const addresses = (list: unknown[] | undefined) => (list ?? []).map((a) => (typeof a === 'string' ? a : (a as { address: string }).address));
    return { messageId: message.messageId, accepted: addresses(info.accepted), rejected: addresses(info.rejected) };
  }
}
