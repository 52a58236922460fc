// What a benchmark needs of test/peers/dovecot.ts's Dovecot beyond a test's: messages in any
// folder with both sizes in the file name (so Dovecot never reads a message to learn its size),
// and limits raised for hundreds of simultaneous logins, applied with a configuration reload.
import { appendFile, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dovecot } from '../../test/peers/dovecot.ts';

/** As in test/peers/dovecot.ts: as root, mail belongs to nobody/nogroup. */
const MAIL_OWNER = (process.getuid?.() ?? 0) === 0 ? { uid: 65534, gid: 65534 } : undefined;

/**
 * Writes messages (CRLF line ends) into `folder` ('INBOX' or a folder name) of `user`'s Maildir,
 * as if delivered. The file names carry S= and W= (physical and virtual size: equal for CRLF
 * mail), so POP3 logins and IMAP sizes do not make Dovecot read big messages.
 */
export async function seedFolder(dovecot: Dovecot, user: string, folder: string, messages: Buffer[], firstSeconds = 1_767_254_400): Promise<void> {
  const home = path.join(dovecot.mailRoot, user.toLowerCase());
  const maildir = path.join(home, 'Maildir');
  const dir = folder.toUpperCase() === 'INBOX' ? maildir : path.join(maildir, `.${folder}`);
  const made: string[] = [];
  for (const d of [home, maildir, dir, ...['cur', 'new', 'tmp'].map((s) => path.join(dir, s))]) {
    await mkdir(d, { recursive: true });
    made.push(d);
  }
  if (dir !== maildir) {
    await writeFile(path.join(dir, 'maildirfolder'), '');
    made.push(path.join(dir, 'maildirfolder'));
  }
  for (const [i, raw] of messages.entries()) {
    const file = path.join(dir, 'cur', `${firstSeconds + i}.M${i}P1.bench,S=${raw.length},W=${raw.length}:2,S`);
    await writeFile(file, raw);
    made.push(file);
  }
  if (MAIL_OWNER) for (const p of made) await chown(p, MAIL_OWNER.uid, MAIL_OWNER.gid);
}

/**
 * Raises Dovecot's process and client limits (default 100 login processes, 1000 clients per
 * service, which the log service alone reaches with 500 sessions) and reloads the configuration
 * (SIGHUP to the master; new processes get the new limits). `mail_max_userip_connections` is
 * already 1000 in test/peers/dovecot.ts.
 */
export async function raiseDovecotLimits(dovecot: Dovecot, limits: { processes: number; clients: number }): Promise<void> {
  const conf = path.join(dovecot.dir, 'dovecot.conf');
  await appendFile(conf, `\n# Raised by bench/lib/dovecot-tuning.ts\ndefault_process_limit = ${limits.processes}\ndefault_client_limit = ${limits.clients}\n`);
  const pid = Number((await readFile(path.join(dovecot.dir, 'run', 'master.pid'), 'utf8')).trim());
  const logFile = path.join(dovecot.dir, 'dovecot.log');
  const before = (await readFile(logFile, 'utf8').catch(() => '')).length;
  process.kill(pid, 'SIGHUP');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const log = (await readFile(logFile, 'utf8').catch(() => '')).slice(before);
    if (/SIGHUP received - reloading configuration/.test(log)) break;
    if (Date.now() > deadline) throw new Error(`dovecot did not reload its configuration within 10 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // The master re-reads the file through its config process; give it a moment.
  await new Promise((r) => setTimeout(r, 500));
}
