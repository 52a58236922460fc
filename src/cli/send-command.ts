// `mailbridge send <mailbox>`: send a message through the mailbox (its MailSender: SMTP with a
// token from the provider), from a file or from --subject and --body, for a person at a terminal.
// Prints the Message-ID the message is kept under.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { composeMessage } from '../transport/compose.ts';
import { openMailSender } from '../transport/open.ts';
import { EXIT } from './exit-codes.ts';
import { openIdentity, runIdentityCommand } from './identity-context.ts';

interface SendFlags {
  config?: string;
  to: string[];
  cc?: string[];
  subject?: string;
  body?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerSendCommand(program: Command): void {
  program
    .command('send')
    .description('send a message through a mailbox (SMTP with OAuth): a .eml file, or --subject and --body')
    .argument('<mailbox>', 'a mailbox address from the configuration (the sender)')
    .argument('[file]', 'a complete message (.eml) to send as it is')
    .requiredOption('--to <address>', 'a recipient (repeat for more)', collect)
    .option('--cc <address>', 'a copy recipient (repeat for more)', collect)
    .option('--subject <text>', 'the subject, when no file is given')
    .option('--body <text>', 'the plain-text body, when no file is given')
    .option('--config <file>', 'configuration file')
    .action((mailbox: string, file: string | undefined, flags: SendFlags) =>
      runIdentityCommand('send', async () => {
        if (file && (flags.subject !== undefined || flags.body !== undefined)) {
          process.stderr.write('mailbridge send: give a .eml file or --subject/--body, not both\n');
          return EXIT.usage;
        }
        const raw = file ? await readFile(file) : undefined;
        const ctx = await openIdentity(flags.config);
        try {
          const sender = openMailSender(ctx, mailbox);
          const message =
            raw ??
            (await composeMessage({
              from: sender.mailbox,
              to: flags.to,
              ...(flags.cc ? { cc: flags.cc } : {}),
              subject: flags.subject ?? '',
              text: flags.body ?? '',
            }));
          const sent = await sender.send(message, { to: [...flags.to, ...(flags.cc ?? [])] });
          process.stdout.write(`${sent.messageId}\n`);
          process.stderr.write(`Sent through ${mailbox} to ${[...flags.to, ...(flags.cc ?? [])].join(', ')}.\n`);
        } finally {
          await ctx.close();
        }
      }),
    );
}
