// `mailbridge proxy`: local POP3, IMAP and SMTP endpoints for programs that only know a password.
// `proxy run` (the default) starts the configured listeners and prints one line per listener on
// stdout; the app-password subcommands live in proxy-clients-command.ts.
import type { Command } from 'commander';
import { CONFIG_HELP } from './options.ts';
import { registerProxyClientCommands } from './proxy-clients-command.ts';
import { runProxy, type ProxyRunFlags } from './proxy-run.ts';

export function registerProxyCommand(program: Command): void {
  const proxy = program
    .command('proxy')
    .description('local POP3, IMAP and SMTP endpoints that take an app password and log in to Microsoft 365 with OAuth for the program')
    .addHelpText(
      'after',
      `
Set up:
  1. add listeners under "proxy" in the configuration (docs/proxy.md), e.g.
     "proxy": { "listeners": [ { "protocol": "imap", "port": 1143 }, { "protocol": "smtp", "port": 1587, "security": "starttls" } ] }
  2. mailbridge proxy add-client helpdesk --mailbox support@contoso.com   (prints the app password once)
  3. mailbridge proxy                                                      (runs the listeners)
  The program logs in with the mailbox address as user name and the app password.`,
    );

  proxy
    .command('run', { isDefault: true })
    .description('run the configured listeners until stopped (Ctrl+C or SIGTERM lets open sessions finish)')
    .option('--config <file>', CONFIG_HELP)
    .option('--debug', 'log each pre-login exchange (credentials redacted) besides the audit lines')
    .option('--json', 'print the listeners as one JSON line instead of text')
    .action((flags: ProxyRunFlags) => runProxy(flags));

  registerProxyClientCommands(proxy);
}
