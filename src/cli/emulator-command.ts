// `mailbridge emulator`: run the Microsoft identity platform (and, later, Exchange Online's mail
// servers) on loopback. Prints `<service> <url>` lines and `ca <path>` on stdout for scripts, and
// a short how-to on stderr for people.
import { join } from 'node:path';
import type { Command } from 'commander';
import { startEmulator } from '../emulator/start.ts';
import { DEFAULT_IDS } from '../emulator/scenario/default.ts';
import { defaultDataHome } from './paths.ts';
import { EXIT } from './exit-codes.ts';

interface EmulatorFlags {
  data: string;
  host: string;
  port: string;
  scenario?: string;
  verbose?: boolean;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be a whole number from 0 to 65535 (0 picks free ports), not "${text}"`);
  }
  return port;
}

export function registerEmulatorCommand(program: Command): void {
  program
    .command('emulator')
    .description("run a local emulator of Microsoft's identity platform and Exchange Online's POP3, IMAP and SMTP, for offline tests and demos")
    .option('--data <dir>', 'folder for the emulator CA, signing key and scenario', join(defaultDataHome(), 'emulator'))
    .option('--host <address>', 'address to listen on (loopback unless you say otherwise)', '127.0.0.1')
    .option('--port <number>', 'first port; further services take the next ones; 0 picks free ports', '44300')
    .option('--scenario <file>', 'a scenario JSON file (tenants, apps, users, mailboxes); default: the built-in one')
    .option('--verbose', 'log every request (never tokens or secrets) to stderr')
    .addHelpText(
      'after',
      `
Output (stdout), one line each:
  identity https://localhost:44300    the login host to use as authority
  pop3s pop3s://localhost:44301       POP3, implicit TLS (like outlook.office365.com:995)
  pop3 pop3://localhost:44302         POP3, plain + STLS (like :110)
  imaps imaps://localhost:44303       IMAP, implicit TLS (like :993)
  imap imap://localhost:44304         IMAP, plain + STARTTLS (like :143)
  smtp smtp://localhost:44305         SMTP submission, STARTTLS (like smtp.office365.com:587)
  ca /path/to/ca.crt                  trust it: NODE_EXTRA_CA_CERTS=..., curl --cacert ...

The live scenario, with client ids, secrets and passwords, is at <identity>/_emulator/scenario.`,
    )
    .action(async (flags: EmulatorFlags) => {
      let running;
      try {
        running = await startEmulator({
          dataDir: flags.data,
          host: flags.host,
          port: parsePort(flags.port),
          ...(flags.scenario ? { scenarioFile: flags.scenario } : {}),
          ...(flags.verbose ? { logger: { level: 'info' } } : {}),
        });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const why = e.code === 'EADDRINUSE' ? `port ${flags.port} is taken; pass --port 0 to pick free ports` : e.message;
        process.stderr.write(`mailbridge emulator: could not start: ${why}\n`);
        process.exit(e.code === 'EADDRINUSE' ? EXIT.unavailable : EXIT.config);
      }
      for (const service of running.services) process.stdout.write(`${service.name} ${service.url}\n`);
      process.stdout.write(`ca ${running.caPath}\n`);
      const id = running.identityUrl;
      process.stderr.write(
        [
          '',
          `Scenario: ${running.scenarioSource}`,
          `  users, apps and secrets:  curl --cacert ${running.caPath} ${id}/_emulator/scenario`,
          `  tenant: contoso.com (${DEFAULT_IDS.tenant} in the built-in scenario)`,
          `  authority for MSAL:       ${id}/contoso.com   (or /common, /organizations, /consumers)`,
          `  device code sign-in page: ${id}/devicelogin`,
          `  try it:  curl --cacert ${running.caPath} ${id}/contoso.com/v2.0/.well-known/openid-configuration`,
          `  mail:    curl --cacert ${running.caPath} --oauth2-bearer "$TOKEN" -u alice@contoso.com: ${running.services.find((s) => s.name === 'imaps')?.url ?? ''}/INBOX`,
          'Press Ctrl+C to stop.',
          '',
        ].join('\n'),
      );
      // A signal handler's return value is ignored: the handler itself sees close()'s outcome.
      const stop = () => {
        running.close().then(
          () => process.exit(EXIT.ok),
          (err: unknown) => {
            process.stderr.write(`mailbridge emulator: could not stop cleanly: ${(err as Error).message}\n`);
            process.exit(EXIT.failure);
          },
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
