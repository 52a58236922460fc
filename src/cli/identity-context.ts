// What the identity commands share: the configuration, the token store with its key, the token
// provider; and one place that turns their errors into a message and an exit code.
import { join } from 'node:path';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.ts';
import { TokenError } from '../identity/token-errors.ts';
import { TokenProvider } from '../identity/token-provider.ts';
import { loadKey } from '../store/encryption.ts';
import { SqliteTokenStore } from '../store/sqlite-token-store.ts';
import { TokenStoreError, type TokenStore } from '../store/token-store.ts';
import { EXIT } from './exit-codes.ts';

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
  let code: number = EXIT.ok;
  try {
    code = (await body()) ?? EXIT.ok;
  } catch (err) {
    const say = (message: string) => process.stderr.write(`mailbridge ${name}: ${message}\n`);
    if (err instanceof ConfigError) {
      say(err.message);
      code = EXIT.config;
    } else if (err instanceof TokenError) {
      say(err.message);
      code = err.code === 'needs_sign_in' ? EXIT.needsSignIn : err.code === 'unavailable' ? EXIT.unavailable : EXIT.config;
    } else if (err instanceof TokenStoreError) {
      say(err.message);
      code = EXIT.store;
    } else {
      say(`unexpected failure: ${(err as Error).message}`);
      code = EXIT.failure;
    }
  }
  process.exit(code);
}
