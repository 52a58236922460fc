// Stores built from the configuration (src/store/open-stores.ts): without a `store` section the
// files are where they always were (<dataDir>/tokens.db and <dataDir>/key), `path` moves the
// database, and a kind this version does not have is a configuration problem named by its path.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig, type LoadedConfig } from '../../src/config/load.ts';
import { loadKey, SecretBox } from '../../src/store/encryption.ts';
import { openProxyClientStore, openStores, sqliteStoreFile } from '../../src/store/open-stores.ts';
import { SqliteProxyClientStore } from '../../src/store/sqlite-proxy-client-store.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import type { GrantMeta } from '../../src/store/token-store.ts';

const CLIENT = '4f2d8a1c-7b3e-4d9f-a6c5-1e8b2f7d3a90';

const meta: GrantMeta = {
  mailbox: 'alice@contoso.com',
  app: 'desktop',
  clientId: CLIENT,
  tenant: 'contoso.com',
  grant: 'authorization_code',
  status: 'ok',
  createdAt: 1,
  accessTokenExpiry: {},
};

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

describe('openStores: the stores the configuration names', () => {
  let dir: string;
  let count = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-open-stores-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A configuration file of its own folder, loaded as the commands load it (no environment overrides). */
  async function configure(extra: Record<string, unknown>): Promise<LoadedConfig> {
    const folder = join(dir, `c${++count}`);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(folder);
    const file = join(folder, 'config.json');
    await writeFile(file, JSON.stringify({ dataDir: 'data', apps: { desktop: { tenant: 'contoso.com', clientId: CLIENT } }, ...extra }));
    return loadConfig(file, {});
  }

  it('by default: SQLite in <dataDir>/tokens.db with the key in <dataDir>/key, as before there was a choice', async () => {
    const loaded = await configure({});
    assert.deepEqual(loaded.config.store, { kind: 'sqlite' });
    assert.equal(sqliteStoreFile(loaded), join(loaded.dataDir, 'tokens.db'));
    const stores = await openStores(loaded, { env: {} });
    await stores.tokens.put(meta, { accessTokens: {} }, 0);
    await stores.proxyClients.add({ id: 'abcdefgh', name: 'printer', mailboxes: ['alice@contoso.com'], passwordHash: 'h', createdAt: 1 });
    await stores.close();
    await stores.close();
    assert.equal((await stat(join(loaded.dataDir, 'key'))).mode & 0o777, 0o600);

    // What the stores wrote is what the SQLite stores read from the old places.
    const tokens = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
    const clients = await SqliteProxyClientStore.open(join(loaded.dataDir, 'tokens.db'));
    assert.deepEqual((await tokens.get('alice@contoso.com'))?.meta, meta);
    assert.deepEqual(
      (await clients.list()).map((c) => c.name),
      ['printer'],
    );
    await tokens.close();
    await clients.close();
  });

  it('store.path moves the database (relative to the configuration file); the key stays in dataDir', async () => {
    const loaded = await configure({ store: { kind: 'sqlite', path: 'db/grants.db' } });
    const file = join(loaded.baseDir, 'db', 'grants.db');
    assert.equal(sqliteStoreFile(loaded), file);
    const stores = await openStores(loaded, { env: {} });
    await stores.tokens.put(meta, { accessTokens: {} }, 0);
    await stores.close();
    assert.ok(await exists(file));
    assert.ok(await exists(join(loaded.dataDir, 'key')));
    assert.equal(await exists(join(loaded.dataDir, 'tokens.db')), false);

    const absolute = join(dir, 'elsewhere', 'tokens.sqlite');
    const moved = await configure({ store: { path: absolute } });
    assert.deepEqual(moved.config.store, { kind: 'sqlite', path: absolute }, 'kind defaults to sqlite');
    const other = await openStores(moved, { env: {} });
    await other.close();
    assert.ok(await exists(absolute));
  });

  it('takes the key from MAILBRIDGE_KEY or from the caller, and then writes no key file', async () => {
    const key = randomBytes(32);
    const loaded = await configure({});
    const stores = await openStores(loaded, { env: { MAILBRIDGE_KEY: key.toString('base64') } });
    await stores.tokens.put(meta, { accessTokens: { imap: { token: 'x', expiresOnMs: 1 } } }, 0);
    await stores.close();
    const given = await openStores(loaded, { key: new SecretBox(key, 'the caller') });
    assert.deepEqual((await given.tokens.get('alice@contoso.com'))?.secrets, { accessTokens: { imap: { token: 'x', expiresOnMs: 1 } } });
    await given.close();
    assert.equal(await exists(join(loaded.dataDir, 'key')), false);
  });

  it('the proxy client store alone needs no key and makes no key file', async () => {
    const loaded = await configure({});
    const clients = await openProxyClientStore(loaded);
    assert.deepEqual(await clients.list(), []);
    await clients.close();
    assert.ok(await exists(join(loaded.dataDir, 'tokens.db')));
    assert.equal(await exists(join(loaded.dataDir, 'key')), false);
  });

  it('a kind this version does not have is a configuration problem at store.kind, and nothing is created', async () => {
    await assert.rejects(configure({ store: { kind: 'postgres', url: 'postgres://db.internal/mailbridge' } }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, [
        { path: 'store.kind', message: '"postgres" is not a store this version of mailbridge has; the built-in kinds are "sqlite"' },
      ]);
      return true;
    });
    await assert.rejects(
      configure({ store: { kind: 7 } }),
      (err: ConfigError) => err.problems[0]?.path === 'store.kind' && /give the kind of store/.test(err.message),
    );
    await assert.rejects(configure({ store: 'sqlite' }), (err: ConfigError) => err.problems[0]?.path === 'store');

    // A configuration built in code rather than read from a file gets the same answer.
    const loaded = await configure({});
    const built = { ...loaded, config: { ...loaded.config, store: { kind: 'postgres' } } } as unknown as LoadedConfig;
    await assert.rejects(openStores(built, { env: {} }), (err: unknown) => err instanceof ConfigError && err.problems[0]?.path === 'store.kind');
    await assert.rejects(openProxyClientStore(built), ConfigError);
    assert.equal(await exists(loaded.dataDir), false);
  });
});
