// Raw-socket XOAUTH2 logins, for tests that need only to know whether a server accepts a token
// (mailbridge's own POP3/IMAP clients are tested separately). Returns the server's final reply.
import net from 'node:net';

export function xoauth2(user: string, token: string): string {
  return Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}

interface LineSession {
  next(): Promise<string>;
  send(line: string): void;
  close(): void;
}

async function connect(port: number, host = '127.0.0.1'): Promise<LineSession> {
  const socket = net.connect(port, host);
  socket.setTimeout(10_000, () => socket.destroy(new Error('server did not answer within 10 s')));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffer = '';
  const lines: string[] = [];
  const waiters: { resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  let failure: Error | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    let i;
    while ((i = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      const waiter = waiters.shift();
      if (waiter) waiter.resolve(line);
      else lines.push(line);
    }
  });
  const fail = (err: Error) => {
    failure = err;
    for (const w of waiters.splice(0)) w.reject(err);
  };
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('connection closed')));
  return {
    next: () => {
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    send: (line) => socket.write(`${line}\r\n`),
    close: () => socket.destroy(),
  };
}

/** IMAP `AUTHENTICATE XOAUTH2` with SASL-IR; answers a `+` challenge with an empty line. */
export async function imapLogin(port: number, user: string, token: string): Promise<string> {
  const s = await connect(port);
  try {
    await s.next(); // greeting
    s.send(`a1 AUTHENTICATE XOAUTH2 ${xoauth2(user, token)}`);
    for (;;) {
      const line = await s.next();
      if (line.startsWith('+')) s.send('');
      else if (line.startsWith('a1 ')) return line;
    }
  } finally {
    s.close();
  }
}

/** POP3 two-step `AUTH XOAUTH2`: command, `+` challenge, then the encoded credentials. */
export async function pop3Login(port: number, user: string, token: string): Promise<string> {
  const s = await connect(port);
  try {
    await s.next(); // greeting
    s.send('AUTH XOAUTH2');
    const challenge = await s.next();
    if (!challenge.startsWith('+')) return challenge;
    s.send(xoauth2(user, token));
    for (;;) {
      const line = await s.next();
      if (line.startsWith('+ ') && !line.startsWith('+OK')) s.send('');
      else return line;
    }
  } finally {
    s.close();
  }
}
