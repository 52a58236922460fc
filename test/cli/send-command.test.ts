// `mailbridge send` as a person runs it, checked against the message AS STORED by the emulated
// Exchange: refusing to send nothing, recipients from the file's header, Bcc, In-Reply-To and
// References, attachments, an HTML part, a message from standard input, bad addresses and missing
// files refused locally (exit 2, nothing sent), and the Message-ID printed is the one stored.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { messageIdOf } from '../../src/transport/message-id.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig, signInMailbox } from '../helpers/identity-config.ts';
import { runCli } from '../helpers/cli.ts';

describe('mailbridge send (against the emulator, read back as stored)', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
    const loaded = await loadConfig(cfg.file, {});
    const store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
    await signInMailbox(emu, loaded, store, 'alice@contoso.com');
    await store.close();
  });
  after(() => emu.close());

  const send = (args: string[], stdin?: string) => runCli(['send', 'alice@contoso.com', ...args, '--config', cfg.file], stdin === undefined ? {} : { stdin });
  const count = async (address: string) => (await emu.running.exchange.store.open(address)).requireFolder('INBOX').messages.length;
  /** The newest message in the mailbox's INBOX, as the server keeps it. */
  const newest = async (address: string) => {
    const data = await emu.running.exchange.store.open(address);
    const folder = data.requireFolder('INBOX');
    return (await data.read(folder, folder.messages.at(-1)!.uid)).toString('utf8');
  };
  const file = async (name: string, content: string | Buffer) => {
    const path = join(cfg.dir, name);
    await writeFile(path, content);
    return path;
  };

  it('refuses to send nothing: no file and neither --subject nor --body is exit 2, nothing sent', async () => {
    const before = await count('bob@contoso.com');
    const run = await send(['--to', 'bob@contoso.com']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /nothing to send/);
    assert.equal(run.stdout, '');
    assert.equal(await count('bob@contoso.com'), before);
  });

  it('a bad address is refused locally with its name (exit 2), not the server blamed', async () => {
    const before = await count('bob@contoso.com');
    for (const flag of ['--to', '--cc', '--bcc']) {
      const run = await send([...(flag === '--to' ? [] : ['--to', 'bob@contoso.com']), flag, 'bob', '--subject', 'x', '--body', 'y']);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`"bob" \\(${flag}\\) is not an email address`));
      assert.doesNotMatch(run.stderr, /No recipients defined/);
    }
    const headerFile = await file('bad-to.eml', 'From: alice@contoso.com\r\nTo: not an address\r\nSubject: s\r\n\r\nb\r\n');
    const fromHeader = await send([headerFile]);
    assert.equal(fromHeader.code, 2, fromHeader.stderr);
    assert.match(fromHeader.stderr, /"not an address" \(To: in the message\) is not an email address/);
    assert.equal(await count('bob@contoso.com'), before);
  });

  it('a missing file (the message, --html or --attach) is a clear message, exit 2', async () => {
    const missing = join(cfg.dir, 'absent.eml');
    const runs = [
      await send([missing, '--to', 'bob@contoso.com']),
      await send(['--to', 'bob@contoso.com', '--subject', 's', '--html', missing]),
      await send(['--to', 'bob@contoso.com', '--subject', 's', '--attach', missing]),
    ];
    for (const run of runs) {
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`cannot read .*${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: there is no such file; nothing was sent`));
    }
  });

  it('--to is optional when the file has To: (a Bcc: header is a recipient too, and removed from the message)', async () => {
    const [bob, support] = [await count('bob@contoso.com'), await count('support@contoso.com')];
    const raw = 'From: alice@contoso.com\r\nTo: Bob <bob@contoso.com>\r\nBcc: support@contoso.com\r\nSubject: header recipients\r\n\r\nHi.\r\n';
    const run = await send([await file('header-to.eml', raw)]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await count('bob@contoso.com'), bob + 1);
    assert.equal(await count('support@contoso.com'), support + 1);
    for (const address of ['bob@contoso.com', 'support@contoso.com']) {
      const stored = await newest(address);
      assert.match(stored, /Subject: header recipients/);
      assert.doesNotMatch(stored, /^Bcc:/im, `${address}'s copy does not show the Bcc`);
    }
  });

  it('--bcc, --in-reply-to (In-Reply-To and References), --attach (twice) and --html', async () => {
    const support = await count('support@contoso.com');
    const html = await file('body.html', '<p>Hello <b>Bob</b></p>');
    const first = await file('notes.txt', 'first attachment\n');
    const second = await file('data.bin', Buffer.from([0, 1, 2, 255]));
    const run = await send([
      '--to',
      'bob@contoso.com',
      '--bcc',
      'support@contoso.com',
      '--subject',
      'Re: plans',
      '--body',
      'Plain text.',
      '--html',
      html,
      '--in-reply-to',
      '<original-1@contoso.com>',
      '--attach',
      first,
      '--attach',
      second,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await count('support@contoso.com'), support + 1, 'the Bcc recipient got it');
    const stored = await newest('bob@contoso.com');
    assert.doesNotMatch(stored, /^Bcc:/im);
    assert.doesNotMatch(stored, /support@contoso\.com/);
    assert.match(stored, /^In-Reply-To: <original-1@contoso\.com>\r?$/m);
    assert.match(stored, /^References: <original-1@contoso\.com>\r?$/m);
    assert.match(stored, /Content-Type: text\/plain/);
    assert.match(stored, /Content-Type: text\/html/);
    assert.match(stored, /filename=notes\.txt/);
    assert.match(stored, /filename=data\.bin/);
    assert.ok(stored.includes(Buffer.from([0, 1, 2, 255]).toString('base64')), 'the binary attachment is in the message');
  });

  it('reads the message from standard input with - as the file', async () => {
    const raw = 'From: alice@contoso.com\r\nTo: bob@contoso.com\r\nSubject: from stdin\r\n\r\nPiped.\r\n';
    const run = await send(['-'], raw);
    assert.equal(run.code, 0, run.stderr);
    assert.match(await newest('bob@contoso.com'), /Subject: from stdin[\s\S]*Piped\./);
  });

  it('prints the Message-ID the stored message carries (a file without one, and --subject/--body)', async () => {
    const noId = await file('no-id.eml', 'From: alice@contoso.com\r\nTo: bob@contoso.com\r\nSubject: no id\r\n\r\nNo Message-ID here.\r\n');
    const fromFile = await send([noId, '--to', 'bob@contoso.com']);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(messageIdOf(await newest('bob@contoso.com')), fromFile.stdout.trim());
    const composed = await send(['--to', 'bob@contoso.com', '--subject', 'composed', '--body', 'Body.']);
    assert.equal(composed.code, 0, composed.stderr);
    const stored = await newest('bob@contoso.com');
    assert.match(stored, /Subject: composed/);
    assert.equal(messageIdOf(stored), composed.stdout.trim());
  });
});
