// mailbridge's POP3 client. See client.ts for the operations, connect.ts for the options.
//
//   const client = await Pop3Client.connect({ host: 'outlook.office365.com', port: 995, security: 'implicit' });
//   await client.authXoauth2('user@contoso.com', accessToken);
//   const { count } = await client.stat();
//   await client.retrMany([1, 2, 3], async (n, message) => pipeline(message, createWriteStream(`${n}.eml`)));
//   await client.quit();
//
// Every failure is a Pop3Error whose `code` says what kind ('unreachable', 'tls', 'timeout', 'closed',
// 'protocol', 'line_too_long', 'server', 'auth_rejected') and whose `reply` keeps the server's line.
export { Pop3Client } from './client.ts';
export type { Pop3ConnectOptions } from './connect.ts';
export { Pop3Error, type Pop3ErrorCode } from './errors.ts';
export type { Pop3Capabilities } from './replies.ts';
