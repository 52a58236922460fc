// `mailbridge send <mailbox>`: send a message through the mailbox (its MailSender: SMTP with a
// token from the provider), from a file (`-`: standard input) or composed from --subject, --body,
// --html and --attach, for a person at a terminal. What cannot work is refused before anything is
// sent (exit 2): nothing to send, no recipient, an address that is not one, a file that cannot be
// read. Prints the Message-ID the message is kept under.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { composeMessage } from '../transport/compose.ts';
import { openMailSender } from '../transport/open.ts';
import { parseAddressList, recipientsOf, SendInputError, withoutBcc, type Recipients } from '../transport/recipients.ts';
import { EXIT } from './exit-codes.ts';
import { openIdentity, runIdentityCommand } from './identity-context.ts';
import { CONFIG_HELP } from './options.ts';

interface SendFlags {
  config?: string;
  to?: string[];
  cc?: string[];
  bcc?: string[];
  subject?: string;
  body?: string;
  html?: string;
  attach?: string[];
  inReplyTo?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** A file's bytes, or standard input's for `-`; a file that cannot be read is the person's to fix. */
async function readInput(file: string, what: string): Promise<Buffer> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'there is no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : (err as Error).message;
    throw new SendInputError(`cannot read ${what} ${file}: ${why}; nothing was sent`, { cause: err });
  }
}

async function flagRecipients(flags: SendFlags): Promise<Recipients> {
  const read = async (values: string[] | undefined, flag: string) => (await Promise.all((values ?? []).map((v) => parseAddressList(v, flag)))).flat();
  return { to: await read(flags.to, '--to'), cc: await read(flags.cc, '--cc'), bcc: await read(flags.bcc, '--bcc') };
}

/** A Message-ID as given, in angle brackets (people often copy it without them). */
function messageIdArgument(value: string): string {
  const id = value.trim().startsWith('<') ? value.trim() : `<${value.trim()}>`;
  if (!/^<[^<>\s]+@[^<>\s]+>$/.test(id)) throw new SendInputError(`--in-reply-to "${value}" is not a Message-ID (<local@domain>); nothing was sent`);
  return id;
}

export function registerSendCommand(program: Command): void {
  program
    .command('send')
    .description(
      'send a message through a mailbox (SMTP with OAuth): a .eml file (- for standard input), or one composed from --subject, --body, --html, --attach',
    )
    .argument('<mailbox>', 'a mailbox address from the configuration (the sender)')
    .argument('[file]', 'a complete message (.eml) to send as it is; - reads it from standard input')
    .option('--to <address>', "a recipient (repeat for more); with a file, default: the file's To:, Cc: and Bcc:", collect)
    .option('--cc <address>', 'a copy recipient (repeat for more)', collect)
    .option('--bcc <address>', 'a blind copy recipient, not shown in the message (repeat for more)', collect)
    .option('--subject <text>', 'the subject, when no file is given')
    .option('--body <text>', 'the plain-text body, when no file is given')
    .option('--html <file>', 'an HTML body (alongside --body), when no file is given')
    .option('--attach <file>', 'attach a file (repeat for more), when no file is given', collect)
    .option('--in-reply-to <message-id>', 'the Message-ID this message answers (sets In-Reply-To and References), when no file is given')
    .option('--config <file>', CONFIG_HELP)
    .action((mailbox: string, file: string | undefined, flags: SendFlags) =>
      runIdentityCommand('send', async () => {
        const composing = ['subject', 'body', 'html', 'attach', 'inReplyTo'].some((k) => flags[k as keyof SendFlags] !== undefined);
        if (file !== undefined && composing) {
          process.stderr.write('mailbridge send: give a message file or compose one with --subject/--body/--html/--attach/--in-reply-to, not both\n');
          return EXIT.usage;
        }
        if (file === undefined && !composing) {
          process.stderr.write('mailbridge send: nothing to send: give a message file (- for standard input), or --subject and --body; nothing was sent\n');
          return EXIT.usage;
        }
        const given = await flagRecipients(flags);
        const fromFlags = given.to.length + given.cc.length + given.bcc.length > 0;
        // A file is read (and its header's recipients checked) before anything else is opened.
        let raw = file === undefined ? undefined : await readInput(file, 'the message file');
        const recipients = fromFlags || raw === undefined ? given : await recipientsOf(raw);
        const envelope = [...recipients.to, ...recipients.cc, ...recipients.bcc];
        if (envelope.length === 0) {
          process.stderr.write(`mailbridge send: no recipient: give --to${raw === undefined ? '' : ', or a file with To:, Cc: or Bcc:'}; nothing was sent\n`);
          return EXIT.usage;
        }
        if (raw !== undefined) raw = withoutBcc(raw);
        const html = flags.html === undefined ? undefined : (await readInput(flags.html, 'the --html file')).toString('utf8');
        const attachments = await Promise.all(
          (flags.attach ?? []).map(async (path) => ({ filename: basename(path), content: await readInput(path, 'the --attach file') })),
        );
        const inReplyTo = flags.inReplyTo === undefined ? undefined : messageIdArgument(flags.inReplyTo);
        const ctx = await openIdentity(flags.config);
        try {
          const sender = openMailSender(ctx, mailbox);
          const message =
            raw ??
            (await composeMessage({
              from: sender.mailbox,
              to: recipients.to,
              ...(recipients.cc.length ? { cc: recipients.cc } : {}),
              subject: flags.subject ?? '',
              text: flags.body ?? '',
              ...(html !== undefined ? { html } : {}),
              ...(attachments.length ? { attachments } : {}),
              ...(inReplyTo !== undefined ? { inReplyTo } : {}),
            }));
          const sent = await sender.send(message, { to: envelope });
          process.stdout.write(`${sent.messageId}\n`);
          process.stderr.write(`Sent through ${mailbox} to ${envelope.join(', ')}.\n`);
        } finally {
          await ctx.close();
        }
      }),
    );
}
