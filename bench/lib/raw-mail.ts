// Lean, pipelined mail downloads over TLS for benchmarks: the client does almost nothing, so
// the server's speed is what gets measured. Counts payload bytes; parses no messages.
import tls from 'node:tls';
import { encodeXoauth2 } from '../../src/net/sasl-xoauth2.ts';

async function connect(port: number, ca: string): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  socket.setNoDelay(true);
  return socket;
}

/** Resolves with the bytes received once `done(tail, total)` says so; `tail` is the last 64 KB. */
function receiveUntil(socket: tls.TLSSocket, done: (tail: string, chunk: Buffer) => boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    let total = 0;
    let tail = '';
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      tail = (tail + chunk.toString('latin1')).slice(-65536);
      if (done(tail, chunk)) {
        socket.off('data', onData);
        resolve(total);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('server closed the connection')));
  });
}

export interface Download {
  bytes: number;
  seconds: number;
}

/** POP3: two-step AUTH XOAUTH2, then RETR 1..count pipelined in one write. */
export async function pop3DownloadAll(port: number, ca: string, user: string, token: string, count: number): Promise<Download> {
  const socket = await connect(port, ca);
  try {
    await receiveUntil(socket, (t) => t.includes('\r\n'));
    socket.write(`AUTH XOAUTH2\r\n`);
    await receiveUntil(socket, (t) => t.startsWith('+ ') || t.includes('\r\n+ '));
    socket.write(`${encodeXoauth2(user, token)}\r\n`);
    const login = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
    if (!login.startsWith('+OK')) throw new Error(`POP3 login refused: ${login.trim()}`);
    const started = process.hrtime.bigint();
    const commands = Array.from({ length: count }, (_, i) => `RETR ${i + 1}\r\n`).join('');
    socket.write(commands);
    // Each message ends with a lone "." line; dot-stuffing guarantees no other.
    let ends = 0;
    let carry = '';
    const bytes = await receiveUntil(socket, (_tail, chunk) => {
      const text = carry + chunk.toString('latin1');
      let i = text.indexOf('\r\n.\r\n');
      while (i >= 0) {
        ends++;
        i = text.indexOf('\r\n.\r\n', i + 5);
      }
      carry = text.slice(-4);
      return ends >= count;
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    socket.write('QUIT\r\n');
    return { bytes, seconds };
  } finally {
    socket.destroy();
  }
}

/** IMAP: AUTHENTICATE XOAUTH2 with SASL-IR, EXAMINE INBOX, then one FETCH 1:count BODY.PEEK[]. */
export async function imapDownloadAll(port: number, ca: string, user: string, token: string, count: number): Promise<Download> {
  const socket = await connect(port, ca);
  try {
    await receiveUntil(socket, (t) => t.includes('\r\n'));
    socket.write(`a1 AUTHENTICATE XOAUTH2 ${encodeXoauth2(user, token)}\r\n`);
    const login = await receiveUntil(socket, (t) => /\r\na1 (OK|NO|BAD)[^\r]*\r\n$|^a1 (OK|NO|BAD)/m.test(t));
    void login;
    socket.write('a2 EXAMINE INBOX\r\n');
    await receiveUntil(socket, (t) => /a2 (OK|NO|BAD)[^\r]*\r\n$/.test(t));
    const started = process.hrtime.bigint();
    socket.write(`a3 FETCH 1:${count} BODY.PEEK[]\r\n`);
    const bytes = await receiveUntil(socket, (t) => /\r\na3 (OK|NO|BAD)[^\r]*\r\n$/.test(t));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    socket.write('a4 LOGOUT\r\n');
    return { bytes, seconds };
  } finally {
    socket.destroy();
  }
}
