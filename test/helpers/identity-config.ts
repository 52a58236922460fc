// A mailbridge configuration pointing at a test emulator: a custom cloud for its login host and
// CA, its three apps (public desktop, web with a secret, service with a certificate) and one
// mailbox per kind of grant.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_IDS } from '../../src/emulator/scenario/default.ts';
import { get } from 'node:http';
import { loadConfig, type LoadedConfig } from '../../src/config/load.ts';
import { login } from '../../src/identity/login.ts';
import { openStores } from '../../src/store/open-stores.ts';
import type { TokenStore } from '../../src/store/token-store.ts';
import { appById, userByUpn, type TestEmulator } from './emulator.ts';
import { signIn } from './browserless.ts';

export interface TestConfig {
  dir: string;
  file: string;
  dataDir: string;
}

export async function writeTestConfig(emu: TestEmulator, extra: Record<string, unknown> = {}): Promise<TestConfig> {
  // Inside the emulator's folder, so its close() removes it with everything else the test made.
  const dir = await mkdtemp(join(emu.dataDir, 'config-'));
  const web = appById(emu, DEFAULT_IDS.webApp);
  const service = appById(emu, DEFAULT_IDS.serviceApp);
  const cert = service.certificates[0]!;
  await writeFile(join(dir, 'service.crt'), cert.certPem!);
  await writeFile(join(dir, 'service.key'), cert.keyPem!, { mode: 0o600 });
  const ports = emu.running.mailPorts;
  const config = {
    dataDir: join(dir, 'data'),
    clouds: {
      emulator: {
        base: 'global',
        loginUrl: emu.url,
        imap: `imaps://localhost:${ports.imaps}`,
        pop: `pop3s://localhost:${ports.pop3s}`,
        smtp: `smtp://localhost:${ports.smtp}`,
        caFile: join(emu.dataDir, 'ca.crt'),
      },
    },
    apps: {
      desktop: { cloud: 'emulator', tenant: 'contoso.com', clientId: DEFAULT_IDS.desktopApp },
      web: { cloud: 'emulator', tenant: 'contoso.com', clientId: web.clientId, clientSecret: web.secrets[0]!.value },
      service: { cloud: 'emulator', tenant: DEFAULT_IDS.tenant, clientId: service.clientId, certificate: { certFile: 'service.crt', keyFile: 'service.key' } },
      'service-secret': { cloud: 'emulator', tenant: 'contoso.com', clientId: service.clientId, clientSecret: service.secrets[0]!.value },
    },
    mailboxes: {
      'alice@contoso.com': { app: 'desktop', grant: 'authorization_code', protocols: ['imap', 'pop', 'smtp'] },
      'bob@contoso.com': { app: 'desktop', grant: 'device_code', protocols: ['imap', 'smtp'] },
      'support@contoso.com': { app: 'service', grant: 'client_credentials', protocols: ['imap', 'pop', 'smtp'] },
      'shared@contoso.com': { app: 'service-secret', grant: 'client_credentials', protocols: ['imap'] },
    },
    ...extra,
  };
  const file = join(dir, 'config.json');
  await writeFile(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return { dir, file, dataDir: join(dir, 'data') };
}

/**
 * Signs a mailbox's grant in the way a person would: mailbridge's login prints the sign-in URL,
 * the test's "browser" signs in as `upn` (accepting consent), and the redirect reaches the loopback
 * listener.
 */
export async function signInMailbox(emu: TestEmulator, loaded: LoadedConfig, store: TokenStore, mailbox: string, upn = mailbox): Promise<void> {
  await login(loaded, store, mailbox, {
    mode: 'manual',
    say: (text) => {
      const url = /(https:\/\/\S+\/authorize\?\S+)/.exec(text)?.[1];
      if (!url) return;
      void signIn(url, { caPem: emu.caPem, username: upn, password: userByUpn(emu, upn).password, consent: 'accept' }).then((landed) => {
        get(landed.toString(), (res) => res.resume());
      });
    },
  });
}

/** Signs `mailbox` in for the configuration in `configFile`, through its own store (the way a CLI test starts). */
export async function signInConfigured(emu: TestEmulator, configFile: string, mailbox: string): Promise<void> {
  const loaded = await loadConfig(configFile, {});
  const stores = await openStores(loaded, { env: {} });
  try {
    await signInMailbox(emu, loaded, stores.tokens, mailbox);
  } finally {
    await stores.close();
  }
}
