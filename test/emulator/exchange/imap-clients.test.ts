// Real IMAP clients against the emulator with emulator-issued tokens, asserting what a user of
// each would notice: imapflow (list, read, flag, move, delete, IDLE), curl (XOAUTH2 because no
// OAUTHBEARER is offered; implicit TLS and STARTTLS), Python's imaplib (two-step AUTHENTICATE,
// SELECT, SEARCH, FETCH, STORE) and mutt (XOAUTH2 through imap_oauth_refresh_command, reading
// and deleting a message of a shared mailbox with a delegate's token).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { generatedMessage } from '../../../src/emulator/exchange/mail-store.ts';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { appToken, SCOPES, userToken } from '../../helpers/mail-tokens.ts';
import { needPeers } from '../../helpers/peers.ts';

const run = promisify(execFile);

const SIZES = { alice: 2000, bob: 1500, support: 1200 };

interface FolderInfo {
  folder: string;
  messages: { uid: number; flags: string[] }[];
}

describe('real IMAP clients against the emulator', () => {
  let emu: TestEmulator;
  let caFile: string;
  let work: string;
  before(async () => {
    emu = await startTestEmulator((s) => {
      const boxes = s.exchange!.mailboxes!;
      boxes.find((m) => m.address === 'alice@contoso.com')!.seed = { generate: { count: 5, sizeBytes: SIZES.alice } };
      boxes.find((m) => m.address === 'bob@contoso.com')!.seed = { generate: { count: 3, sizeBytes: SIZES.bob } };
      boxes.find((m) => m.address === 'support@contoso.com')!.seed = { generate: { count: 3, sizeBytes: SIZES.support } };
    });
    caFile = join(emu.dataDir, 'ca.crt');
    work = await mkdtemp(join(tmpdir(), 'mailbridge-imap-clients-'));
  });
  after(async () => {
    await emu.close();
    await rm(work, { recursive: true, force: true });
  });

  async function folders(address: string): Promise<FolderInfo[]> {
    const res = await emu.admin('GET', `/mailboxes/${address}/messages`);
    assert.equal(res.status, 200, res.text);
    return res.json<FolderInfo[]>();
  }

  function imapflow(user: string, accessToken: string): ImapFlow {
    return new ImapFlow({
      host: '127.0.0.1',
      port: emu.running.mailPorts.imaps,
      secure: true,
      auth: { user, accessToken },
      tls: { ca: emu.caPem },
      logger: false,
    });
  }

  describe('imapflow 2.1.2', () => {
    it('lists folders with their special uses, reads, flags, moves and deletes; a second client sees the flags', async () => {
      const token = await userToken(emu, 'alice@contoso.com', [SCOPES.imap]);
      const client = imapflow('alice@contoso.com', token);
      await client.connect();
      try {
        const list = await client.list();
        const byPath = new Map(list.map((m) => [m.path, m.specialUse]));
        assert.equal(byPath.get('INBOX'), '\\Inbox');
        assert.equal(byPath.get('Sent Items'), '\\Sent');
        assert.equal(byPath.get('Deleted Items'), '\\Trash');
        assert.equal(byPath.get('Junk Email'), '\\Junk');
        const mailbox = await client.mailboxOpen('INBOX');
        assert.equal(mailbox.exists, 5);

        const message = await client.fetchOne('2', { source: true, envelope: true, flags: true, uid: true });
        assert.ok(message);
        assert.deepEqual(message.source, generatedMessage('alice@contoso.com', 2, SIZES.alice));
        assert.equal(message.envelope?.subject, 'Generated message 2');
        assert.equal(message.envelope?.from?.[0]?.address, 'sender2@fabrikam.example');
        assert.equal(message.flags?.size, 0);

        assert.equal(await client.messageFlagsAdd({ uid: '2' }, ['\\Flagged', '\\Seen'], { uid: true }), true);
        const other = imapflow('alice@contoso.com', token);
        await other.connect();
        await other.mailboxOpen('INBOX', { readOnly: true });
        const seen = await other.fetchOne('2', { flags: true });
        assert.ok(seen);
        assert.deepEqual([...(seen.flags ?? [])].sort(), ['\\Flagged', '\\Seen']);
        await other.logout();

        const moved = await client.messageMove('3', 'Archive', { uid: true });
        assert.ok(moved);
        assert.equal(moved.destination, 'Archive');
        assert.equal(moved.uidMap?.get(3), 1);
        assert.equal(await client.messageDelete('1', { uid: true }), true);
        const after = await folders('alice@contoso.com');
        assert.deepEqual(
          after.find((f) => f.folder === 'INBOX')!.messages.map((m) => m.uid),
          [2, 4, 5],
        );
        assert.deepEqual(
          after.find((f) => f.folder === 'Archive')!.messages.map((m) => m.uid),
          [1],
        );
        assert.deepEqual(await client.status('Archive', { messages: true, unseen: true }), { path: 'Archive', messages: 1, unseen: 1 });
      } finally {
        await client.logout();
      }
    });

    it('IDLE: a message delivered through the admin API arrives as an "exists" event', async () => {
      const client = imapflow('alice@contoso.com', await userToken(emu, 'alice@contoso.com', [SCOPES.imap]));
      await client.connect();
      try {
        const mailbox = await client.mailboxOpen('INBOX');
        const before = mailbox.exists;
        const arrived = new Promise<number>((resolve) => client.on('exists', (e: { count: number }) => resolve(e.count)));
        const idling = client.idle();
        // Give the IDLE command a moment to reach the server before the delivery.
        await new Promise((r) => setTimeout(r, 100));
        const raw = 'From: <news@fabrikam.example>\r\nSubject: pushed while idling\r\n\r\nhello\r\n';
        assert.equal((await emu.admin('POST', '/mailboxes/alice@contoso.com/messages', { raw })).status, 201);
        assert.equal(await arrived, before + 1);
        const latest = await client.fetchOne('*', { source: true });
        assert.ok(latest);
        assert.equal(latest.source?.toString(), raw);
        await idling.catch(() => {});
      } finally {
        await client.logout();
      }
    });

    it('an app-only token opens the shared mailbox its service principal has FullAccess on', async () => {
      const client = imapflow('support@contoso.com', await appToken(emu));
      await client.connect();
      try {
        const status = await client.status('INBOX', { messages: true });
        assert.ok(status);
        assert.equal(status.messages, 3);
      } finally {
        await client.logout();
      }
    });
  });

  describe('curl', { skip: needPeers('curl') }, () => {
    const curl = (token: string, url: string) =>
      run('curl', ['-sS', '--ssl-reqd', '--cacert', caFile, '--oauth2-bearer', token, '-u', 'bob@contoso.com:', url], { encoding: 'buffer', timeout: 20_000 });

    it('fetches a message by UID over imaps with XOAUTH2, byte for byte', async () => {
      const token = await userToken(emu, 'bob@contoso.com', [SCOPES.imap]);
      const { stdout } = await curl(token, `imaps://127.0.0.1:${emu.running.mailPorts.imaps}/INBOX;UID=1`);
      assert.deepEqual(stdout, generatedMessage('bob@contoso.com', 1, SIZES.bob));
    });

    it('upgrades port 143 with STARTTLS (--ssl-reqd) and lists the folders', async () => {
      const token = await userToken(emu, 'bob@contoso.com', [SCOPES.imap]);
      const { stdout } = await curl(token, `imap://127.0.0.1:${emu.running.mailPorts.imap}/`);
      const lines = stdout.toString('latin1').trim().split(/\r?\n/);
      assert.ok(lines.includes('* LIST (\\Marked \\HasNoChildren) "/" INBOX'), lines.join('\n'));
      assert.ok(lines.includes('* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"'), lines.join('\n'));
      const message = await curl(token, `imap://127.0.0.1:${emu.running.mailPorts.imap}/INBOX;UID=2`);
      assert.deepEqual(message.stdout, generatedMessage('bob@contoso.com', 2, SIZES.bob));
    });

    it('reports "Login denied" for a Graph token', async () => {
      const graph = await userToken(emu, 'bob@contoso.com', ['IMAP.AccessAsUser.All']);
      await assert.rejects(curl(graph, `imaps://127.0.0.1:${emu.running.mailPorts.imaps}/INBOX;UID=1`), (err: { code?: number; stderr?: Buffer }) => {
        assert.equal(err.code, 67);
        assert.match(err.stderr?.toString() ?? '', /Login denied/);
        return true;
      });
    });
  });

  describe("Python's imaplib", { skip: needPeers('python3') }, () => {
    it('AUTHENTICATE XOAUTH2 (two-step), SELECT, SEARCH, FETCH RFC822 and STORE', async () => {
      const script = join(work, 'imaplib_check.py');
      await writeFile(
        script,
        [
          'import imaplib, json, ssl, sys',
          'ca, port, user, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]',
          'm = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=ca))',
          'out = {"auth": m.authenticate("XOAUTH2", lambda _: ("user=%s\\x01auth=Bearer %s\\x01\\x01" % (user, token)).encode())[0]}',
          'typ, data = m.select("INBOX")',
          'out["select"] = [typ, data[0].decode()]',
          'typ, data = m.search(None, "ALL")',
          'out["search"] = data[0].decode()',
          'typ, data = m.fetch("3", "(RFC822)")',
          'out["rfc822"] = data[0][1].decode("latin1")',
          'typ, data = m.store("3", "+FLAGS", "(\\\\Answered)")',
          'out["store"] = [typ, data[0].decode()]',
          'out["logout"] = m.logout()[0]',
          'print(json.dumps(out))',
        ].join('\n'),
      );
      const token = await userToken(emu, 'bob@contoso.com', [SCOPES.imap]);
      const { stdout } = await run('python3', [script, caFile, String(emu.running.mailPorts.imaps), 'bob@contoso.com', token], { timeout: 20_000 });
      const out = JSON.parse(stdout) as Record<string, unknown>;
      assert.equal(out['auth'], 'OK');
      assert.deepEqual(out['select'], ['OK', '3']);
      assert.equal(out['search'], '1 2 3');
      assert.equal(out['rfc822'], generatedMessage('bob@contoso.com', 3, SIZES.bob).toString('latin1'));
      // RFC822 (not PEEK) set \Seen; STORE shows both flags.
      assert.deepEqual(out['store'], ['OK', '3 (FLAGS (\\Seen \\Answered))']);
      assert.equal(out['logout'], 'BYE');
      const inbox = (await folders('bob@contoso.com')).find((f) => f.folder === 'INBOX')!;
      assert.deepEqual(inbox.messages.find((m) => m.uid === 3)!.flags.sort(), ['\\Answered', '\\Seen']);
    });
  });

  describe('mutt', { skip: needPeers('mutt', 'script') }, () => {
    /** Runs mutt on a pseudo-terminal with keys pushed at start; resolves with its screen output. */
    async function mutt(rc: string, keys: string): Promise<string> {
      const rcFile = join(work, 'muttrc');
      await writeFile(rcFile, rc);
      const command = `mutt -n -F ${rcFile} -f imaps://localhost:${emu.running.mailPorts.imaps}/INBOX -e 'push "${keys}"'`;
      return new Promise((resolve, reject) => {
        const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: work, env: { ...process.env, TERM: 'xterm', HOME: work } });
        let screen = '';
        child.stdout.on('data', (d: Buffer) => (screen += d.toString('latin1')));
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`mutt did not finish: ${screen.slice(-500)}`));
        }, 20_000);
        child.on('exit', (code) => {
          clearTimeout(timer);
          if (code === 0) resolve(screen);
          else reject(new Error(`mutt exited ${code}: ${screen.slice(-500)}`));
        });
      });
    }

    it("logs in with XOAUTH2 to a shared mailbox with a delegate's token, reads a message, deletes another", async () => {
      const token = await userToken(emu, 'alice@contoso.com', [SCOPES.imap]);
      const out = join(work, 'piped.eml');
      const rc = [
        'set imap_user="support@contoso.com"',
        'set imap_authenticators="xoauth2"',
        `set imap_oauth_refresh_command="echo ${token}"`,
        `set ssl_ca_certificates_file="${caFile}"`,
        'set ssl_starttls=no',
        // Without a folder mutt asks to create ~/Mail, and that prompt would swallow the keys.
        `set folder="imaps://localhost:${emu.running.mailPorts.imaps}/"`,
        'set quit=yes',
        'set wait_key=no',
        'set move=no',
        'set delete=yes',
        'set mark_old=no',
        'set sleep_time=0',
        'set pipe_decode=no',
        'set sort=date',
        'set header_cache=""',
        'set message_cachedir=""',
      ].join('\n');
      // mutt opens on the first new message: pipe it to a file; delete the last one and sync; quit.
      const screen = await mutt(rc, '<pipe-message>cat > piped.eml<enter><last-entry><delete-message><sync-mailbox><quit>');
      assert.match(screen, /Authenticating \(XOAUTH2\)/, screen);
      const piped = await readFile(out);
      // mutt writes messages with local line ends.
      assert.equal(piped.toString('latin1'), generatedMessage('support@contoso.com', 1, SIZES.support).toString('latin1').replace(/\r\n/g, '\n'));
      const inbox = (await folders('support@contoso.com')).find((f) => f.folder === 'INBOX')!;
      assert.deepEqual(
        inbox.messages.map((m) => m.uid),
        [1, 2],
      );
    });
  });
});
