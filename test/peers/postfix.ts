/*
 * A real, self-contained Postfix 3.7 (Debian 12: 3.7.11) for one test file: an SMTP submission
 * service (like port 587: STARTTLS required, AUTH only after TLS) on a free loopback port, logging
 * in users through a Dovecot started by ./dovecot.ts (SASL over its `auth` inet listener, so
 * XOAUTH2 and OAUTHBEARER with the same bearer tokens Dovecot takes for IMAP/POP3) and delivering
 * mail for the given virtual domains into that Dovecot over LMTP, so a test can send and read back.
 *
 * Facts established for Postfix 3.7.11 on Debian 12 (by experiment):
 *
 * Installing. `postfix` with debconf `postfix/main_mailer_type select No configuration`: nothing is
 * started and /etc/postfix/main.cf is not even created. Neither matters: `postfix -c <dir>` reads
 * only <dir>/main.cf and <dir>/master.cf (as root no alternate_config_directories entry is needed).
 *
 * Layout (one temp dir per instance, mode 0755 so the `postfix` user can traverse it):
 *   etc/    main.cf, master.cf. postfix-script's check wants the whole config tree owned by root
 *           and not group/other writable: anything else inside it ("not owned by root" warnings).
 *   queue/  queue_directory, owned by root; `postfix start` creates its subdirectories (post-install
 *           create-missing) with the right owners. master.pid is in queue/pid, the public/private
 *           sockets (postlog, pickup, qmgr, ...) under it, so two instances never share one.
 *   data/   data_directory, must be owned by mail_owner (postfix): master opens data/master.lock
 *           as that user, otherwise "fatal: open lock file .../master.lock: Permission denied".
 *           With the lock in data/ and master.pid in queue/, instances with their own dirs (and
 *           ports) run side by side.
 *   tls/    certificate and key (root, 0600): smtpd reads them as root before dropping privileges.
 *   maillog maillog_file (postlogd, Postfix >= 3.4) with maillog_file_prefixes = <dir>. There is no
 *           syslog here, so without it nothing is logged at all.
 * master.cf has every service with chroot = n (Debian's own master.cf chroots most services into
 * the queue dir, where its init script copies /etc files) and one `127.0.0.1:<port> inet` smtpd.
 * The submission settings are in main.cf, so `postconf -c <dir>/etc -n` shows all of them.
 *
 * Starting and stopping. `postfix -c <dir>/etc start` returns (about 0.3 s) after master has bound
 * the port (`master -w` waits for initialisation), so the first connection gets `220`. But every
 * Postfix program re-reads a main.cf modified less than a second ago every 300 ms until it is older
 * (a "hot" file may be half written), which made a fresh instance take 2-2.5 s: the files are
 * back-dated. master detaches (own session and process group, parent PID 1), so it is not our
 * child: stop() runs `postfix -c <dir>/etc stop` (SIGTERM to master, about 0.05 s), waits until no
 * process of master's process group is left (zombies excepted: PID 1 reaps them within seconds)
 * and SIGKILLs the group if one lingers. `postfix start`/`stop` print nothing when stderr is not
 * a terminal (messages go to the log only); when `start` fails before
 * it can log (e.g. a main.cf it cannot parse) it exits 1 silently: we then run it again under
 * `script -qec` and put what it prints into the error.
 *
 * Line length. smtpd cuts command lines at line_length_limit (default 2048: "warning: request longer
 * than 2048") and hands the truncated base64 on: `535 5.7.8 Error: authentication failed: Invalid
 * base64 data in initial response`. An emulator token (1,640 characters) makes `AUTH XOAUTH2
 * <initial response>` 2,249 bytes long, and nodemailer always sends the initial response, so we set
 * line_length_limit = 16384 (Dovecot's auth protocol takes lines up to 16384 bytes: longer ones
 * give "BUG: Auth client 0 sent us more than 16384 bytes" and `454 4.7.0 Temporary authentication
 * failure`). With the default, the two-step form (`AUTH XOAUTH2`, `334 `, then the response on a
 * line of its own) still works with such a token.
 *
 * SASL. `smtpd_sasl_type = dovecot`, `smtpd_sasl_path = inet:127.0.0.1:<authPort>`: after
 * STARTTLS, EHLO advertises `AUTH XOAUTH2 OAUTHBEARER` (Dovecot's auth_mechanisms); before it,
 * no AUTH at all (smtpd_tls_auth_only) and `AUTH ...` is answered `530 5.7.0 Must issue a
 * STARTTLS command first`. A refused XOAUTH2 token: `334 <base64 {"status":"401",...}>`
 * (Dovecot's challenge, passed through), the client sends an empty line, then
 * `535 5.7.8 Error: authentication failed: ...` (about 0.5 s late: Dovecot's failure timer; the
 * text after "failed:" is Dovecot's reason or "(reason unavailable)").
 *
 * Delivery. virtual_mailbox_domains with an empty virtual_mailbox_maps accepts every recipient of
 * those domains; virtual_transport = lmtp:inet:127.0.0.1:<lmtpPort> hands them to Dovecot's LMTP
 * (RCPT TO is the full address, Dovecot's home is <mailRoot>/<address>). Delivery is asynchronous
 * (qmgr), usually well under a second after `250 2.0.0 Ok: queued`. Short backoff times here, so a
 * temporary LMTP failure is retried within seconds, not minutes.
 *
 * Root only. Postfix itself refuses anyone else: `postfix start` as a normal user prints
 * "fatal: the postfix command is reserved for the superuser" (and master must be root to switch
 * its children to mail_owner). As non-root this harness would need password-less sudo for
 * `postfix -c ... start|stop` and for the chown/kill it does, plus the config tree owned by root;
 * it does not do that and throws instead.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Dovecot } from './dovecot.ts';
import { freePorts, greets } from './probe.ts';

export interface PostfixOptions {
  /** SASL via inet:127.0.0.1:<authPort>, delivery via lmtp:inet:127.0.0.1:<lmtpPort>. */
  dovecot: Dovecot;
  tls: { certPem: string; keyPem: string };
  /** Domains (e.g. ['contoso.com']) whose mail is delivered into Dovecot. */
  virtualDomains: string[];
}

