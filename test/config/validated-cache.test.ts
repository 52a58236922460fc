// The validated-configuration cache (src/config/validated-cache.ts): a second load of an unchanged
// file skips the schema (zod is not even loaded), any change to the file or to an override is
// validated again (an invalid edit is reported), and the cache holds no value of the file (only the
// names of apps and mailboxes), so no secret; secret references are still resolved each time.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ConfigError, loadConfig, resolveSecret } from '../../src/config/load.ts';
import { configCacheDir, configCacheFile } from '../../src/config/validated-cache.ts';

const CLIENT = '8b3e1d7f-2c4a-4e6b-9f1d-5a7c3e9b2d41';
const TENANT = 'c5a7e2b4-1f3d-4c8e-9a6b-2d7f0e1c3b5a';
const INLINE_SECRET = 'Xq8~inline.secret-value-0123456789abcdefgh';
const OVERRIDE_SECRET = 'Zr5~override.secret-value-9876543210zyxwvu';
const ENV_SECRET = 'Kp2~env.secret-value-1111122222333334444455';
const FILE_SECRET = 'Wm7~file.secret-value-aaaaabbbbbcccccddddde';
const LOAD = new URL('../../src/config/load.ts', import.meta.url).href;

describe('validated-configuration cache', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-config-cache-'));
    env = { XDG_CACHE_HOME: join(dir, 'cache'), XDG_DATA_HOME: join(dir, 'data') };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  let n = 0;
  async function write(config: unknown, file = join(dir, `config-${n++}.json`)): Promise<string> {
    await writeFile(file, JSON.stringify(config, null, 2));
    return file;
  }

  const config = {
    apps: {
      desktop: { tenant: 'contoso.com', clientId: CLIENT },
      web: { tenant: 'contoso.com', clientId: CLIENT, clientSecret: INLINE_SECRET, redirectUri: 'https://app.contoso.com/cb' },
      service: { tenant: TENANT, clientId: CLIENT, clientSecret: { env: 'SERVICE_SECRET' } },
      files: { tenant: TENANT, clientId: CLIENT, clientSecret: { file: 'secret.txt' } },
    },
    mailboxes: {
      'alice@contoso.com': { app: 'desktop', grant: 'authorization_code' },
      'support@contoso.com': { app: 'service', grant: 'client_credentials', protocols: ['pop'] },
    },
    proxy: { listeners: [{ protocol: 'imap', port: 1143 }] },
  };

  it('gives the same configuration from the cache as from a full validation', async () => {
    const file = await write(config);
    const full = await loadConfig(file, env);
    assert.ok((await stat(configCacheFile(file, env))).isFile(), 'the first load wrote an entry');
    const cached = await loadConfig(file, env);
    assert.deepEqual(cached, full);
    assert.equal(cached.config.proxy.listeners[0]?.host, '127.0.0.1', 'defaults come back too');
    assert.equal(cached.config.apps.web?.clientSecret, INLINE_SECRET, 'values come from the file read now');
  });

  it('uses the entry when nothing changed (the schema is not run)', async () => {
    const file = await write(config);
    await loadConfig(file, env);
    // Change a default inside the entry: only a load that takes the entry can return it.
    const entryFile = configCacheFile(file, env);
    const entry = JSON.parse(await readFile(entryFile, 'utf8')) as { tree: { o: { proxy: { o: { maxConnections: { v: number } } } } } };
    entry.tree.o.proxy.o.maxConnections.v = 7;
    await writeFile(entryFile, JSON.stringify(entry));
    assert.equal((await loadConfig(file, env)).config.proxy.maxConnections, 7);
  });

  it('validates again when the file changes, and reports an invalid edit', async () => {
    const file = await write(config);
    await loadConfig(file, env);
    await write({ ...config, apps: { ...config.apps, desktop: { tenant: 'contoso.com', clientId: 'not-a-guid' } } }, file);
    await assert.rejects(loadConfig(file, env), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.problems.map((p) => p.path),
        ['apps.desktop.clientId'],
      );
      return true;
    });
    // And back to valid: loads again (the failed edit left no entry that would hide it).
    await write(config, file);
    assert.equal((await loadConfig(file, env)).config.apps.desktop?.clientId, CLIENT);
  });

  it('validates again when a MAILBRIDGE__ override changes, and reports an invalid one', async () => {
    const file = await write(config);
    await loadConfig(file, env);
    const withOverride = { ...env, MAILBRIDGE__apps__web__clientSecret: OVERRIDE_SECRET };
    assert.equal((await loadConfig(file, withOverride)).config.apps.web?.clientSecret, OVERRIDE_SECRET);
    // A GUID pasted as the secret is the Secret ID: the override's value is checked, not the cached verdict.
    const secretId = { ...env, MAILBRIDGE__apps__web__clientSecret: TENANT };
    await assert.rejects(loadConfig(file, secretId), (err: unknown) => err instanceof ConfigError && err.problems[0]?.path === 'apps.web.clientSecret');
    const notANumber = { ...env, MAILBRIDGE__proxy__maxConnections: 'many' };
    await assert.rejects(loadConfig(file, notANumber), (err: unknown) => err instanceof ConfigError && err.problems[0]?.path === 'proxy.maxConnections');
    // Without overrides the file alone is valid again.
    assert.equal((await loadConfig(file, env)).config.apps.web?.clientSecret, INLINE_SECRET);
  });

  it('keeps no value of the file in the cache (only the names of its entries): no secret, 0600 in a 0700 folder', async () => {
    const file = await write(config);
    await writeFile(join(dir, 'secret.txt'), FILE_SECRET);
    const overridden = { ...env, MAILBRIDGE__apps__web__clientSecret: OVERRIDE_SECRET, SERVICE_SECRET: ENV_SECRET };
    const loaded = await loadConfig(file, overridden);
    await loadConfig(file, overridden);
    // Secret references are resolved when used, from the environment and the file as they are now.
    assert.equal(await resolveSecret(loaded, loaded.config.apps.service!.clientSecret!, 'x', overridden), ENV_SECRET);
    assert.equal(await resolveSecret(loaded, loaded.config.apps.files!.clientSecret!, 'x', overridden), FILE_SECRET);
    const cacheDir = configCacheDir(env);
    assert.equal((await stat(cacheDir)).mode & 0o777, 0o700);
    for (const name of await readdir(cacheDir)) {
      const entryFile = join(cacheDir, name);
      assert.equal((await stat(entryFile)).mode & 0o777, 0o600, name);
      const text = await readFile(entryFile, 'utf8');
      for (const value of [
        INLINE_SECRET,
        OVERRIDE_SECRET,
        ENV_SECRET,
        FILE_SECRET,
        CLIENT,
        TENANT,
        'https://app.contoso.com/cb',
        'secret.txt',
        'SERVICE_SECRET',
      ]) {
        assert.ok(!text.includes(value), `${name} holds ${value}`);
      }
    }
  });

  it('validates in full when the entry is damaged', async () => {
    const file = await write(config);
    await loadConfig(file, env);
    for (const damage of ['{', '{"format":1,"key":"x","tree":{}}', 'null']) {
      await writeFile(configCacheFile(file, env), damage);
      assert.equal((await loadConfig(file, env)).config.apps.desktop?.clientId, CLIENT, damage);
    }
    // A right key with a tree that does not fit the file (an object where the file has a string).
    await loadConfig(file, env);
    const entryFile = configCacheFile(file, env);
    const entry = JSON.parse(await readFile(entryFile, 'utf8')) as { tree: { o: Record<string, unknown> } };
    entry.tree.o.apps = { o: { desktop: { o: { clientId: { o: {} } } } } };
    await writeFile(entryFile, JSON.stringify(entry));
    assert.equal((await loadConfig(file, env)).config.apps.desktop?.clientId, CLIENT);
  });

  it('loads neither zod nor msal-node in a process that finds its configuration in the cache', async () => {
    const file = await write(config);
    // A child process records every module it resolves, then loads the configuration.
    const script = `
      import { registerHooks } from 'node:module';
      const urls = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
      const { loadConfig } = await import(${JSON.stringify(LOAD)});
      await loadConfig(${JSON.stringify(file)}, ${JSON.stringify(env)});
      process.stdout.write(JSON.stringify(urls));
    `;
    const run = async () => JSON.parse((await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script])).stdout) as string[];
    const first = await run();
    assert.ok(
      first.some((u) => u.includes('/node_modules/zod/')),
      'the first load validates with zod',
    );
    const second = await run();
    assert.deepEqual(
      second.filter((u) => /\/node_modules\/(zod|@azure\/msal-node)\//.test(u)),
      [],
    );
  });
});
