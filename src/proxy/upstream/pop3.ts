// POP3 upstream login through mailbridge's own POP3 client (reference section 8.4): greeting, STLS
// when the endpoint wants it, the two-step AUTH XOAUTH2 Exchange requires (Dovecot's error
// challenge handled by the client), then the socket is taken out of the client.
import { Pop3Client } from '../../pop3/client.ts';
import { Pop3Error } from '../../pop3/errors.ts';
import { encodeXoauth2 } from '../../net/sasl-xoauth2.ts';
import { ReusableReads } from '../../net/reusable-reads.ts';
import { UpstreamError, serverWords, tlsWords, type UpstreamErrorCode } from './errors.ts';
import type { UpstreamSession, UpstreamTarget } from './index.ts';

function translate(err: unknown, where: string, secrets: string[]): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (!(err instanceof Pop3Error))
    return new UpstreamError('protocol', `${where}: ${serverWords((err as Error)?.message ?? String(err), secrets)}`, { cause: err });
  const reply = err.reply !== undefined ? { reply: serverWords(err.reply, secrets) } : {};
  let code: UpstreamErrorCode;
  switch (err.code) {
    case 'unreachable':
    case 'tls':
    case 'timeout':
    case 'closed':
    case 'protocol':
      code = err.code;
      break;
    case 'line_too_long':
      code = 'protocol';
      break;
    case 'server':
      // Only the greeting is a command-free -ERR here: the server turns the connection away.
      code = 'closed';
      break;
    case 'auth_rejected':
      // -ERR to "AUTH XOAUTH2" itself (before any credentials) is no verdict on the token.
      code = /^the POP3 server refused AUTH /.test(err.message) ? 'protocol' : 'auth_rejected';
      break;
  }
  // Its messages name the server ("the POP3 server at host:port refused..."): said once, by `where`.
  let text = err.message.replace(/^the POP3 server (at \S+ )?/, '');
  if (code === 'tls') text = text.replace(/failed: (.*)$/s, (_, why: string) => `failed: ${tlsWords(why)}`);
  return new UpstreamError(code, `${where}: ${serverWords(text.trim(), secrets, 1000)}`, { ...reply, cause: err });
}

export async function pop3Login(target: UpstreamTarget, user: string, token: string, where: string): Promise<UpstreamSession> {
  const secrets = [token, encodeXoauth2(user, token)];
  const { host, port, security } = target.endpoint;
  let client: Pop3Client | undefined;
  try {
    // Over implicit TLS the relay then moves the server's bytes through reused buffers, as for IMAP.
    const reads = security === 'implicit' ? { reads: new ReusableReads() } : {};
    client = await Pop3Client.connect({
      host,
      port,
      security,
      timeoutMs: target.timeoutMs,
      ...reads,
      ...(target.caPem !== undefined ? { ca: target.caPem } : {}),
    });
    const loginReply = await client.authXoauth2(user, token);
    const greeting = client.greeting;
    const { socket, leftover } = client.detach();
    // Nobody listens for errors until the relay starts: a reset then must not crash the process.
    socket.on('error', () => {});
    return { socket, leftover, greeting, capabilities: [], loginReply };
  } catch (err) {
    client?.close();
    throw translate(err, where, secrets);
  }
}
