// Two paths a person meets rarely but must work: finishing a sign-in on a remote shell by pasting
// the address the browser ended on, and status alerts POSTed to a URL; and the idle-refresh timer.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadConfig, type LoadedConfig } from '../../src/config/load.ts';
import { sendAlert, type StatusChange } from '../../src/identity/alerts.ts';
import { login } from '../../src/identity/login.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { startTestEmulator, userByUpn, type TestEmulator } from '../helpers/emulator.ts';
import { signIn } from '../helpers/browserless.ts';
import { writeTestConfig, type TestConfig } from '../helpers/identity-config.ts';

describe('sign-in by pasting, alerts by URL, the idle-refresh timer', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let loaded: LoadedConfig;
  let store: SqliteTokenStore;
  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
    loaded = await loadConfig(cfg.file, {});
    store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
  });
  after(async () => {
    await store.close();
    await emu.close();
    await rm(cfg.dir, { recursive: true, force: true });
  });

  it('finishes an authorization-code sign-in from a pasted redirect address', async () => {
    const paste = new PassThrough();
    const said: string[] = [];
    const meta = await login(loaded, store, 'alice@contoso.com', {
      mode: 'manual',
      paste,
      say: (text) => {
        said.push(text);
        const url = /(https:\/\/\S+\/authorize\?\S+)/.exec(text)?.[1];
        if (!url) return;
        void signIn(url, { caPem: emu.caPem, username: 'alice@contoso.com', password: userByUpn(emu, 'alice@contoso.com').password, consent: 'accept' }).then(
          (landed) => {
            // The browser is on another machine: its address bar shows a page that did not load.
            paste.write('not a url\n');
            paste.write(`${landed.toString()}\n`);
          },
        );
      },
    });
    assert.equal(meta.account?.username, 'alice@contoso.com');
    assert.ok(said.some((s) => /That is not a URL; paste the whole address/.test(s)));
    assert.ok((await store.get('alice@contoso.com'))?.secrets.msalCache);
  });

  it('POSTs a status change as JSON to the alert URL, and reports a hook that fails', async () => {
    const received: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        received.push({ type: req.headers['content-type'], body: JSON.parse(body) as unknown });
        res.writeHead(req.url === '/broken' ? 500 : 204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const change: StatusChange = {
      mailbox: 'alice@contoso.com',
      from: 'ok',
      to: 'needs_sign_in',
      reason: 'AADSTS50173: grant revoked',
      aadsts: 50173,
      at: new Date().toISOString(),
    };
    try {
      assert.deepEqual(await sendAlert({ url: `http://127.0.0.1:${port}/hook` }, change), []);
      assert.deepEqual(received, [{ type: 'application/json', body: change }]);
      assert.deepEqual(await sendAlert({ url: `http://127.0.0.1:${port}/broken`, command: 'exit 3' }, change), [
        'the alert command exited with 3',
        'the alert URL answered HTTP 500',
      ]);
    } finally {
      server.close();
    }
  });

  it('refreshes idle grants on a timer until stopped', async () => {
    let offset = 40 * 86_400_000;
    await emu.admin('POST', '/clock', { advanceSeconds: offset / 1000 });
    const provider = new TokenProvider({ loaded, store, now: () => Date.now() + offset });
    const before = (await emu.counters()).token?.refresh_token ?? 0;
    const stop = provider.scheduleIdleRefresh(50);
    for (let i = 0; i < 100 && ((await emu.counters()).token?.refresh_token ?? 0) === before; i++) await new Promise((r) => setTimeout(r, 20));
    stop();
    const after = (await emu.counters()).token?.refresh_token ?? 0;
    assert.equal(after - before, 1, 'alice, idle for 40 days, was refreshed once; then she was no longer idle');
    offset = 0;
  });
});
