// The one place that builds stores from the configuration: the key that seals the grants'
// secrets, then the token store and the proxy client store of the configured kind. Each kind is a
// backend below, loaded only when configured (a PostgreSQL backend will bring its driver, which a
// SQLite user must not pay for). Everything else sees only the interfaces.
import { join, resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import type { StoreConfig } from '../config/schema.ts';
import { isStoreKind, unknownStoreKindMessage, type StoreKind } from '../config/store-kinds.ts';
import { loadKey, type SecretBox } from './encryption.ts';
import type { NewProxyClient, ProxyClientRecord, ProxyClientStore } from './proxy-client-store.ts';
import type { TokenStore } from './token-store.ts';

export interface Stores {
  tokens: TokenStore;
  /** Opened on first use: only the proxy's commands need it, and every `mailbridge token` would pay for opening it. */
  proxyClients: ProxyClientStore;
  /** The proxy client store, opened now if it is not yet, so that a problem with it shows now (`proxy run` at start-up). */
  openProxyClients(): Promise<ProxyClientStore>;
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
  /** Refuses a store that shows signs of earlier data now gone (issue 12 point 23); what opening it needs to know. */
  inspect(loaded: LoadedConfig, settings: Settings): Promise<StoreRemains>;
  openTokens(loaded: LoadedConfig, settings: Settings, key: SecretBox): Promise<TokenStore>;
  openProxyClients(loaded: LoadedConfig, settings: Settings): Promise<ProxyClientStore>;
}

/** What a backend found before opening: why no new key may be made, and how to mark the store as made. */
interface StoreRemains {
  whyNoNewKey(): Error | undefined;
  mark(): void;
}

/** The key file of a data folder (used unless MAILBRIDGE_KEY or the caller gives the key). */
function keyFileOf(loaded: LoadedConfig): string {
  return join(loaded.dataDir, 'key');
}

type Backends = { [K in StoreKind]: StoreBackend<Extract<StoreConfig, { kind: K }>> };

/** The database file of a SQLite store: `path` from the configuration's folder, else `<dataDir>/tokens.db` (as always). */
export function sqliteStoreFile(loaded: LoadedConfig, settings: { path?: string | undefined } = loaded.config.store): string {
  return settings.path ? resolve(loaded.baseDir, settings.path) : join(loaded.dataDir, 'tokens.db');
}

const BACKENDS: Backends = {
  // Grants and proxy clients in one file, each store on connections of its own.
  sqlite: {
    async inspect(loaded, settings) {
      const { inspectSqliteStore } = await import('./sqlite-store-remains.ts');
      return inspectSqliteStore(sqliteStoreFile(loaded, settings), loaded.dataDir, keyFileOf(loaded));
    },
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

async function closedStore(): Promise<never> {
  const { ProxyClientStoreError } = await import('./proxy-client-store.ts');
  throw new ProxyClientStoreError('store_unavailable', 'the proxy client store is closed');
}

/** A proxy client store that opens the real one when first used (or asked to), and never after close(). */
class ProxyClientsOnFirstUse implements ProxyClientStore {
  readonly #open: () => Promise<ProxyClientStore>;
  #store: Promise<ProxyClientStore> | undefined;
  #closed = false;

  constructor(open: () => Promise<ProxyClientStore>) {
    this.#open = open;
  }

  opened(): Promise<ProxyClientStore> {
    this.#store ??= this.#closed ? closedStore() : this.#open();
    return this.#store;
  }

  async add(client: NewProxyClient): Promise<ProxyClientRecord> {
    return (await this.opened()).add(client);
  }
  async getById(id: string): Promise<ProxyClientRecord | undefined> {
    return (await this.opened()).getById(id);
  }
  async getByName(name: string): Promise<ProxyClientRecord | undefined> {
    return (await this.opened()).getByName(name);
  }
  async list(): Promise<ProxyClientRecord[]> {
    return (await this.opened()).list();
  }
  async revoke(name: string, when?: number): Promise<ProxyClientRecord | undefined> {
    return (await this.opened()).revoke(name, when);
  }
  async touch(id: string, when: number): Promise<void> {
    return (await this.opened()).touch(id, when);
  }
  async close(): Promise<void> {
    this.#closed = true;
    // A store that failed to open has nothing to close.
    const store = await this.#store?.catch(() => undefined);
    await store?.close();
  }
}

/** The key and the token store of the configured kind, and its proxy client store (opened on first use). */
export async function openStores(loaded: LoadedConfig, options: OpenStoresOptions = {}): Promise<Stores> {
  const { settings, backend } = await backendOf(loaded);
  const remains = await backend.inspect(loaded, settings);
  const key = options.key ?? (await loadKey(keyFileOf(loaded), options.env, { whyNoNewKey: () => remains.whyNoNewKey() }));
  const tokens = await backend.openTokens(loaded, settings, key);
  remains.mark();
  const proxyClients = new ProxyClientsOnFirstUse(() => backend.openProxyClients(loaded, settings));
  let closing: Promise<void> | undefined;
  return {
    tokens,
    proxyClients,
    openProxyClients: () => proxyClients.opened(),
    close: () => (closing ??= Promise.all([proxyClients.close(), tokens.close()]).then(() => undefined)),
  };
}

/**
 * Only the proxy client store: it holds password hashes, never anything sealed, so the commands
 * that manage the proxy's clients neither need the key nor create a key file.
 */
export async function openProxyClientStore(loaded: LoadedConfig): Promise<ProxyClientStore> {
  const { settings, backend } = await backendOf(loaded);
  const remains = await backend.inspect(loaded, settings);
  const store = await backend.openProxyClients(loaded, settings);
  remains.mark();
  return store;
}
