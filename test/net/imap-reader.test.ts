// The bounded IMAP response reader that verify and the proxy share: literals are folded in, and a
// server announcing a huge literal (or too many) gets a clear error before any of it is read,
// not unbounded memory. Real sockets; the "server" is a few lines of node:net.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { ConnectionError, LineConnection } from '../../src/net/connection.ts';
import { ImapResponseReader, LOGIN_READ_LIMITS } from '../../src/net/imap-reader.ts';
import { loginUpstream } from '../../src/proxy/upstream/index.ts';
import { UpstreamError } from '../../src/proxy/upstream/errors.ts';

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
after(() => {
  for (const socket of sockets) socket.destroy();
  for (const s of servers) s.close();
});

/** A server that sends `script` to each client and then keeps the connection open, silent; records what it received. */
async function server(script: string | Buffer): Promise<{ port: number; received: () => number }> {
  let received = 0;
  const s = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (d) => (received += d.length));
    socket.on('error', () => {});
    socket.write(script);
  });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { port: (s.address() as net.AddressInfo).port, received: () => received };
}

async function reader(port: number): Promise<{ conn: LineConnection; imap: ImapResponseReader }> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.add(socket);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  // A long timeout: the tests must end by the bound, never by the clock.
  const conn = new LineConnection(socket, 60_000);
  return { conn, imap: new ImapResponseReader(conn) };
}

describe('ImapResponseReader', () => {
  it('folds literals into the response: each line (without its CRLF), then the literal', async () => {
    const { port } = await server('* 1 FETCH (BODY[] {5}\r\nab\r\nc BODY[1] {0}\r\n)\r\n* OK next\r\n');
    const { conn, imap } = await reader(port);
    try {
      assert.equal(await imap.response(), '* 1 FETCH (BODY[] {5}ab\r\nc BODY[1] {0})');
      assert.equal(await imap.response(), '* OK next');
    } finally {
      conn.close();
    }
  });

  it('a literal of 4 GiB (or more than 2^53) announced: literal_too_large at once, nothing of it read', async () => {
    for (const size of ['4294967296', '99999999999999999999999999']) {
      const { port } = await server(`* OK [ALERT] {${size}}\r\n`);
      const { conn, imap } = await reader(port);
      try {
        await assert.rejects(imap.response(), (err: unknown) => {
          assert.ok(err instanceof ConnectionError, String(err));
          assert.equal(err.code, 'literal_too_large');
          assert.match(err.message, /announced a literal of \d+(\.\.\.)? bytes, over the bound of 65536/);
          return true;
        });
      } finally {
        conn.close();
      }
    }
  });

  it('one byte over the bound is refused; the bound itself is read', async () => {
    const max = LOGIN_READ_LIMITS.maxLiteralBytes;
    const { port: over } = await server(`* OK {${max + 1}}\r\n`);
    const a = await reader(over);
    await assert.rejects(a.imap.response(), (err: unknown) => err instanceof ConnectionError && err.code === 'literal_too_large');
    a.conn.close();
    const { port: at } = await server(Buffer.concat([Buffer.from(`* OK {${max}}\r\n`), Buffer.alloc(max, 0x61), Buffer.from(' done\r\n')]));
    const b = await reader(at);
    assert.equal((await b.imap.response()).length, `* OK {${max}}`.length + max + ' done'.length);
    b.conn.close();
  });

  it('more literals in one response than the bound: literal_too_large', async () => {
    const n = LOGIN_READ_LIMITS.maxLiterals + 1;
    const { port } = await server(`* OK${' {1}\r\nx'.repeat(n)}\r\n`);
    const { conn, imap } = await reader(port);
    try {
      await assert.rejects(
        imap.response(),
        (err: unknown) => err instanceof ConnectionError && err.code === 'literal_too_large' && /more than 16 literals/.test(err.message),
      );
    } finally {
      conn.close();
    }
  });

  it("the proxy's upstream login against such a server: an UpstreamError 'protocol' naming the bound", async () => {
    const { port } = await server('* OK {4294967296}\r\n');
    await assert.rejects(
      loginUpstream('imap', { endpoint: { host: '127.0.0.1', port, security: 'starttls' }, timeoutMs: 60_000 }, 'alice@contoso.com', 'token'),
      (err: unknown) => {
        assert.ok(err instanceof UpstreamError, String(err));
        assert.equal(err.code, 'protocol');
        assert.match(
          err.message,
          /IMAP server 127\.0\.0\.1:\d+: the server announced a literal of 4294967296 bytes, over the bound of 65536 while sending the greeting/,
        );
        return true;
      },
    );
  });
});