export interface Postfix {
  host: '127.0.0.1';
  /** Submission: STARTTLS required, AUTH only after TLS, like port 587. */
  submissionPort: number;
  dir: string;
  stop(): Promise<void>;
  log(): Promise<string>;
}

const HOST = '127.0.0.1' as const;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

function postfixBinary(): string {
  const fromEnv = process.env['POSTFIX_BIN'];
  if (fromEnv) return fromEnv;
  return existsSync('/usr/sbin/postfix') ? '/usr/sbin/postfix' : 'postfix';
}

/** Reserve a free loopback port (bound, then released). */

/** Postfix parameter values: one line, and nothing that would start a comment or a new entry. */
function value(v: string): string {
  if (/[\r\n#]/.test(v)) throw new Error(`postfix config value must not contain a newline or '#': ${JSON.stringify(v)}`);
  return v;
}

function domain(d: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(d)) {
    throw new Error(`not a domain name: ${JSON.stringify(d)}`);
  }
  return d.toLowerCase();
}

function mainCf(args: { dir: string; authPort: number; lmtpPort: number; domains: string[] }): string {
  const { dir, authPort, lmtpPort, domains } = args;
  return `# Generated by test/peers/postfix.ts for one test run.
compatibility_level = 3.6
queue_directory = ${value(dir)}/queue
data_directory = ${value(dir)}/data
maillog_file = ${value(dir)}/maillog
maillog_file_prefixes = ${value(dir)}
syslog_name = postfix-${path.basename(dir)}

myhostname = mailbridge-test.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
alias_maps =
alias_database =
relay_domains =
relayhost =
mynetworks_style = host
inet_interfaces = ${HOST}
inet_protocols = ipv4
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no
biff = no
append_dot_mydomain = no
smtpd_banner = $myhostname ESMTP Postfix

# Submission, like port 587: TLS first, then AUTH (through Dovecot), then relaying.
smtpd_tls_security_level = encrypt
smtpd_tls_cert_file = ${value(dir)}/tls/cert.pem
smtpd_tls_key_file = ${value(dir)}/tls/key.pem
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:${HOST}:${authPort}
smtpd_tls_auth_only = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
# Default 2048 cuts "AUTH XOAUTH2 <initial response>" with a real-sized token (see the header).
line_length_limit = 16384

# Mail for these domains goes into Dovecot over LMTP.
virtual_mailbox_domains = ${domains.join(', ')}
virtual_transport = lmtp:inet:${HOST}:${lmtpPort}

# A test waits seconds, not minutes, for a retry.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 5s
delay_warning_time = 0h
`;
}

function masterCf(port: number): string {
  // No chroot anywhere (see the header). Columns: service type private unpriv chroot wakeup maxproc command.
  return `# Generated by test/peers/postfix.ts for one test run.
${HOST}:${port} inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
lmtp       unix  - - n -     - lmtp
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
`;
}

function run(file: string, args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env['MAIL_CONFIG'];
    execFile(file, args, { env, timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      const spawnProblem = error !== null && typeof error.code === 'string' ? `${error.message}\n` : '';
      resolve({ code, output: `${spawnProblem}${stdout}${stderr}`.trim() });
    });
  });
}

/** Connect and read the first line; resolves true on an SMTP `220` greeting (then says QUIT). */

/** The process ids, not yet exited (zombies excluded), whose process group is `pgid`. */
function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return members;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(entry));
  }
  return members;
}

