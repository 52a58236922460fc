// 100,000+ random and mutated lines at the emulated POP3 server, before and after login, over
// several connections at once: no crash, no hang, bounded memory, and afterwards a well-formed
// session still logs in and retrieves mail.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { encodeXoauth2 } from '../../../src/net/sasl-xoauth2.ts';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { mutatedLine, prng } from '../../helpers/fuzz.ts';
import { settledMemoryBytes } from '../../helpers/memory.ts';
import { LineClient } from '../../helpers/line-client.ts';
import { SCOPES, userToken } from '../../helpers/mail-tokens.ts';

/** Lines the server must have read (its own counter), not merely lines written. */
const TARGET = 100_000;
const CONNECTIONS = 8;
const BATCH = 250;

describe('POP3 server under hostile input', () => {
  let emu: TestEmulator;
  let token: string;
  before(async () => {
    emu = await startTestEmulator();
    for (let i = 1; i <= 3; i++) await emu.admin('POST', '/mailboxes/bob@contoso.com/messages', { raw: `Subject: ${i}\r\n\r\nbody ${i}\r\n.dot\r\n` });
    token = await userToken(emu, 'bob@contoso.com', [SCOPES.pop]);
  });
  after(() => emu.close());

  const linesRead = () => emu.running.state.counters.get('pop:lines') ?? 0;

  /** One connection's worth of fuzzing; reconnects when the server ends a session. */
  async function fuzzConnection(seed: number, loggedIn: boolean): Promise<void> {
    const rand = prng(seed);
    const valid = [
      'CAPA',
      'STAT',
      'LIST',
      'LIST 1',
      'UIDL',
      'UIDL 2',
      'RETR 1',
      'TOP 1 2',
      'TOP 2 0',
      'DELE 3',
      'RSET',
      'NOOP',
      'USER bob@contoso.com',
      'PASS x',
      'AUTH XOAUTH2',
      'AUTH PLAIN',
      'AUTH',
      encodeXoauth2('bob@contoso.com', 'garbage'),
    ];
    while (linesRead() < TARGET) {
      const socket = tls.connect({ host: '127.0.0.1', port: emu.running.mailPorts.pop3s, ca: emu.caPem, servername: 'localhost' });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      let closed = false;
      socket.on('data', () => {});
      socket.on('error', () => {});
      socket.on('close', () => (closed = true));
      if (loggedIn) socket.write(`AUTH XOAUTH2\r\n${encodeXoauth2('bob@contoso.com', token)}\r\n`);
      while (!closed && linesRead() < TARGET) {
        const lines: Buffer[] = [];
        for (let i = 0; i < BATCH; i++) lines.push(mutatedLine(rand, valid, 40_000), Buffer.from('\r\n'));
        // Backpressure both ways: wait until the server has taken the batch.
        if (!socket.write(Buffer.concat(lines))) {
          await new Promise<void>((resolve) => {
            socket.once('drain', resolve);
            socket.once('close', resolve);
          });
        }
      }
      socket.destroy();
    }
  }

  it('survives 100,000+ hostile lines with bounded memory, then serves a good client', async () => {
    const memoryBefore = settledMemoryBytes();
    const started = Date.now();
    await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => fuzzConnection(1000 + i, i % 2 === 1)));
    assert.ok(linesRead() >= TARGET, `the server read ${linesRead()} lines`);
    assert.ok(Date.now() - started < 60_000, 'no hang');
    const growthMb = (settledMemoryBytes() - memoryBefore) / 1024 / 1024;
    assert.ok(growthMb < 20, `memory grew by ${growthMb.toFixed(1)} MB`);

    // Mutated QUITs may have committed deletions: give the good client a message of its own.
    await emu.admin('POST', '/mailboxes/bob@contoso.com/messages', { raw: 'Subject: after\r\n\r\nstill here\r\n' });
    const c = await LineClient.connect({ port: emu.running.mailPorts.pop3s, tlsCa: emu.caPem });
    assert.match((await c.line()) ?? '', /^\+OK The Microsoft Exchange POP3 service is ready/);
    assert.equal(await c.ask('AUTH XOAUTH2'), '+ ');
    assert.equal(await c.ask(encodeXoauth2('bob@contoso.com', token)), '+OK User successfully authenticated.');
    const stat = (await c.ask('STAT')) ?? '';
    const count = Number(stat.split(' ')[1]);
    assert.ok(count >= 1, stat);
    assert.equal(await c.ask(`RETR ${count}`), '+OK');
    assert.deepEqual(await c.block(), ['Subject: after', '', 'still here']);
    c.close();
  });
});
