// `mailbridge/verify`: what `mailbridge verify` does, for programs. For each protocol of a mailbox
// it runs the same steps (DNS, TCP, TLS, greeting, capabilities, token, login, a touch of the
// mailbox) and returns the report the command prints, with the named cause and fix of a failure.
//
//   const mb = await openMailbridge({ configFile });
//   const report = await verify(mb, 'support@contoso.com', { protocols: ['imap', 'pop'] });
//   if (!report.ok) console.log(renderText(report, { symbols: false }));
//
// Problems found before any protocol runs (configuration, no grant at all) are thrown as
// MailbridgeErrors (ConfigError, TokenError); what a server or the identity platform refuses is in
// the report, not thrown.
import type { LoadedConfig } from '../config/load.ts';
import type { TokenProvider } from '../identity/token-provider.ts';
import type { TokenStore } from '../store/token-store.ts';
import { verifyMailbox, type VerifyOptions } from './run.ts';
import type { VerifyReport } from './types.ts';

export { verifyMailbox, type VerifyDeps, type VerifyOptions } from './run.ts';
export { renderJson, renderText, type RenderOptions } from './render.ts';
export { CAUSE_IDS, type Cause, type CauseId, type ProtocolReport, type StepName, type StepResult, type TokenSummary, type VerifyReport } from './types.ts';

/** The parts of an open mailbridge (`openMailbridge()` from 'mailbridge') that verify uses. */
export interface VerifyTarget {
  readonly config: LoadedConfig;
  readonly tokens: TokenStore;
  readonly provider: TokenProvider;
}

/** Verifies one configured mailbox with an open mailbridge: its configuration, token store and provider. */
export function verify(mailbridge: VerifyTarget, mailbox: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  return verifyMailbox({ loaded: mailbridge.config, store: mailbridge.tokens, provider: mailbridge.provider }, mailbox, options);
}
