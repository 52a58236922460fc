// What every store backend must do, as one suite per interface: SQLite runs it in
// sqlite-contract.test.ts, and a PostgreSQL store will run the same suite. Only what the
// interfaces (src/store/token-store.ts, src/store/proxy-client-store.ts) promise is checked here;
// what a backend does on disk is checked in that backend's own tests.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { SecretBox } from '../../src/store/encryption.ts';
import { ProxyClientStoreError, type NewProxyClient, type ProxyClientStore } from '../../src/store/proxy-client-store.ts';
import { TokenStoreError, type GrantMeta, type GrantSecrets, type TokenStore } from '../../src/store/token-store.ts';

/**
 * Opens an instance of the store on the database named `database`, created empty on first use.
 * Each call is another instance with connections of its own, as another process would have.
 */
export type OpenTokenStore = (database: string, key: SecretBox) => Promise<TokenStore>;
export type OpenProxyClientStore = (database: string) => Promise<ProxyClientStore>;

let databases = 0;
/** A database name no other test uses. */
const freshDatabase = () => `contract_${process.pid}_${++databases}`;

/** Opens through `open` and closes whatever a test opened once it ends. */
function opener<A extends unknown[], S extends { close(): Promise<void> }>(open: (...args: A) => Promise<S>) {
  let opened: S[] = [];
  afterEach(async () => {
    const closing = opened;
    opened = [];
    for (const store of closing) await store.close();
  });
  return async (...args: A): Promise<S> => {
    const store = await open(...args);
    opened.push(store);
    return store;
  };
}

function meta(mailbox: string, over: Partial<GrantMeta> = {}): GrantMeta {
  return {
    mailbox,
    app: 'desktop',
    clientId: '4f2d8a1c-7b3e-4d9f-a6c5-1e8b2f7d3a90',
    tenant: 'contoso.com',
    grant: 'authorization_code',
    status: 'ok',
    createdAt: 1,
    accessTokenExpiry: { imap: 2 },
    ...over,
  };
}

function secrets(refresh: string): GrantSecrets {
  return {
    msalCache: JSON.stringify({ RefreshToken: { x: { secret: refresh } } }),
    accessTokens: { imap: { token: `eyJ0eXAiOiJKV1Qi.${randomBytes(32).toString('base64url')}.sig`, expiresOnMs: 2 } },
  };
}

const newKey = (source = 'test key') => new SecretBox(randomBytes(32), source);

/** Until Date.now() has passed `ms`: the stores time leases by the wall clock, so this only ever waits longer than needed. */
async function untilAfter(ms: number): Promise<void> {
  while (Date.now() <= ms) await new Promise((resolve) => setTimeout(resolve, 2));
}

