// App passwords for the legacy proxy: `mbp-<id>-<secret>`, the client's id in clear so a login
// reads one row instead of trying every hash, and 130 random bits of secret. Only lower-case
// letters, digits and dashes, 39 characters: every legacy client takes that, and people can read
// it aloud. Stored as a salted scrypt hash in a self-describing string.
import type { ScryptOptions } from 'node:crypto';
import { ProxyClientStoreError, type ProxyClientRecord, type ProxyClientStore } from '../../store/proxy-client-store.ts';

// Through getBuiltinModule: an ESM import of node:crypto also loads WebCrypto, which a proxy never uses.
const { randomBytes, scrypt, timingSafeEqual } = process.getBuiltinModule('node:crypto');

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const ID_LENGTH = 8;
/** 26 characters of 5 bits: 130 bits. */
const SECRET_LENGTH = 26;
const PASSWORD = /^mbp-([a-z2-7]{8})-([a-z2-7]{26})$/;

/**
 * scrypt N=2^15, r=8, p=1 (32 MiB per run): about 95 ms on this project's 2-core test machine
 * (2^14 took 45 ms, 2^16 190 ms). Logins pay it once per password and process: the
 * authenticator caches verified passwords. The parameters travel in the hash string, so they can
 * be raised later without invalidating existing passwords.
 */
export const SCRYPT_PARAMS = { logN: 15, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;

/** Uniform base32: 256 is a multiple of 32, so keeping 5 bits of each random byte has no bias. */
function randomBase32(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += BASE32[b & 31];
  return out;
}

export function newClientId(): string {
  return randomBase32(ID_LENGTH);
}

export function generateAppPassword(id: string = newClientId()): { id: string; password: string } {
  return { id, password: `mbp-${id}-${randomBase32(SECRET_LENGTH)}` };
}

/** The client id and secret of an app password, or undefined when it is not shaped like one. */
export function parseAppPassword(password: string): { id: string; secret: string } | undefined {
  const m = PASSWORD.exec(password);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

function runScrypt(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  // Node refuses runs above maxmem (default 32 MiB), and N=2^15 r=8 needs just over 32 MiB.
  const options: ScryptOptions = { N, r, p, maxmem: 128 * N * r * p + 16 * 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password, salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (PHC string format, unpadded base64). */
export async function hashAppPassword(password: string, params: { logN: number; r: number; p: number } = SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await runScrypt(password, salt, params.logN, params.r, params.p);
  return `$scrypt$ln=${params.logN},r=${params.r},p=${params.p}$${salt.toString('base64').replace(/=+$/, '')}$${key.toString('base64').replace(/=+$/, '')}`;
}

const HASH = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,})\$([A-Za-z0-9+/]{16,})$/;

/**
 * True when the password matches the hash string. A malformed string, or parameters outside
 * sane bounds (a damaged row must not make a login run for minutes), simply do not match.
 */
export async function verifyAppPassword(password: string, hash: string): Promise<boolean> {
  const m = HASH.exec(hash);
  if (!m) return false;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (logN < 10 || logN > 20 || r < 1 || r > 32 || p < 1 || p > 4) return false;
  const salt = Buffer.from(m[4]!, 'base64');
  const expected = Buffer.from(m[5]!, 'base64');
  if (expected.length !== KEY_LENGTH) return false;
  const actual = await runScrypt(password, salt, logN, r, p);
  return timingSafeEqual(actual, expected);
}

/**
 * Creates a client with a fresh app password and returns both; the password exists only in this
 * return value. A taken id (one chance in a trillion per existing client) draws another.
 */
export async function createProxyClient(
  store: ProxyClientStore,
  input: { name: string; mailboxes: string[]; now?: number },
): Promise<{ client: ProxyClientRecord; password: string }> {
  for (let attempt = 0; ; attempt++) {
    const { id, password } = generateAppPassword();
    const passwordHash = await hashAppPassword(password);
    try {
      const client = await store.add({ id, name: input.name, mailboxes: input.mailboxes, passwordHash, createdAt: input.now ?? Date.now() });
      return { client, password };
    } catch (err) {
      if (err instanceof ProxyClientStoreError && err.code === 'id_taken' && attempt < 3) continue;
      throw err;
    }
  }
}
