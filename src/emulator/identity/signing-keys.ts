// The key the emulator signs tokens with, kept in the data folder so tokens stay valid across
// restarts. Published as JWKS (kid == x5t == SHA-1 thumbprint of its certificate, as Entra does)
// and exported in the folder layout Dovecot's local JWT validation reads.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSelfSignedCertificate, thumbprints } from '../../tls/certificates.ts';
import { writeFileAtomic } from '../scenario/load.ts';

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  certPem: string;
  publicKeyPem: string;
}

export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const keyPath = join(dataDir, 'signing-key.pem');
  const certPath = join(dataDir, 'signing-cert.pem');
  let keyPem: string;
  let certPem: string;
  try {
    [keyPem, certPem] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
  } catch {
    const made = await createSelfSignedCertificate({ commonName: 'accounts.accesscontrol.windows.net', days: 1825 });
    await writeFileAtomic(keyPath, made.keyPem);
    await writeFileAtomic(certPath, made.certPem, 0o644);
    ({ keyPem, certPem } = made);
  }
  const privateKey = createPrivateKey(keyPem);
  const publicKey = createPublicKey(privateKey);
  return {
    kid: thumbprints(certPem).x5t,
    privateKey,
    publicKey,
    certPem,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The JWKS document of reference section 1.4. */
export function jwksDocument(key: SigningKey, issuer: string): object {
  const jwk = key.publicKey.export({ format: 'jwk' });
  const x5c = key.certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return { keys: [{ kty: 'RSA', use: 'sig', kid: key.kid, x5t: key.kid, n: jwk.n, e: jwk.e, x5c: [x5c], issuer }] };
}

/**
 * Writes the public key as `<dir>/default/RS256/<kid>` (Dovecot's `local_validation_key_dict`
 * with `fs:posix:prefix=<dir>/`), so a real Dovecot accepts the emulator's tokens.
 */
export async function exportDovecotKeys(key: SigningKey, dir: string): Promise<string> {
  const folder = join(dir, 'default', 'RS256');
  await mkdir(folder, { recursive: true });
  const path = join(folder, key.kid);
  await writeFileAtomic(path, key.publicKeyPem, 0o644);
  return path;
}
