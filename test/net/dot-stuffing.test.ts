// Dot-stuffing, whole and streamed: for any message and any split into chunks, the stream gives
// exactly the bytes the whole-buffer function gives, and unstuffing gets the message back.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { DotStuffer, dotStuff, unstuffLine } from '../../src/net/dot-stuffing.ts';
import { pick, prng } from '../helpers/fuzz.ts';

async function streamed(chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of Readable.from(chunks).pipe(new DotStuffer())) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('dot-stuffing', () => {
  it('streams exactly what the whole-buffer framing gives, however the message is split', async () => {
    const rand = prng(42);
    const pieces = ['.', '..', '\r\n', '\n', 'text', '\r\n.\r\n', '.line\r\n', 'x'];
    for (let round = 0; round < 500; round++) {
      let text = '';
      const parts = Math.floor(rand() * 30);
      for (let i = 0; i < parts; i++) text += pick(rand, pieces);
      const message = Buffer.from(text);
      const chunks: Buffer[] = [];
      for (let at = 0; at < message.length;) {
        const size = 1 + Math.floor(rand() * 5);
        chunks.push(message.subarray(at, at + size));
        at += size;
      }
      assert.deepEqual(await streamed(chunks), dotStuff(message), JSON.stringify(text));
    }
  });

  it('unstuffing line by line gives the message back', () => {
    const message = '.one\r\n..two\r\nthree\r\n.\r\n';
    const framed = dotStuff(Buffer.from(message)).toString().split('\r\n');
    const lines: string[] = [];
    for (const line of framed) {
      const result = unstuffLine(Buffer.from(line));
      if (result.end) break;
      lines.push(result.line.toString());
    }
    assert.equal(`${lines.join('\r\n')}\r\n`, message);
  });
});
