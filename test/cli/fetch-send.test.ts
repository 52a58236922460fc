// `mailbridge fetch` and `mailbridge send` as a person runs them, against the emulated Exchange:
// new messages only, written whole, removed upstream only when asked; a 100 MB message streamed
// with the process's memory growing by less than 30 MB; sending from options and from a file.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetchMailbox } from '../../src/cli/fetch-command.ts';
import { openIdentity } from '../../src/cli/identity-context.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { settledMemoryBytes } from '../helpers/memory.ts';
import { writeTestConfig, type TestConfig, signInConfigured } from '../helpers/identity-config.ts';
import { runCli } from '../helpers/cli.ts';

const cli = (args: string[]) => runCli(args);

describe('mailbridge fetch and send (against the emulator)', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let out: string;
  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
    out = await mkdtemp(join(tmpdir(), 'mailbridge-fetch-'));
    await signInConfigured(emu, cfg.file, 'alice@contoso.com');
  });
  after(async () => {
    await emu.close();
    await rm(cfg.dir, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
  });

  const deliver = (raw: string) => emu.admin('POST', '/mailboxes/alice@contoso.com/messages', { raw });
  const inbox = async (address: string) => (await emu.running.exchange.store.open(address)).requireFolder('INBOX').messages.length;

  for (const protocol of ['pop', 'imap'] as const) {
    it(`${protocol}: writes new messages as .eml files, then only newer ones; --delete removes them upstream`, async () => {
      const dir = join(out, protocol);
      const raws = [1, 2, 3].map((n) => `Subject: ${protocol} ${n}\r\nFrom: <s@fabrikam.example>\r\n\r\n.dot line ${n}\r\nbody ${n}\r\n`);
      for (const raw of raws) await deliver(raw);
      const first = await cli(['fetch', 'alice@contoso.com', '--protocol', protocol, '--out', dir, '--config', cfg.file]);
      assert.equal(first.code, 0, first.stderr);
      const files = first.stdout.trim().split('\n');
      assert.ok(files.length >= 3, first.stdout);
      const contents = await Promise.all(files.map((f) => readFile(f, 'utf8')));
      for (const raw of raws) assert.ok(contents.includes(raw), `${protocol}: ${JSON.stringify(raw)} was written byte for byte`);
      assert.match(first.stderr, /messages? written to /);
      assert.ok(!(await readdir(dir)).some((f) => f.endsWith('.part')), 'no partial files are left');

      const again = await cli(['fetch', 'alice@contoso.com', '--protocol', protocol, '--out', dir, '--config', cfg.file]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, '');
      assert.match(again.stderr, /No new messages/);

      const emptied = await cli([
        'fetch',
        'alice@contoso.com',
        '--protocol',
        protocol,
        '--out',
        join(out, `${protocol}-delete`),
        '--delete',
        '--config',
        cfg.file,
      ]);
      assert.equal(emptied.code, 0, emptied.stderr);
      assert.equal(await inbox('alice@contoso.com'), 0, 'the server holds nothing after --delete');
    });
  }

  it('streams a 100 MB message: memory grows by less than 30 MB', async () => {
    // In this process, so the settled memory (after garbage collection) can be sampled while the
    // message streams: through the emulated server and mailbridge's POP3 client both.
    const mailbox = await emu.running.exchange.store.open('alice@contoso.com');
    const line = `${'x'.repeat(76)}\r\n`;
    // Whole lines: POP3 framing cannot carry a message whose last line has no CRLF.
    // Built inside a function so that the 100 MiB buffer is garbage before the baseline is taken.
    const size = await (async () => {
      const big = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(Math.floor((100 * 1024 * 1024) / line.length) * line.length, line)]);
      await mailbox.append('INBOX', big);
      return big.length;
    })();
    const ctx = await openIdentity(cfg.file);
    try {
      const baseline = settledMemoryBytes();
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, settledMemoryBytes() - baseline)), 100);
      const files: string[] = [];
      try {
        await fetchMailbox(ctx, 'alice@contoso.com', { protocol: 'pop', dir: join(out, 'big'), delete: false, onFile: (f) => files.push(f) });
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, settledMemoryBytes() - baseline);
      const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
      assert.ok(sizes.includes(size), `the 100 MB message was written whole (sizes: ${sizes.join(', ')})`);
      assert.ok(peak < 30 * 1024 * 1024, `memory grew by ${(peak / 1024 / 1024).toFixed(1)} MB while streaming`);
    } finally {
      await ctx.close();
    }
  });

  it('send: from --subject and --body, and a .eml file as it is', async () => {
    const before = await inbox('bob@contoso.com');
    const sent = await cli(['send', 'alice@contoso.com', '--to', 'bob@contoso.com', '--subject', 'Lunch?', '--body', 'At noon.', '--config', cfg.file]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^<.+>\n$/);
    const file = join(out, 'message.eml');
    const raw = 'From: alice@contoso.com\r\nTo: bob@contoso.com\r\nSubject: From a file\r\nMessage-ID: <file-1@contoso.com>\r\n\r\nAs it is.\r\n';
    await writeFile(file, raw);
    const fromFile = await cli(['send', 'alice@contoso.com', file, '--to', 'bob@contoso.com', '--config', cfg.file]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(await inbox('bob@contoso.com'), before + 2);
    const data = await emu.running.exchange.store.open('bob@contoso.com');
    const folder = data.requireFolder('INBOX');
    const last = (await data.read(folder, folder.messages.at(-1)!.uid)).toString();
    assert.ok(last.endsWith(raw), 'the file arrives unchanged apart from the trace header');
    const both = await cli(['send', 'alice@contoso.com', file, '--to', 'bob@contoso.com', '--subject', 'x', '--config', cfg.file]);
    assert.equal(both.code, 2);
  });
});