export function tokenStoreContract(name: string, openStore: OpenTokenStore): void {
  describe(`${name}: the TokenStore contract`, () => {
    const open = opener(openStore);

    it('keeps a grant: what is put is what is read, under any spelling of the address', async () => {
      const store = await open(freshDatabase(), newKey());
      const written = secrets('1.A-first');
      assert.equal(await store.get('alice@contoso.com'), undefined);
      assert.equal(await store.version('alice@contoso.com'), undefined);
      assert.equal(await store.put(meta('Alice@Contoso.com'), written, 0), 1);
      for (const spelling of ['alice@contoso.com', 'ALICE@CONTOSO.COM', ' Alice@Contoso.com ']) {
        assert.deepEqual(await store.get(spelling), { meta: meta('Alice@Contoso.com'), secrets: written, version: 1 }, spelling);
        assert.equal(await store.version(spelling), 1);
      }
      assert.equal(await store.get('bob@contoso.com'), undefined);
    });

    it('lists the metadata of every grant', async () => {
      const store = await open(freshDatabase(), newKey());
      assert.deepEqual(await store.listMeta(), []);
      const grants = [
        meta('carol@contoso.com', { grant: 'client_credentials' }),
        meta('alice@contoso.com', { status: 'needs_sign_in', reason: 'AADSTS70008', aadsts: 70008 }),
        meta('bob@contoso.com', { account: { homeAccountId: 'h', username: 'bob@contoso.com', tenantId: 't' } }),
      ];
      for (const m of grants) assert.equal(await store.put(m, secrets(m.mailbox), 0), 1);
      const byMailbox = (list: GrantMeta[]) => [...list].sort((a, b) => a.mailbox.localeCompare(b.mailbox));
      assert.deepEqual(byMailbox(await store.listMeta()), byMailbox(grants));
    });

    it('refuses a write naming a version that is not the current one', async () => {
      const store = await open(freshDatabase(), newKey());
      assert.equal(await store.put(meta('alice@contoso.com'), secrets('first'), 0), 1);
      assert.equal(await store.put(meta('alice@contoso.com'), secrets('second first'), 0), undefined, 'a second first write loses');
      const newer = secrets('newer');
      assert.equal(await store.put(meta('alice@contoso.com', { status: 'expiring' }), newer, 1), 2);
      assert.equal(await store.put(meta('alice@contoso.com'), secrets('older'), 1), undefined, 'a writer that read version 1 loses');
      assert.equal(await store.put(meta('alice@contoso.com'), secrets('future'), 3), undefined, 'a version not reached yet loses');
      assert.equal(await store.put(meta('bob@contoso.com'), secrets('none'), 1), undefined, 'no record: only version 0 writes');
      assert.deepEqual(await store.get('alice@contoso.com'), { meta: meta('alice@contoso.com', { status: 'expiring' }), secrets: newer, version: 2 });
      assert.equal(await store.get('bob@contoso.com'), undefined);
    });

    it('two instances writing the same grant at once lose no write: exactly one wins each race', async () => {
      const database = freshDatabase();
      const key = newKey();
      const a = await open(database, key);
      const b = await open(database, key);
      const empty: GrantSecrets = { msalCache: '[]', accessTokens: {} };
      const [first, second] = await Promise.all([a.put(meta('alice@contoso.com'), empty, 0), b.put(meta('alice@contoso.com'), empty, 0)]);
      assert.deepEqual([first, second].sort(), [1, undefined]);
      // Both read the same version, both write: one write wins, the other is refused, every round.
      for (let round = 0; round < 5; round++) {
        const [seenByA, seenByB] = [(await a.get('alice@contoso.com'))!, (await b.get('alice@contoso.com'))!];
        assert.equal(seenByA.version, seenByB.version);
        const outcomes = await Promise.all([
          a.put(seenByA.meta, { ...seenByA.secrets, msalCache: '["a"]' }, seenByA.version),
          b.put(seenByB.meta, { ...seenByB.secrets, msalCache: '["b"]' }, seenByB.version),
        ]);
        assert.equal(outcomes.filter((v) => v === seenByA.version + 1).length, 1, `round ${round}: ${String(outcomes)}`);
        assert.equal(outcomes.filter((v) => v === undefined).length, 1);
        const winner = outcomes[0] === undefined ? '["b"]' : '["a"]';
        assert.equal((await b.get('alice@contoso.com'))!.secrets.msalCache, winner);
      }
      await a.put(meta('alice@contoso.com'), empty, 6);
      // Read, change, write back, and on a conflict read again: a rotated refresh token must never be lost.
      const increments = 25;
      const writer = async (store: TokenStore, who: string) => {
        let conflicts = 0;
        for (let done = 0; done < increments;) {
          const record = (await store.get('alice@contoso.com'))!;
          const seen = JSON.parse(record.secrets.msalCache!) as string[];
          const next = { ...record.secrets, msalCache: JSON.stringify([...seen, `${who}${done}`]) };
          if ((await store.put(record.meta, next, record.version)) === undefined) conflicts++;
          else done++;
        }
        return conflicts;
      };
      await Promise.all([writer(a, 'a'), writer(b, 'b')]);
      const final = (await a.get('alice@contoso.com'))!;
      assert.equal(final.version, 7 + 2 * increments);
      const kept = JSON.parse(final.secrets.msalCache!) as string[];
      assert.equal(kept.length, 2 * increments, 'every successful write is in the final record');
      assert.equal(new Set(kept).size, 2 * increments);
      assert.deepEqual(await b.get('alice@contoso.com'), final, 'both instances read the same record');
    });

    it('deletes a grant; a deleted grant can be stored anew from version 0', async () => {
      const store = await open(freshDatabase(), newKey());
      await store.put(meta('alice@contoso.com'), secrets('a'), 0);
      await store.put(meta('bob@contoso.com'), secrets('b'), 0);
      assert.equal(await store.delete('ALICE@contoso.com'), true);
      assert.equal(await store.delete('alice@contoso.com'), false, 'nothing left to delete');
      assert.equal(await store.delete('nobody@contoso.com'), false);
      assert.equal(await store.get('alice@contoso.com'), undefined);
      assert.equal(await store.version('alice@contoso.com'), undefined);
      assert.deepEqual(
        (await store.listMeta()).map((m) => m.mailbox),
        ['bob@contoso.com'],
      );
      assert.equal(await store.put(meta('alice@contoso.com'), secrets('again'), 0), 1);
    });

    it('gives a lease to one owner at a time, across instances, until it is released or expires', async () => {
      const database = freshDatabase();
      const key = newKey();
      const a = await open(database, key);
      const b = await open(database, key);
      assert.equal(await a.tryLease('refresh:alice', 'process-a', 60_000), true);
      assert.equal(await b.tryLease('refresh:alice', 'process-b', 60_000), false);
      assert.equal(await a.tryLease('refresh:alice', 'process-a', 60_000), true, 'the owner may renew its lease');
      assert.equal(await b.tryLease('refresh:bob', 'process-b', 60_000), true, 'leases are per name');
      await b.releaseLease('refresh:alice', 'process-b');
      assert.equal(await b.tryLease('refresh:alice', 'process-b', 60_000), false, 'only the owner releases a lease');
      await a.releaseLease('refresh:alice', 'process-a');
      const taken = Date.now();
      assert.equal(await b.tryLease('refresh:alice', 'process-b', 1), true, 'a released lease can be taken');
      await untilAfter(taken + 1);
      assert.equal(await a.tryLease('refresh:alice', 'process-a', 60_000), true, 'an expired lease can be taken over');
      assert.equal(await b.tryLease('refresh:alice', 'process-b', 60_000), false);
    });

    it('with the wrong key: a read says so and names where the key came from; metadata still lists; nothing changes', async () => {
      const database = freshDatabase();
      const right = await open(database, newKey());
      const written = secrets('1.A-rotated');
      await right.put(meta('alice@contoso.com'), written, 0);
      const wrong = await open(database, newKey('MAILBRIDGE_KEY'));
      await assert.rejects(wrong.get('alice@contoso.com'), (err: unknown) => {
        assert.ok(err instanceof TokenStoreError);
        assert.equal(err.code, 'cannot_decrypt');
        assert.match(err.message, /alice@contoso\.com.*MAILBRIDGE_KEY.*Nothing was changed/);
        assert.ok(!err.message.includes('1.A-rotated'));
        return true;
      });
      assert.equal(await wrong.version('alice@contoso.com'), 1);
      assert.deepEqual(
        (await wrong.listMeta()).map((m) => m.mailbox),
        ['alice@contoso.com'],
      );
      assert.deepEqual(await right.get('alice@contoso.com'), { meta: meta('alice@contoso.com'), secrets: written, version: 1 });
    });
  });
}

