// withMessageId: a message keeps its own Message-ID (also folded, any case); one without gets one
// first, in the message's own line ending, and nothing else of the message changes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { messageIdOf, withMessageId } from '../../src/transport/message-id.ts';

describe('withMessageId', () => {
  it('keeps the message as it is when it has a Message-ID', () => {
    const raw = Buffer.from('Subject: x\r\nmessage-id:\r\n  <a.b@example.com> \r\n\r\nbody\r\n');
    const out = withMessageId(raw, 'contoso.com');
    assert.equal(out.raw, raw);
    assert.equal(out.messageId, '<a.b@example.com>');
  });

  it('adds one at the top, with the message line ending (CRLF or LF)', () => {
    for (const eol of ['\r\n', '\n']) {
      const raw = `Subject: x${eol}To: <b@example.com>${eol}${eol}body${eol}`;
      const out = withMessageId(raw, 'contoso.com');
      assert.match(out.messageId, /^<[0-9a-f-]{36}@contoso\.com>$/);
      assert.equal(out.raw.toString(), `Message-ID: ${out.messageId}${eol}${raw}`);
      assert.equal(messageIdOf(out.raw), out.messageId);
    }
  });

  it('reads only the header: a Message-ID line in the body does not count', () => {
    const raw = 'Subject: x\r\n\r\nMessage-ID: <in-body@example.com>\r\n';
    assert.equal(messageIdOf(raw), undefined);
    assert.notEqual(withMessageId(raw, 'contoso.com').messageId, '<in-body@example.com>');
  });
});
