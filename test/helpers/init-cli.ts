// Test-only entry point: `mailbridge init` as its own process (real stdin, stdout, exit code)
// before the main command line wires it in.
import { Command, CommanderError } from 'commander';
import { EXIT } from '../../src/cli/exit-codes.ts';
import { registerInitCommand } from '../../src/cli/init-command.ts';

const program = new Command().name('mailbridge').exitOverride().showHelpAfterError();
registerInitCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  throw err;
}
