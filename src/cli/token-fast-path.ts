// `mailbridge token`: its body (commander's action runs it too) and its way in without commander.
// mutt and msmtp run it on every connection, so it loads only what a token from the store needs:
// commander, the other commands and the output stream stay unloaded. Only the plain command lines
// are taken here (one mailbox, --config/--protocol with a value, --sasl; see plain-args.ts).
import { PROTOCOLS, type Protocol } from '../config/names.ts';
import { resolveGrant } from '../identity/grants.ts';
import { EXIT } from './exit-codes.ts';
import { openIdentity, runIdentityCommand } from './identity-context.ts';
import { plainArgs } from './plain-args.ts';

const { writeSync } = process.getBuiltinModule('node:fs');

export interface TokenFlags {
  config?: string;
  protocol?: string;
  sasl?: boolean;
}

/** The mailbox and flags of a plain `token` command line (after the word `token`), or undefined. */
export function plainTokenArgs(args: readonly string[]): { mailbox: string; flags: TokenFlags } | undefined {
  const plain = plainArgs(args, { values: ['config', 'protocol'], switches: ['sasl'], positionals: 1 });
  const mailbox = plain?.positionals[0];
  if (!plain || mailbox === undefined) return undefined;
  return { mailbox, flags: { ...plain.values, ...plain.switches } };
}

/** Runs `token` (and exits) when the command line is a plain one; false when commander should parse it. */
export async function tokenFastPath(args: readonly string[]): Promise<boolean> {
  const plain = plainTokenArgs(args);
  if (!plain) return false;
  await runToken(plain.mailbox, plain.flags);
  return true;
}

/**
 * Writes the line straight to file descriptor 1: process.stdout's first use builds a stream over
 * a socket or TTY (node:net and its machinery when stdout is a pipe, as under mutt and msmtp),
 * some milliseconds of a command that takes tens. The bytes are the same.
 */
function writeStdout(text: string): void {
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(1, bytes, done);
  } catch (err) {
    // A non-blocking descriptor that is full: the stream waits for it.
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    process.stdout.write(bytes.subarray(done));
  }
}

/** `mailbridge token`'s body, from commander's action or from tokenFastPath. Exits. */
export function runToken(mailbox: string, flags: TokenFlags): Promise<never> {
  return runIdentityCommand('token', async () => {
    if (flags.protocol !== undefined && !(PROTOCOLS as readonly string[]).includes(flags.protocol)) {
      process.stderr.write(`mailbridge token: --protocol must be one of ${PROTOCOLS.join(', ')}\n`);
      return EXIT.usage;
    }
    const ctx = await openIdentity(flags.config);
    try {
      const grant = resolveGrant(ctx.loaded, mailbox);
      const protocol = (flags.protocol as Protocol | undefined) ?? grant.mailbox.protocols[0]!;
      const token = await ctx.provider.getAccessToken(grant.address, protocol);
      const sasl = flags.sasl ? (await import('../net/sasl-xoauth2.ts')).encodeXoauth2 : undefined;
      writeStdout(`${sasl ? sasl(grant.address, token) : token}\n`);
    } finally {
      await ctx.close();
    }
  });
}
