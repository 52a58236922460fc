// The one place that builds stores from the configuration: the key that seals the grants'
// secrets, then the token store and the proxy client store of the configured kind. Each kind is a
// backend below, loaded only when configured (a PostgreSQL backend will bring its driver, which a
// SQLite user must not pay for). Everything else sees only the interfaces.
import { join, resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import type { StoreConfig } from '../config/schema.ts';
import { isStoreKind, unknownStoreKindMessage, type StoreKind } from '../config/store-kinds.ts';
import { loadKey, type SecretBox } from './encryption.ts';
import type { ProxyClientStore } from './proxy-client-store.ts';
import type { TokenStore } from './token-store.ts';

export interface Stores {
  tokens: TokenStore;
  proxyClients: ProxyClientStore;
  /** Closes both stores (once; later calls wait for the first). */
  close(): Promise<void>;
}

export interface OpenStoresOptions {
  /** The key that seals the grants' secrets; default MAILBRIDGE_KEY, else the key file `<dataDir>/key`. */
  key?: SecretBox;
  /** Where MAILBRIDGE_KEY is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** How one kind of store is opened; `settings` is that kind's part of the configuration. */
interface StoreBackend<Settings> {
  openTokens(loaded: LoadedConfig, settings: Settings, key: SecretBox): Promise<TokenStore>;
  openProxyClients(loaded: LoadedConfig, settings: Settings): Promise<ProxyClientStore>;
}

type Backends = { [K in StoreKind]: StoreBackend<Extract<StoreConfig, { kind: K }>> };

/** The database file of a SQLite store: `path` from the configuration's folder, else `<dataDir>/tokens.db` (as always). */
export function sqliteStoreFile(loaded: LoadedConfig, settings: { path?: string | undefined } = loaded.config.store): string {
  return settings.path ? resolve(loaded.baseDir, settings.path) : join(loaded.dataDir, 'tokens.db');
}

const BACKENDS: Backends = {
  // Grants and proxy clients in one file, each store on connections of its own.
  sqlite: {
    async openTokens(loaded, settings, key) {
      const { SqliteTokenStore } = await import('./sqlite-token-store.ts');
      return SqliteTokenStore.open(sqliteStoreFile(loaded, settings), key);
    },
    async openProxyClients(loaded, settings) {
      const { SqliteProxyClientStore } = await import('./sqlite-proxy-client-store.ts');
      return SqliteProxyClientStore.open(sqliteStoreFile(loaded, settings));
    },
  },
};

/** The configured store's settings and backend; a kind this version lacks is a configuration error. */
async function backendOf(loaded: LoadedConfig): Promise<{ settings: StoreConfig; backend: StoreBackend<StoreConfig> }> {
  // Defaulted here too: a configuration built in code (not by loadConfig) may leave `store` out.
  const configured: StoreConfig | undefined = loaded.config.store;
  const settings = configured ?? { kind: 'sqlite' };
  if (!isStoreKind(settings.kind)) {
    // Only on this path: the configuration's module brings the schema (zod) with it.
    const { ConfigError } = await import('../config/load.ts');
    throw new ConfigError(loaded.file, [{ path: 'store.kind', message: unknownStoreKindMessage(settings.kind) }]);
  }
  return { settings, backend: BACKENDS[settings.kind] };
}

/** The key, the token store and the proxy client store of the configured kind. */
export async function openStores(loaded: LoadedConfig, options: OpenStoresOptions = {}): Promise<Stores> {
  const { settings, backend } = await backendOf(loaded);
  const key = options.key ?? (await loadKey(join(loaded.dataDir, 'key'), options.env));
  const tokens = await backend.openTokens(loaded, settings, key);
  let proxyClients: ProxyClientStore;
  try {
    proxyClients = await backend.openProxyClients(loaded, settings);
  } catch (err) {
    await tokens.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    tokens,
    proxyClients,
    close: () => (closing ??= Promise.all([proxyClients.close(), tokens.close()]).then(() => undefined)),
  };
}

/**
 * Only the proxy client store: it holds password hashes, never anything sealed, so the commands
 * that manage the proxy's clients neither need the key nor create a key file.
 */
export async function openProxyClientStore(loaded: LoadedConfig): Promise<ProxyClientStore> {
  const { settings, backend } = await backendOf(loaded);
  return backend.openProxyClients(loaded, settings);
}
