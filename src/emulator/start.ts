// `mailbridge emulator`: starts the emulated Microsoft services on loopback with their own CA.
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createAuthority, issueServerCertificate, type CertificateWithKey } from '../tls/certificates.ts';
import { EmulatorClock } from './clock.ts';
import { loadScenario, writeFileAtomic } from './scenario/load.ts';
import { buildIdentityServer } from './identity/server.ts';
import { exportDovecotKeys, loadOrCreateSigningKey } from './identity/signing-keys.ts';
import { IdentityState } from './identity/state.ts';
import { registerExchangeAdminRoutes } from './exchange/admin-routes.ts';
import { ExchangeContext } from './exchange/context.ts';
import { MailStore } from './exchange/mail-store.ts';
import { startImapServer } from './exchange/imap/server.ts';
import { startPop3Server } from './exchange/pop3/server.ts';
import { startSmtpServer } from './exchange/smtp/server.ts';
import type { RunningLineServer } from '../net/line-server.ts';
import type { EmulatorLogger } from './identity/server.ts';

export interface EmulatorOptions {
  /** Where the CA, keys and scenario live between runs. */
  dataDir: string;
  /** Address to listen on; loopback unless told otherwise. */
  host?: string;
  /** First port; each further service takes the next one. 0 picks free ports. */
  port?: number;
  scenarioFile?: string;
  /** Request logs (pino, via Fastify): off by default. */
  logger?: EmulatorLogger;
}

export interface EmulatorService {
  name: string;
  url: string;
}

export interface RunningEmulator {
  identityUrl: string;
  caPath: string;
  caPem: string;
  /** Folder holding the signing key in Dovecot's `keys/<azp>/<alg>/<kid>` layout. */
  dovecotKeysDir: string;
  scenarioSource: string;
  services: EmulatorService[];
  state: IdentityState;
  exchange: ExchangeContext;
  /** Ports of the mail servers, by service name (`pop3s`, `pop3`, `imaps`, `imap`, `smtp`). */
  mailPorts: Record<MailServiceName, number>;
  close(): Promise<void>;
}

export type MailServiceName = 'pop3s' | 'pop3' | 'imaps' | 'imap' | 'smtp';

/** The mail servers in the order their ports follow the identity port. */
const MAIL_SERVICES: {
  name: MailServiceName;
  scheme: string;
  start: (c: ExchangeContext, o: { host: string; port: number; implicitTls: boolean }) => Promise<RunningLineServer>;
  implicitTls: boolean;
}[] = [
  { name: 'pop3s', scheme: 'pop3s', start: startPop3Server, implicitTls: true },
  { name: 'pop3', scheme: 'pop3', start: startPop3Server, implicitTls: false },
  { name: 'imaps', scheme: 'imaps', start: startImapServer, implicitTls: true },
  { name: 'imap', scheme: 'imap', start: startImapServer, implicitTls: false },
  { name: 'smtp', scheme: 'smtp', start: startSmtpServer, implicitTls: false },
];

async function loadOrCreateAuthority(dataDir: string): Promise<CertificateWithKey & { certPath: string }> {
  const certPath = join(dataDir, 'ca.crt');
  const keyPath = join(dataDir, 'ca.key');
  try {
    const [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    return { certPem, keyPem, certPath };
  } catch {
    const made = await createAuthority('mailbridge emulator local CA');
    await writeFileAtomic(keyPath, made.keyPem);
    await writeFileAtomic(certPath, made.certPem, 0o644);
    return { ...made, certPath };
  }
}

/** The names clients may use to reach a server bound to `host`. */
function serverNames(host: string): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = new Set(['localhost']);
  const ipAddresses = new Set(['127.0.0.1', '::1']);
  if (isIP(host)) ipAddresses.add(host);
  else dnsNames.add(host);
  return { dnsNames: [...dnsNames], ipAddresses: [...ipAddresses].filter((ip) => ip !== '0.0.0.0' && ip !== '::') };
}

function urlHost(host: string): string {
  if (host === '127.0.0.1' || host === '::1' || host === '0.0.0.0' || host === '::') return 'localhost';
  return isIP(host) === 6 ? `[${host}]` : host;
}

export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  const host = options.host ?? '127.0.0.1';
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const authority = await loadOrCreateAuthority(options.dataDir);
  const serverCert = await issueServerCertificate(authority, { commonName: 'localhost', ...serverNames(host) });
  const { scenario, source } = await loadScenario(options.dataDir, options.scenarioFile);
  const signingKey = await loadOrCreateSigningKey(options.dataDir);
  const dovecotKeysDir = join(options.dataDir, 'dovecot-keys');
  await exportDovecotKeys(signingKey, dovecotKeysDir);

  const state = new IdentityState(scenario, new EmulatorClock(), signingKey);
  const exchange = new ExchangeContext(state, new MailStore(join(options.dataDir, 'mailboxes')), { key: serverCert.keyPem, cert: serverCert.certPem });
  const services: EmulatorService[] = [];
  const identity = await buildIdentityServer(state, {
    https: { key: serverCert.keyPem, cert: serverCert.certPem },
    caPath: authority.certPath,
    services: () => Object.fromEntries(services.map((s) => [s.name, s.url])),
    extraRoutes: (app) => registerExchangeAdminRoutes(app, exchange),
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
  });
  const basePort = options.port ?? 0;
  await identity.listen({ host, port: basePort });
  const address = identity.server.address();
  const port = typeof address === 'object' && address ? address.port : basePort;
  const identityUrl = `https://${urlHost(host)}:${port}`;
  state.origin = identityUrl;
  services.push({ name: 'identity', url: identityUrl });

  const mailServers: RunningLineServer[] = [];
  const mailPorts = {} as Record<MailServiceName, number>;
  try {
    for (const [i, service] of MAIL_SERVICES.entries()) {
      const server = await service.start(exchange, { host, port: basePort === 0 ? 0 : basePort + i + 1, implicitTls: service.implicitTls });
      mailServers.push(server);
      mailPorts[service.name] = server.port;
      services.push({ name: service.name, url: `${service.scheme}://${urlHost(host)}:${server.port}` });
    }
  } catch (err) {
    await Promise.all(mailServers.map((s) => s.close()));
    await identity.close();
    throw err;
  }

  return {
    identityUrl,
    caPath: authority.certPath,
    caPem: authority.certPem,
    dovecotKeysDir,
    scenarioSource: source,
    services,
    state,
    exchange,
    mailPorts,
    close: async () => {
      await Promise.all(mailServers.map((s) => s.close()));
      await identity.close();
      await exchange.store.flushAll();
    },
  };
}
