// What the SQLite token store and the key do on disk: secrets never readable in the files, the key
// file private, damaged or moved rows reported, a bad key file named. What every token store
// promises (round trips, compare-and-set, leases, the wrong key) is in contract.ts, run for SQLite
// by sqlite-contract.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { loadKey, SecretBox } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { TokenStoreError, type GrantMeta, type GrantSecrets } from '../../src/store/token-store.ts';

const REFRESH = `1.A${randomBytes(300).toString('base64url')}`;
const ACCESS = `eyJ0eXAiOiJKV1Qi.${randomBytes(200).toString('base64url')}.sig`;

function meta(mailbox = 'Alice@Contoso.com'): GrantMeta {
  return {
    mailbox,
    app: 'desktop',
    clientId: '4f2d8a1c-7b3e-4d9f-a6c5-1e8b2f7d3a90',
    tenant: 'contoso.com',
    grant: 'authorization_code',
    status: 'ok',
    createdAt: 1,
    accessTokenExpiry: { imap: 2 },
  };
}

const secrets: GrantSecrets = {
  msalCache: JSON.stringify({ RefreshToken: { x: { secret: REFRESH } } }),
  accessTokens: { imap: { token: ACCESS, expiresOnMs: 2 } },
};

describe('SQLite token store', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-store-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('keeps a grant, with its secrets encrypted on disk and the key file private', async () => {
    const box = await loadKey(join(dir, 'keys', 'key'), {});
    assert.equal((await stat(join(dir, 'keys', 'key'))).mode & 0o777, 0o600);
    const store = await SqliteTokenStore.open(join(dir, 'tokens.db'), box);
    assert.equal(await store.put(meta(), secrets, 0), 1);
    assert.deepEqual((await store.get('alice@contoso.com'))?.secrets, secrets);
    await store.close();
    // Every file the store wrote (database, WAL, key folder neighbours) is free of the secrets.
    for (const name of await readdir(dir)) {
      if (name === 'keys') continue;
      const bytes = await readFile(join(dir, name));
      for (const s of [REFRESH, ACCESS, REFRESH.slice(10, 60)]) assert.ok(!bytes.includes(s), `${name} holds a secret in clear`);
    }
  });

  it('a damaged record, or secrets copied onto another record, are reported, not decrypted', async () => {
    const file = join(dir, 'damaged.db');
    const box = new SecretBox(randomBytes(32), 'test key');
    const store = await SqliteTokenStore.open(file, box);
    await store.put(meta('alice@contoso.com'), secrets, 0);
    await store.put(meta('bob@contoso.com'), secrets, 0);
    const db = new DatabaseSync(file);
    db.prepare("UPDATE grants SET secrets = (SELECT secrets FROM grants WHERE mailbox = 'alice@contoso.com') WHERE mailbox = 'bob@contoso.com'").run();
    await assert.rejects(store.get('bob@contoso.com'), (err: TokenStoreError) => err.code === 'cannot_decrypt');
    db.prepare("UPDATE grants SET secrets = 'garbage' WHERE mailbox = 'alice@contoso.com'").run();
    await assert.rejects(store.get('alice@contoso.com'), /the stored secrets of alice@contoso\.com are damaged .* sign in again/);
    await store.close();
  });

  it('an unreadable key file is named, and no new key is made in its place', async () => {
    const { mkdir } = await import('node:fs/promises');
    const keyPath = join(dir, 'not-a-file');
    await mkdir(keyPath);
    await assert.rejects(
      loadKey(keyPath, {}),
      (err: TokenStoreError) => err.code === 'key_unreadable' && err.message.startsWith(`cannot read the key file ${keyPath}`),
    );
    assert.ok((await stat(keyPath)).isDirectory(), 'left as it was');
  });

  it('refuses a key of the wrong size with a message naming where it came from', () => {
    assert.throws(() => new SecretBox(Buffer.alloc(16), 'MAILBRIDGE_KEY'), /MAILBRIDGE_KEY must hold 32 bytes/);
  });
});
