// The emulated mailboxes keep what they hold across restarts of the emulator, and are seeded
// once from a folder of .eml files or with generated messages.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generatedMessage, MailStore } from '../../../src/emulator/exchange/mail-store.ts';

describe('mail store', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-store-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('seeds from .eml files once, and keeps messages, flags and expunges across a restart', async () => {
    const emls = join(dir, 'emls');
    await mkdir(emls);
    await writeFile(join(emls, '2-second.eml'), 'Subject: second\r\n\r\nb\r\n');
    await writeFile(join(emls, '1-first.eml'), 'Subject: first\r\n\r\na\r\n');
    await writeFile(join(emls, 'notes.txt'), 'not a message');

    const first = await new MailStore(join(dir, 'store')).open('Dana@Contoso.com', { emlDir: emls });
    const inbox = first.requireFolder('INBOX');
    assert.deepEqual(
      inbox.messages.map((m) => m.uid),
      [1, 2],
    );
    assert.equal((await first.read(inbox, 1)).toString(), 'Subject: first\r\n\r\na\r\n');
    assert.deepEqual(
      first.folders().map((f) => f.name),
      ['INBOX', 'Archive', 'Deleted Items', 'Drafts', 'Junk Email', 'Outbox', 'Sent Items'],
    );
    await first.setFlags('INBOX', [1], ['\\Seen', '\\Flagged'], 'add');
    await first.append('INBOX', Buffer.from('Subject: third\r\n\r\nc\r\n'));
    await first.expunge('INBOX', [2]);
    await first.flush();

    // A new store on the same folder is the emulator after a restart; the seed is not applied again.
    const again = await new MailStore(join(dir, 'store')).open('dana@contoso.com', { emlDir: emls });
    const kept = again.requireFolder('INBOX');
    assert.deepEqual(
      kept.messages.map((m) => [m.uid, m.flags]),
      [
        [1, ['\\Seen', '\\Flagged']],
        [3, []],
      ],
    );
    assert.equal(kept.uidNext, 4, 'UIDs are never reused');
    assert.equal((await again.read(kept, 3)).toString(), 'Subject: third\r\n\r\nc\r\n');
    const files = await readdir(join(dir, 'store', encodeURIComponent('dana@contoso.com'), String(kept.id)));
    assert.deepEqual(files.sort(), ['1.eml', '3.eml'], 'an expunged message leaves no file behind');
  });

  it('generates messages of the requested size, the same bytes each time', async () => {
    const box = await new MailStore(join(dir, 'generated')).open('gen@contoso.com', { generate: { count: 20, sizeBytes: 50_000 } });
    const inbox = box.requireFolder('INBOX');
    assert.equal(inbox.messages.length, 20);
    for (const m of inbox.messages) assert.equal(m.size, 50_000);
    assert.deepEqual(await box.read(inbox, 7), generatedMessage('gen@contoso.com', 7, 50_000));
  });
});