function readMasterPid(queueDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(queueDir, 'pid', 'master.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // group already gone
  }
}

function mailOwner(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postfix'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('there is no `postfix` user (mail_owner): is the postfix package installed?');
  }
}

export async function startPostfix(options: PostfixOptions): Promise<Postfix> {
  if ((process.getuid?.() ?? 0) !== 0) {
    throw new Error('startPostfix: Postfix must be started as root ("the postfix command is reserved for the superuser")');
  }
  if (options.virtualDomains.length === 0) throw new Error('startPostfix: give at least one virtual domain');
  const domains = options.virtualDomains.map(domain);
  const owner = mailOwner();
  const binary = postfixBinary();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailbridge-postfix-'));
  const etc = path.join(dir, 'etc');
  const queueDir = path.join(dir, 'queue');
  const logFile = path.join(dir, 'maillog');
  let masterPid: number | undefined;
  let exitListener: (() => void) | undefined;
  let startOutput = '';

  const readLog = async (): Promise<string> => {
    let text = '';
    try {
      text = await readFile(logFile, 'utf8');
    } catch {
      // not written yet
    }
    return startOutput ? `${text}\n--- postfix start output ---\n${startOutput}` : text;
  };

  const waitForGroupGone = async (pgid: number, ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (processGroupMembers(pgid).length > 0) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 25));
    }
    return true;
  };

  const cleanup = async (): Promise<void> => {
    masterPid ??= readMasterPid(queueDir);
    if (masterPid !== undefined || existsSync(path.join(queueDir, 'pid'))) {
      await run(binary, ['-c', etc, 'stop'], STOP_TIMEOUT_MS);
    }
    if (masterPid !== undefined && !(await waitForGroupGone(masterPid, 2000))) {
      killGroup(masterPid, 'SIGKILL');
      await waitForGroupGone(masterPid, 2000);
    }
    if (exitListener) process.off('exit', exitListener);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await chmod(dir, 0o755);
    await mkdir(etc, { mode: 0o755 });
    await mkdir(queueDir, { mode: 0o755 });
    await mkdir(path.join(dir, 'data'), { mode: 0o700 });
    await chown(path.join(dir, 'data'), owner.uid, owner.gid);
    await mkdir(path.join(dir, 'tls'), { mode: 0o700 });
    await writeFile(path.join(dir, 'tls', 'cert.pem'), options.tls.certPem);
    await writeFile(path.join(dir, 'tls', 'key.pem'), options.tls.keyPem, { mode: 0o600 });

    const [port] = (await freePorts(1)) as [number];
    const { authPort, lmtpPort } = options.dovecot;
    await writeFile(path.join(etc, 'main.cf'), mainCf({ dir, authPort, lmtpPort, domains }));
    await writeFile(path.join(etc, 'master.cf'), masterCf(port));
    // Postfix re-reads a main.cf changed within the last second every 300 ms until it is older
    // (a "hot" file might be half written): a fresh one would cost 1-2 s at every start.
    const past = new Date(Date.now() - 10_000);
    for (const file of ['main.cf', 'master.cf']) await utimes(path.join(etc, file), past, past);

    // A test file that forgets stop() must not leak a running Postfix.
    exitListener = (): void => {
      const pid = masterPid ?? readMasterPid(queueDir);
      if (pid !== undefined) killGroup(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    process.on('exit', exitListener);

    const started = await run(binary, ['-c', etc, 'start'], START_TIMEOUT_MS);
    startOutput = started.output;
    masterPid = readMasterPid(queueDir);
    if (started.code !== 0) {
      let why = '';
      if (started.output === '' && masterPid === undefined) {
        // Silent failure: the same command on a terminal says why.
        const again = await run('script', ['-qec', `${binary} -c ${etc} start`, '/dev/null'], START_TIMEOUT_MS);
        masterPid = readMasterPid(queueDir);
        why = again.output ? `; on a terminal it says: ${again.output}` : '';
      }
      throw new Error(`postfix -c ${etc} start exited ${started.code}${why}`);
    }
    if (masterPid === undefined) throw new Error(`postfix started but ${queueDir}/pid/master.pid is missing`);

    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await greets(port, '220', 'QUIT\r\n'))) {
      if (processGroupMembers(masterPid).length === 0) throw new Error('postfix master exited during startup');
      if (Date.now() > deadline) throw new Error(`postfix did not greet with 220 on port ${port} within ${START_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }

    let stopped: Promise<void> | undefined;
    return {
      host: HOST,
      submissionPort: port,
      dir,
      stop: () => (stopped ??= cleanup()),
      log: readLog,
    };
  } catch (error) {
    const log = await readLog();
    await cleanup();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}\n--- postfix log ---\n${log}`, { cause: error });
  }
}
