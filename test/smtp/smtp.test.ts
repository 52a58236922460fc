// sendMessage and createSmtpTransport against real servers: the emulated Exchange (read back from
// bob's mailbox over IMAP) and Postfix submitting into Dovecot (read back from Dovecot over
// IMAP). STARTTLS with verified certificates, XOAUTH2 with tokens from the provider; a token the
// server refuses is refreshed once (Exchange: 535 at once, so sendMessage retries; Postfix: a 334
// challenge, so nodemailer's renew path does); refusals are SmtpErrors with the server's reply
// and never a token.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { LoadedConfig } from '../../src/config/load.ts';
import { openImap } from '../../src/imap/index.ts';
import { TokenError } from '../../src/identity/token-errors.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import { createSmtpTransport, sendMessage, SmtpError } from '../../src/smtp/index.ts';
import type { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import type { TestConfig } from '../helpers/identity-config.ts';
import { startDovecot, type Dovecot } from '../peers/dovecot.ts';
import { startPostfix, type Postfix } from '../peers/postfix.ts';
import { DOVECOT_ISSUER, message, openStore, peerTls, signInMailbox, until, writeMailConfig } from '../imap/mail-context.ts';
import { needPeers } from '../helpers/peers.ts';

const ALICE = 'alice@contoso.com';
const BOB = 'bob@contoso.com';
const SUPPORT = 'support@contoso.com';
const HOUR = 3_600_000;

async function counters(emu: TestEmulator): Promise<{ smtpOk: number; smtpFailed: number; refreshes: number; clientCredentials: number }> {
  const c = await emu.counters();
  return {
    smtpOk: c.smtp?.auth_ok ?? 0,
    smtpFailed: c.smtp?.auth_failed ?? 0,
    refreshes: c.token?.refresh_token ?? 0,
    clientCredentials: c.token?.client_credentials ?? 0,
  };
}

/** Waits for the message with `subject` in the mailbox's INBOX (over IMAP) and returns its source. */
async function received(ctx: { loaded: LoadedConfig; provider: TokenProvider }, mailbox: string, subject: string): Promise<{ source: string; from: string[] }> {
  const client = await openImap(ctx, mailbox);
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const uid = await until(`"${subject}" in ${mailbox}`, async () => ((await client.search({ subject }, { uid: true })) || [])[0]);
      const found = await client.fetchOne(String(uid), { envelope: true, source: true }, { uid: true });
      assert.ok(found && found.envelope && found.source);
      return { source: found.source.toString('utf8'), from: (found.envelope.from ?? []).map((a) => a.address ?? '') };
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

function assertNoToken(err: unknown, tokens: string[]): void {
  const everything = `${String(err)}\n${inspect(err, { depth: 10 })}\n${JSON.stringify(err)}`;
  for (const token of tokens) assert.ok(!everything.includes(token), 'no token anywhere in the error');
}

describe('SMTP sending', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let loaded: LoadedConfig;
  let store: SqliteTokenStore;
  let provider: TokenProvider;
  const extra: TestConfig[] = [];

  before(async () => {
    emu = await startTestEmulator();
    ({ cfg, loaded } = await writeMailConfig(emu));
    store = await openStore(loaded);
    await signInMailbox(emu, loaded, store, ALICE);
    await signInMailbox(emu, loaded, store, BOB);
    provider = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
  });
  after(async () => {
    await store?.close();
    await emu?.close();
    for (const c of [cfg, ...extra]) if (c) await rm(c.dir, { recursive: true, force: true });
  });

  describe('through the emulated Exchange', () => {
    it('sends alice -> bob; bob reads it over IMAP', async () => {
      const subject = `Hello Bob ${randomUUID()}`;
      const info = await sendMessage({ loaded, provider }, ALICE, { to: [BOB], subject, text: 'Sent by mailbridge.\n.A leading dot.\n' });
      assert.deepEqual(info.accepted, [BOB]);
      assert.deepEqual(info.rejected, []);
      assert.match(info.response, /^250 2\.0\.0 OK /);
      const got = await received({ loaded, provider }, BOB, subject);
      assert.deepEqual(got.from, [ALICE]);
      assert.ok(got.source.replace(/\r\n/g, '\n').includes('\n\nSent by mailbridge.\n.A leading dot.\n'), got.source);
    });

    it('sends a complete message (raw) as it is, to and cc', async () => {
      const subject = `Raw ${randomUUID()}`;
      const raw = Buffer.from(message(ALICE, BOB, subject, 'A message written elsewhere.'));
      const info = await sendMessage({ loaded, provider }, ALICE, { to: [BOB], cc: [SUPPORT], raw });
      assert.deepEqual(info.accepted.sort(), [BOB, SUPPORT].sort());
      for (const mailbox of [BOB, SUPPORT]) {
        const got = await received({ loaded, provider }, mailbox, subject);
        assert.match(got.source, new RegExp(`^Message-ID: <${subject.replace(/\W+/g, '\\.')}@mailbridge\\.test>`, 'm'));
        assert.ok(got.source.includes('A message written elsewhere.'));
      }
    });

    it('createSmtpTransport: every connection asks the provider, which serves its cached token (no token request)', async () => {
      const transport = await createSmtpTransport({ loaded, provider }, ALICE);
      try {
        await provider.getAccessToken(ALICE, 'smtp'); // cached now
        const before = await counters(emu);
        assert.equal(await transport.verify(), true);
        for (let i = 0; i < 2; i++) {
          const info = await transport.sendMail({ from: ALICE, to: BOB, subject: `Transport ${i} ${randomUUID()}`, text: 'x' });
          assert.deepEqual(info.accepted, [BOB]);
        }
        const after = await counters(emu);
        assert.equal(after.smtpOk - before.smtpOk, 3, 'three connections, three logins');
        assert.equal(after.refreshes - before.refreshes, 0, 'and no token request');
      } finally {
        transport.close();
      }
    });

    it('SMTP AUTH disabled for the mailbox: SmtpError auth_disabled with 535 5.7.139, no token, no retry', async () => {
      const original = emu.scenario.exchange.mailboxes.find((m) => m.address === ALICE)!.smtpClientAuthenticationDisabled;
      assert.equal((await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: true })).status, 200);
      try {
        const before = await counters(emu);
        const err = await sendMessage({ loaded, provider }, ALICE, { to: [BOB], subject: 'refused', text: 'x' }).then(
          () => assert.fail('SMTP AUTH is disabled for alice'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof SmtpError, inspect(err));
        assert.equal(err.code, 'auth_disabled');
        assert.equal(err.mailbox, ALICE);
        assert.equal(err.command, 'AUTH XOAUTH2');
        assert.equal(err.responseCode, 535);
        assert.match(err.response ?? '', /^535 5\.7\.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox\. /);
        assert.match(err.message, /535 5\.7\.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox/);
        assertNoToken(err, [await provider.getAccessToken(ALICE, 'smtp')]);
        const after = await counters(emu);
        assert.equal(after.smtpFailed - before.smtpFailed, 1, 'one AUTH: a policy refusal is not retried');
        assert.equal(after.refreshes - before.refreshes, 0);
      } finally {
        await emu.admin('PATCH', `/mailboxes/${ALICE}`, { smtpClientAuthenticationDisabled: original });
      }
    });

    it('a token Exchange refuses (535 at once) is invalidated, refreshed once and the send retried', async () => {
      const p = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
      const stale = await p.getAccessToken(ALICE, 'smtp');
      await emu.admin('POST', '/clock', { advanceSeconds: 2 * 3600 }); // expired for the server, fresh for the provider
      try {
        const before = await counters(emu);
        const subject = `After a refresh ${randomUUID()}`;
        const info = await sendMessage({ loaded, provider: p }, ALICE, { to: [BOB], subject, text: 'Second time lucky.' });
        assert.deepEqual(info.accepted, [BOB]);
        const after = await counters(emu);
        assert.equal(after.smtpFailed - before.smtpFailed, 1, 'the stale token was refused once');
        assert.equal(after.smtpOk - before.smtpOk, 1);
        assert.equal(after.refreshes - before.refreshes, 1, 'one refresh');
        assert.notEqual(await p.getAccessToken(ALICE, 'smtp'), stale);
        await received({ loaded, provider: p }, BOB, subject);
      } finally {
        await emu.admin('POST', '/clock', { reset: true });
      }
    });

    it('refused again after the refresh: SmtpError auth_rejected with 535 5.7.3, after exactly two logins', async () => {
      // Without its service principal in Exchange, every app-only token is refused.
      const saved = emu.scenario.exchange.servicePrincipals.map((sp) => ({ ...sp }));
      for (const sp of saved) await emu.admin('DELETE', `/exchange/service-principals/${sp.objectId}`);
      const p = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
      try {
        const before = await counters(emu);
        const err = await sendMessage({ loaded, provider: p }, SUPPORT, { to: [BOB], subject: 'refused', text: 'x' }).then(
          () => assert.fail('refused'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof SmtpError, inspect(err));
        assert.equal(err.code, 'auth_rejected');
        assert.match(err.response ?? '', /^535 5\.7\.3 Authentication unsuccessful/);
        assert.match(err.message, /refused the access token: 535 5\.7\.3 .*, also a freshly refreshed one/);
        const after = await counters(emu);
        assert.equal(after.smtpFailed - before.smtpFailed, 2, 'two logins, no more');
        assert.equal(after.clientCredentials - before.clientCredentials, 2, 'a token, then one more after invalidate');
        assertNoToken(err, [await p.getAccessToken(SUPPORT, 'smtp')]);
      } finally {
        for (const sp of saved) await emu.admin('POST', '/exchange/service-principals', sp);
      }
    });

    it("a mailbox never signed in: the provider's TokenError comes out unchanged (not an EAUTH)", async () => {
      const fresh = await writeMailConfig(emu); // its own, empty, token store
      extra.push(fresh.cfg);
      const emptyStore = await openStore(fresh.loaded);
      try {
        await assert.rejects(
          sendMessage({ loaded: fresh.loaded, provider: new TokenProvider({ loaded: fresh.loaded, store: emptyStore }) }, ALICE, {
            to: [BOB],
            subject: 'x',
            text: 'x',
          }),
          (err: unknown) => {
            assert.ok(err instanceof TokenError, inspect(err));
            assert.equal(err.code, 'needs_sign_in');
            assert.match(err.message, /mailbridge login alice@contoso\.com/);
            return true;
          },
        );
      } finally {
        await emptyStore.close();
      }
    });

    it('verifies certificates: without the emulator CA, SmtpError tls', async () => {
      const other = await writeMailConfig(emu, { caFile: null });
      extra.push(other.cfg);
      await assert.rejects(
        sendMessage({ loaded: other.loaded, provider: new TokenProvider({ loaded: other.loaded, store }) }, ALICE, { to: [BOB], subject: 'x', text: 'x' }),
        (err: unknown) => {
          assert.ok(err instanceof SmtpError, inspect(err));
          assert.equal(err.code, 'tls');
          assert.match(err.message, /certificate/i);
          return true;
        },
      );
    });
  });

  describe('through Postfix, delivered into Dovecot', { skip: needPeers('postfix', 'dovecot') }, () => {
    let dovecot: Dovecot;
    let postfix: Postfix;
    let peers: LoadedConfig;

    before(async () => {
      const tls = await peerTls(emu);
      dovecot = await startDovecot({ issuer: DOVECOT_ISSUER, keysDir: emu.running.dovecotKeysDir, tls });
      postfix = await startPostfix({ dovecot, tls, virtualDomains: ['contoso.com'] });
      const written = await writeMailConfig(emu, { imap: `imaps://localhost:${dovecot.imapsPort}`, smtp: `smtp://localhost:${postfix.submissionPort}` });
      extra.push(written.cfg);
      peers = written.loaded;
    });
    after(async () => {
      await postfix?.stop();
      await dovecot?.stop();
    });

    it('sends alice -> bob through Postfix (STARTTLS, XOAUTH2 checked by Dovecot); bob reads it from Dovecot over IMAP', async () => {
      // The same token store: the grants are the same, only the servers differ.
      const ctx = { loaded: peers, provider: new TokenProvider({ loaded: peers, store, retryBaseDelayMs: 10 }) };
      const subject = `Through Postfix ${randomUUID()}`;
      const info = await sendMessage(ctx, ALICE, { to: [BOB], subject, text: 'Submitted to Postfix, delivered by LMTP.\n' });
      assert.deepEqual(info.accepted, [BOB]);
      assert.match(info.response, /^250 2\.0\.0 Ok: queued as /);
      const got = await received(ctx, BOB, subject);
      assert.deepEqual(got.from, [ALICE]);
      assert.match(got.source, /^Return-Path: <alice@contoso\.com>/m);
      assert.match(got.source, /ESMTPSA/, 'submitted over TLS with authentication');
      assert.ok(got.source.replace(/\r\n/g, '\n').includes('\n\nSubmitted to Postfix, delivered by LMTP.\n'));
    });

    it("a token Postfix refuses (334, then 535): nodemailer renews once through the provider, then SmtpError with Postfix's reply", async () => {
      // Tokens issued 2 hours in the emulator's past are expired for Dovecot (real clock); the
      // provider, 2 hours behind too, takes them as fresh.
      await emu.admin('POST', '/clock', { advanceSeconds: -2 * 3600 });
      const p = new TokenProvider({ loaded: peers, store, now: () => Date.now() - 2 * HOUR, retryBaseDelayMs: 10 });
      try {
        await p.getAccessToken(ALICE, 'smtp'); // the stored (valid) one...
        p.invalidate(ALICE, 'smtp'); // ...set aside, so the next ones come from the past-clock emulator
        const before = await counters(emu);
        const err = await sendMessage({ loaded: peers, provider: p }, ALICE, { to: [BOB], subject: 'refused', text: 'x' }).then(
          () => assert.fail('Postfix should have refused'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof SmtpError, inspect(err));
        assert.equal(err.code, 'auth_rejected');
        assert.match(err.response ?? '', /^535 5\.7\.8 Error: authentication failed/);
        assert.match(err.message, /also a freshly refreshed one/);
        assert.equal((await counters(emu)).refreshes - before.refreshes, 2, 'a token, then one renewed by nodemailer (renew=true), no third');
        assertNoToken(err, [await p.getAccessToken(ALICE, 'smtp')]);
      } finally {
        await emu.admin('POST', '/clock', { reset: true });
      }
    });
  });
});
