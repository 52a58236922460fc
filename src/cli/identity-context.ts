// What the identity commands share: a mailbridge from the composition root (configuration, stores,
// token provider), under the names these commands have always used; and one place that turns
// their errors into a message and an exit code.
import { openMailbridge, type Mailbridge } from '../app/open-mailbridge.ts';
import type { LoadedConfig } from '../config/load.ts';
import { isMailbridgeError } from '../errors.ts';
import type { TokenStore } from '../store/token-store.ts';
import { EXIT, exitCodeFor } from './exit-codes.ts';

/** A mailbridge as the commands know it: `loaded` is its configuration, `store` its token store. */
export interface IdentityContext extends Mailbridge {
  loaded: LoadedConfig;
  store: TokenStore;
}

export async function openIdentity(configFile?: string): Promise<IdentityContext> {
  const mailbridge = await openMailbridge(configFile === undefined ? {} : { configFile });
  return { ...mailbridge, loaded: mailbridge.config, store: mailbridge.tokens };
}

/** Runs a command body; known errors print their message (never a token) and exit with their code. */
export async function runIdentityCommand(name: string, body: () => Promise<number | void>): Promise<never> {
  let code: number;
  try {
    code = (await body()) ?? EXIT.ok;
  } catch (err) {
    // mailbridge's own errors say what happened and never hold a token; anything else is a bug.
    const message = isMailbridgeError(err) ? err.message : `unexpected failure: ${(err as Error).message}`;
    process.stderr.write(`mailbridge ${name}: ${message}\n`);
    code = exitCodeFor(err);
  }
  process.exit(code);
}
