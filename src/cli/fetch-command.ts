// `mailbridge fetch <mailbox>`: copy a mailbox's messages to .eml files, over POP3 or IMAP, for a
// person at a terminal. Each message is streamed to a temporary file and renamed into place, so a
// crash never leaves half a message under its final name; with --delete a message is removed
// upstream only after its file is safely on disk. Progress goes to stderr, file paths to stdout.
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolveGrant } from '../identity/grants.ts';
import { Pop3Client, Pop3Error } from '../pop3/index.ts';
import { openImap } from '../imap/index.ts';
import { EXIT } from './exit-codes.ts';
import { openIdentity, runIdentityCommand, type IdentityContext } from './identity-context.ts';

interface FetchFlags {
  config?: string;
  protocol?: string;
  out: string;
  delete?: boolean;
}

/** A name that is safe as a file name whatever the server's unique id holds. */
function fileName(id: string): string {
  return `${id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120)}.eml`;
}

export interface FetchOptions {
  protocol: 'pop' | 'imap';
  dir: string;
  delete: boolean;
  /** Told of each file written (the command prints its path). */
  onFile?: (path: string) => void;
  /** Progress lines on stderr (the command: yes). */
  progress?: boolean;
}

class Progress {
  #count = 0;
  #bytes = 0;
  #last = 0;
  readonly #total: number;
  readonly #shown: boolean;
  readonly #tty = process.stderr.isTTY;

  constructor(total: number, shown: boolean) {
    this.#total = total;
    this.#shown = shown;
  }

  add(bytes: number): void {
    this.#count++;
    this.#bytes += bytes;
    if (!this.#shown) return;
    const now = Date.now();
    if (now - this.#last >= 1000 || this.#count === this.#total) {
      this.#last = now;
      const line = `fetched ${this.#count}/${this.#total} (${(this.#bytes / 1e6).toFixed(1)} MB)`;
      process.stderr.write(this.#tty ? `\r${line}${this.#count === this.#total ? '\n' : ''}` : `${line}\n`);
    }
  }
}

/** Streams one message into `dir/name` through a temporary file; returns its size. */
async function save(dir: string, name: string, message: Readable): Promise<number> {
  const tmp = join(dir, `.${name}.${process.pid}.part`);
  let size = 0;
  message.on('data', (chunk: Buffer) => (size += chunk.length));
  try {
    await pipeline(message, createWriteStream(tmp, { mode: 0o600 }));
    await rename(tmp, join(dir, name));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return size;
}

async function caOf(ctx: IdentityContext, mailbox: string): Promise<string | undefined> {
  const { cloud } = resolveGrant(ctx.loaded, mailbox);
  return cloud.caFile ? readFile(cloud.caFile, 'utf8') : undefined;
}

async function fetchPop(ctx: IdentityContext, mailbox: string, options: FetchOptions): Promise<number> {
  const grant = resolveGrant(ctx.loaded, mailbox);
  const endpoint = grant.cloud.pop;
  const ca = await caOf(ctx, mailbox);
  for (let attempt = 0; ; attempt++) {
    const client = await Pop3Client.connect({ host: endpoint.host, port: endpoint.port, security: endpoint.security, ...(ca ? { ca } : {}) });
    try {
      const token = await ctx.provider.getAccessToken(grant.address, 'pop');
      try {
        await client.authXoauth2(grant.address, token);
      } catch (err) {
        // One refresh-and-retry: the server may have refused a token that still looked fresh to us.
        if (attempt === 0 && err instanceof Pop3Error && err.code === 'auth') {
          ctx.provider.invalidate(grant.address, 'pop', token);
          continue;
        }
        throw err;
      }
      return await download(client, options);
    } finally {
      client.close();
    }
  }
}

async function download(client: Pop3Client, options: FetchOptions): Promise<number> {
  const dir = options.dir;
  const have = new Set(await readdir(dir));
  const wanted = (await client.uidl()).filter((u) => !have.has(fileName(u.uid)));
  const progress = new Progress(wanted.length, options.progress ?? false);
  const names = new Map(wanted.map((u) => [u.n, fileName(u.uid)]));
  await client.retrMany(
    wanted.map((u) => u.n),
    async (n, message) => {
      const name = names.get(n)!;
      progress.add(await save(dir, name, message));
      options.onFile?.(join(dir, name));
    },
  );
  if (options.delete) for (const u of wanted) await client.dele(u.n);
  await client.quit();
  return wanted.length;
}

async function fetchImap(ctx: IdentityContext, mailbox: string, options: FetchOptions): Promise<number> {
  const dir = options.dir;
  const imap = await openImap(ctx, mailbox);
  try {
    const lock = await imap.getMailboxLock('INBOX');
    try {
      const status = imap.mailbox;
      const validity = status ? String(status.uidValidity) : '0';
      const have = new Set(await readdir(dir));
      const uids = ((await imap.search({ all: true }, { uid: true })) || []).filter((uid) => !have.has(fileName(`${validity}-${uid}`)));
      const progress = new Progress(uids.length, options.progress ?? false);
      for (const uid of uids) {
        const { content } = await imap.download(String(uid), undefined, { uid: true });
        if (!content) throw new Error(`the server sent no content for message UID ${uid}`);
        const name = fileName(`${validity}-${uid}`);
        progress.add(await save(dir, name, content));
        options.onFile?.(join(dir, name));
      }
      if (options.delete && uids.length > 0) await imap.messageDelete(uids, { uid: true });
      return uids.length;
    } finally {
      lock.release();
    }
  } finally {
    await imap.logout().catch(() => imap.close());
  }
}

/** Copies the mailbox's new messages into `options.dir`; returns how many were written. */
export async function fetchMailbox(ctx: IdentityContext, mailbox: string, options: FetchOptions): Promise<number> {
  await mkdir(options.dir, { recursive: true });
  return options.protocol === 'pop' ? fetchPop(ctx, mailbox, options) : fetchImap(ctx, mailbox, options);
}

export function registerFetchCommand(program: Command): void {
  program
    .command('fetch')
    .description("copy a mailbox's messages to .eml files (new ones only), over POP3 or IMAP")
    .argument('<mailbox>', 'a mailbox address from the configuration')
    .option('--config <file>', 'configuration file')
    .option('--protocol <protocol>', 'pop or imap (default: the first of the two the mailbox is configured for)')
    .option('--out <dir>', 'folder to write the .eml files into', '.')
    .option('--delete', 'remove each message from the server once its file is written')
    .action((mailbox: string, flags: FetchFlags) =>
      runIdentityCommand('fetch', async () => {
        const ctx = await openIdentity(flags.config);
        try {
          const grant = resolveGrant(ctx.loaded, mailbox);
          const protocol = flags.protocol ?? grant.mailbox.protocols.find((p) => p === 'pop' || p === 'imap');
          if (protocol !== 'pop' && protocol !== 'imap') {
            process.stderr.write(
              `mailbridge fetch: ${grant.address} is configured for neither pop nor imap; add one to its "protocols", or pass --protocol pop|imap\n`,
            );
            return EXIT.usage;
          }
          const dir = resolve(flags.out);
          const count = await fetchMailbox(ctx, grant.address, {
            protocol,
            dir,
            delete: flags.delete ?? false,
            progress: true,
            onFile: (path) => process.stdout.write(`${path}\n`),
          });
          process.stderr.write(
            `${count === 0 ? 'No new messages' : `${count} message${count === 1 ? '' : 's'} written`} to ${dir}${flags.delete && count > 0 ? ' and removed from the server' : ''}.\n`,
          );
        } finally {
          await ctx.close();
        }
      }),
    );
}
