// The identity endpoint reset or stalled (a proxy, a firewall in the way; issue 12 point 24):
// `token` and `login` exit 4 (unavailable) and say what could not be reached and why, not msal's
// bare `endpoints_resolution_error` with exit 3. The configured cloud's loginUrl points at a
// loopback TCP server that resets every connection, or accepts and never answers; the cloud's
// short timeoutSeconds bounds the wait. Only the outcome is asserted, never how long it took.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.ts';

const SERVICE_MAILBOX = 'support@contoso.com';
const DEVICE_MAILBOX = 'bob@contoso.com';

/** A loopback TCP server doing `onSocket` to every connection; close() also ends the connections it holds. */
async function tcpServer(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('an identity endpoint that resets or stalls: exit 4 naming the host and why', () => {
  let dir: string;
  let resetting: Awaited<ReturnType<typeof tcpServer>>;
  let stalling: Awaited<ReturnType<typeof tcpServer>>;
  const configs: Record<'reset' | 'stall', string> = { reset: '', stall: '' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-identity-unreachable-'));
    // A reset as a firewall sends it: the connection is accepted, then torn down with RST.
    resetting = await tcpServer((socket) => socket.resetAndDestroy());
    // A proxy that takes the connection and never says a word (nor completes TLS).
    stalling = await tcpServer(() => {});
    for (const [name, port] of [
      ['reset', resetting.port],
      ['stall', stalling.port],
    ] as const) {
      const file = join(dir, `${name}.json`);
      await writeFile(
        file,
        JSON.stringify({
          dataDir: join(dir, `${name}-data`),
          clouds: { blocked: { base: 'global', loginUrl: `https://127.0.0.1:${port}`, timeoutSeconds: 1 } },
          apps: {
            desktop: { cloud: 'blocked', tenant: 'contoso.com', clientId: '4f2d8a1c-7b3e-4d9f-a6c5-1e8b2f7d3a90' },
            service: { cloud: 'blocked', tenant: 'contoso.com', clientId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d', clientSecret: 'not-used-for-lack-of-a-host' },
          },
          mailboxes: {
            [SERVICE_MAILBOX]: { app: 'service', grant: 'client_credentials', protocols: ['imap'] },
            [DEVICE_MAILBOX]: { app: 'desktop', grant: 'device_code', protocols: ['imap'] },
          },
        }),
      );
      configs[name] = file;
    }
  });
  after(async () => {
    await resetting.close();
    await stalling.close();
    await rm(dir, { recursive: true, force: true });
  });

  function assertUnavailable(run: { code: number | null; stdout: string; stderr: string }, port: number, why: RegExp): void {
    assert.equal(run.code, 4, run.stderr);
    assert.ok(run.stderr.includes(`127.0.0.1:${port}`), `names the host: ${run.stderr}`);
    assert.match(run.stderr, why);
    assert.doesNotMatch(run.stderr, /endpoints_resolution_error|aka\.ms/);
    assert.equal(run.stdout, '');
  }

  it('token, the connection reset: exit 4, "reset"', async () => {
    const run = await runCli(['token', SERVICE_MAILBOX, '--config', configs.reset]);
    assertUnavailable(run, resetting.port, /reset/);
  });

  it('login (device code), the connection reset: exit 4, "reset"', async () => {
    const run = await runCli(['login', DEVICE_MAILBOX, '--config', configs.reset]);
    assertUnavailable(run, resetting.port, /reset/);
  });

  it('token, no answer: exit 4, "did not answer within 1 s"', async () => {
    const run = await runCli(['token', SERVICE_MAILBOX, '--config', configs.stall]);
    assertUnavailable(run, stalling.port, /did not answer within 1 s/);
  });

  it('login (device code), no answer: exit 4, "did not answer within 1 s"', async () => {
    const run = await runCli(['login', DEVICE_MAILBOX, '--config', configs.stall]);
    assertUnavailable(run, stalling.port, /did not answer within 1 s/);
  });
});
