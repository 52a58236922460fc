// What Exchange Online's POP3 front end says (reference section 8.4). [O] observed in real
// traces, [D] documented, [C] our best guess where no trace exists.
export const POP3 = {
  greeting: (tag: string) => `+OK The Microsoft Exchange POP3 service is ready. ${tag}`, // [O]
  capaAfterTls: ['TOP', 'UIDL', 'SASL PLAIN XOAUTH2', 'USER'], // [O] port 995
  capaBeforeTls: ['TOP', 'UIDL', 'SASL PLAIN XOAUTH2', 'USER', 'STLS'], // [C] port 110
  stls: '+OK Begin TLS negotiation.', // [C]
  authSuccess: '+OK User successfully authenticated.', // [O]
  authFailure: '-ERR Authentication failure: unknown user name or bad password.', // [D]
  oneLineXoauth2: '-ERR Protocol error. Connection is closed. 10', // [O] getmail6 #256
  logonFailure: '-ERR Logon failure: unknown user name or bad password.', // [O] USER/PASS
  throttled: (ms: number) => `-ERR Request is throttled. Suggested Backoff Time: ${ms} milliseconds`, // [C] IMAP's text
  unavailable: '-ERR Server Unavailable. 21', // [C]
  notConnected: '-ERR User is authenticated but not connected.', // [C] IMAP's text
  tooManyConnections: '-ERR Too many concurrent connections for this mailbox.', // [C]
  notInThisState: '-ERR Command is not valid in this state.', // [O]
  unknownCommand: '-ERR Protocol error. 14', // [C]
  lineTooLong: '-ERR Protocol error. Line is too long.', // [C]
  noSuchMessage: '-ERR The specified message is out of range.', // [C]
  alreadyDeleted: '-ERR The specified message has been deleted.', // [C]
  badArguments: '-ERR Command argument error. 12', // [C]
  idle: '-ERR Connection timed out. Connection is closed. 12', // [C]
  quit: '+OK Microsoft Exchange Server POP3 server signing off.', // [O/C]
} as const;
