// For bench/proxy: what one more Node process in the path costs on this machine, with no TLS and
// no proxy code. A child answers each request with 1 KiB over plain loopback TCP; a round trip is
// two wake-ups of a Node process (the child's, then the caller's), as many as a relay adds to a
// fetch (the request in, the answer out).
//   node bench/lib/echo-hop.ts   (prints its port on stdout; the parent measures)
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const ANSWER = Buffer.alloc(1024, 'x');

function serve(): void {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', () => socket.write(ANSWER));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

/** Median microseconds per round trip over `n` round trips (after `n / 10` untimed ones). */
export async function echoHopMicros(n = 2000): Promise<number> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.setEncoding('utf8').once('data', (text: string) => resolve(Number(text.trim())));
      child.once('exit', (code, signal) => reject(new Error(`the echo process exited (${code ?? signal})`)));
    });
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    const warm = Math.ceil(n / 10);
    const times: number[] = [];
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      let sent = process.hrtime.bigint();
      socket.once('error', reject);
      socket.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got < ANSWER.length) return;
        got = 0;
        times.push(Number(process.hrtime.bigint() - sent) / 1000);
        if (times.length === n + warm) return resolve();
        sent = process.hrtime.bigint();
        socket.write('?');
      });
      socket.write('?');
    });
    socket.destroy();
    const timed = times.slice(warm).sort((a, b) => a - b);
    return timed[Math.floor(timed.length / 2)]!;
  } finally {
    child.kill('SIGTERM');
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve();
