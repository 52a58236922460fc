// `mailbridge fetch <mailbox>`: copy a mailbox's messages to .eml files, over POP3 or IMAP, for a
// person at a terminal or a script (--json). Each message is streamed to a temporary file, flushed
// to the disk and renamed into place, so a crash never leaves half a message under its final name.
// What was saved is recorded in the folder (src/cli/fetch/fetched-record.ts), so that --delete
// removes from the server every message saved there, also by earlier or killed runs, and only
// once its file is on the disk. Progress goes to stderr, file paths to stdout.
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { resolveGrant } from '../identity/grants.ts';
import { openMailSource, type MailContext } from '../transport/open.ts';
import type { MailSource, SourceProtocol } from '../transport/types.ts';
import { EXIT } from './exit-codes.ts';
import { removeStaleParts, saveStreamDurably } from './fetch/durable-files.ts';
import { FetchedRecord } from './fetch/fetched-record.ts';
import { openIdentity, runIdentityCommand } from './identity-context.ts';
import { CONFIG_HELP } from './options.ts';

interface FetchFlags {
  config?: string;
  protocol?: string;
  folder?: string;
  out: string;
  delete?: boolean;
  json?: boolean;
}

export interface FetchOptions {
  protocol: SourceProtocol;
  /** IMAP: the folder to read (default INBOX). */
  folder?: string;
  dir: string;
  delete: boolean;
  /** Told of each file written (the command prints its path). */
  onFile?: (path: string) => void;
  /** Progress lines on stderr (the command: yes, unless --json). */
  progress?: boolean;
}

export interface FetchResult {
  /** The files written by this run. */
  written: string[];
  /** How many messages were removed from the server (with --delete: this run's and earlier runs'). */
  deleted: number;
}

/** How often, at most, the record is rewritten while messages arrive (and always at the end). */
const RECORD_SAVE_INTERVAL_MS = 1000;

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

/** A name that is safe as a file name whatever the server's unique id holds. */
function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120);
}

/**
 * The file name fetch gives a message: POP3's UIDL; IMAP's `<uidValidity>-<uid>` in the inbox and
 * `<folder>-<uidValidity>-<uid>` in another folder (UIDs of two folders may be the same).
 */
function fileNameOf(options: FetchOptions, id: string): string {
  if (options.protocol === 'pop') return `${safeName(id)}.eml`;
  const folder = options.folder ?? 'INBOX';
  const prefix = folder.toUpperCase() === 'INBOX' ? '' : `${safeName(folder)}-`;
  return `${prefix}${safeName(id.replace(':', '-'))}.eml`;
}

/** Saves the new messages; returns the files written and the ids to delete (when asked to). */
async function download(source: MailSource, options: FetchOptions, record: FetchedRecord): Promise<{ written: string[]; toDelete: string[] }> {
  const dir = options.dir;
  const fetched = record.idsOf({
    protocol: options.protocol,
    mailbox: source.mailbox,
    ...(options.protocol === 'imap' ? { folder: options.folder ?? 'INBOX' } : {}),
  });
  // Everything there: what is new is decided here, against the record and the files.
  const listed = (await source.listNew()).messages.map((m) => m.id);
  const onServer = new Set(listed);
  // Ids no longer on the server need no remembering (deleted, or renumbered by a UIDVALIDITY change).
  for (const id of fetched) if (!onServer.has(id)) fetched.delete(id);
  // A message whose file is here was fetched (by a run killed before it could record it, or before
  // there was a record): the files, made durable before they got their names, are proof.
  const files = new Set(await readdir(dir));
  for (const id of listed) if (files.has(fileNameOf(options, id))) fetched.add(id);

  const fresh = listed.filter((id) => !fetched.has(id));
  const written: string[] = [];
  const progress = new Progress(fresh.length, options.progress ?? false);
  let savedAt = Date.now();
  await source.readEach(fresh, async (id, message) => {
    const name = fileNameOf(options, id);
    progress.add(await saveStreamDurably(dir, name, message));
    fetched.add(id);
    written.push(join(dir, name));
    options.onFile?.(join(dir, name));
    if (Date.now() - savedAt >= RECORD_SAVE_INTERVAL_MS) {
      await record.save();
      savedAt = Date.now();
    }
  });
  await record.save();
  if (!options.delete) return { written, toDelete: [] };
  // Only once every file is on disk and recorded.
  const toDelete = listed.filter((id) => fetched.has(id));
  if (toDelete.length > 0) await source.markDone(toDelete, { kind: 'delete' });
  return { written, toDelete };
}

