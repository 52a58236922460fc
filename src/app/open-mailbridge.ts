// The composition root: configuration → stores → token provider → transports, built in this one
// place for every command line command, the library and (later) `mailbridge serve`. Whatever a
// caller already has is injected instead of built (a loaded configuration, a key, the provider's
// clock and retries, an alert hook), as msal-node's configuration injects its network and cache.
// Heavy modules load only when used: the configuration's schema when a file must be read, the
// transports (imapflow, nodemailer, the POP3 client) when a source or a sender is asked for.
import type { LoadedConfig } from '../config/load.ts';
import type { StatusChange } from '../identity/alerts.ts';
import type { TokenProvider, TokenProviderOptions } from '../identity/token-provider.ts';
import type { SecretBox } from '../store/encryption.ts';
import { openStores } from '../store/open-stores.ts';
import type { ProxyClientStore } from '../store/proxy-client-store.ts';
import type { TokenStore } from '../store/token-store.ts';
import type { OpenMailSourceOptions } from '../transport/open.ts';
import type { MailSender, MailSource, SourceProtocol } from '../transport/types.ts';

type OpenMailSenderOptions = Parameters<(typeof import('../transport/open.ts'))['openMailSender']>[2];

export interface OpenMailbridgeOptions {
  /** The configuration file (default $MAILBRIDGE_CONFIG, else ~/.config/mailbridge/config.json); ignored with `config`. */
  configFile?: string;
  /** An already loaded configuration, used as it is. */
  config?: LoadedConfig;
  /** Where configuration overrides (MAILBRIDGE__…) and MAILBRIDGE_KEY are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The key that seals the grants' secrets (default MAILBRIDGE_KEY, else `<dataDir>/key`). */
  key?: SecretBox;
  /** The token provider's settings: its clock (`now`), `retries`, timeouts, lease length. */
  provider?: Omit<TokenProviderOptions, 'loaded' | 'store' | 'onStatusChange'>;
  /** Told of every change of a grant's status, besides the configured alert command and URL. */
  onStatusChange?: (change: StatusChange) => void;
}

export interface Mailbridge {
  readonly config: LoadedConfig;
  readonly tokens: TokenStore;
  /** Opened on first use (only the proxy uses it). */
  readonly proxyClients: ProxyClientStore;
  /** The proxy client store, opened now if it is not yet: a problem with it is reported now (the proxy at start-up). */
  openProxyClients(): Promise<ProxyClientStore>;
  readonly provider: TokenProvider;
  /** A mailbox to read from, over POP3 or IMAP (default: what the mailbox is configured for). */
  source(mailbox: string, protocol?: SourceProtocol, options?: OpenMailSourceOptions): Promise<MailSource>;
  /** A mailbox to send through (SMTP). */
  sender(mailbox: string, options?: OpenMailSenderOptions): Promise<MailSender>;
  /** Waits for the provider's pending writes and alerts, then closes the stores (once). */
  close(): Promise<void>;
}

/** The file (default from `env`: $MAILBRIDGE_CONFIG, else ~/.config/mailbridge/config.json), with the schema loaded only now. */
async function loadConfiguration(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  const { defaultConfigPath, loadConfig } = await import('../config/load.ts');
  return loadConfig(file ?? defaultConfigPath(env), env);
}

export async function openMailbridge(options: OpenMailbridgeOptions = {}): Promise<Mailbridge> {
  const config = options.config ?? (await loadConfiguration(options.configFile, options.env));
  const stores = await openStores(config, { ...(options.key ? { key: options.key } : {}), ...(options.env ? { env: options.env } : {}) });
  let provider: TokenProvider;
  try {
    const { TokenProvider } = await import('../identity/token-provider.ts');
    provider = new TokenProvider({
      ...options.provider,
      loaded: config,
      store: stores.tokens,
      ...(options.onStatusChange ? { onStatusChange: options.onStatusChange } : {}),
    });
  } catch (err) {
    await stores.close();
    throw err;
  }
  const context = { loaded: config, provider };
  let closing: Promise<void> | undefined;
  return {
    config,
    tokens: stores.tokens,
    proxyClients: stores.proxyClients,
    openProxyClients: () => stores.openProxyClients(),
    provider,
    async source(mailbox, protocol, sourceOptions) {
      const { openMailSource } = await import('../transport/open.ts');
      return openMailSource(context, mailbox, protocol, sourceOptions);
    },
    async sender(mailbox, senderOptions) {
      const { openMailSender } = await import('../transport/open.ts');
      return openMailSender(context, mailbox, senderOptions);
    },
    close() {
      closing ??= provider.settled().finally(() => stores.close());
      return closing;
    },
  };
}
