// Test-only entry point: `mailbridge verify` as its own process (real stdout, stderr and exit
// code) on a fresh command line, for as long as the main command line does not wire it in.
import { Command, CommanderError } from 'commander';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { registerVerifyCommand } from '../../src/cli/verify-command.ts';

const program = new Command().name('mailbridge').exitOverride().showHelpAfterError();
registerVerifyCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  throw err;
}
