// `mailbridge proxy`: local POP3, IMAP and SMTP endpoints for programs that only know a password.
// `proxy run` (the default) starts the configured listeners and prints one line per listener on
// stdout; the app-password subcommands live in proxy-clients-command.ts.
import type { Command } from 'commander';
import { ConfigError } from '../config/load.ts';
import { ProxyAuthenticator } from '../proxy/clients/authenticator.ts';
import { proxyLogger } from '../proxy/audit.ts';
import { startProxy, type RunningListener } from '../proxy/server.ts';
import { EXIT } from './exit-codes.ts';
import { openIdentity, runIdentityCommand } from './identity-context.ts';
import { registerProxyClientCommands } from './proxy-clients-command.ts';

const CONFIG_HELP = 'configuration file (default: $MAILBRIDGE_CONFIG or ~/.config/mailbridge/config.json)';

interface RunFlags {
  config?: string;
  debug?: boolean;
  json?: boolean;
}

const SCHEME: Record<RunningListener['protocol'], [string, string]> = { imap: ['imap', 'imaps'], pop: ['pop3', 'pop3s'], smtp: ['smtp', 'smtps'] };

/** `imap://127.0.0.1:1143 plain upstream …` and the certificate facts a client needs to trust it. */
function describe(l: RunningListener): string {
  const scheme = SCHEME[l.protocol][l.security === 'implicit' ? 1 : 0];
  const parts = [`${l.protocol} ${scheme}://${l.host}:${l.port}`, l.security === 'starttls' ? 'starttls' : l.security];
  parts.push(`upstream ${l.upstream ?? "the mailbox's cloud"}`);
  if (l.fingerprint) parts.push(`sha256 ${l.fingerprint}`, `certificate ${l.certificateFile ?? ''}`);
  return parts.join('  ');
}

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
    .action((flags: RunFlags) =>
      runIdentityCommand('proxy', async () => {
        const ctx = await openIdentity(flags.config);
        const { loaded } = ctx;
        if (loaded.config.proxy.listeners.length === 0) {
          throw new ConfigError(loaded.file, [
            { path: 'proxy.listeners', message: 'no listeners are configured; add one, e.g. { "protocol": "imap", "port": 1143 } (see docs/proxy.md)' },
          ]);
        }
        const authenticator = new ProxyAuthenticator({
          store: ctx.proxyClients,
          mailboxes: () => Object.keys(loaded.config.mailboxes),
          failedLogins: loaded.config.proxy.failedLogins,
        });
        const logger = proxyLogger({ debug: flags.debug ?? false });
        let running;
        try {
          running = await startProxy({ loaded, provider: ctx.provider, authenticator, logger, debug: flags.debug ?? false });
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
            process.stderr.write(`mailbridge proxy: cannot listen: ${e.message}; change "port" (0 picks a free one) or "host" of the listener\n`);
            await ctx.close();
            return EXIT.unavailable;
          }
          throw err;
        }
        process.stdout.write(flags.json ? `${JSON.stringify({ listeners: running.listeners })}\n` : running.listeners.map((l) => `${describe(l)}\n`).join(''));
        if (!flags.json)
          process.stderr.write(
            'mailbridge proxy: ready; audit lines follow on stderr. Ctrl+C stops (open sessions get up to shutdownGraceSeconds to finish).\n',
          );
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        process.stderr.write(`mailbridge proxy: stopping; ${running.sessionCount} session(s) open\n`);
        await running.close();
        logger.flush();
        await ctx.close();
        return EXIT.ok;
      }),
    );

  registerProxyClientCommands(proxy);
}
