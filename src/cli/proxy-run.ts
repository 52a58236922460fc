// `mailbridge proxy run` (also plain `mailbridge proxy`): starts the configured listeners, prints
// them, and runs until SIGINT or SIGTERM. The plain command lines run without commander (see
// plain-args.ts), as the proxy sits in memory for days: what it loads at start it keeps.
import { ConfigError } from '../config/load.ts';
import { ProxyAuthenticator } from '../proxy/clients/authenticator.ts';
import { proxyLogger } from '../proxy/audit.ts';
import { startProxy, type RunningListener } from '../proxy/server.ts';
import { EXIT } from './exit-codes.ts';
import { openIdentity, runIdentityCommand } from './identity-context.ts';
import { plainArgs } from './plain-args.ts';

export interface ProxyRunFlags {
  config?: string;
  debug?: boolean;
  json?: boolean;
}

/** The flags of a plain `proxy` or `proxy run` command line (after the word `proxy`), or undefined. */
export function plainProxyRunArgs(args: readonly string[]): ProxyRunFlags | undefined {
  const plain = plainArgs(args[0] === 'run' ? args.slice(1) : args, { values: ['config'], switches: ['debug', 'json'], positionals: 0 });
  return plain ? { ...plain.values, ...plain.switches } : undefined;
}

/** Runs the proxy (and exits when it stops) when the command line is a plain one; false when commander should parse it. */
export async function proxyRunFastPath(args: readonly string[]): Promise<boolean> {
  const flags = plainProxyRunArgs(args);
  if (!flags) return false;
  await runProxy(flags);
  return true;
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

/** `mailbridge proxy run`'s body, from commander's action or from proxyRunFastPath. Exits. */
export function runProxy(flags: ProxyRunFlags): Promise<never> {
  return runIdentityCommand('proxy', async () => {
    const ctx = await openIdentity(flags.config);
    const { loaded } = ctx;
    if (loaded.config.proxy.listeners.length === 0) {
      throw new ConfigError(loaded.file, [
        { path: 'proxy.listeners', message: 'no listeners are configured; add one, e.g. { "protocol": "imap", "port": 1143 } (see docs/proxy.md)' },
      ]);
    }
    // Opened now, not at the first login: a store problem stops the proxy at start-up.
    const clients = await ctx.openProxyClients();
    const authenticator = new ProxyAuthenticator({
      store: clients,
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
      process.stderr.write('mailbridge proxy: ready; audit lines follow on stderr. Ctrl+C stops (open sessions get up to shutdownGraceSeconds to finish).\n');
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
  });
}
