// IMAP through a stalled server (issue 12 point 25): every step has a timeout, and the failure is
// an ImapError 'timeout' naming the step and the host, as POP3's are; never a wait until the far
// side gives up, never a bare "Connection not available". A loopback IMAP server over TLS (its
// certificate from the emulator's CA) accepts and then says nothing: at the greeting, or after the
// login at SELECT, or at FETCH. Short configured timeouts; only the outcome is asserted.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { LoadedConfig } from '../../src/config/load.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import { ImapError } from '../../src/imap/connect.ts';
import { ImapSource } from '../../src/imap/source.ts';
import type { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import type { TestConfig } from '../helpers/identity-config.ts';
import { openStore, peerTls, writeMailConfig } from './mail-context.ts';

type StallAt = 'greeting' | 'select' | 'fetch';

/** An IMAP server that answers enough to log in, then stalls at `stallAt` (reads and never replies). */
async function stallingImapServer(
  tls: { certPem: string; keyPem: string },
  stallAt: StallAt,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const sockets = new Set<TLSSocket>();
  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (stallAt === 'greeting') return;
    socket.write('* OK IMAP4rev1 ready\r\n');
    let buffered = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const [tag, command = ''] = line.split(' ');
        const verb = command.toUpperCase();
        if (verb === 'CAPABILITY') socket.write(`* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR\r\n${tag} OK done\r\n`);
        else if (verb === 'AUTHENTICATE') socket.write(`${tag} OK AUTHENTICATE completed\r\n`);
        else if (verb === 'SELECT' || verb === 'EXAMINE') {
          if (stallAt === 'select') continue;
          socket.write(`* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n${tag} OK [READ-WRITE] SELECT completed\r\n`);
        } else if (verb === 'UID' && /^UID (SEARCH|FETCH)/i.test(line.slice(tag!.length + 1))) {
          if (/^UID FETCH/i.test(line.slice(tag!.length + 1))) continue; // stallAt 'fetch'
          socket.write(`* SEARCH 1\r\n${tag} OK SEARCH completed\r\n`);
        } else if (verb === 'LOGOUT') socket.end(`* BYE\r\n${tag} OK LOGOUT completed\r\n`);
        else socket.write(`${tag} OK done\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('IMAP through a stalled server: a timeout naming the step and the host', () => {
  let emu: TestEmulator;
  let tls: { certPem: string; keyPem: string };
  const opened: { close(): Promise<void> }[] = [];
  const configs: TestConfig[] = [];
  const stores: SqliteTokenStore[] = [];

  before(async () => {
    emu = await startTestEmulator();
    tls = await peerTls(emu);
  });
  after(async () => {
    for (const s of opened) await s.close();
    for (const s of stores) await s.close();
    for (const c of configs) await rm(c.dir, { recursive: true, force: true });
    await emu.close();
  });

  /** A context whose IMAP endpoint is a server stalling at `stallAt` (the token comes from the emulator). */
  async function contextStallingAt(stallAt: StallAt): Promise<{ ctx: { loaded: LoadedConfig; provider: TokenProvider }; port: number }> {
    const server = await stallingImapServer(tls, stallAt);
    opened.push(server);
    const { cfg, loaded } = await writeMailConfig(emu, { imap: `imaps://localhost:${server.port}` });
    configs.push(cfg);
    const store = await openStore(loaded);
    stores.push(store);
    return { ctx: { loaded, provider: new TokenProvider({ loaded, store }) }, port: server.port };
  }

  const options = { connect: { timeoutMs: 400, commandTimeoutMs: 400, retryPauseMs: 0 } };

  function isTimeout(step: RegExp, port: number): (err: unknown) => boolean {
    return (err: unknown) => {
      assert.ok(err instanceof ImapError, String(err));
      assert.equal(err.code, 'timeout', err.message);
      assert.ok(err.message.includes(`localhost:${port}`), err.message);
      assert.match(err.message, step);
      assert.doesNotMatch(err.message, /Connection not available/);
      return true;
    };
  }

  it('stalled at the greeting: open fails with timeout, "greeting"', async () => {
    const { ctx, port } = await contextStallingAt('greeting');
    await assert.rejects(ImapSource.open(ctx, 'support@contoso.com', options), isTimeout(/greeting/, port));
  });

  it('stalled after the login, at SELECT: open fails with timeout, "SELECT INBOX"', async () => {
    const { ctx, port } = await contextStallingAt('select');
    await assert.rejects(ImapSource.open(ctx, 'support@contoso.com', options), isTimeout(/SELECT INBOX/, port));
  });

  it('stalled at FETCH: read fails with timeout, "FETCH"', async () => {
    const { ctx, port } = await contextStallingAt('fetch');
    const source = await ImapSource.open(ctx, 'support@contoso.com', options);
    try {
      const { messages } = await source.listNew();
      assert.deepEqual(
        messages.map((m) => m.id),
        ['7:1'],
      );
      await assert.rejects(
        (async () => {
          const stream = await source.read('7:1');
          for await (const chunk of stream) void chunk;
        })(),
        isTimeout(/FETCH/, port),
      );
    } finally {
      await source.close().catch(() => {});
    }
  });
});