/** Copies the mailbox's new messages into `options.dir` (and with `delete`, removes every recorded one from the server). */
export async function fetchMailbox(ctx: MailContext, mailbox: string, options: FetchOptions): Promise<FetchResult> {
  await mkdir(options.dir, { recursive: true });
  await removeStaleParts(options.dir);
  const record = await FetchedRecord.load(options.dir);
  const source = await openMailSource(ctx, mailbox, options.protocol, options.folder !== undefined ? { imap: { folder: options.folder } } : {});
  let result: { written: string[]; toDelete: string[] };
  try {
    result = await download(source, options, record);
  } catch (err) {
    // The first error is the one to report.
    await source.close().catch(() => {});
    throw err;
  }
  // POP3 applies the deletions here (QUIT); a failure to do so is a failure of the fetch.
  await source.close();
  if (result.toDelete.length > 0) {
    // Gone from the server: nothing to remember them for. (Were this lost, the next run forgets them as no longer listed.)
    const fetched = record.idsOf({
      protocol: options.protocol,
      mailbox: source.mailbox,
      ...(options.protocol === 'imap' ? { folder: options.folder ?? 'INBOX' } : {}),
    });
    for (const id of result.toDelete) fetched.delete(id);
    await record.save();
  }
  return { written: result.written, deleted: result.toDelete.length };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** The protocol to read with, or what is wrong with the command line. */
function chooseProtocol(flags: FetchFlags, configured: readonly string[]): { protocol: SourceProtocol } | { problem: string } {
  const asked = flags.protocol?.toLowerCase();
  if (asked === 'smtp') return { problem: 'smtp cannot be fetched from: it only sends mail. Use --protocol pop or --protocol imap' };
  if (asked !== undefined && asked !== 'pop' && asked !== 'imap') return { problem: `--protocol must be pop or imap, not ${JSON.stringify(flags.protocol)}` };
  if (flags.folder !== undefined) {
    if (asked === 'pop') return { problem: '--folder is for IMAP: POP3 sees only the inbox. Use --protocol imap (or leave --protocol out)' };
    return { protocol: 'imap' };
  }
  if (asked !== undefined) return { protocol: asked };
  const first = configured.find((p): p is SourceProtocol => p === 'pop' || p === 'imap');
  return first ? { protocol: first } : { problem: 'is configured for neither pop nor imap; add one to its "protocols", or pass --protocol pop|imap' };
}

export function registerFetchCommand(program: Command): void {
  program
    .command('fetch')
    .description("copy a mailbox's messages to .eml files (new ones only), over POP3 or IMAP")
    .argument('<mailbox>', 'a mailbox address from the configuration')
    .option('--config <file>', CONFIG_HELP)
    .option('--protocol <protocol>', 'pop or imap (default: the first of the two the mailbox is configured for; imap with --folder)')
    .option('--folder <name>', 'IMAP: the folder to read (default: INBOX)')
    .option('--out <dir>', 'folder to write the .eml files into', '.')
    .option('--delete', 'remove from the server every message saved into --out (by this run or earlier ones), once its file is written')
    .option('--json', 'print one JSON document on stdout: {mailbox, protocol, folder, out, written, deleted}')
    .action((mailbox: string, flags: FetchFlags) =>
      runIdentityCommand('fetch', async () => {
        // What the command line alone decides is refused before the configuration is read.
        const early = chooseProtocol(flags, ['pop', 'imap']);
        if ('problem' in early) {
          process.stderr.write(`mailbridge fetch: ${early.problem}\n`);
          return EXIT.usage;
        }
        const ctx = await openIdentity(flags.config);
        try {
          const grant = resolveGrant(ctx.loaded, mailbox);
          const chosen = chooseProtocol(flags, grant.mailbox.protocols);
          if ('problem' in chosen) {
            process.stderr.write(`mailbridge fetch: ${grant.address} ${chosen.problem}\n`);
            return EXIT.usage;
          }
          const protocol = chosen.protocol;
          const dir = resolve(flags.out);
          const folder = protocol === 'imap' ? (flags.folder ?? 'INBOX') : undefined;
          const result = await fetchMailbox(ctx, grant.address, {
            protocol,
            ...(folder !== undefined ? { folder } : {}),
            dir,
            delete: flags.delete ?? false,
            progress: !flags.json,
            ...(flags.json ? {} : { onFile: (path: string) => process.stdout.write(`${path}\n`) }),
          });
          if (flags.json) {
            const doc = {
              mailbox: grant.address,
              protocol,
              ...(folder !== undefined ? { folder } : {}),
              out: dir,
              written: result.written,
              deleted: result.deleted,
            };
            process.stdout.write(`${JSON.stringify(doc)}\n`);
            return;
          }
          const count = result.written.length;
          const removed = flags.delete ? `; ${plural(result.deleted, 'message')} removed from the server` : '';
          process.stderr.write(`${count === 0 ? 'No new messages' : `${plural(count, 'message')} written`} to ${dir}${removed}.\n`);
        } finally {
          await ctx.close();
        }
      }),
    );
}
