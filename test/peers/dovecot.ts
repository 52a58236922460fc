/*
 * A real, self-contained Dovecot 2.3 (Debian 12: 2.3.19.1) for one test file: IMAP, POP3, LMTP and
 * a SASL auth listener on free loopback ports, taking OAuth 2.0 bearer tokens (XOAUTH2, OAUTHBEARER).
 *
 * Facts established for Dovecot 2.3.19.1 (read in dovecot/core src/lib-oauth2 and
 * src/auth/db-oauth2.c, then checked against the Debian binary by experiment):
 *
 * Mail uid/gid. Dovecot refuses uid 0 for mail whatever first_valid_uid says ("Invalid settings in
 * userdb: userdb returned 0 as uid", the session is dropped after login). As root we give every
 * user the static uid/gid 65534 (nobody/nogroup), chown mailRoot to it and make the temp dir 0755
 * so imap/pop3/lmtp (running as 65534) reach <mailRoot>/<user@domain>/Maildir. The auth service runs as
 * root (`service auth { user = root }`), so keysDir and introspectionCaFile can live anywhere.
 * A test running as root that writes into a Maildir directly must chown what it creates to 65534.
 * As non-root, everything runs as the calling user: default_internal_user/default_login_user and
 * default_internal_group = that user/group (by name: numbers are refused), `chroot =` for
 * anvil/imap-login/pop3-login, auth-worker as that user, first_valid_uid lowered if needed.
 *
 * Local JWT validation (introspection_mode = local, local_validation_key_dict =
 * fs:posix:prefix=<keysDir>/): the key file is <keysDir>/<azp>/<ALG>/<kid>, where <azp> is the
 * token's `azp` claim or "default" when there is none (no fallback: a token WITH azp is only checked
 * against <azp>/..., Microsoft v2 tokens carry azp = client id, v1 tokens carry appid instead), and
 * <kid> is the header kid or "default" without one. In the kid, "/" is written as "%2f" and "%" as
 * "%25" ("." "=" "+" "-" "_" stay as they are). The file holds the PEM public key (RS256, ES256...).
 * Required: header `typ: "JWT"`; claims `sub` and `exp` (exp < now => "Token has expired"),
 * `nbf`/`iat` not in the future and not after exp, `iss` one of `issuers`; upn equal to the SASL
 * user, case-insensitively (username_format %Lu). `aud` is never checked; leave `scope` unset.
 *
 * Introspection (introspection_mode = post) sends, for every login (no auth cache here):
 *   POST <introspection_url>   User-Agent: dovecot-oauth2-passdb/2.3.19.1
 *   Content-Type: application/x-www-form-urlencoded
 *   body: token=<url-escaped token>&client_id=&client_secret=    (empty unless configured)
 *   plus `Authorization: Basic` only when the URL carries user:password@.
 * Every scalar field of the JSON object reply becomes a field (true/false => "true"/"false").
 * With active_attribute = active, active_value = true (set below):
 *   - `active` present and not "true" ({"active": false}) => refused, client sees
 *     AUTHENTICATIONFAILED (log: "Provided token is not valid"). `active` ABSENT passes this check;
 *   - `upn` must be present (else temporary failure, "No username returned") and equal the SASL
 *     user case-insensitively (else refused);
 *   - `token_type`, when present, must be "bearer" in any case (else temporary failure);
 *   - `exp`, `iat`, `nbf`, `iss`, `aud`, `expires_in`, `error` are NOT checked: expiry and
 *     revocation are the endpoint's job (answer {"active": false});
 *   - 4xx replies are parsed like 2xx (a 401 carrying active+upn logs in!); 5xx, non-JSON and
 *     transport/TLS errors are temporary failures.
 * So `{"active": true, "upn": "<user>", ...}` accepts and `{"active": false}` refuses. An https URL
 * is verified against tls_ca_cert_file (introspectionCaFile); a cert it does not trust fails.
 *
 * Client view. Refused: IMAP `+ <base64 {"status":"401","schemes":"bearer","scope":"mail"}>`,
 * client sends an empty line, then `NO [AUTHENTICATIONFAILED] Authentication failed.`; POP3 the
 * same `+ ...` then `-ERR [AUTH] Authentication failed.`. Temporary failure: IMAP
 * `NO [UNAVAILABLE] Temporary authentication failure. [host:time]`, POP3 `-ERR [SYS/TEMP] ...`.
 * Even with auth_failure_delay = 0 and the anvil penalty off, every failure answer comes about
 * 0.5 s late (Dovecot flushes failed requests on a 500 ms timer). Success is immediate.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePorts, greets } from './probe.ts';

export interface DovecotOptions {
  /** Exact `iss` of accepted tokens, e.g. https://sts.windows.net/<tenant-guid>/ (local validation). */
  issuer: string;
  /** Local JWT validation: folder laid out as <azp or default>/<alg>/<kid> holding PEM public keys. */
  keysDir?: string;
  /** Alternatively: introspection_mode = post against this URL (http or https). */
  introspectionUrl?: string;
  /** CA PEM file to trust when introspectionUrl is https. */
  introspectionCaFile?: string;
  /** When given, also listen for imaps/pop3s. */
  tls?: { certPem: string; keyPem: string };
}

