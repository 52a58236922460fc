// The four grants end to end from the command line, against the emulator over HTTPS with real
// msal-node: authorization code with PKCE (the test plays the browser and the loopback redirect
// reaches the CLI), device code (the test enters the code on the emulator's page), and client
// credentials with a certificate and with a secret; then token, accounts and logout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { appById, startTestEmulator, userByUpn, type TestEmulator } from '../helpers/emulator.ts';
import { runCli } from '../helpers/cli.ts';
import { completeDeviceCode, signIn } from '../helpers/browserless.ts';
import { writeTestConfig, type TestConfig } from '../helpers/identity-config.ts';

const CLI = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Everything every CLI run wrote to stderr (where logs and messages go), and the tokens it printed. */
const allStderr: string[] = [];
const printedTokens: string[] = [];

/** Runs the CLI; `onStderr` sees stderr as it comes (to act on a sign-in URL or device code). */
function cli(args: string[], onStderr?: (text: string) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DISPLAY: '', WAYLAND_DISPLAY: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr);
    });
    child.on('close', (code) => {
      allStderr.push(stderr);
      if (args[0] === 'token' && code === 0) printedTokens.push(stdout.trim());
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs the CLI with a standard input the test writes to when it likes (a pasted address):
 * `onStderr` sees stderr as it comes, with a function that writes a line to the CLI's stdin.
 */
function cliTyping(args: string[], onStderr: (text: string, type: (line: string) => void) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DISPLAY: '', WAYLAND_DISPLAY: '' } });
    let stdout = '';
    let stderr = '';
    const type = (line: string) => child.stdin.write(`${line}\n`);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr(stderr, type);
    });
    child.on('close', (code) => {
      allStderr.push(stderr);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The sign-in URL a `login --no-browser` printed, once. */
function signInUrlOnce(): (text: string) => string | undefined {
  let seen = false;
  return (text) => {
    const url = /(https:\/\/localhost:\d+\/\S+\/authorize\?\S+)/.exec(text)?.[1];
    if (!url || seen) return undefined;
    seen = true;
    return url;
  };
}

describe('mailbridge login, token, accounts, logout (against the emulator)', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
  });
  after(async () => {
    await emu.close();
    await rm(cfg.dir, { recursive: true, force: true });
  });

  it('authorization code with PKCE: the person signs in, the browser comes back to the CLI', async () => {
    let started = false;
    const run = await cli(['login', 'alice@contoso.com', '--config', cfg.file, '--no-browser'], (text) => {
      const url = /(https:\/\/localhost:\d+\/\S+\/authorize\?\S+)/.exec(text)?.[1];
      if (!url || started) return;
      started = true;
      void (async () => {
        const landed = await signIn(url, {
          caPem: emu.caPem,
          username: 'alice@contoso.com',
          password: userByUpn(emu, 'alice@contoso.com').password,
          consent: 'accept',
        });
        // The browser follows the redirect to the CLI's loopback listener.
        get(landed.toString(), (res) => res.resume());
      })();
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Open this URL in a browser and sign in as alice@contoso\.com/);
    assert.match(run.stderr, /Signed in: alice@contoso\.com as alice@contoso\.com/);
  });

  it('device code: the person enters the code on the verification page', async () => {
    let started = false;
    const run = await cli(['login', 'bob@contoso.com', '--config', cfg.file], (text) => {
      const m = /open the page (\S+) and enter the code (\S+) to authenticate/.exec(text);
      if (!m || started) return;
      started = true;
      void completeDeviceCode(m[1]!, m[2]!, {
        caPem: emu.caPem,
        username: 'bob@contoso.com',
        password: userByUpn(emu, 'bob@contoso.com').password,
        consent: 'accept',
      });
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /Signed in: bob@contoso\.com as bob@contoso\.com/);
  });

  it('client credentials with a certificate and with a secret', async () => {
    for (const mailbox of ['support@contoso.com', 'shared@contoso.com']) {
      const run = await cli(['login', mailbox, '--config', cfg.file]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, new RegExp(`Signed in: ${mailbox} \\(app-only\\)`));
    }
  });

  it('token prints a fresh token and nothing else; --sasl the XOAUTH2 string', async () => {
    const imap = await cli(['token', 'alice@contoso.com', '--config', cfg.file, '--protocol', 'imap']);
    assert.equal(imap.code, 0, imap.stderr);
    assert.equal(imap.stderr, '');
    const claims = decodeJwt(imap.stdout.trim());
    assert.equal(claims.upn, 'alice@contoso.com');
    assert.equal(claims.aud, 'https://outlook.office.com');
    assert.match(String(claims.scp), /IMAP\.AccessAsUser\.All/);

    const app = await cli(['token', 'support@contoso.com', '--config', cfg.file, '--protocol', 'smtp', '--sasl']);
    assert.equal(app.code, 0, app.stderr);
    const sasl = Buffer.from(app.stdout.trim(), 'base64').toString();
    assert.match(sasl, /^user=support@contoso\.com\x01auth=Bearer ey[\w-]+\.[\w-]+\.[\w-]+\x01\x01$/);
    assert.deepEqual(decodeJwt(sasl.split('Bearer ')[1]!.split('\x01')[0]!).roles, ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp']);

    const wrong = await cli(['token', 'alice@contoso.com', '--config', cfg.file, '--protocol', 'ftp']);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--protocol must be one of imap, pop, smtp/);
  });

  it('accounts lists every grant with its status; logout forgets one, whose token then needs a sign-in (exit 5)', async () => {
    const listed = await cli(['accounts', '--config', cfg.file, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = JSON.parse(listed.stdout) as { mailbox: string; status: string; account?: string }[];
    assert.deepEqual(
      rows.map((r) => [r.mailbox, r.status]),
      [
        ['alice@contoso.com', 'ok'],
        ['bob@contoso.com', 'ok'],
        ['support@contoso.com', 'ok'],
        ['shared@contoso.com', 'ok'],
      ],
    );

    const out = await cli(['logout', 'bob@contoso.com', '--config', cfg.file]);
    assert.equal(out.code, 0);
    const token = await cli(['token', 'bob@contoso.com', '--config', cfg.file]);
    assert.equal(token.code, 5);
    assert.match(token.stderr, /bob@contoso\.com has no grant yet: run `mailbridge login bob@contoso\.com`/);
    assert.equal(token.stdout, '');
    const again = JSON.parse((await cli(['accounts', '--config', cfg.file, '--json'])).stdout) as { mailbox: string; status: string }[];
    assert.equal(again.find((r) => r.mailbox === 'bob@contoso.com')?.status, 'not signed in');
  });

  it('never writes a token, secret or password to stderr', () => {
    const secrets = [
      ...printedTokens,
      ...printedTokens.map((t) => Buffer.from(t, 'base64').toString()),
      ...emu.scenario.apps.flatMap((a) => a.secrets.map((x) => x.value)),
      ...emu.scenario.users.map((u) => u.password),
    ].filter((s) => s.length >= 8);
    assert.ok(printedTokens.length >= 2 && secrets.length > 6);
    const log = allStderr.join('\n');
    for (const s of secrets) assert.ok(!log.includes(s), 'a secret reached stderr');
  });

  it('names an unknown mailbox and a broken configuration with exit code 3', async () => {
    const unknown = await cli(['token', 'nobody@contoso.com', '--config', cfg.file]);
    assert.equal(unknown.code, 3);
    assert.match(
      unknown.stderr,
      /nobody@contoso\.com is not a mailbox in .*config\.json \(configured: alice@contoso\.com, bob@contoso\.com, support@contoso\.com, shared@contoso\.com\)/,
    );
    const missing = await cli(['accounts', '--config', `${cfg.dir}/absent.json`]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /there is no such file; create one with `mailbridge init`/);
  });
});

describe('mailbridge login: declined consent, a foreign answer, login_hint, a web-app redirect URI (issue 12)', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
  });
  after(async () => {
    await emu.close();
  });
  const password = (upn: string) => userByUpn(emu, upn).password;
  const statusOf = async (mailbox: string) =>
    (JSON.parse((await cli(['accounts', '--config', cfg.file, '--json'])).stdout) as { mailbox: string; status: string }[]).find((r) => r.mailbox === mailbox)
      ?.status;

  it('consent declined on the sign-in page (authorization code): plain words, exit 1 (cancelled), nothing stored; login_hint sent', async () => {
    const urlOf = signInUrlOnce();
    let hint: string | null = null;
    const run = await cli(['login', 'alice@contoso.com', '--config', cfg.file, '--no-browser'], (text) => {
      const url = urlOf(text);
      if (!url) return;
      hint = new URL(url).searchParams.get('login_hint');
      void signIn(url, { caPem: emu.caPem, username: 'alice@contoso.com', password: password('alice@contoso.com'), consent: 'cancel' }).then((landed) =>
        get(landed.toString(), (res) => res.resume()),
      );
    });
    assert.equal(hint, 'alice@contoso.com', 'the authorization request names the mailbox (login_hint)');
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /consent was declined on the sign-in page; nothing was stored/);
    assert.doesNotMatch(run.stderr, /post_request_failed|access_denied/);
    assert.equal(await statusOf('alice@contoso.com'), 'not signed in');
  });

  it('consent declined on the device code page: the same plain words, exit 1', async () => {
    let started = false;
    const run = await cli(['login', 'bob@contoso.com', '--config', cfg.file], (text) => {
      const m = /open the page (\S+) and enter the code (\S+) to authenticate/.exec(text);
      if (!m || started) return;
      started = true;
      void completeDeviceCode(m[1]!, m[2]!, { caPem: emu.caPem, username: 'bob@contoso.com', password: password('bob@contoso.com'), consent: 'cancel' });
    });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /consent was declined on the sign-in page; nothing was stored/);
    assert.doesNotMatch(run.stderr, /post_request_failed|authorization_declined/);
    assert.equal(await statusOf('bob@contoso.com'), 'not signed in');
  });

  it('an answer from another sign-in (state mismatch) is refused in plain words, exit 1, nothing stored', async () => {
    const urlOf = signInUrlOnce();
    const run = await cliTyping(['login', 'alice@contoso.com', '--config', cfg.file, '--no-browser'], (text, type) => {
      if (urlOf(text)) type('http://localhost:1/?code=someone-elses-code&state=not-this-login');
    });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /the address pasted \(or the browser's answer\) belongs to another sign-in \(its state does not match\); nothing was stored/);
    assert.equal(await statusOf('alice@contoso.com'), 'not signed in');
  });

  it('a web-app grant signs in at its configured redirect URI; the address the browser ended on is pasted', async () => {
    // As init's web-app scenario writes it: the web app (a secret) with its registered redirect URI.
    const web = await writeTestConfig(emu);
    const raw = JSON.parse(await readFile(web.file, 'utf8')) as {
      apps: Record<string, { redirectUri?: string; clientId: string }>;
      mailboxes: Record<string, { app: string }>;
    };
    const redirectUri = appById(emu, raw.apps.web!.clientId).redirectUris.web[0]!;
    raw.apps.web!.redirectUri = redirectUri;
    raw.mailboxes['alice@contoso.com']!.app = 'web';
    await writeFile(web.file, JSON.stringify(raw));
    const urlOf = signInUrlOnce();
    let sentRedirect: string | null = null;
    const run = await cliTyping(['login', 'alice@contoso.com', '--config', web.file, '--no-browser'], (text, type) => {
      const url = urlOf(text);
      if (!url) return;
      sentRedirect = new URL(url).searchParams.get('redirect_uri');
      void signIn(url, { caPem: emu.caPem, username: 'alice@contoso.com', password: password('alice@contoso.com'), consent: 'accept' }).then(
        (landed) => type(landed.href),
        (err: Error) => type(`the sign-in failed: ${err.message}`),
      );
    });
    assert.equal(sentRedirect, redirectUri, 'the authorization request carries the configured redirect URI');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /paste/i);
    assert.match(run.stderr, /Signed in: alice@contoso\.com as alice@contoso\.com/);
    const token = await cli(['token', 'alice@contoso.com', '--config', web.file, '--protocol', 'imap']);
    assert.equal(token.code, 0, token.stderr);
    assert.equal(decodeJwt(token.stdout.trim()).appid ?? decodeJwt(token.stdout.trim()).azp, raw.apps.web!.clientId);
  });

  it('a web-app grant whose standard input ends before an address is pasted stops at once, nothing stored', async () => {
    const web = await writeTestConfig(emu);
    const raw = JSON.parse(await readFile(web.file, 'utf8')) as { apps: Record<string, { redirectUri?: string }>; mailboxes: Record<string, { app: string }> };
    raw.apps.web!.redirectUri = 'https://localhost/auth/callback';
    raw.mailboxes['bob@contoso.com'] = { ...raw.mailboxes['bob@contoso.com']!, app: 'web', grant: 'authorization_code' } as { app: string };
    await writeFile(web.file, JSON.stringify(raw));
    const run = await runCli(['login', 'bob@contoso.com', '--config', web.file, '--no-browser'], { stdin: '' });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /standard input ended before the address the browser ended on was pasted; nothing was stored/);
  });
});
