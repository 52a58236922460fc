// Opening a transport for a configured mailbox: the one place that picks the implementation, so
// callers (the CLI, the composition root, later the service) never name a protocol module. The
// implementations are imported when first used: a command that never reads IMAP never loads
// imapflow, one that never sends never loads nodemailer.
import { resolveGrant } from '../identity/grants.ts';
import { TransportError } from './errors.ts';
import type { MailContext, MailSender, MailSource, SendEnvelope, SendResult, SourceProtocol } from './types.ts';
import type { ImapSourceOptions } from '../imap/source.ts';
import type { Pop3SourceOptions } from '../pop3/source.ts';
import type { SmtpOptions } from '../smtp/send.ts';

export type { MailContext } from './types.ts';

export interface OpenMailSourceOptions {
  /** For IMAP: folder, connect and watcher options. */
  imap?: ImapSourceOptions;
  /** For POP3: connect limits, the poll interval of watch(). */
  pop?: Pop3SourceOptions;
}

/** The mailbox's first configured protocol that can read mail (its `protocols`, in order). */
export function sourceProtocolOf(ctx: MailContext, mailbox: string): SourceProtocol | undefined {
  return resolveGrant(ctx.loaded, mailbox).mailbox.protocols.find((p): p is SourceProtocol => p === 'pop' || p === 'imap');
}

/**
 * A logged-in MailSource for the mailbox, over `protocol` or else the first of pop/imap in the
 * mailbox's configured protocols. Errors: TokenError (not configured, needs a sign-in...),
 * TransportError 'unsupported' when the mailbox is configured for neither, and the protocol's own.
 */
export async function openMailSource(ctx: MailContext, mailbox: string, protocol?: SourceProtocol, options: OpenMailSourceOptions = {}): Promise<MailSource> {
  const chosen = protocol ?? sourceProtocolOf(ctx, mailbox);
  if (chosen === 'pop') {
    const { Pop3Source } = await import('../pop3/source.ts');
    return Pop3Source.open(ctx, mailbox, options.pop);
  }
  if (chosen === 'imap') {
    const { ImapSource } = await import('../imap/source.ts');
    return ImapSource.open(ctx, mailbox, options.imap);
  }
  throw new TransportError('unsupported', `${mailbox} is configured for neither pop nor imap: add one to its "protocols"`);
}

/**
 * A MailSender for the mailbox (SMTP). Returned at once, the mailbox checked against the
 * configuration; nodemailer is loaded on the first send.
 */
export function openMailSender(ctx: MailContext, mailbox: string, options: SmtpOptions = {}): MailSender {
  const address = resolveGrant(ctx.loaded, mailbox).address;
  let sender: Promise<MailSender> | undefined;
  return {
    mailbox: address,
    send: async (raw: Buffer | string, envelope: SendEnvelope): Promise<SendResult> => {
      sender ??= import('../smtp/sender.ts').then(({ SmtpSender }) => new SmtpSender(ctx, address, options));
      return (await sender).send(raw, envelope);
    },
  };
}
