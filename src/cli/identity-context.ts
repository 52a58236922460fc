// What the identity commands share: the configuration, the token store with its key, the token
// provider; and one place that turns their errors into a message and an exit code.
import { join } from 'node:path';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { isMailbridgeError } from '../errors.ts';
import { TokenProvider } from '../identity/token-provider.ts';
import { loadKey } from '../store/encryption.ts';
import { SqliteTokenStore } from '../store/sqlite-token-store.ts';
import type { TokenStore } from '../store/token-store.ts';
import { EXIT, exitCodeFor } from './exit-codes.ts';

export interface IdentityContext {
  loaded: LoadedConfig;
  store: TokenStore;
  provider: TokenProvider;
  close(): Promise<void>;
}

export async function openIdentity(configFile?: string): Promise<IdentityContext> {
  const loaded = await loadConfig(configFile);
  const box = await loadKey(join(loaded.dataDir, 'key'));
  const store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), box);
  const provider = new TokenProvider({ loaded, store });
  return {
    loaded,
    store,
    provider,
    close: async () => {
      await provider.settled();
      await store.close();
    },
  };
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
