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
import { resolveGrant } from '../identity/grants.ts';
import { openMailSource, type MailContext } from '../transport/open.ts';
import type { MailSource } from '../transport/types.ts';
import { EXIT } from './exit-codes.ts';
import { openIdentity, runIdentityCommand } from './identity-context.ts';

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

/** The file name fetch has always given a message: POP3's UIDL; IMAP's `<uidValidity>-<uid>`. */
function fileNameOf(protocol: 'pop' | 'imap', id: string): string {
  return fileName(protocol === 'imap' ? id.replace(':', '-') : id);
}

async function download(source: MailSource, options: FetchOptions): Promise<number> {
  const dir = options.dir;
  const have = new Set(await readdir(dir));
  // A message whose file exists is not new, whatever the server says (the files are the checkpoint).
  const { messages } = await source.listNew({ known: (id) => have.has(fileNameOf(options.protocol, id)) });
  const ids = messages.map((m) => m.id);
  const progress = new Progress(ids.length, options.progress ?? false);
  await source.readEach(ids, async (id, message) => {
    const name = fileNameOf(options.protocol, id);
    progress.add(await save(dir, name, message));
    options.onFile?.(join(dir, name));
  });
  // Only once every file is on disk.
  if (options.delete && ids.length > 0) await source.markDone(ids, { kind: 'delete' });
  return ids.length;
}

/** Copies the mailbox's new messages into `options.dir`; returns how many were written. */
export async function fetchMailbox(ctx: MailContext, mailbox: string, options: FetchOptions): Promise<number> {
  await mkdir(options.dir, { recursive: true });
  const source = await openMailSource(ctx, mailbox, options.protocol);
  let count: number;
  try {
    count = await download(source, options);
  } catch (err) {
    // The first error is the one to report.
    await source.close().catch(() => {});
    throw err;
  }
  // POP3 applies the deletions here (QUIT); a failure to do so is a failure of the fetch.
  await source.close();
  return count;
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
