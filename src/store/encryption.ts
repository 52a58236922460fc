// Encryption at rest: AES-256-GCM with a 256-bit key from MAILBRIDGE_KEY (base64) or a key file
// created with mode 0600 on first use. Each sealed value is bound to its record's name (as
// additional data), so a ciphertext copied onto another record does not decrypt.
import { dirname } from 'node:path';
import { TokenStoreError } from './token-store.ts';

// Through getBuiltinModule, as `mailbridge token` needs them: ESM imports of node:crypto and
// node:fs also load WebCrypto and fs.promises with its streams. Making a key file loads node:fs/promises.
const { createCipheriv, createDecipheriv, randomBytes } = process.getBuiltinModule('node:crypto');
const { closeSync, fstatSync, openSync, readFileSync } = process.getBuiltinModule('node:fs');

const VERSION = 'v1';

export class SecretBox {
  readonly #key: Buffer;
  /** Where the key came from, for messages (never the key). */
  readonly source: string;

  constructor(key: Buffer, source: string) {
    if (key.length !== 32) throw new TokenStoreError('key_unreadable', `${source} must hold 32 bytes (base64 of 32 random bytes), not ${key.length}`);
    this.#key = key;
    this.source = source;
  }

  seal(plaintext: string, boundTo: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(boundTo));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join('.');
  }

  open(sealed: string, boundTo: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== VERSION || !iv || !tag || body === undefined) {
      throw new TokenStoreError(
        'corrupt_record',
        `the stored secrets of ${boundTo} are damaged (not a ${VERSION} sealed value); sign in again to replace them`,
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64'));
      decipher.setAAD(Buffer.from(boundTo));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new TokenStoreError(
        'cannot_decrypt',
        `cannot decrypt the stored tokens of ${boundTo} with the key from ${this.source}: it is not the key they were encrypted with (or the record was altered). Nothing was changed; restore the right key (MAILBRIDGE_KEY or the key file) and try again`,
      );
    }
  }
}

export interface LoadKeyOptions {
  /** Asked before a missing key file is made: an error here (grants sealed with the lost key) is thrown instead. */
  whyNoNewKey?: () => Error | undefined;
}

/** Refuses a key file that group or others may read, as ssh refuses such a private key. */
function refuseOpenKeyFile(keyFile: string, fd: number): void {
  const stats = fstatSync(fd);
  if (!stats.isFile()) throw new TokenStoreError('key_unreadable', `cannot read the key file ${keyFile}: it is not a file`);
  if (process.platform === 'win32') return;
  const mode = stats.mode & 0o777;
  if ((mode & 0o077) === 0) return;
  const who = [mode & 0o070 ? 'its group' : '', mode & 0o007 ? 'other users' : ''].filter(Boolean).join(' and ');
  throw new TokenStoreError(
    'key_unreadable',
    `the key file ${keyFile} can be read by ${who} (mode ${mode.toString(8).padStart(4, '0')}): a key others can read protects nothing, so it is not used. Run: chmod 600 ${keyFile}`,
  );
}

/** The key file's text, or undefined when there is none; refused when others may read it. */
function readKeyFile(keyFile: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(keyFile, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TokenStoreError('key_unreadable', `cannot read the key file ${keyFile}: ${(err as Error).message}`);
  }
  try {
    refuseOpenKeyFile(keyFile, fd);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** The key: MAILBRIDGE_KEY if set, else the key file (made with mode 0600 when it does not exist and nothing was sealed with a lost one). */
export async function loadKey(keyFile: string, env: NodeJS.ProcessEnv = process.env, options: LoadKeyOptions = {}): Promise<SecretBox> {
  if (env.MAILBRIDGE_KEY) return new SecretBox(Buffer.from(env.MAILBRIDGE_KEY, 'base64'), 'MAILBRIDGE_KEY');
  let text = readKeyFile(keyFile);
  if (text === undefined) {
    const refusal = options.whyNoNewKey?.();
    if (refusal) throw refusal;
    const { chmod, mkdir, readFile, writeFile } = await import('node:fs/promises');
    await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 });
    text = randomBytes(32).toString('base64');
    // 'wx': never overwrite a key another process created a moment ago.
    try {
      await writeFile(keyFile, `${text}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      text = await readFile(keyFile, 'utf8');
    }
    await chmod(keyFile, 0o600);
  }
  return new SecretBox(Buffer.from(text.trim(), 'base64'), `the key file ${keyFile}`);
}
