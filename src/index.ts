// `mailbridge`: open a configured mailbridge (configuration → token store → token provider →
// transports) and use it from your own code, with the error family every part of it throws.
//
//   import { openMailbridge } from 'mailbridge';
//   const mb = await openMailbridge({ configFile: 'config.json' });
//   const token = await mb.provider.getAccessToken('support@contoso.com', 'imap');
//   const source = await mb.source('support@contoso.com', 'imap');
//   const { messages } = await source.listNew();
//   await source.close();
//   await mb.close();
//
// Protocol clients are in 'mailbridge/pop3', 'mailbridge/imap' and 'mailbridge/smtp', the mailbox
// check in 'mailbridge/verify', the Microsoft 365 emulator in 'mailbridge/emulator'
// (docs/library.md). This module loads nothing heavy: a transport's library loads when it is used.

// The composition root.
export { openMailbridge, type Mailbridge, type OpenMailbridgeOptions } from './app/open-mailbridge.ts';

// The error family: every failure mailbridge reports on purpose is a MailbridgeError with a stable `code`.
export { isMailbridgeError, MailbridgeError, type ErrorCode, type MailbridgeErrorOptions } from './errors.ts';
export { ConfigError } from './config/load.ts';
export { TokenError, type TokenErrorCode } from './identity/token-errors.ts';
export { TokenStoreError, type TokenStoreErrorCode } from './store/token-store.ts';
export { ProxyClientStoreError, type ProxyClientStoreErrorCode } from './store/proxy-client-store.ts';
export { TransportError, type TransportErrorCode } from './transport/errors.ts';

// The transport seam: read from a mailbox (POP3, IMAP) and send through one (SMTP).
export type {
  Checkpoint,
  DoneAction,
  ImapCheckpoint,
  KnownIds,
  ListNewOptions,
  MailContext,
  MailSender,
  MailSource,
  MessageRef,
  NewMessages,
  SendEnvelope,
  SendResult,
  SourceProtocol,
  WatchOptions,
} from './transport/types.ts';

// Configuration, identity and stores.
export type { LoadedConfig } from './config/load.ts';
export type { AppConfig, CustomCloudConfig, GrantType, MailboxConfig, MailbridgeConfig, Protocol, StoreConfig } from './config/schema.ts';
export type { StatusChange } from './identity/alerts.ts';
export type { TokenProvider, TokenProviderOptions } from './identity/token-provider.ts';
export type { GrantMeta, GrantRecord, GrantStatus, TokenStore } from './store/token-store.ts';
export type { ProxyClientRecord, ProxyClientStore } from './store/proxy-client-store.ts';
export { SecretBox } from './store/encryption.ts';
