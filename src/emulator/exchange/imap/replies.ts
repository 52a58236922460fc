// What Exchange Online's IMAP front end says, word for word. Sources: reference section 8.3 [O]
// (greeting, capabilities, AUTHENTICATE, "authenticated but not connected", throttling, LOGOUT),
// real protocol logs quoted in public issue threads [O] (SELECT, COPYUID after MOVE, LIST, FLAGS,
// port-143 capabilities, IDLE) and Exchange's own IMAP4 request classes as published in public
// decompiled sources [C] for the remaining texts (they match every trace seen).

/** Capabilities before login on a TLS connection (993, or 143 after STARTTLS) [O]. */
export const CAPABILITY_PRE_AUTH = 'IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+';

/**
 * Port 143 before STARTTLS: no SASL mechanism at all, LOGINDISABLED and STARTTLS in their place
 * (node-imap #685 shows `IMAP4 IMAP4rev1 LOGINDISABLED STARTTLS UIDPLUS MOVE ID CHILDREN IDLE
 * NAMESPACE LITERAL+` from Exchange Online; UNSELECT has joined the list since) [O].
 */
export const CAPABILITY_PLAIN = 'IMAP4 IMAP4rev1 LOGINDISABLED STARTTLS UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+';

/** Capabilities once authenticated (also while "authenticated but not connected") [O]. */
export const CAPABILITY_POST_AUTH =
  'IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CLIENTACCESSRULES CLIENTNETWORKPRESENCELOCATION BACKENDAUTHENTICATE CHILDREN IDLE NAMESPACE LITERAL+';

/** The flags Exchange keeps; it has no other keywords [O: FLAGS/PERMANENTFLAGS in SELECT traces]. */
export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '$MDNSent'] as const;

export const IMAP = {
  greeting: (tag: string) => `* OK The Microsoft Exchange IMAP4 service is ready. ${tag}`,
  bye: '* BYE Connection closed. 14',
  logoutBye: '* BYE Microsoft Exchange Server IMAP4 server signing off.',
  continueLiteral: '+ Ready for additional command text.',
  continueAuth: '+ ',
  idleAccepted: '+ IDLE accepted, awaiting DONE command.',

  // Tagged texts (the tag and OK/NO/BAD are added by the session).
  commandError: 'Command Error. 12',
  notAscii: 'Command Error. 11',
  argumentError: 'Command Argument Error. 11',
  argumentCount: 'Command Argument Error. 12',
  invalidState: 'Command received in Invalid state.',
  notConnected: 'User is authenticated but not connected.',
  throttled: (ms: number) => `Request is throttled. Suggested Backoff Time: ${ms} milliseconds`,
  unavailable: 'Server Unavailable. 15',
  authOk: 'AUTHENTICATE completed.',
  authFailed: 'AUTHENTICATE failed.',
  authCanceled: 'The AUTH protocol exchange was canceled by the client.',
  loginFailed: 'LOGIN failed.',
  beginTls: 'Begin TLS negotiation now.',
  tlsFailed: 'Could not establish TLS connection.',
  tlsByte: '* BYE Connection is closed. 15',
  messageSetInvalid: 'The specified message set is invalid.',
  messagesGone: 'Some of the requested messages no longer exist.',
  mailboxGone: 'Mailbox has been deleted or moved.',
  doesNotExist: (name: string) => `${name} doesn't exist.`,
  noDestination: 'The destination mailbox could not be found.',
  appendNoFolder: 'Folder is not found.',
  keywordsUnsupported: '* NO Keywords are not supported!',
  alreadyExists: 'Mailbox already exists.',
  deleteNotFound: 'The requested item could not be found.',
  deleteHasChildren: 'The mailbox has inferiors.',
  deleteSpecial: (name: string) => `The special name ${name} cannot be used in this context.`,
  deleteFailed: 'DELETE failed.',
  renameTargetExists: 'Target folder already exists.',
  renameSourceMissing: 'Source folder is not found.',
  badCharset: '[BADCHARSET (US-ASCII UTF-8)] The specified charset is not supported.',
  idFailed: 'ID failed',
  completed: (command: string) => `${command} completed.`,
  // Exchange writes this one without a final period [C].
  idCompleted: 'ID completed',
} as const;

/** `* ID` answer: Exchange names its server class and major.minor version [C]. */
export const SERVER_ID = '("name" "Microsoft.Exchange.Imap4.Imap4Server" "version" "15.20")';
