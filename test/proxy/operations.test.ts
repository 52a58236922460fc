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

/** Resolves once `condition` holds, checking after every few milliseconds (the test's limit is the hang guard). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 10));
}

// The timeouts are the proxy's own timers, so these tests wait for them; each proxy has only the
// timeout under test short, and the checks are the events (a goodbye, a close, the audit line) and
// lower bounds, never how soon something happened: a loaded machine only makes them later.
describe('proxy timeouts', { timeout: 120_000 }, () => {
  let emu: TestEmulator;

  before(async () => {
    emu = await startTestEmulator();
  });
  after(async () => {
    await emu?.close();
  });

  it('a client that does not log in is let go after loginTimeoutSeconds', async () => {
    const proxy = await startTestProxy(emu, { listeners: [{ protocol: 'imap' }], proxy: { loginTimeoutSeconds: 1 } });
    try {
      // Taken before connecting: the proxy's timer starts later, so it cannot fire sooner than this + 1 s.
      const started = performance.now();
      const c = await LineClient.connect({ port: proxy.port('imap') });
      await c.line();
      assert.equal(await c.line(), '* BYE mailbridge proxy: connection closed.');
      await c.closed();
      // Timers count from the event loop's cached time, which can lag a few milliseconds.
      assert.ok(performance.now() - started >= 990, `closed after ${Math.round(performance.now() - started)} ms`);
      await proxy.waitForAudit((a) => a.result === 'login_timeout');
    } finally {
      await proxy.close();
    }
  });

  it('a logged-in session silent for idleTimeoutSeconds is closed', async () => {
    // A long login timeout: a slow login is not what this test is about.
    const proxy = await startTestProxy(emu, { listeners: [{ protocol: 'pop' }], proxy: { idleTimeoutSeconds: 2, loginTimeoutSeconds: 600 } });
    try {
      const password = await proxy.addClient('idle', [ALICE]);
      // The first login checks the app password (scrypt) and fetches the token: the idle clock
      // runs while the proxy does that work, so it is done once, before the session under test.
      const warm = await popLogin(proxy, password);
      assert.match(warm.reply, /^\+OK/);
      warm.client.close();
      const started = performance.now();
      const { client, reply } = await popLogin(proxy, password);
      assert.match(reply, /^\+OK/);
      await client.closed();
      assert.ok(performance.now() - started >= 1990, `not before the idle timeout (closed after ${Math.round(performance.now() - started)} ms)`);
      const audit = await proxy.waitForAudit((a) => a.session === 2);
      assert.equal(audit.result, 'ok', JSON.stringify(audit));
      assert.ok((audit.durationMs as number) >= 1990, JSON.stringify(audit));
    } finally {
      await proxy.close();
    }
  });
});

describe('proxy operations: connection cap, graceful shutdown', { timeout: 300_000 }, () => {
  let emu: TestEmulator;
  let proxy: TestProxy;
  let password: string;
  const BIG = 16 * 1024 * 1024;

  before(async () => {
    emu = await startTestEmulator((scenario) => {
      scenario.exchange!.mailboxes!.find((m) => m.address === ALICE)!.seed = { generate: { count: 1, sizeBytes: BIG } };
    });
    // Timeouts far beyond the tests: sessions here end by the cap, by the client or by shutdown,
    // however slowly the machine runs them.
    proxy = await startTestProxy(emu, {
      listeners: [{ protocol: 'pop' }, { protocol: 'imap' }],
      proxy: { maxConnections: 3, idleTimeoutSeconds: 600, loginTimeoutSeconds: 600, shutdownGraceSeconds: 600 },
    });
    password = await proxy.addClient('ops', [ALICE]);
  });

  after(async () => {
    await proxy?.close();
    await emu?.close();
  });

  it('beyond maxConnections a client is told the proxy is busy; the others are unaffected', async () => {
    const open = await Promise.all([0, 1, 2].map(() => LineClient.connect({ port: proxy.port('pop') })));
    for (const c of open) assert.match((await c.line())!, /^\+OK/);
    assert.equal(proxy.running.sessionCount, 3);
    const extra = await LineClient.connect({ port: proxy.port('imap') });
    assert.equal(await extra.line(), '* BYE Too many connections to the mailbridge proxy; try again later.');
    await extra.closed();
    assert.match((await open[0]!.ask('CAPA'))!, /^\+OK/);
    for (const c of open) c.close();
    // The proxy has let them go before the next test counts sessions.
    await until(() => proxy.running.sessionCount === 0);
    await proxy.waitForAudit((a) => a.result === 'busy');
  });

  it('shutdown stops new connections at once, says goodbye before login, and lets a transfer finish', async () => {
    const { client: reader, reply } = await popLogin(proxy, password);
    assert.match(reply, /^\+OK/);
    const waiting = await LineClient.connect({ port: proxy.port('imap') });
    await waiting.line();
    const list = (await reader.ask('LIST 1'))!;
    const size = Number(list.split(' ')[2]);
    // Not read yet: shutdown begins while the message is on its way (or waiting in the sockets'
    // buffers), and the session must stay open until the client has it and quits.
    reader.socket.pause();
    reader.send('RETR 1');
    // The grace period is only a hang guard here: the relay ends when the client has its message.
    const closing = proxy.running.close(120_000);
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
    await until(() => proxy.running.sessionCount <= 1);
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
