// `mailbridge token` without commander: mutt and msmtp run it on every connection, and loading
// commander is a good part of its start-up. Only the plain forms are taken here (one mailbox,
// --config/--protocol with a value, --sasl, each at most once); anything else (help, a typo, a
// repeated or unknown option, `--`) goes to commander, so its messages and exit codes stay the same.
import { runToken, type TokenFlags } from './identity-commands.ts';

/** The mailbox and flags of a plain `token` command line (after the word `token`), or undefined. */
export function plainTokenArgs(args: readonly string[]): { mailbox: string; flags: TokenFlags } | undefined {
  let mailbox: string | undefined;
  const flags: TokenFlags = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) {
      if (mailbox !== undefined) return undefined;
      mailbox = arg;
      continue;
    }
    if (arg === '--sasl') {
      if (flags.sasl) return undefined;
      flags.sasl = true;
      continue;
    }
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (name !== '--config' && name !== '--protocol') return undefined;
    const value = inline ?? args[++i];
    if (value === undefined || (inline === undefined && value.startsWith('-'))) return undefined;
    const key = name === '--config' ? 'config' : 'protocol';
    if (flags[key] !== undefined) return undefined;
    flags[key] = value;
  }
  return mailbox === undefined ? undefined : { mailbox, flags };
}

/** Runs `token` (and exits) when the command line is a plain one; false when commander should parse it. */
export async function tokenFastPath(args: readonly string[]): Promise<boolean> {
  const plain = plainTokenArgs(args);
  if (!plain) return false;
  await runToken(plain.mailbox, plain.flags);
  return true;
}
