// What Exchange Online's SMTP submission front end (smtp.office365.com:587) says, reference
// section 8.5. Tags: [O] observed in real traces (source named), [D] documented by Microsoft,
// [C] our best guess. Most [C] texts are entries of Exchange Server's own reply table
// (Microsoft.Exchange.Data.Transport.Smtp.SmtpResponse, in a public copy of the decompiled
// transport code), which Exchange Online's front end shares.
//
// Error replies (4xx/5xx) get the diagnostic tail `[<FQDN> <ISO time> <session id>]` that every
// error reply of the service carries in traces since 2023 (500 5.3.3, 504 5.7.4, 530 5.7.57,
// 535 5.7.3, 535 5.7.139: email-oauth2-proxy #193, #234, #237, #251, #295; new-api #1989;
// sasl-xoauth2 #96); `withTail` adds it. Replies that end in their own `[Hostname=...]` do not.

export interface DiagnosticTail {
  host: string;
  sessionId: string;
  now: Date;
}

export function withTail(text: string, tail: DiagnosticTail): string {
  return `${text} [${tail.host} ${tail.now.toISOString()} ${tail.sessionId}]`;
}

export interface EhloInput {
  host: string;
  clientIp: string;
  maxMessageBytes: number;
  secure: boolean;
}

export const SMTP = {
  // Session ----------------------------------------------------------------------------------
  /** [O] 2025 trace (reference 8.5); older servers had no `[id]`. */
  greeting: (host: string, date: string, sessionId: string) => `220 ${host} Microsoft ESMTP MAIL Service ready at ${date} [${sessionId}]`,
  /** [O] before STARTTLS no AUTH line; after it AUTH LOGIN XOAUTH2 takes STARTTLS's place. */
  ehlo: (e: EhloInput): string[] => {
    const items = [
      `${e.host} Hello [${e.clientIp}]`,
      `SIZE ${e.maxMessageBytes}`,
      'PIPELINING',
      'DSN',
      'ENHANCEDSTATUSCODES',
      e.secure ? 'AUTH LOGIN XOAUTH2' : 'STARTTLS',
      '8BITMIME',
      'BINARYMIME',
      'CHUNKING',
      'SMTPUTF8',
    ];
    return items.map((item, i) => `250${i === items.length - 1 ? ' ' : '-'}${item}`);
  },
  helo: (host: string, clientIp: string) => `250 ${host} Hello [${clientIp}]`, // [C]
  startTls: '220 2.0.0 SMTP server ready', // [O]
  noop: '250 2.0.0 OK', // [C]
  reset: '250 2.0.0 Resetting', // [C]
  vrfy: '252 2.1.5 Cannot VRFY user', // [C]
  help: ['214-This server supports the following commands:', '214 HELO EHLO STARTTLS RCPT DATA RSET MAIL QUIT HELP AUTH BDAT'], // [C]
  quit: '221 2.0.0 Service closing transmission channel', // [C] (reference 8.5)

  // Authentication ---------------------------------------------------------------------------
  authOk: '235 2.7.0 Authentication successful', // [D]
  /** The XOAUTH2 challenge: "334" and one space (reference 8.5). */
  authContinue: '334 ', // [D]
  authUsername: '334 VXNlcm5hbWU6', // [C] "Username:"
  authPassword: '334 UGFzc3dvcmQ6', // [C] "Password:"
  authUnrecognized: '504 5.7.4 Unrecognized authentication type', // [O] also AUTH before STARTTLS
  authCancelled: '501 5.5.4 Authentication cancelled', // [C]
  authAlready: '503 5.5.2 Auth command already specified', // [C]
  /** Bad, expired or wrong-audience token; missing scope, role, service principal, permission. */
  authFailed: '535 5.7.3 Authentication unsuccessful', // [O] (with tail: email-oauth2-proxy #237)
  smtpAuthDisabledTenant:
    '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.', // [O] email-oauth2-proxy #193
  smtpAuthDisabledMailbox:
    '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.', // [O] (reference 4.4)
  securityDefaults: "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.", // [O] (reference 8.5)
  basicAuthDisabled: '535 5.7.139 Authentication unsuccessful, basic authentication is disabled.', // [O] nina-ground-station #17

  // Transactions -----------------------------------------------------------------------------
  notAuthenticated: '530 5.7.57 Client not authenticated to send mail.', // [O] email-oauth2-proxy #295
  mailOk: '250 2.1.0 Sender OK', // [O]
  rcptOk: '250 2.1.5 Recipient OK', // [O]
  dataStart: '354 Start mail input; end with <CRLF>.<CRLF>', // [O]
  /** [O] nodemailer log: `250 2.0.0 OK <id@host> [Hostname=SYBP282MB2635.AUSP282.PROD.OUTLOOK.COM]`. */
  queued: (messageId: string, mailboxHost: string) => `250 2.0.0 OK ${messageId} [Hostname=${mailboxHost}]`,
  chunkReceived: (octets: number) => `250 2.6.0 CHUNK received OK, ${octets} octets`, // [C]
  /** [O] 2025 trace (reference 4.4/8.5); the diagnostic data is a short piece of the observed one. */
  sendAsDenied: (authenticated: string, sender: string, mailboxHost: string) =>
    `554 5.2.252 SendAsDenied; ${authenticated} not allowed to send as ${sender}; ` +
    'STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message ' +
    '[BeginDiagnosticData]Cannot submit message. 1.84300:0A000000, 1.84300:0E000000, 1.84300:32000000, 0.117068:0B000000, 1.79180:0A000000, ' +
    `1.79180:0E000000, 1.79180:32000000, 1.79180:FA000000[EndDiagnosticData] [Hostname=${mailboxHost}]`,
  /** [O] fastapi-mail #75, nodemailer #1613 (more than the allowed concurrent submissions of one mailbox). */
  concurrentLimit: (mailboxHost: string) =>
    `432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information. [Hostname=${mailboxHost}]`,

  // Errors (all get the diagnostic tail) ------------------------------------------------------
  /** [O] `'unknown'` for binary lines (email-oauth2-proxy #234); a printable verb is quoted [C]. */
  unrecognized: (verb: string) => `500 5.3.3 Unrecognized command '${verb}'`,
  notImplemented: '502 5.3.3 Command not implemented', // [C]
  commandTooLong: '500 5.5.2 Command too long', // [C]
  badSequence: '503 5.5.1 Bad sequence of commands', // [C]
  needHello: '503 5.5.2 Send hello first', // [C]
  needMail: '503 5.5.2 Need mail command', // [C]
  needRcpt: '503 5.5.2 Need rcpt command', // [C]
  senderAlready: '503 5.5.2 Sender already specified', // [C]
  onlyOneStartTls: '503 5.5.2 Only one STARTTLS command can be issued per session', // [C]
  ehloDomainRequired: '501 5.0.0 EHLO requires domain address', // [C]
  heloDomainRequired: '501 5.0.0 HELO requires domain address', // [C]
  invalidDomain: '501 5.5.4 Invalid domain name', // [C]
  invalidArguments: '501 5.5.4 Invalid arguments', // [C]
  unrecognizedParameter: '501 5.5.4 Unrecognized parameter', // [C]
  unsupportedBody: '501 5.5.4 Unsupported BODY type', // [C]
  invalidSender: '501 5.1.7 Invalid address', // [C]
  invalidRecipient: '501 5.1.3 Invalid address', // [C]
  utf8Sender: '501 5.1.9 UTF-8 addresses not supported', // [C] without the SMTPUTF8 parameter
  utf8Recipient: '501 5.1.8 UTF-8 addresses not supported', // [C]
  tooManyRecipients: '452 4.5.3 Too many recipients', // [C] Exchange Online allows 500 per message [D]
  tooLarge: '552 5.3.4 Message size exceeds fixed maximum message size', // [C]
  /** A DATA line longer than the line bound (the bounded reader cannot keep it). */
  invalidContent: '554 5.6.0 Invalid message content', // [C]
  submitFailed: '451 4.3.2 System not accepting network messages', // [C]

  // Endings (421 closes the connection) -------------------------------------------------------
  /** Armed failure `throttled`: Exchange's reply for a client over its submission rate. [C] */
  throttled: '421 4.4.2 Message submission rate for this client has exceeded the configured limit',
  /** Armed failure `unavailable`. [C] (Exchange: "Service not available"; RFC 5321's closing words.) */
  unavailable: '421 4.3.2 Service not available, closing transmission channel',
  tooManyErrors: '421 4.7.0 Too many errors on this connection, closing transmission channel', // [C]
  idle: '451 4.7.0 Timeout waiting for client input', // [C]
} as const;
