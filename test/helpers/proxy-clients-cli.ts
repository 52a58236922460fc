// Test-only entry point: `mailbridge proxy add-client | clients | revoke-client` as their own
// process (real stdout, stderr and exit code) on a fresh command line, for as long as the main
// command line does not wire them in.
import { Command, CommanderError } from 'commander';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { registerProxyClientCommands } from '../../src/cli/proxy-clients-command.ts';

const program = new Command().name('mailbridge').exitOverride().showHelpAfterError();
const proxy = program.command('proxy').description('the legacy proxy');
registerProxyClientCommands(proxy);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  throw err;
}
