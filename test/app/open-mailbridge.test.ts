// The composition root against the emulator: one call builds configuration, stores, token provider
// and transports; what a caller injects (a loaded configuration, the provider's clock, an alert
// hook) is used instead of what would be built; close() leaves nothing open; and a store kind this
// version does not have stops a command with the configuration's exit code.
import assert from 'node:assert/strict';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { openMailbridge } from '../../src/app/open-mailbridge.ts';
import { ConfigError } from '../../src/config/load.ts';
import type { StatusChange } from '../../src/identity/alerts.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig } from '../helpers/identity-config.ts';

const MAILBOX = 'support@contoso.com';
const NOW = Date.UTC(2031, 4, 6, 7, 8, 9);

describe('openMailbridge', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
  });
  after(() => emu.close());

  it('builds stores and a token provider from the configuration, with the injected clock and alert hook', async () => {
    const changes: StatusChange[] = [];
    const mb = await openMailbridge({ configFile: cfg.file, env: {}, provider: { now: () => NOW }, onStatusChange: (c) => changes.push(c) });
    assert.equal(mb.config.file, cfg.file);
    const token = await mb.provider.getAccessToken(MAILBOX, 'imap');
    assert.ok(token.length > 100);
    assert.deepEqual(changes, [{ mailbox: MAILBOX, from: 'unknown', to: 'ok', at: new Date(NOW).toISOString() }]);
    const [stored] = await mb.tokens.listMeta();
    assert.equal(stored?.refreshedAt, NOW, 'the grant was written by the provider, on the injected clock');
    assert.deepEqual(await mb.proxyClients.list(), []);

    // A second mailbridge on the same configuration object shares the store, so no second token request.
    const again = await openMailbridge({ config: mb.config, env: {}, provider: { now: () => NOW } });
    assert.equal(again.config, mb.config);
    const requests = (await emu.counters()).token;
    assert.equal(await again.provider.getAccessToken(MAILBOX, 'imap'), token);
    assert.deepEqual((await emu.counters()).token, requests);
    await again.close();

    await Promise.all([mb.close(), mb.close()]);
    await assert.rejects(mb.tokens.listMeta(), 'the token store is closed');
    await assert.rejects(mb.proxyClients.list(), 'the proxy client store is closed');
    await access(join(cfg.dataDir, 'tokens.db'));
  });

  it('source() and sender() open the transports for a mailbox', async () => {
    const mb = await openMailbridge({ configFile: cfg.file, env: {} });
    try {
      const sender = await mb.sender(MAILBOX);
      assert.equal(sender.mailbox, MAILBOX);
      const subject = `through the root ${process.pid}`;
      const raw = [`From: ${MAILBOX}`, `To: ${MAILBOX}`, `Subject: ${subject}`, 'Message-ID: <root-test@contoso.com>', '', 'Hello.', ''].join('\r\n');
      const sent = await sender.send(raw, { to: [MAILBOX] });
      assert.equal(sent.messageId, '<root-test@contoso.com>');

      const source = await mb.source(MAILBOX, 'imap');
      try {
        assert.equal(source.protocol, 'imap');
        const { messages } = await source.listNew();
        const bodies: string[] = [];
        for (const m of messages) bodies.push(await text(await source.read(m.id)));
        assert.ok(
          bodies.some((b) => b.includes(subject)),
          'the message sent is in the mailbox',
        );
      } finally {
        await source.close();
      }
    } finally {
      await mb.close();
    }
  });

  it('a store kind this version does not have: a configuration error before anything is opened, exit 3 from a command', async () => {
    const file = join(cfg.dir, 'postgres.json');
    const dataDir = join(cfg.dir, 'postgres-data');
    await writeFile(file, JSON.stringify({ dataDir, store: { kind: 'postgres', url: 'postgres://db.internal/mailbridge' } }));
    await assert.rejects(openMailbridge({ configFile: file, env: {} }), (err: unknown) => err instanceof ConfigError && err.problems[0]?.path === 'store.kind');
    const run = await runCli(['accounts', '--config', file]);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /store\.kind: "postgres" is not a store this version of mailbridge has; the built-in kinds are "sqlite"/);
    await assert.rejects(access(dataDir), 'no data folder, no key, no database');
  });
});
