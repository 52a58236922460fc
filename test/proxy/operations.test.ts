// The proxy as an operator sees it: tokens refreshed once for many logins and once more when the
// server refuses one, failed logins rate-limited per client address, a connection cap, idle and
// login timeouts, and a shutdown that lets transfers finish. Upstream: the emulator.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { LineClient } from '../helpers/line-client.ts';
import { startTestProxy, type TestProxy } from '../helpers/proxy.ts';

const ALICE = 'alice@contoso.com';
const HOUR = 3_600_000;

async function popLogin(proxy: TestProxy, password: string, localAddress?: string): Promise<{ client: LineClient; reply: string }> {
  const client = await LineClient.connect({ port: proxy.port('pop'), ...(localAddress ? { localAddress } : {}) });
  await client.line();
  await client.ask(`USER ${ALICE}`);
  return { client, reply: (await client.ask(`PASS ${password}`))! };
}

describe('proxy tokens and failed logins', () => {
  let emu: TestEmulator;
  let proxy: TestProxy;
  let password: string;
  let offsetMs = 0;
  const refreshes = async () => (await emu.counters()).token?.refresh_token ?? 0;

  before(async () => {
    emu = await startTestEmulator();
    proxy = await startTestProxy(emu, {
      listeners: [{ protocol: 'pop' }],
      proxy: { failedLogins: { max: 3, windowSeconds: 600 } },
      provider: { now: () => Date.now() + offsetMs },
    });
    password = await proxy.addClient('scanner', [ALICE]);
    // Warm: the app password's hash is checked once, the token cached.
    const warm = await popLogin(proxy, password);
    assert.match(warm.reply, /^\+OK/);
    warm.client.close();
  });

  after(async () => {
    await proxy?.close();
    await emu?.close();
  });

  it('a token the server refuses is refreshed and the login tried once more; the client never notices', async () => {
    // Exchange's clock moves on: the token mailbridge holds is still fresh by its own count, but expired there.
    await emu.admin('POST', '/clock', { advanceSeconds: 2 * 3600 });
    const before = await refreshes();
    const { client, reply } = await popLogin(proxy, password);
    assert.match(reply, /^\+OK/);
    assert.match((await client.ask('STAT'))!, /^\+OK/);
    client.close();
    assert.equal((await refreshes()) - before, 1);
    const audit = await proxy.waitForAudit((a) => a.loginAttempts === 2);
    assert.equal(audit.result, 'ok');
  });

  it('ten clients logging in at once on an expired token cause one token refresh', async () => {
    offsetMs += 2 * HOUR;
    await emu.admin('POST', '/clock', { advanceSeconds: 2 * 3600 });
    const before = await refreshes();
    const logins = await Promise.all(Array.from({ length: 10 }, () => popLogin(proxy, password)));
    for (const { client, reply } of logins) {
      assert.match(reply, /^\+OK/);
      assert.match((await client.ask('STAT'))!, /^\+OK/);
      client.close();
    }
    assert.equal((await refreshes()) - before, 1);
  });

  it('a server that refuses even the new token: the client hears why and what to run', async () => {
    await emu.admin('PATCH', `/mailboxes/${ALICE}`, { popEnabled: false });
    try {
      const { client, reply } = await popLogin(proxy, password);
      assert.match(
        reply,
        /^-ERR \[SYS\/TEMP\] localhost refused mailbridge's token for alice@contoso\.com .*; an administrator should run: mailbridge verify alice@contoso\.com$/,
      );
      client.close();
    } finally {
      await emu.admin('PATCH', `/mailboxes/${ALICE}`, { popEnabled: true });
    }
  });

  it('failed logins are rate-limited per client address; another address is not affected', async () => {
    const before = (await emu.counters()).token?.total ?? 0;
    for (let i = 0; i < 3; i++) {
      const { client, reply } = await popLogin(proxy, `${password}x`, '127.0.0.9');
      assert.equal(reply, '-ERR [AUTH] Authentication failed.');
      client.close();
    }
    const blocked = await popLogin(proxy, password, '127.0.0.9');
    assert.match(blocked.reply, /^-ERR \[SYS\/TEMP\] Too many failed logins from 127\.0\.0\.9; try again in \d+ seconds\.$/);
    blocked.client.close();
    const other = await popLogin(proxy, password, '127.0.0.10');
    assert.match(other.reply, /^\+OK/);
    other.client.close();
    assert.equal((await emu.counters()).token?.total ?? 0, before, 'refused logins requested no token');
  });
});

