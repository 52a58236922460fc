// A reference for bench/proxy: the least any relay process can do. Plain TCP in, TLS out to the
// upstream, `pipe()` both ways, nothing parsed, no login of its own (the client logs in through
// it with XOAUTH2). What the proxy costs beyond this is the proxy's; what this costs is the price
// of one more process between client and server on the machine.
//   node bench/lib/bare-relay.ts UPSTREAM_PORT CA_FILE   (prints its port on stdout)
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [port, caFile] = process.argv.slice(2);
if (!port || !caFile) throw new Error('usage: bare-relay.ts UPSTREAM_PORT CA_FILE');
const context = tls.createSecureContext({ ca: readFileSync(caFile, 'utf8') });
const server = net.createServer((client) => {
  client.setNoDelay(true);
  const upstream = tls.connect({ host: '127.0.0.1', port: Number(port), secureContext: context, servername: 'localhost' });
  upstream.setNoDelay(true);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.pipe(upstream);
  upstream.pipe(client);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
