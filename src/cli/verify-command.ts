// `mailbridge verify <mailbox>`: proves that a mailbox really works over each of its protocols
// (DNS, TCP, TLS, greeting, capabilities, token, login, and a touch of the mailbox) and names the
// cause and fix of whatever does not. Exit 0 when every step passed, 1 when one failed; 3 and 5
// (and the other codes of exit-codes.ts) for problems found before any protocol ran.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { PROTOCOLS, type Protocol } from '../config/schema.ts';
import { isMailbridgeError } from '../errors.ts';
import { renderJson, renderJsonError, renderText } from '../verify/render.ts';
import { verifyMailbox } from '../verify/run.ts';
import { EXIT, exitCodeFor } from './exit-codes.ts';
import { openIdentity, runIdentityCommand } from './identity-context.ts';
import { CONFIG_HELP, collect } from './options.ts';

interface VerifyFlags {
  config?: string;
  protocol?: string[];
  json?: boolean;
  sendTest?: boolean;
  cached?: boolean;
  timeout?: string;
  tokenFile?: string;
}

/** Bigger than any Entra access token (they stay under 16 KB), small enough to refuse a wrong file. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/** The token in a file or on stdin ('-'): one line, an optional "Bearer " before it. */
async function readTokenFile(path: string): Promise<string> {
  let raw = '';
  if (path === '-') {
    for await (const chunk of process.stdin) {
      raw += String(chunk);
      if (raw.length > MAX_TOKEN_FILE_BYTES) break;
    }
  } else {
    raw = await readFile(path, 'utf8');
  }
  if (raw.length > MAX_TOKEN_FILE_BYTES)
    throw new Error(`${path === '-' ? 'standard input' : path} holds more than ${MAX_TOKEN_FILE_BYTES} bytes; it should hold one access token`);
  const token = raw.trim().replace(/^Bearer\s+/i, '');
  if (!token || /\s/.test(token)) throw new Error(`${path === '-' ? 'standard input' : path} should hold one access token on one line`);
  return token;
}

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('check that a mailbox works over IMAP, POP3 and SMTP, step by step, and name the cause and fix of any failure')
    .argument('<mailbox>', 'a mailbox address from the configuration')
    .option('--config <file>', CONFIG_HELP)
    .option('--protocol <protocol>', `check only this protocol (${PROTOCOLS.join(', ')}); repeat for more (default: the mailbox's protocols)`, collect)
    .option('--json', 'print the report as JSON')
    .option('--send-test', 'with SMTP, also send a short test message to the mailbox itself')
    .option('--cached', 'use the access token clients would get now, possibly cached (default: request a fresh one, which proves the grant still works)')
    .option(
      '--token-file <file>',
      "check an access token obtained elsewhere (by another tool) instead of mailbridge's own; '-' reads it from standard input. It is never printed",
    )
    .option('--timeout <seconds>', 'how long to wait for each connection and reply', '15')
    .action((mailbox: string, flags: VerifyFlags) =>
      runIdentityCommand('verify', async () => {
        const unknown = (flags.protocol ?? []).filter((p) => !(PROTOCOLS as readonly string[]).includes(p));
        const timeout = Number(flags.timeout);
        if (unknown.length > 0 || !(timeout > 0)) {
          process.stderr.write(
            `mailbridge verify: ${unknown.length > 0 ? `--protocol must be one of ${PROTOCOLS.join(', ')} (not ${unknown.join(', ')})` : '--timeout must be a number of seconds'}\n`,
          );
          return EXIT.usage;
        }
        let externalToken: string | undefined;
        if (flags.tokenFile !== undefined) {
          try {
            externalToken = await readTokenFile(flags.tokenFile);
          } catch (err) {
            process.stderr.write(`mailbridge verify: --token-file: ${(err as Error).message}\n`);
            return EXIT.usage;
          }
        }
        try {
          const ctx = await openIdentity(flags.config);
          try {
            const report = await verifyMailbox(ctx, mailbox, {
              ...(flags.protocol?.length ? { protocols: flags.protocol as Protocol[] } : {}),
              sendTest: flags.sendTest ?? false,
              cached: flags.cached ?? false,
              ...(externalToken !== undefined ? { externalToken } : {}),
              timeoutMs: Math.round(timeout * 1000),
            });
            process.stdout.write(flags.json ? renderJson(report) : renderText(report, { symbols: process.stdout.isTTY === true }));
            return report.ok ? EXIT.ok : EXIT.failure;
          } finally {
            await ctx.close();
          }
        } catch (err) {
          // A program reading --json gets JSON whatever stopped verify before any protocol ran (not
          // signed in, the configuration, the store); the message still goes to stderr as well.
          if (flags.json && isMailbridgeError(err)) process.stdout.write(renderJsonError(mailbox, err.code, err.message, exitCodeFor(err)));
          throw err;
        }
      }),
    );
}
