// Files that survive a crash or a power loss whole or not at all: written under a temporary
// `.NAME.PID.part` name, flushed to the disk, renamed into place, and then the folder flushed so
// the rename itself is on the disk. A run that is killed leaves only `.part` files, which the next
// run removes (those of a process still running are left alone).
import { createWriteStream } from 'node:fs';
import { open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';

const PART = /^\..+\.(\d+)\.part$/;

function partName(name: string): string {
  return `.${name}.${process.pid}.part`;
}

/** Flushes a folder's entries (a rename in it) to the disk. */
async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Streams `message` into `dir/name` durably; returns its size in bytes. */
export async function saveStreamDurably(dir: string, name: string, message: Readable): Promise<number> {
  const tmp = join(dir, partName(name));
  let size = 0;
  message.on('data', (chunk: Buffer) => (size += chunk.length));
  try {
    // `flush`: fsync before the file is closed, so it is whole on the disk before it has its name.
    await pipeline(message, createWriteStream(tmp, { mode: 0o600, flush: true }));
    await rename(tmp, join(dir, name));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncFolder(dir);
  return size;
}

/** Replaces `dir/name` with `data` atomically and durably. */
export async function writeFileDurably(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(dir, partName(name));
  try {
    await writeFile(tmp, data, { mode: 0o600, flush: true });
    await rename(tmp, join(dir, name));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncFolder(dir);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the `.NAME.PID.part` files that runs no longer running left in `dir`; returns how many. */
export async function removeStaleParts(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir)) {
    const pid = PART.exec(name)?.[1];
    // Our own pid can only be a dead run's that had it before: this run has written nothing yet.
    if (pid === undefined || (Number(pid) !== process.pid && isRunning(Number(pid)))) continue;
    await rm(join(dir, name), { force: true });
    removed++;
  }
  return removed;
}