function client(id: string, name: string, over: Partial<NewProxyClient> = {}): NewProxyClient {
  return { id, name, mailboxes: ['alice@contoso.com'], passwordHash: `$scrypt$ln=15,r=8,p=1$salt-of-${id}$hash`, createdAt: 1_000, ...over };
}

const storeError = (code: ProxyClientStoreError['code']) => (err: unknown) => err instanceof ProxyClientStoreError && err.code === code;

export function proxyClientStoreContract(name: string, openStore: OpenProxyClientStore): void {
  describe(`${name}: the ProxyClientStore contract`, () => {
    const open = opener(openStore);

    it('keeps a client: found by id and by name in any case, mailboxes lower-cased once each', async () => {
      const store = await open(freshDatabase());
      const added = await store.add(client('abcdefgh', ' Printer ', { mailboxes: ['Alice@Contoso.com', 'alice@contoso.com', 'bob@contoso.com'] }));
      assert.deepEqual(added, {
        id: 'abcdefgh',
        name: 'Printer',
        mailboxes: ['alice@contoso.com', 'bob@contoso.com'],
        passwordHash: '$scrypt$ln=15,r=8,p=1$salt-of-abcdefgh$hash',
        createdAt: 1_000,
        revokedAt: null,
        lastUsedAt: null,
      });
      assert.deepEqual(await store.getById('abcdefgh'), added);
      assert.deepEqual(await store.getByName('PRINTER '), added);
      assert.equal(await store.getById('zzzzzzzz'), undefined);
      assert.equal(await store.getByName('scanner'), undefined);
    });

    it('refuses a taken name, a taken id and a malformed record', async () => {
      const store = await open(freshDatabase());
      await store.add(client('abcdefgh', 'printer'));
      await assert.rejects(store.add(client('bcdefghi', 'PRINTER')), storeError('name_taken'));
      await assert.rejects(store.add(client('abcdefgh', 'other')), storeError('id_taken'));
      await assert.rejects(store.add(client('cdefghij', 'bad\nname')), storeError('invalid_record'));
      await assert.rejects(store.add(client('cdefghij', '-starts-with-a-dash')), storeError('invalid_record'));
      await assert.rejects(store.add(client('NOT-AN-ID', 'fine')), storeError('invalid_record'));
      await assert.rejects(store.add(client('cdefghij', 'fine', { mailboxes: [] })), storeError('invalid_record'));
      assert.deepEqual(
        (await store.list()).map((c) => c.id),
        ['abcdefgh'],
      );
    });

    it('records the last login, never moving it backwards', async () => {
      const store = await open(freshDatabase());
      await store.add(client('abcdefgh', 'printer'));
      await store.touch('abcdefgh', 5_000);
      await store.touch('abcdefgh', 4_000);
      assert.equal((await store.getById('abcdefgh'))?.lastUsedAt, 5_000);
      await store.touch('abcdefgh', 6_000);
      assert.equal((await store.getById('abcdefgh'))?.lastUsedAt, 6_000);
      await store.touch('zzzzzzzz', 7_000);
      assert.equal(await store.getById('zzzzzzzz'), undefined, 'touching an unknown id creates nothing');
    });

    it('revokes by name, keeps the row, frees the name; getByName prefers the live client, else the latest revoked', async () => {
      const store = await open(freshDatabase());
      const first = await store.add(client('abcdefgh', 'printer', { createdAt: 1_000 }));
      const revoked = await store.revoke('PRINTER', 6_000);
      assert.deepEqual(revoked, { ...first, revokedAt: 6_000 });
      assert.equal(await store.revoke('printer', 7_000), undefined, 'nothing left to revoke');
      assert.equal(await store.revoke('nobody'), undefined);
      assert.deepEqual(await store.getById('abcdefgh'), revoked, 'the row stays for the record');
      assert.deepEqual(await store.getByName('printer'), revoked);

      const second = await store.add(client('bcdefghi', 'Printer', { createdAt: 2_000 }));
      assert.deepEqual(await store.getByName('printer'), second);
      await store.revoke('printer', 8_000);
      assert.equal((await store.getByName('printer'))?.id, 'bcdefghi', 'the most recently revoked');
    });

    it('lists every client, revoked ones included, oldest first', async () => {
      const store = await open(freshDatabase());
      assert.deepEqual(await store.list(), []);
      await store.add(client('cdefghij', 'scanner', { createdAt: 3_000 }));
      await store.add(client('abcdefgh', 'printer', { createdAt: 1_000 }));
      await store.add(client('bcdefghi', 'crm', { createdAt: 2_000, mailboxes: ['bob@contoso.com'] }));
      await store.revoke('crm', 4_000);
      assert.deepEqual(
        (await store.list()).map((c) => [c.id, c.name, c.mailboxes, c.revokedAt]),
        [
          ['abcdefgh', 'printer', ['alice@contoso.com'], null],
          ['bcdefghi', 'crm', ['bob@contoso.com'], 4_000],
          ['cdefghij', 'scanner', ['alice@contoso.com'], null],
        ],
      );
    });

    it('two instances see each other at once: a revocation, a login time, and only one of two adds of a name', async () => {
      const database = freshDatabase();
      const a = await open(database);
      const b = await open(database);
      await a.add(client('abcdefgh', 'printer'));
      assert.equal((await b.getById('abcdefgh'))?.revokedAt, null);
      await b.touch('abcdefgh', 5_000);
      await b.revoke('printer', 6_000);
      assert.deepEqual([(await a.getById('abcdefgh'))?.lastUsedAt, (await a.getById('abcdefgh'))?.revokedAt], [5_000, 6_000]);

      const outcomes = await Promise.allSettled([a.add(client('bcdefghi', 'scanner')), b.add(client('cdefghij', 'Scanner'))]);
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
      const refused = outcomes.find((o) => o.status === 'rejected');
      assert.ok(refused && storeError('name_taken')(refused.reason));
      assert.deepEqual(await a.list(), await b.list());
    });
  });
}
