// X.509 material for loopback services: a local certificate authority, the server
// certificates it issues, and self-signed certificates for app credentials.
// @peculiar/x509 builds the certificates; Node's WebCrypto makes the keys.
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { webcrypto, createHash, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const RSA: webcrypto.RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
};

export interface CertificateWithKey {
  certPem: string;
  keyPem: string;
}

export interface CertificateRequest {
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  days?: number;
  notBefore?: Date;
}

const DAY_MS = 86_400_000;

async function newKeyPair(): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const body = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

async function importPrivateKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, RSA, true, ['sign']);
}

function validity(days: number, notBefore?: Date): { notBefore: Date; notAfter: Date } {
  // Back-date a little so a peer whose clock is slightly behind still accepts it.
  const start = notBefore ?? new Date(Date.now() - 3_600_000);
  return { notBefore: start, notAfter: new Date(start.getTime() + days * DAY_MS) };
}

/** A certificate authority for signing loopback server certificates. */
export async function createAuthority(commonName: string, days = 3650): Promise<CertificateWithKey> {
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: RSA,
    ...validity(days),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

function subjectAltNames(request: CertificateRequest): x509.JsonGeneralName[] {
  return [
    ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
}

/** A TLS server certificate for the given names, signed by `authority`. */
export async function issueServerCertificate(authority: CertificateWithKey, request: CertificateRequest): Promise<CertificateWithKey> {
  const keys = await newKeyPair();
  const caCert = new x509.X509Certificate(authority.certPem);
  const names = subjectAltNames(request);
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${request.commonName}`,
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: await importPrivateKey(authority.keyPem),
    signingAlgorithm: RSA,
    ...validity(request.days ?? 825, request.notBefore),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/**
 * A self-signed certificate, as an admin uploads to an app registration, or (with names) as a
 * local TLS server presents when no certificate was configured.
 */
export async function createSelfSignedCertificate(request: CertificateRequest): Promise<CertificateWithKey> {
  const keys = await newKeyPair();
  const names = subjectAltNames(request);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${request.commonName}`,
    keys,
    signingAlgorithm: RSA,
    ...validity(request.days ?? 730, request.notBefore),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])] : []),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

export interface Thumbprints {
  /** Hex SHA-1 of the DER certificate, as the Entra portal shows it. */
  sha1Hex: string;
  sha256Hex: string;
  /** base64url forms, as they travel in the JOSE `x5t` and `x5t#S256` headers. */
  x5t: string;
  x5tS256: string;
}

export function thumbprints(certPem: string): Thumbprints {
  const der = new X509Certificate(certPem).raw;
  const sha1 = createHash('sha1').update(der).digest();
  const sha256 = createHash('sha256').update(der).digest();
  return {
    sha1Hex: sha1.toString('hex').toUpperCase(),
    sha256Hex: sha256.toString('hex').toUpperCase(),
    x5t: sha1.toString('base64url'),
    x5tS256: sha256.toString('base64url'),
  };
}
