// The proxy's listeners as configured, made ready to run: TLS material (the configured
// certificate, or a self-signed one made once and kept in the data folder, whose fingerprint is
// printed so clients can pin it), and where each login goes upstream: the listener's own
// `upstream`, or the Exchange Online host of the mailbox's cloud.
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { parseMailUrl, type MailEndpoint } from '../config/clouds.ts';
import { ConfigError, type LoadedConfig } from '../config/load.ts';
import type { Protocol, ProxyListenerConfig } from '../config/schema.ts';
import { resolveGrant } from '../identity/grants.ts';
import type { TlsMaterial } from '../net/line-server.ts';

// Through getBuiltinModule, as a proxy at rest needs little of them: an ESM import of node:crypto
// also loads WebCrypto, and fs.promises (with its streams) loads only when a file is read.
const { X509Certificate } = process.getBuiltinModule('node:crypto');
const files = () => process.getBuiltinModule('node:fs').promises;

export interface UpstreamTargetBase {
  endpoint: MailEndpoint;
  caPem?: string;
}

export interface ResolvedListener {
  protocol: Protocol;
  host: string;
  /** As configured; 0 until started (then see RunningProxy). */
  port: number;
  security: ProxyListenerConfig['security'];
  tls?: TlsMaterial;
  /** SHA-256 fingerprint of the certificate, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint?: string;
  certificateFile?: string;
  /** A fixed upstream for every mailbox, when configured. */
  upstream?: UpstreamTargetBase;
}

const SCHEMES: Record<Protocol, string[]> = { imap: ['imap', 'imaps'], pop: ['pop3', 'pop3s'], smtp: ['smtp', 'smtps'] };

/** The certificate made for listeners without one; reused on every start so pinned fingerprints hold. */
async function generatedCertificate(dataDir: string, hosts: string[]): Promise<{ material: TlsMaterial; file: string }> {
  const dir = join(dataDir, 'proxy');
  const certFile = join(dir, 'self-signed.crt');
  const keyFile = join(dir, 'self-signed.key');
  try {
    return { material: { cert: await files().readFile(certFile, 'utf8'), key: await files().readFile(keyFile, 'utf8') }, file: certFile };
  } catch {
    // Not made yet.
  }
  const names = new Set(['localhost', hostname(), ...hosts.filter((h) => !isIP(h) && h !== '0.0.0.0')]);
  const ips = new Set(['127.0.0.1', '::1', ...hosts.filter((h) => isIP(h) && h !== '0.0.0.0' && h !== '::')]);
  // Loaded only here (once per data folder): @peculiar/x509 and its ASN.1 stack weigh ~10 MB in every proxy otherwise.
  const { createSelfSignedCertificate } = await import('../tls/certificates.ts');
  // The IPv4 addresses as DNS names too: fetchmail matches the host it was given against DNS names
  // and the common name only, so `poll 127.0.0.1` would fail on the IP entry alone.
  const ipv4AsNames = [...ips].filter((ip) => isIP(ip) === 4);
  const made = await createSelfSignedCertificate({ commonName: 'mailbridge proxy', dnsNames: [...names, ...ipv4AsNames], ipAddresses: [...ips], days: 3650 });
  await files().mkdir(dir, { recursive: true, mode: 0o700 });
  await files().writeFile(keyFile, made.keyPem, { mode: 0o600 });
  await files().writeFile(certFile, made.certPem, { mode: 0o644 });
  return { material: { cert: made.certPem, key: made.keyPem }, file: certFile };
}

export async function resolveListeners(loaded: LoadedConfig): Promise<ResolvedListener[]> {
  const configured = loaded.config.proxy.listeners;
  const problems: { path: string; message: string }[] = [];
  const out: ResolvedListener[] = [];
  let generated: { material: TlsMaterial; file: string } | undefined;
  for (const [i, l] of configured.entries()) {
    const path = `proxy.listeners.${i}`;
    const listener: ResolvedListener = { protocol: l.protocol, host: l.host, port: l.port, security: l.security };
    if (l.security !== 'plain') {
      if (l.certificate) {
        const certFile = resolve(loaded.baseDir, l.certificate.certFile);
        const keyFile = resolve(loaded.baseDir, l.certificate.keyFile);
        try {
          listener.tls = { cert: await files().readFile(certFile, 'utf8'), key: await files().readFile(keyFile, 'utf8') };
          listener.certificateFile = certFile;
        } catch (err) {
          problems.push({ path: `${path}.certificate`, message: `cannot read the certificate or key: ${(err as Error).message}` });
          continue;
        }
      } else {
        generated ??= await generatedCertificate(
          loaded.dataDir,
          configured.map((c) => c.host),
        );
        listener.tls = generated.material;
        listener.certificateFile = generated.file;
      }
      try {
        listener.fingerprint = new X509Certificate(listener.tls.cert).fingerprint256;
      } catch (err) {
        problems.push({ path: `${path}.certificate`, message: `not a PEM certificate: ${(err as Error).message}` });
        continue;
      }
    } else if (l.certificate) {
      problems.push({
        path: `${path}.certificate`,
        message: 'a plain listener uses no certificate; set "security" to "starttls" or "implicit", or remove "certificate"',
      });
    }
    if (l.upstream) {
      let endpoint: MailEndpoint;
      const scheme = l.upstream.split(':')[0]!.toLowerCase();
      try {
        endpoint = parseMailUrl(l.upstream);
      } catch (err) {
        problems.push({ path: `${path}.upstream`, message: (err as Error).message });
        continue;
      }
      if (!SCHEMES[l.protocol].includes(scheme)) {
        problems.push({
          path: `${path}.upstream`,
          message: `a ${l.protocol} listener needs a ${SCHEMES[l.protocol].join(':// or ')}:// upstream, not ${scheme}://`,
        });
        continue;
      }
      listener.upstream = { endpoint };
      if (l.upstreamCaFile) {
        const file = resolve(loaded.baseDir, l.upstreamCaFile);
        try {
          listener.upstream.caPem = await files().readFile(file, 'utf8');
        } catch (err) {
          problems.push({ path: `${path}.upstreamCaFile`, message: `cannot read ${file}: ${(err as Error).message}` });
        }
      }
    } else if (l.upstreamCaFile) {
      problems.push({ path: `${path}.upstreamCaFile`, message: 'set "upstream" too, or remove it (a mailbox cloud\'s CA is its "caFile")' });
    }
    out.push(listener);
  }
  if (problems.length > 0) throw new ConfigError(loaded.file, problems);
  return out;
}

/** Where a mailbox's login goes: the listener's upstream, else its cloud's host for the protocol. */
export class UpstreamResolver {
  readonly #loaded: LoadedConfig;
  readonly #caFiles = new Map<string, Promise<string>>();

  constructor(loaded: LoadedConfig) {
    this.#loaded = loaded;
  }

  async targetFor(listener: ResolvedListener, mailbox: string): Promise<UpstreamTargetBase> {
    if (listener.upstream) return listener.upstream;
    const grant = resolveGrant(this.#loaded, mailbox);
    const endpoint = grant.cloud[listener.protocol];
    const caFile = grant.cloud.caFile;
    if (!caFile) return { endpoint };
    let ca = this.#caFiles.get(caFile);
    if (!ca) {
      ca = files().readFile(caFile, 'utf8');
      this.#caFiles.set(caFile, ca);
      ca.catch(() => this.#caFiles.delete(caFile));
    }
    return { endpoint, caPem: await ca };
  }
}
