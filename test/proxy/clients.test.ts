// The legacy proxy's local clients: app passwords (shape, entropy, slow salted hashes), the
// SQLite store beside the token store, the authenticator's rules (mailboxes, revocation through
// the cache, per-address rate limits, one scrypt for many identical logins, the cache's speed),
// and the commands that make, list and revoke clients, run as real processes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { createProxyClient, generateAppPassword, hashAppPassword, parseAppPassword, verifyAppPassword } from '../../src/proxy/clients/app-password.ts';
import { ProxyAuthenticator, rateLimitKey, type AuthInput } from '../../src/proxy/clients/authenticator.ts';
import { SecretBox } from '../../src/store/encryption.ts';
import { SqliteProxyClientStore } from '../../src/store/sqlite-proxy-client-store.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';

const CLIENT = '8b3e1d7f-2c4a-4e6b-9f1d-5a7c3e9b2d41';
/** As written in the configuration: the authenticator hands back this spelling. */
const MAILBOXES = ['Alice@Contoso.com', 'bob@contoso.com', 'carol@contoso.com'];

/** Everything every CLI run printed, to check that no hash ever appears. */
const printed: string[] = [];

async function cli(args: string[]): Promise<CliRun> {
  const run = await runCli(args);
  printed.push(run.stdout, run.stderr);
  return run;
}

function input(password: string, over: Partial<AuthInput> = {}): AuthInput {
  return { username: 'alice@contoso.com', password, remoteAddress: '192.0.2.1', protocol: 'imap', ...over };
}

