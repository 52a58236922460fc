// What the IMAP and SMTP client tests share: a configuration pointing at the emulator (or, for
// IMAP and SMTP, at a Dovecot + Postfix started with the emulator's keys and CA), a token store,
// signed-in mailboxes, and a TLS server certificate issued by the emulator's CA.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, type LoadedConfig } from '../../src/config/load.ts';
import { DEFAULT_IDS } from '../../src/emulator/scenario/default.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { issueServerCertificate } from '../../src/tls/certificates.ts';
import { type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig } from '../helpers/identity-config.ts';
export { signInMailbox } from '../helpers/identity-config.ts';

/** writeTestConfig's mailboxes, with bob signing in by authorization code too (so tests can sign him in). */
export const MAILBOXES = {
  'alice@contoso.com': { app: 'desktop', grant: 'authorization_code', protocols: ['imap', 'pop', 'smtp'] },
  'bob@contoso.com': { app: 'desktop', grant: 'authorization_code', protocols: ['imap', 'smtp'] },
  'support@contoso.com': { app: 'service', grant: 'client_credentials', protocols: ['imap', 'pop', 'smtp'] },
  'shared@contoso.com': { app: 'service-secret', grant: 'client_credentials', protocols: ['imap'] },
};

/**
 * The emulator cloud of writeTestConfig with some mail endpoints replaced (e.g. by Dovecot's);
 * `caFile: null` leaves the CA out (nothing but the system's CAs is trusted then).
 */
export function emulatorCloud(
  emu: TestEmulator,
  endpoints: { imap?: string; pop?: string; smtp?: string; caFile?: string | null } = {},
): Record<string, unknown> {
  const ports = emu.running.mailPorts;
  const caFile = endpoints.caFile === undefined ? join(emu.dataDir, 'ca.crt') : endpoints.caFile;
  return {
    base: 'global',
    loginUrl: emu.url,
    imap: endpoints.imap ?? `imaps://localhost:${ports.imaps}`,
    pop: endpoints.pop ?? `pop3s://localhost:${ports.pop3s}`,
    smtp: endpoints.smtp ?? `smtp://localhost:${ports.smtp}`,
    ...(caFile !== null ? { caFile } : {}),
  };
}

export async function writeMailConfig(
  emu: TestEmulator,
  endpoints: Parameters<typeof emulatorCloud>[1] = {},
): Promise<{ cfg: TestConfig; loaded: LoadedConfig }> {
  const cfg = await writeTestConfig(emu, { clouds: { emulator: emulatorCloud(emu, endpoints) }, mailboxes: MAILBOXES });
  return { cfg, loaded: await loadConfig(cfg.file, {}) };
}

export async function openStore(loaded: LoadedConfig): Promise<SqliteTokenStore> {
  return SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
}

/** A server certificate for localhost/127.0.0.1 signed by the emulator's CA (for Dovecot and Postfix). */
export async function peerTls(emu: TestEmulator): Promise<{ certPem: string; keyPem: string }> {
  const authority = { certPem: emu.caPem, keyPem: await readFile(join(emu.dataDir, 'ca.key'), 'utf8') };
  return issueServerCertificate(authority, { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
}

export const DOVECOT_ISSUER = `https://sts.windows.net/${DEFAULT_IDS.tenant}/`;

export function message(from: string, to: string, subject: string, body: string): string {
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    `Message-ID: <${subject.replace(/\W+/g, '.')}@mailbridge.test>`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    body,
    '',
  ].join('\r\n');
}

export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
