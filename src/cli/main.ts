#!/usr/bin/env node
// The `mailbridge` command line. It starts fast because mutt and msmtp run `mailbridge token` on
// every connection: `--version` loads nothing but package.json, and a command loads only its own
// module (and through it only what it uses); help and unknown commands load them all.
import { enableCompileCache } from 'node:module';
import type { Command } from 'commander';

// node:fs without an ESM import: importing it builds fs.promises and its streams too (~30 modules,
// a few milliseconds of every `mailbridge token`); getBuiltinModule gives the module as it is.
const { readFileSync } = process.getBuiltinModule('node:fs');

type Register = (program: Command) => void;

/** Each top-level command, in the order help lists them, with the module that registers it. */
const COMMANDS: ReadonlyArray<readonly [names: readonly string[], load: () => Promise<Register>]> = [
  [['emulator'], async () => (await import('./emulator-command.ts')).registerEmulatorCommand],
  [['init'], async () => (await import('./init-command.ts')).registerInitCommand],
  [['login', 'token', 'accounts', 'logout'], async () => (await import('./identity-commands.ts')).registerIdentityCommands],
  [['fetch'], async () => (await import('./fetch-command.ts')).registerFetchCommand],
  [['send'], async () => (await import('./send-command.ts')).registerSendCommand],
  [['verify'], async () => (await import('./verify-command.ts')).registerVerifyCommand],
  [['proxy'], async () => (await import('./proxy-command.ts')).registerProxyCommand],
];

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const args = process.argv.slice(2);

if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${version}\n`);
} else {
  // Node keeps the compiled code of the modules loaded after this (in the system's temp folder),
  // which cuts their load time from the second run on; hence every import below is dynamic.
  enableCompileCache();
  // `token` and `proxy run` in their plain forms run without commander (plain-args.ts): mutt and
  // msmtp run `token` on every connection, and the proxy would keep commander in memory for days.
  // Both exit when done; anything else falls through to commander.
  if (args[0] === 'token') await (await import('./token-fast-path.ts')).tokenFastPath(args.slice(1));
  if (args[0] === 'proxy') await (await import('./proxy-run.ts')).proxyRunFastPath(args.slice(1));
  await withCommander();
}

async function withCommander(): Promise<void> {
  const [{ Command, CommanderError }, { EXIT }] = await Promise.all([import('commander'), import('./exit-codes.ts')]);
  const program = new Command()
    .name('mailbridge')
    .description('Microsoft 365 and Outlook.com mail over POP3, IMAP and SMTP with OAuth 2.0')
    .version(version)
    .exitOverride()
    .showHelpAfterError();

  // A known command name first: only its module. Anything else (help, options first, a typo that
  // deserves a "did you mean"): every module, so help and errors read exactly as before.
  const named = COMMANDS.find(([names]) => args[0] !== undefined && names.includes(args[0]));
  const registers = await Promise.all((named ? [named] : COMMANDS).map(([, load]) => load()));
  for (const register of registers) register(program);

  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
    }
    throw err;
  }
}
