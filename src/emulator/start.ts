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
  close(): Promise<void>;
}

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
  const services: EmulatorService[] = [];
  const identity = await buildIdentityServer(state, {
    https: { key: serverCert.keyPem, cert: serverCert.certPem },
    caPath: authority.certPath,
    services: () => Object.fromEntries(services.map((s) => [s.name, s.url])),
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
  });
  await identity.listen({ host, port: options.port ?? 0 });
  const address = identity.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port ?? 0;
  const identityUrl = `https://${urlHost(host)}:${port}`;
  state.origin = identityUrl;
  services.push({ name: 'identity', url: identityUrl });

  return {
    identityUrl,
    caPath: authority.certPath,
    caPem: authority.certPem,
    dovecotKeysDir,
    scenarioSource: source,
    services,
    state,
    close: async () => {
      await identity.close();
    },
  };
}