describe('proxy clients', () => {
  let dir: string;
  let configFile: string;
  let dbFile: string;
  let store: SqliteProxyClientStore;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-proxy-clients-'));
    configFile = join(dir, 'config.json');
    const mailboxes = Object.fromEntries(MAILBOXES.map((m) => [m, { app: 'desktop', grant: 'authorization_code', protocols: ['imap', 'pop', 'smtp'] }]));
    await writeFile(configFile, JSON.stringify({ dataDir: 'data', apps: { desktop: { tenant: 'contoso.com', clientId: CLIENT } }, mailboxes }));
    dbFile = join(dir, 'data', 'tokens.db');
    store = await SqliteProxyClientStore.open(dbFile);
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  function authenticator(over: { max?: number; windowSeconds?: number; now?: () => number } = {}): ProxyAuthenticator {
    return new ProxyAuthenticator({
      store,
      mailboxes: () => MAILBOXES,
      failedLogins: { max: over.max ?? 10, windowSeconds: over.windowSeconds ?? 300 },
      ...(over.now ? { now: over.now } : {}),
    });
  }

  describe('app passwords', () => {
    it('embed the client id, carry 130 random bits in lower-case base32 and fit legacy clients', () => {
      const seen = new Set<string>();
      const counts = new Map<string, number>();
      for (let i = 0; i < 2000; i++) {
        const { id, password } = generateAppPassword();
        assert.match(password, /^mbp-[a-z2-7]{8}-[a-z2-7]{26}$/);
        assert.ok(password.length <= 48);
        const parsed = parseAppPassword(password);
        assert.equal(parsed?.id, id);
        assert.equal(parsed.secret.length * 5 >= 128, true, 'at least 128 bits of secret');
        seen.add(parsed.secret);
        for (const ch of parsed.secret) counts.set(ch, (counts.get(ch) ?? 0) + 1);
      }
      assert.equal(seen.size, 2000);
      // 52,000 characters over 32 symbols: each near 1,625; a biased generator would be far off.
      assert.equal(counts.size, 32);
      for (const [ch, n] of counts) assert.ok(n > 1400 && n < 1850, `${ch} appeared ${n} times`);
      for (const bad of [
        '',
        'mbp-abcdefgh-',
        'MBP-ABCDEFGH-ABCDEFGHIJKLMNOPQRSTUVWXYZ',
        'mbp-abcdefgh-abcdefghijklmnopqrstuvwxy1',
        'mbp-abcdefgh-abcdefghijklmnopqrstuvwxyz ',
        'x mbp-abcdefgh-abcdefghijklmnopqrstuvwxyz',
      ]) {
        assert.equal(parseAppPassword(bad), undefined, bad);
      }
    });

    it('are hashed slowly with a fresh salt each time, in a self-describing string', async () => {
      const { password } = generateAppPassword();
      const a = await hashAppPassword(password);
      const b = await hashAppPassword(password);
      assert.notEqual(a, b, 'same password, different salts');
      assert.match(a, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
      assert.ok(!a.includes(password) && !a.includes(parseAppPassword(password)!.secret));
      assert.equal(await verifyAppPassword(password, a), true);
      assert.equal(await verifyAppPassword(password, b), true);
      assert.equal(await verifyAppPassword(`${password.slice(0, -1)}a` === password ? `${password.slice(0, -1)}b` : `${password.slice(0, -1)}a`, a), false);
      assert.equal(await verifyAppPassword(password, 'not a hash'), false);
      assert.equal(await verifyAppPassword(password, a.replace('ln=15', 'ln=30')), false, 'absurd parameters from a damaged row are refused, not run');
    });
  });

  // What every proxy client store promises is in test/store/contract.ts; here, what SQLite keeps on disk.
  describe('store', () => {
    it('keeps clients beside the grants in tokens.db, and never the password', async () => {
      const tokens = await SqliteTokenStore.open(dbFile, new SecretBox(randomBytes(32), 'test key'));
      const { client, password } = await createProxyClient(store, {
        name: 'Printer',
        mailboxes: ['Alice@Contoso.com', 'alice@contoso.com', 'bob@contoso.com'],
      });
      assert.deepEqual(client.mailboxes, ['alice@contoso.com', 'bob@contoso.com']);
      assert.equal(parseAppPassword(password)?.id, client.id);
      assert.deepEqual(await store.getById(client.id), client);
      await store.revoke('printer', 6_000);
      const again = await createProxyClient(store, { name: 'printer', mailboxes: ['bob@contoso.com'] });
      assert.equal((await store.getByName('Printer'))?.id, again.client.id);
      assert.deepEqual(await tokens.listMeta(), []);
      await tokens.close();

      // Neither password is anywhere on disk, whole or in part. Closed first: reading a SQLite
      // file in the process that has it open drops the process's POSIX locks on it.
      await store.close();
      for (const name of await readdir(join(dir, 'data'))) {
        const bytes = await readFile(join(dir, 'data', name));
        for (const pw of [password, again.password]) {
          const secret = parseAppPassword(pw)!.secret;
          assert.ok(!bytes.includes(pw) && !bytes.includes(secret.slice(0, 16)) && !bytes.includes(secret.slice(10)), `${name} holds a password`);
        }
      }
      store = await SqliteProxyClientStore.open(dbFile);
    });
  });

  describe('authenticator', () => {
    let password: string;
    let id: string;
    before(async () => {
      const made = await createProxyClient(store, { name: 'crm', mailboxes: ['Alice@Contoso.com', 'bob@contoso.com'] });
      password = made.password;
      id = made.client.id;
    });

    it('accepts the password for a mailbox of the client, and answers with the configured spelling', async () => {
      const auth = authenticator();
      assert.deepEqual(await auth.authenticate(input(password, { username: '  ALICE@contoso.COM ' })), {
        ok: true,
        clientId: id,
        clientName: 'crm',
        mailbox: 'Alice@Contoso.com',
      });
      assert.ok(((await store.getById(id))?.lastUsedAt ?? 0) > Date.now() - 60_000, 'last used recorded');
      assert.deepEqual(await auth.authenticate(input(password, { username: 'bob@contoso.com', protocol: 'smtp' })), {
        ok: true,
        clientId: id,
        clientName: 'crm',
        mailbox: 'bob@contoso.com',
      });
    });

    it('names each refusal', async () => {
      const auth = authenticator({ max: 100 });
      const wrong = `mbp-${id}-${'a'.repeat(26)}`;
      assert.deepEqual(await auth.authenticate(input(wrong)), { ok: false, reason: 'bad_password' });
      assert.deepEqual(await auth.authenticate(input(password, { username: 'dave@contoso.com' })), { ok: false, reason: 'unknown_mailbox' });
      assert.deepEqual(await auth.authenticate(input(password, { username: 'carol@contoso.com' })), { ok: false, reason: 'mailbox_not_allowed' });
      assert.deepEqual(await auth.authenticate(input(`mbp-aaaaaaaa-${'a'.repeat(26)}`)), { ok: false, reason: 'unknown_client' });
      assert.deepEqual(await auth.authenticate(input('hunter2')), { ok: false, reason: 'unknown_client' });
      assert.equal(auth.stats().scryptRuns, 2, 'only the wrong password and the mapped check ran scrypt');
    });

    it('refuses CR, LF, NUL and oversized input without touching the store or scrypt', async () => {
      const auth = authenticator({ max: 100 });
      for (const bad of [
        input(password, { username: 'alice@contoso.com\r\nA1 LOGOUT' }),
        input(password, { username: 'alice@contoso.com\n' }),
        input(`${password}\0`),
        input(password, { username: `${'a'.repeat(1020)}@x.com` }),
        input(`${password}${'é'.repeat(600)}`),
      ]) {
        const outcome = await auth.authenticate(bad);
        assert.equal(outcome.ok, false);
        assert.ok(!outcome.ok && (outcome.reason === 'bad_password' || outcome.reason === 'unknown_client'));
      }
      assert.equal(auth.stats().scryptRuns, 0);
    });

    // What the cache saves in time is measured in bench/proxy (login with a cached token).
    it('remembers a verified password: later logins run no scrypt', async () => {
      const auth = authenticator();
      for (let i = 0; i < 202; i++) assert.equal((await auth.authenticate(input(password))).ok, true);
      assert.equal(auth.stats().scryptRuns, 1);
      assert.equal(auth.stats().cacheHits, 201);
    });

    it('runs scrypt once for 50 concurrent logins with the same password, right or wrong', async () => {
      const auth = authenticator({ max: 1000 });
      const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => auth.authenticate(input(password, { remoteAddress: `198.51.100.${i}` }))));
      assert.ok(outcomes.every((o) => o.ok));
      assert.equal(auth.stats().scryptRuns, 1);
      assert.equal(auth.stats().sharedVerifications, 49);
      const wrong = `mbp-${id}-${'b'.repeat(26)}`;
      const refusals = await Promise.all(Array.from({ length: 50 }, () => auth.authenticate(input(wrong))));
      assert.ok(refusals.every((o) => !o.ok && o.reason === 'bad_password'));
      assert.equal(auth.stats().scryptRuns, 2);
    });

    it('refuses a revoked client whose password is in the cache (revoked through another connection)', async () => {
      const made = await createProxyClient(store, { name: 'short-lived', mailboxes: ['bob@contoso.com'] });
      const auth = authenticator();
      const login = input(made.password, { username: 'bob@contoso.com' });
      assert.equal((await auth.authenticate(login)).ok, true);
      assert.equal(auth.stats().cachedPasswords, 1);
      const other = await SqliteProxyClientStore.open(dbFile);
      await other.revoke('short-lived');
      await other.close();
      assert.deepEqual(await auth.authenticate(login), { ok: false, reason: 'revoked' });
    });

    it('counts failures per address: over the limit even the right password waits, other addresses do not', async () => {
      let clock = Date.UTC(2030, 0, 1);
      const auth = authenticator({ max: 3, windowSeconds: 60, now: () => clock });
      const wrong = `mbp-${id}-${'c'.repeat(26)}`;
      for (let i = 0; i < 3; i++) {
        assert.equal((await auth.authenticate(input(wrong, { remoteAddress: '203.0.113.7' }))).ok, false);
        clock += 10_000;
      }
      const runs = auth.stats().scryptRuns;
      assert.deepEqual(await auth.authenticate(input(password, { remoteAddress: '203.0.113.7' })), {
        ok: false,
        reason: 'rate_limited',
        retryAfterSeconds: 30,
      });
      assert.deepEqual(await auth.authenticate(input(password, { remoteAddress: '::ffff:203.0.113.7' })), {
        ok: false,
        reason: 'rate_limited',
        retryAfterSeconds: 30,
      });
      assert.equal(auth.stats().scryptRuns, runs, 'a limited address gets no password check');
      assert.equal((await auth.authenticate(input(password, { remoteAddress: '203.0.113.8' }))).ok, true);
      // The oldest failure leaves the window 60 s after it happened.
      clock += 29_000;
      assert.equal((await auth.authenticate(input(password, { remoteAddress: '203.0.113.7' }))).ok, false);
      clock += 1_000;
      assert.equal((await auth.authenticate(input(password, { remoteAddress: '203.0.113.7' }))).ok, true);
    });

    it('counts an IPv6 /64 as one address', async () => {
      assert.equal(rateLimitKey('2001:db8:1:2::1'), '2001:0db8:0001:0002::/64');
      assert.equal(rateLimitKey('2001:DB8:1:2:ffff:1:2:3'), '2001:0db8:0001:0002::/64');
      assert.equal(rateLimitKey('::ffff:192.0.2.9'), '192.0.2.9');
      const auth = authenticator({ max: 2 });
      await auth.authenticate(input('nope', { remoteAddress: '2001:db8:1:2::1' }));
      await auth.authenticate(input('nope', { remoteAddress: '2001:db8:1:2::abcd' }));
      assert.equal((await auth.authenticate(input(password, { remoteAddress: '2001:db8:1:2:3:4:5:6' }))).ok, false);
      assert.equal((await auth.authenticate(input(password, { remoteAddress: '2001:db8:1:3::1' }))).ok, true);
    });

    it('keeps at most 10,000 addresses in the failure table, dropping the stalest', async () => {
      const auth = authenticator({ max: 1 });
      for (let i = 0; i < 10_050; i++) await auth.authenticate(input('nope', { remoteAddress: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }));
      assert.equal(auth.stats().trackedAddresses, 10_000);
      assert.equal((await auth.authenticate(input(password, { remoteAddress: '10.0.0.0' }))).ok, true, 'the first address was dropped');
      const last = 10_049;
      assert.equal((await auth.authenticate(input(password, { remoteAddress: `10.0.${last >> 8}.${last & 255}` }))).ok, false, 'the newest is still limited');
    });
  });

  describe('mailbridge proxy add-client, clients, revoke-client', () => {
    it('prints a new password once; clients never shows it; revoking in another process beats the cache', async () => {
      const add = await cli(['proxy', 'add-client', 'scanner', '--mailbox', 'alice@contoso.com,BOB@contoso.com', '--config', configFile]);
      assert.equal(add.code, 0, add.stderr);
      const password = /password: (mbp-\S+)/.exec(add.stdout)?.[1];
      assert.ok(password && parseAppPassword(password), add.stdout);
      assert.equal(add.stdout.split(password).length, 2, 'printed once');
      assert.match(add.stdout, /username: the mailbox address/);
      assert.match(add.stdout, /shown\s+only now/);
      assert.match(add.stdout, /mailbridge proxy revoke-client scanner/);

      const auth = authenticator();
      const outcome = await auth.authenticate(input(password, { username: 'bob@contoso.com' }));
      assert.deepEqual(outcome, { ok: true, clientId: parseAppPassword(password)!.id, clientName: 'scanner', mailbox: 'bob@contoso.com' });

      const list = await cli(['proxy', 'clients', '--json', '--config', configFile]);
      assert.equal(list.code, 0, list.stderr);
      const rows = JSON.parse(list.stdout) as {
        name: string;
        id: string;
        mailboxes: string[];
        createdAt: string;
        lastUsedAt: string | null;
        revokedAt: string | null;
      }[];
      const row = rows.find((r) => r.name === 'scanner');
      assert.deepEqual(Object.keys(row ?? {}).sort(), ['createdAt', 'id', 'lastUsedAt', 'mailboxes', 'name', 'revokedAt']);
      assert.deepEqual(row?.mailboxes, ['alice@contoso.com', 'bob@contoso.com']);
      assert.notEqual(row?.lastUsedAt, null);
      assert.equal(row?.revokedAt, null);
      assert.ok(!list.stdout.includes(password) && !list.stdout.includes('scrypt'));
      const text = await cli(['proxy', 'clients', '--config', configFile]);
      assert.match(text.stdout, /^scanner {2}[a-z2-7]{8} {2}alice@contoso\.com,bob@contoso\.com {2}created \S+ {2}last used \S+$/m);

      const again = await cli(['proxy', 'add-client', 'Scanner', '--mailbox', 'alice@contoso.com', '--config', configFile]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already exists.*revoke-client scanner/);

      const revoke = await cli(['proxy', 'revoke-client', 'scanner', '--config', configFile]);
      assert.equal(revoke.code, 0, revoke.stderr);
      assert.deepEqual(await auth.authenticate(input(password, { username: 'bob@contoso.com' })), { ok: false, reason: 'revoked' });
      assert.equal((await cli(['proxy', 'revoke-client', 'scanner', '--config', configFile])).code, 1);
      const afterRevoke = JSON.parse((await cli(['proxy', 'clients', '--json', '--config', configFile])).stdout) as {
        name: string;
        revokedAt: string | null;
      }[];
      assert.notEqual(afterRevoke.find((r) => r.name === 'scanner')?.revokedAt, null);
    });

    it('--json gives name, id, mailboxes and password', async () => {
      const add = await cli([
        'proxy',
        'add-client',
        'json-client',
        '--mailbox',
        'carol@contoso.com',
        '--mailbox',
        'Alice@Contoso.com',
        '--json',
        '--config',
        configFile,
      ]);
      assert.equal(add.code, 0, add.stderr);
      const out = JSON.parse(add.stdout) as { name: string; id: string; mailboxes: string[]; password: string };
      assert.deepEqual(Object.keys(out), ['name', 'id', 'mailboxes', 'password']);
      assert.equal(parseAppPassword(out.password)?.id, out.id);
      assert.deepEqual(out.mailboxes, ['carol@contoso.com', 'alice@contoso.com']);
      assert.equal((await authenticator().authenticate(input(out.password, { username: 'carol@contoso.com' }))).ok, true);
    });

    it('refuses a mailbox that is not configured (exit 3, listing them), a bad name (2) and an unknown client (1)', async () => {
      const add = await cli(['proxy', 'add-client', 'x', '--mailbox', 'alice@contoso.com', '--mailbox', 'mallory@evil.example', '--config', configFile]);
      assert.equal(add.code, 3);
      assert.match(add.stderr, /mallory@evil\.example is not a configured mailbox.*Alice@Contoso\.com, bob@contoso\.com, carol@contoso\.com/);
      assert.equal(add.stdout, '');
      assert.equal(await store.getByName('x'), undefined);
      assert.equal((await cli(['proxy', 'add-client', 'x', '--config', configFile])).code, 2, '--mailbox is required');
      assert.equal((await cli(['proxy', 'add-client', '-bad', '--mailbox', 'bob@contoso.com', '--config', configFile])).code, 2);
      const revoke = await cli(['proxy', 'revoke-client', 'nobody', '--config', configFile]);
      assert.equal(revoke.code, 1);
      assert.match(revoke.stderr, /no proxy client is named "nobody"/);
    });

    it('never printed a hash', async () => {
      const hashes = (await store.list()).map((c) => c.passwordHash);
      assert.ok(hashes.length > 3);
      for (const out of printed) {
        for (const h of hashes)
          assert.ok(!out.includes(h) && !out.includes(h.split('$').at(-1)!) && !out.includes(h.split('$').at(-2)!), 'a hash or salt was printed');
        assert.ok(!out.includes('$scrypt$'));
      }
    });
  });
});
