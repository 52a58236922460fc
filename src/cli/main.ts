#!/usr/bin/env node
// The `mailbridge` command line.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerEmulatorCommand } from './emulator-command.ts';
import { registerIdentityCommands } from './identity-commands.ts';
import { registerInitCommand } from './init-command.ts';
import { registerProxyCommand } from './proxy-command.ts';
import { registerFetchCommand } from './fetch-command.ts';
import { registerSendCommand } from './send-command.ts';
import { registerVerifyCommand } from './verify-command.ts';
import { EXIT } from './exit-codes.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('mailbridge')
  .description('Microsoft 365 and Outlook.com mail over POP3, IMAP and SMTP with OAuth 2.0')
  .version(pkg.version)
  .exitOverride()
  .showHelpAfterError();

registerEmulatorCommand(program);
registerInitCommand(program);
registerIdentityCommands(program);
registerFetchCommand(program);
registerSendCommand(program);
registerVerifyCommand(program);
registerProxyCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  throw err;
}