export interface Dovecot {
  host: '127.0.0.1';
  imapPort: number;
  pop3Port: number;
  imapsPort?: number;
  pop3sPort?: number;
  lmtpPort: number;
  /** Dovecot auth-client protocol (for Postfix `smtpd_sasl_type = dovecot`, `inet:127.0.0.1:<port>`). */
  authPort: number;
  dir: string;
  /** Home folders live at <mailRoot>/<whole user name, lower-cased>/Maildir (e.g. adele.vance@contoso.example). */
  mailRoot: string;
  stop(): Promise<void>;
  log(): Promise<string>;
}

const HOST = '127.0.0.1' as const;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

function dovecotBinary(): string {
  const fromEnv = process.env['DOVECOT_BIN'];
  if (fromEnv) return fromEnv;
  return existsSync('/usr/sbin/dovecot') ? '/usr/sbin/dovecot' : 'dovecot';
}

/** Dovecot config values are taken to end of line; refuse anything that would break the file. */
function value(v: string): string {
  if (/[\r\n]/.test(v)) throw new Error(`dovecot config value contains a newline: ${JSON.stringify(v)}`);
  return v;
}

interface Identity {
  root: boolean;
  uid: number;
  gid: number;
  user: string;
  group: string;
}

function identity(): Identity {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  if (uid === 0) return { root: true, uid: 65534, gid: 65534, user: 'root', group: 'root' };
  // Dovecot wants names, not numbers, for its internal user and group.
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  return { root: false, uid, gid, user: os.userInfo().username, group };
}

function oauth2Conf(options: DovecotOptions): string {
  const lines = [`username_attribute = upn`, `issuers = ${value(options.issuer)}`, `timeout_msecs = 10000`, `max_parallel_connections = 10`];
  if (options.introspectionUrl !== undefined) {
    lines.push(`introspection_mode = post`, `introspection_url = ${value(options.introspectionUrl)}`, `active_attribute = active`, `active_value = true`);
    if (options.introspectionCaFile !== undefined) {
      lines.push(`tls_ca_cert_file = ${value(path.resolve(options.introspectionCaFile))}`);
    }
  } else {
    const keysDir = path.resolve(options.keysDir ?? '');
    if (/[:\s]/.test(keysDir)) throw new Error(`keysDir must not contain ':' or spaces: ${keysDir}`);
    lines.push(`introspection_mode = local`, `local_validation_key_dict = fs:posix:prefix=${keysDir}/`);
  }
  return lines.join('\n') + '\n';
}

function dovecotConf(args: {
  dir: string;
  id: Identity;
  ports: { imap: number; pop3: number; imaps: number; pop3s: number; lmtp: number; auth: number };
  tls: boolean;
}): string {
  const { dir, id, ports, tls } = args;
  const nonRoot = id.root
    ? `service auth {\n  user = root\n}\n`
    : [
        `default_internal_user = ${id.user}`,
        `default_login_user = ${id.user}`,
        `default_internal_group = ${id.group}`,
        `first_valid_uid = ${Math.min(id.uid, 500)}`,
        `first_valid_gid = ${Math.min(id.gid, 1)}`,
        `service anvil {\n  chroot =\n}`,
        `service imap-login {\n  chroot =\n}`,
        `service pop3-login {\n  chroot =\n}`,
        `service auth-worker {\n  user = $default_internal_user\n}`,
        ``,
      ].join('\n');
  return `# Generated by test/peers/dovecot.ts for one test run.
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
instance_name = mailbridge-test-${path.basename(dir)}
listen = ${HOST}
protocols = imap pop3 lmtp
${nonRoot}
ssl = ${tls ? 'yes' : 'no'}
${tls ? `ssl_cert = <${dir}/tls/cert.pem\nssl_key = <${dir}/tls/key.pem\n` : ''}disable_plaintext_auth = no
auth_mechanisms = xoauth2 oauthbearer
auth_failure_delay = 0
auth_verbose = yes
auth_debug = yes
mail_max_userip_connections = 1000
mail_location = maildir:~/Maildir
mail_fsync = never

passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/oauth2.conf.ext
}
userdb {
  driver = static
  args = uid=${id.uid} gid=${id.gid} home=${dir}/mail/%u allow_all_users=yes
}

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox "Sent Items" {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox "Deleted Items" {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox "Junk Email" {
    special_use = \\Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \\Archive
    auto = subscribe
  }
}

service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  inet_listener imap {
    port = ${ports.imap}
  }
  inet_listener imaps {
    port = ${tls ? ports.imaps : 0}
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = ${ports.pop3}
  }
  inet_listener pop3s {
    port = ${tls ? ports.pop3s : 0}
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = ${HOST}
    port = ${ports.lmtp}
  }
}
service auth {
  inet_listener auth-client {
    address = ${HOST}
    port = ${ports.auth}
  }
}
`;
}

/** Connect and read the first line; resolves true when it is an IMAP "* OK" greeting. */

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // group already gone
  }
}

