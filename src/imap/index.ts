// IMAP for mailbridge: openImap (imapflow with tokens from the provider, one refresh-and-retry
// on a refused token) and ImapWatcher (IDLE on one folder across token expiry and drops).
export { connectImap, ImapError, openImap, type ImapContext, type ImapErrorCode, type ImapSession, type OpenImapOptions } from './connect.ts';
export { ImapWatcher, type ImapWatcherEvents, type ImapWatcherOptions, type ReconnectReason } from './watcher.ts';
