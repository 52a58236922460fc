// A damaged store must never look like a new one (issue 12 point 23): an emptied tokens.db, a
// deleted key file or a key file others can read is refused with exit 6 and what is wrong, through
// the real command line, and nothing is re-created over the remains. A store that never existed
// still starts fresh.
import assert from 'node:assert/strict';
import { access, chmod, mkdir, mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { openStores } from '../../src/store/open-stores.ts';
import type { GrantMeta } from '../../src/store/token-store.ts';
import { runCli } from '../helpers/cli.ts';

const CLIENT = '4f2d8a1c-7b3e-4d9f-a6c5-1e8b2f7d3a90';
const MAILBOX = 'support@contoso.com';

const meta: GrantMeta = {
  mailbox: MAILBOX,
  app: 'service',
  clientId: CLIENT,
  tenant: 'contoso.com',
  grant: 'client_credentials',
  status: 'ok',
  createdAt: 1,
  accessTokenExpiry: { imap: 4_102_444_800_000 },
};

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** The environment of a person without MAILBRIDGE_KEY: the key comes from the key file. */
function env(): NodeJS.ProcessEnv {
  const copy = { ...process.env };
  delete copy.MAILBRIDGE_KEY;
  return copy;
}

describe('a damaged store is refused, never taken for a new one (exit 6)', () => {
  let dir: string;
  let count = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-damaged-store-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A configuration with one client-credentials mailbox whose grant (with a cached token) is in the store, as the CLI made it. */
  async function storeWithGrant(): Promise<{ file: string; dataDir: string; db: string; key: string }> {
    const folder = join(dir, `c${++count}`);
    await mkdir(folder);
    const file = join(folder, 'config.json');
    await writeFile(
      file,
      JSON.stringify({
        dataDir: 'data',
        apps: { service: { tenant: 'contoso.com', clientId: CLIENT, clientSecret: 'a-secret-that-is-not-used-here' } },
        mailboxes: { [MAILBOX]: { app: 'service', grant: 'client_credentials', protocols: ['imap'] } },
      }),
    );
    const loaded = await loadConfig(file, {});
    const stores = await openStores(loaded, { env: {} });
    await stores.tokens.put(meta, { accessTokens: { imap: { token: 'stored-access-token', expiresOnMs: 4_102_444_800_000 } } }, 0);
    await stores.proxyClients.add({ id: 'abcdefgh', name: 'printer', mailboxes: [MAILBOX], passwordHash: 'h', createdAt: 1 });
    await stores.close();
    const accounts = await runCli(['accounts', '--config', file], { env: env() });
    assert.equal(accounts.code, 0, accounts.stderr);
    assert.match(accounts.stdout, /support@contoso\.com/);
    return { file, dataDir: loaded.dataDir, db: join(loaded.dataDir, 'tokens.db'), key: join(loaded.dataDir, 'key') };
  }

  it('a tokens.db emptied to 0 bytes beside its key file: exit 6, naming the empty file, and it stays empty', async () => {
    const s = await storeWithGrant();
    await truncate(s.db, 0);
    await rm(`${s.db}-wal`, { force: true });
    await rm(`${s.db}-shm`, { force: true });
    for (const args of [['accounts'], ['token', MAILBOX]]) {
      const run = await runCli([...args, '--config', s.file], { env: env() });
      assert.equal(run.code, 6, `${args[0]}: ${run.stderr}`);
      assert.match(run.stderr, /tokens\.db is empty/);
      assert.match(run.stderr, /key file/);
      assert.doesNotMatch(run.stderr, /login/);
      assert.equal(run.stdout, '');
    }
    assert.equal((await stat(s.db)).size, 0, 'nothing was written over the remains');
  });

  it('a deleted tokens.db where the data folder says a store was made: exit 6, and no new file', async () => {
    const s = await storeWithGrant();
    await rm(s.db);
    await rm(`${s.db}-wal`, { force: true });
    await rm(`${s.db}-shm`, { force: true });
    const run = await runCli(['accounts', '--config', s.file], { env: env() });
    assert.equal(run.code, 6, run.stderr);
    assert.match(run.stderr, /tokens\.db is missing/);
    assert.equal(await exists(s.db), false);
  });

  it('a deleted key file while sealed grants exist: exit 6 naming the key file, and no new key is made', async () => {
    const s = await storeWithGrant();
    await rm(s.key);
    for (const args of [['accounts'], ['token', MAILBOX]]) {
      const run = await runCli([...args, '--config', s.file], { env: env() });
      assert.equal(run.code, 6, `${args[0]}: ${run.stderr}`);
      assert.match(run.stderr, /key file .*key is missing/);
      assert.match(run.stderr, /1 grant/);
      assert.doesNotMatch(run.stderr, /Nothing was changed/);
      assert.equal(run.stdout, '');
      assert.equal(await exists(s.key), false, `${args[0]} made no new key`);
    }
  });

  it('a key file that group or others can read is refused with the chmod to run', async () => {
    const s = await storeWithGrant();
    await chmod(s.key, 0o644);
    const run = await runCli(['token', MAILBOX, '--config', s.file], { env: env() });
    assert.equal(run.code, 6, run.stderr);
    assert.ok(run.stderr.includes(`chmod 600 ${s.key}`), run.stderr);
    assert.equal(run.stdout, '');
    await chmod(s.key, 0o600);
    const fixed = await runCli(['token', MAILBOX, '--config', s.file], { env: env() });
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.equal(fixed.stdout.trim(), 'stored-access-token');
  });

  it('a data folder that never held a store still starts fresh (exit 0), and is marked as holding one', async () => {
    const folder = join(dir, `c${++count}`);
    await mkdir(folder);
    const file = join(folder, 'config.json');
    await writeFile(file, JSON.stringify({ dataDir: 'data', apps: { service: { tenant: 'contoso.com', clientId: CLIENT, clientSecret: 's' } } }));
    const run = await runCli(['accounts', '--config', file], { env: env() });
    assert.equal(run.code, 0, run.stderr);
    const again = await runCli(['accounts', '--config', file], { env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.ok(await exists(join(folder, 'data', 'store.json')), 'the marker of a store made here');
  });
});