describe('proxy operations: connection cap, timeouts, graceful shutdown', () => {
  let emu: TestEmulator;
  let proxy: TestProxy;
  let password: string;
  const BIG = 16 * 1024 * 1024;

  before(async () => {
    emu = await startTestEmulator((scenario) => {
      scenario.exchange!.mailboxes!.find((m) => m.address === ALICE)!.seed = { generate: { count: 1, sizeBytes: BIG } };
    });
    proxy = await startTestProxy(emu, {
      listeners: [{ protocol: 'pop' }, { protocol: 'imap' }],
      proxy: { maxConnections: 3, idleTimeoutSeconds: 2, loginTimeoutSeconds: 1, shutdownGraceSeconds: 10 },
    });
    password = await proxy.addClient('ops', [ALICE]);
  });

  after(async () => {
    await proxy?.close();
    await emu?.close();
  });

  it('a client that does not log in is let go after loginTimeoutSeconds', async () => {
    const c = await LineClient.connect({ port: proxy.port('imap') });
    await c.line();
    const started = Date.now();
    assert.equal(await c.line(), '* BYE mailbridge proxy: connection closed.');
    await c.closed();
    assert.ok(Date.now() - started >= 900 && Date.now() - started < 3000);
    await proxy.waitForAudit((a) => a.result === 'login_timeout');
  });

  it('a logged-in session silent for idleTimeoutSeconds is closed', async () => {
    const { client, reply } = await popLogin(proxy, password);
    assert.match(reply, /^\+OK/);
    const started = Date.now();
    await client.closed();
    assert.ok(Date.now() - started >= 1500, 'not before the idle timeout');
  });

  it('beyond maxConnections a client is told the proxy is busy; the others are unaffected', async () => {
    const open = await Promise.all([0, 1, 2].map(() => LineClient.connect({ port: proxy.port('pop') })));
    for (const c of open) assert.match((await c.line())!, /^\+OK/);
    const extra = await LineClient.connect({ port: proxy.port('imap') });
    assert.equal(await extra.line(), '* BYE Too many connections to the mailbridge proxy; try again later.');
    await extra.closed();
    assert.match((await open[0]!.ask('CAPA'))!, /^\+OK/);
    for (const c of open) c.close();
    await new Promise((r) => setTimeout(r, 100));
  });

  it('shutdown stops new connections at once, says goodbye before login, and lets a transfer finish', async () => {
    const { client: reader, reply } = await popLogin(proxy, password);
    assert.match(reply, /^\+OK/);
    const waiting = await LineClient.connect({ port: proxy.port('imap') });
    await waiting.line();
    const list = (await reader.ask('LIST 1'))!;
    const size = Number(list.split(' ')[2]);
    reader.send('RETR 1');
    // Not read yet: the transfer is still going when shutdown begins.
    reader.socket.pause();
    await new Promise((r) => setTimeout(r, 100));
    const closing = proxy.running.close(10_000);
    assert.equal(await waiting.line(), '* BYE mailbridge proxy: connection closed.');
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: proxy.port('pop') }, () => {
          s.destroy();
          resolve();
        });
        s.once('error', reject);
      }),
      /ECONNREFUSED/,
    );
    // The session that had not logged in is gone; the relaying one stays.
    for (let i = 0; i < 100 && proxy.running.sessionCount > 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(proxy.running.sessionCount, 1, 'the relaying session is still open');
    reader.socket.resume();
    assert.match((await reader.line())!, /^\+OK/);
    const lines = await reader.block();
    const received = lines.reduce((n, l) => n + Buffer.byteLength(l) + 2, 0);
    assert.equal(received, size, 'the whole message arrived');
    reader.send('QUIT');
    assert.match((await reader.line())!, /^\+OK/);
    await closing;
    reader.close();
    const audit = await proxy.waitForAudit((a) => a.result === 'ok' && (a.bytesToClient as number) > size);
    assert.equal(audit.endedBy, 'server', 'the server ended it after QUIT, not the shutdown');
  });
});