export async function startDovecot(options: DovecotOptions): Promise<Dovecot> {
  if ((options.keysDir === undefined) === (options.introspectionUrl === undefined)) {
    throw new Error('startDovecot: give exactly one of keysDir (local JWT validation) or introspectionUrl');
  }
  const id = identity();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailbridge-dovecot-'));
  // base_dir holds unix sockets (108-byte path limit), e.g. <dir>/run/login/imap-login... keep dir short.
  if (dir.length > 60) throw new Error(`temp dir path too long for dovecot's unix sockets: ${dir}`);
  const mailRoot = path.join(dir, 'mail');
  const logFile = path.join(dir, 'dovecot.log');
  let child: ChildProcess | undefined;
  let output = '';
  let exitListener: (() => void) | undefined;

  const readLog = async (): Promise<string> => {
    let text = '';
    try {
      text = await readFile(logFile, 'utf8');
    } catch {
      // not written yet
    }
    return output.trim() ? `${text}\n--- dovecot stdout/stderr ---\n${output}` : text;
  };

  const cleanup = async (): Promise<void> => {
    if (child !== undefined) {
      const proc = child;
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.ref(); // keep the event loop alive until dovecot is gone
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        killGroup(proc, 'SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS)));
        const outcome = await Promise.race([exited, timeout]);
        clearTimeout(timer);
        if (outcome === 'timeout') {
          killGroup(proc, 'SIGKILL');
          await exited;
        }
      }
      // Children left behind by a master that died first.
      killGroup(proc, 'SIGKILL');
    }
    if (exitListener) process.off('exit', exitListener);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await chmod(dir, 0o755);
    await mkdir(mailRoot);
    await mkdir(path.join(dir, 'state'));
    if (id.root) await chown(mailRoot, id.uid, id.gid);

    const [imap, pop3, imaps, pop3s, lmtp, auth] = await freePorts(6);
    const ports = { imap: imap!, pop3: pop3!, imaps: imaps!, pop3s: pop3s!, lmtp: lmtp!, auth: auth! };

    if (options.tls) {
      await mkdir(path.join(dir, 'tls'), { mode: 0o700 });
      await writeFile(path.join(dir, 'tls', 'cert.pem'), options.tls.certPem);
      await writeFile(path.join(dir, 'tls', 'key.pem'), options.tls.keyPem, { mode: 0o600 });
    }
    await writeFile(path.join(dir, 'oauth2.conf.ext'), oauth2Conf(options));
    const confFile = path.join(dir, 'dovecot.conf');
    await writeFile(confFile, dovecotConf({ dir, id, ports, tls: options.tls !== undefined }));

    const proc = spawn(dovecotBinary(), ['-F', '-c', confFile], {
      cwd: dir,
      detached: true, // own process group, so stop() reaches every dovecot process
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // A test file that forgets stop() must neither hang nor leak a running dovecot.
    proc.unref();
    (proc.stdout as net.Socket | null)?.unref();
    (proc.stderr as net.Socket | null)?.unref();
    exitListener = (): void => {
      killGroup(proc, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    process.on('exit', exitListener);
    const spawnError = new Promise<Error>((resolve) => proc.once('error', resolve));

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`dovecot exited during startup (${proc.exitCode ?? proc.signalCode})`);
      }
      const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
      if (failed) throw new Error(`cannot start ${dovecotBinary()}: ${failed.message}`);
      if (await greets(ports.imap, '* OK')) break;
      if (Date.now() > deadline) throw new Error(`dovecot did not greet on IMAP port ${ports.imap} within ${START_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }

    let stopped: Promise<void> | undefined;
    return {
      host: HOST,
      imapPort: ports.imap,
      pop3Port: ports.pop3,
      ...(options.tls ? { imapsPort: ports.imaps, pop3sPort: ports.pop3s } : {}),
      lmtpPort: ports.lmtp,
      authPort: ports.auth,
      dir,
      mailRoot,
      stop: () => (stopped ??= cleanup()),
      log: readLog,
    };
  } catch (error) {
    const log = await readLog();
    await cleanup();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}\n--- dovecot log ---\n${log}`, { cause: error });
  }
}

/**
 * Puts messages straight into a user's Maildir (as if delivered), owned by the mail user, so a
 * test or benchmark can read the same bytes from Dovecot as from another server.
 */
export async function seedMaildir(dovecot: Dovecot, user: string, messages: Buffer[]): Promise<void> {
  const id = identity();
  const home = path.join(dovecot.mailRoot, user.toLowerCase());
  const maildir = path.join(home, 'Maildir');
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(path.join(maildir, sub), { recursive: true });
  const base = 1_767_254_400; // 2026-01-01, in seconds
  const files = messages.map((raw, i) => path.join(maildir, 'cur', `${base + i}.M${i}P1.seed,S=${raw.length}:2,`));
  for (const [i, raw] of messages.entries()) await writeFile(files[i]!, raw);
  if (id.root) {
    for (const p of [home, maildir, ...['cur', 'new', 'tmp'].map((s) => path.join(maildir, s)), ...files]) await chown(p, id.uid, id.gid);
  }
}
