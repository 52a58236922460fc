// A running mailbridge proxy for a test: a configuration pointing at the test emulator (and, when
// given, listeners whose upstream is another server such as Dovecot), the token store with the
// delegated mailboxes signed in, app passwords made with the real store, and every log line kept
// so the test can look for secrets in it.
import { Writable } from 'node:stream';
import pino from 'pino';
import { openMailbridge, type OpenMailbridgeOptions } from '../../src/app/open-mailbridge.ts';
import type { LoadedConfig } from '../../src/config/load.ts';
import type { ProxyListenerConfig } from '../../src/config/schema.ts';
import type { TokenProvider } from '../../src/identity/token-provider.ts';
import { ProxyAuthenticator } from '../../src/proxy/clients/authenticator.ts';
import { createProxyClient } from '../../src/proxy/clients/app-password.ts';
import { startProxy, type RunningProxy } from '../../src/proxy/server.ts';
import type { ProxyClientStore } from '../../src/store/proxy-client-store.ts';
import type { TokenStore } from '../../src/store/token-store.ts';
import type { TestEmulator } from './emulator.ts';
import { signInMailbox, writeTestConfig, type TestConfig } from './identity-config.ts';

export type ListenerInput = Partial<ProxyListenerConfig> & Pick<ProxyListenerConfig, 'protocol'>;

export interface TestProxyOptions {
  listeners: ListenerInput[];
  /** Delegated mailboxes to sign in first (default alice@contoso.com). */
  signIn?: string[];
  /** Other settings under "proxy". */
  proxy?: Record<string, unknown>;
  /** Changes to the configuration before it is written. */
  config?: Record<string, unknown>;
  debug?: boolean;
  provider?: OpenMailbridgeOptions['provider'];
}

export interface TestProxy {
  config: TestConfig;
  loaded: LoadedConfig;
  store: TokenStore;
  clients: ProxyClientStore;
  provider: TokenProvider;
  running: RunningProxy;
  /** Every JSON log line the proxy wrote (audit and, with debug, transcript). */
  logLines: string[];
  /** The port of the n-th listener of a protocol. */
  port(protocol: ProxyListenerConfig['protocol'], n?: number): number;
  /** A new app password for these mailboxes. */
  addClient(name: string, mailboxes: string[]): Promise<string>;
  /** Audit lines (parsed). */
  audits(): Record<string, unknown>[];
  /** The first audit line matching `match`, waiting up to 10 s for the session to end (a client gone without a goodbye ends it 2 s later). */
  waitForAudit(match: (audit: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startTestProxy(emu: TestEmulator, options: TestProxyOptions): Promise<TestProxy> {
  const listeners = options.listeners.map((l) => ({ port: 0, ...l }));
  const config = await writeTestConfig(emu, { proxy: { listeners, ...options.proxy }, ...options.config });
  const mailbridge = await openMailbridge({ configFile: config.file, provider: { retries: 0, ...options.provider } });
  const { config: loaded, tokens: store, proxyClients: clients, provider } = mailbridge;
  for (const mailbox of options.signIn ?? ['alice@contoso.com']) await signInMailbox(emu, loaded, store, mailbox);
  const authenticator = new ProxyAuthenticator({
    store: clients,
    mailboxes: () => Object.keys(loaded.config.mailboxes),
    failedLogins: loaded.config.proxy.failedLogins,
  });
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const logger = pino({ level: options.debug ? 'debug' : 'info' }, sink);
  const audits = () => logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'proxy session');
  const running = await startProxy({ loaded, provider, authenticator, logger, debug: options.debug ?? false, upstreamTimeoutMs: 10_000 });
  return {
    config,
    loaded,
    store,
    clients,
    provider,
    running,
    logLines,
    port: (protocol, n = 0) => {
      const found = running.listeners.filter((l) => l.protocol === protocol)[n];
      if (!found) throw new Error(`no ${protocol} listener #${n}`);
      return found.port;
    },
    addClient: async (name, mailboxes) => (await createProxyClient(clients, { name, mailboxes })).password,
    audits,
    waitForAudit: async (match) => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const found = audits().find(match);
        if (found) return found;
        if (Date.now() > deadline)
          throw new Error(
            `no such audit line; have:\n${audits()
              .map((a) => JSON.stringify(a))
              .join('\n')}`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: async () => {
      await running.close(0);
      await mailbridge.close();
    },
  };
}
