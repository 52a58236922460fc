// Raw-socket XOAUTH2 logins, for tests that need only to know whether a server accepts a token
// (mailbridge's own POP3/IMAP clients are tested separately). Returns the server's final reply.
import { encodeXoauth2 as xoauth2 } from '../../src/net/sasl-xoauth2.ts';
import { LineClient } from './line-client.ts';

/**
 * IMAP `AUTHENTICATE XOAUTH2` with SASL-IR; answers a `+` challenge with an empty line. With
 * `tlsCa`, over implicit TLS trusting that CA.
 */
export async function imapLogin(port: number, user: string, token: string, tlsCa?: string): Promise<string> {
  const s = await LineClient.connect({ port, ...(tlsCa ? { tlsCa } : {}) });
  try {
    await s.line(); // greeting
    s.send(`a1 AUTHENTICATE XOAUTH2 ${xoauth2(user, token)}`);
    for (;;) {
      const line = await s.line();
      if (line === null) return '(closed)';
      if (line.startsWith('+')) s.send('');
      else if (line.startsWith('a1 ')) return line;
    }
  } finally {
    s.close();
  }
}

/** POP3 two-step `AUTH XOAUTH2`: command, `+` challenge, then the encoded credentials. */
export async function pop3Login(port: number, user: string, token: string): Promise<string> {
  const s = await LineClient.connect({ port });
  try {
    await s.line(); // greeting
    const challenge = await s.ask('AUTH XOAUTH2');
    if (challenge === null || !challenge.startsWith('+')) return challenge ?? '(closed)';
    s.send(xoauth2(user, token));
    for (;;) {
      const line = await s.line();
      if (line === null) return '(closed)';
      if (line.startsWith('+ ') && !line.startsWith('+OK')) s.send('');
      else return line;
    }
  } finally {
    s.close();
  }
}
