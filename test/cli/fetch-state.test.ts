// `mailbridge fetch` remembers what it fetched into a folder (issue 12, point 19): `--delete`
// removes from the server also what earlier runs saved there, `--folder` reads another IMAP
// folder, `--json` gives scripts one document, and smtp is refused as a source. Also the --help
// texts name the --config default (point 21) and a killed run's `.part` files are removed.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig, signInConfigured } from '../helpers/identity-config.ts';
import { runCli } from '../helpers/cli.ts';

describe('mailbridge fetch: what earlier runs fetched, --folder, --json', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let out: string;
  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
    out = await mkdtemp(join(tmpdir(), 'mailbridge-fetch-state-'));
    await signInConfigured(emu, cfg.file, 'alice@contoso.com');
  });
  after(async () => {
    await emu.close();
    await rm(out, { recursive: true, force: true });
  });

  const mailbox = () => emu.running.exchange.store.open('alice@contoso.com');
  const countIn = async (folder: string) => (await mailbox()).requireFolder(folder).messages.length;
  const emptyInbox = async () => {
    const data = await mailbox();
    await data.expunge(
      'INBOX',
      data.requireFolder('INBOX').messages.map((m) => m.uid),
    );
  };
  const fetch = (...args: string[]) => runCli(['fetch', 'alice@contoso.com', '--config', cfg.file, ...args]);
  const message = (label: string) => Buffer.from(`Subject: ${label}\r\nFrom: <s@fabrikam.example>\r\n\r\nbody of ${label}\r\n`);

  for (const protocol of ['pop', 'imap'] as const) {
    it(`${protocol}: --delete removes also the messages an earlier run (without --delete) fetched, and each stays one file`, async () => {
      await emptyInbox();
      const dir = join(out, `earlier-${protocol}`);
      for (const n of [1, 2, 3]) await (await mailbox()).append('INBOX', message(`${protocol} earlier ${n}`));
      const first = await fetch('--protocol', protocol, '--out', dir);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout.trim().split('\n').length, 3);
      await (await mailbox()).append('INBOX', message(`${protocol} later`));

      const second = await fetch('--protocol', protocol, '--out', dir, '--delete');
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout.trim().split('\n').length, 1, 'only the new message is written');
      assert.equal(await countIn('INBOX'), 0, 'the server holds none of the fetched messages');
      assert.match(second.stderr, /4 messages removed from the server/);
      const files = (await readdir(dir)).filter((f) => f.endsWith('.eml'));
      const bodies = (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).sort();
      assert.deepEqual(
        bodies,
        [1, 2, 3]
          .map((n) => message(`${protocol} earlier ${n}`).toString())
          .concat(message(`${protocol} later`).toString())
          .sort(),
      );
    });
  }

  it('--json: one JSON document with the mailbox, protocol, files written and messages deleted', async () => {
    await emptyInbox();
    const dir = join(out, 'json');
    for (const n of [1, 2]) await (await mailbox()).append('INBOX', message(`json ${n}`));
    const run = await fetch('--protocol', 'pop', '--out', dir, '--delete', '--json');
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as Record<string, unknown>;
    assert.equal(doc.mailbox, 'alice@contoso.com');
    assert.equal(doc.protocol, 'pop');
    assert.equal(doc.out, dir);
    assert.equal((doc.written as string[]).length, 2);
    for (const file of doc.written as string[]) assert.ok(file.startsWith(dir) && file.endsWith('.eml'), file);
    assert.equal(doc.deleted, 2);
    const again = await fetch('--protocol', 'pop', '--out', dir, '--json');
    assert.deepEqual(JSON.parse(again.stdout), { mailbox: 'alice@contoso.com', protocol: 'pop', out: dir, written: [], deleted: 0 });
  });

  it('--folder: reads another IMAP folder (and implies IMAP), without mixing its files up with the inbox', async () => {
    await emptyInbox();
    const data = await mailbox();
    if (!data.folder('Archive')) await data.createFolder('Archive');
    await data.append('Archive', message('archived'));
    await data.append('INBOX', message('inbox'));
    const dir = join(out, 'folder');
    const run = await fetch('--folder', 'Archive', '--out', dir, '--json', '--delete');
    assert.equal(run.code, 0, run.stderr);
    const doc = JSON.parse(run.stdout) as { protocol: string; folder: string; written: string[] };
    assert.equal(doc.protocol, 'imap');
    assert.equal(doc.folder, 'Archive');
    assert.equal(doc.written.length, 1);
    assert.equal(await readFile(doc.written[0]!, 'utf8'), message('archived').toString());
    assert.equal(await countIn('Archive'), 0);
    assert.equal(await countIn('INBOX'), 1, 'the inbox is left alone');
    const inbox = await fetch('--protocol', 'imap', '--out', dir);
    assert.equal(inbox.code, 0, inbox.stderr);
    assert.equal(inbox.stdout.trim().split('\n').length, 1, 'the inbox message is new in the same folder, whatever its UID');

    const pop = await fetch('--protocol', 'pop', '--folder', 'Archive', '--out', dir);
    assert.equal(pop.code, 2);
    assert.match(pop.stderr, /--folder/);
  });

  it('--protocol smtp: says smtp cannot be fetched from, exit 2', async () => {
    const run = await fetch('--protocol', 'smtp', '--out', join(out, 'smtp'));
    assert.equal(run.code, 2);
    assert.match(run.stderr, /smtp/);
    assert.match(run.stderr, /cannot be fetched from|only sends/);
    assert.doesNotMatch(run.stderr, /neither pop nor imap/);
  });

  it('removes the .part files a killed run left, but not those of a run still going', async () => {
    await emptyInbox();
    const dir = join(out, 'parts');
    await fetch('--protocol', 'pop', '--out', dir);
    // 4194304 is above Linux's largest pid: no process has it.
    const dead = '.x.eml.4194305.part';
    const alive = `.y.eml.${process.pid}.part`;
    await writeFile(join(dir, dead), 'half a message');
    await writeFile(join(dir, alive), 'being written');
    const run = await fetch('--protocol', 'pop', '--out', dir);
    assert.equal(run.code, 0, run.stderr);
    const left = await readdir(dir);
    assert.ok(!left.includes(dead), 'the dead run’s part file is gone');
    assert.ok(left.includes(alive), 'a live process’s part file stays');
  });

  it('a damaged record stops the fetch (exit 6, naming the file) and deletes nothing', async () => {
    await emptyInbox();
    await (await mailbox()).append('INBOX', message('kept'));
    const dir = join(out, 'damaged');
    await fetch('--protocol', 'pop', '--out', dir);
    await writeFile(join(dir, '.mailbridge-fetched.json'), '{"version": 1, "sources": [');
    const run = await fetch('--protocol', 'pop', '--out', dir, '--delete');
    assert.equal(run.code, 6, run.stderr);
    assert.match(run.stderr, /\.mailbridge-fetched\.json is not a record/);
    assert.equal(await countIn('INBOX'), 1);
  });

  for (const command of ['fetch', 'send']) {
    it(`${command} --help names the --config default`, async () => {
      const run = await runCli([command, '--help']);
      assert.equal(run.code, 0);
      assert.match(
        run.stdout.replace(/\s+/g, ' '),
        /--config <file> configuration file \(default: \$MAILBRIDGE_CONFIG or ~\/\.config\/mailbridge\/config\.json\)/,
      );
    });
  }
});
