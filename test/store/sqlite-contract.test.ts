// The store contracts (contract.ts) run against the SQLite stores: every database a file of its
// own in a temporary folder, grants and proxy clients in the same file as in real use.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { SqliteProxyClientStore } from '../../src/store/sqlite-proxy-client-store.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { proxyClientStoreContract, tokenStoreContract } from './contract.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mailbridge-store-contract-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const file = (database: string) => join(dir, `${database}.db`);

tokenStoreContract('SQLite', (database, key) => SqliteTokenStore.open(file(database), key));
proxyClientStoreContract('SQLite', (database) => SqliteProxyClientStore.open(file(database)));
