// The emulator's admin API as a test or demo uses it: counters, the clock, mailbox permissions,
// consent, new secrets, and clear refusals of wrong calls.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';
import { httpsRequest, type HttpsResponse } from '../../helpers/https.ts';

/** A message of exactly `size` bytes. */
function messageOf(size: number): Buffer {
  const header = Buffer.from('From: <s@fabrikam.example>\r\nTo: <bob@contoso.com>\r\nSubject: big\r\n\r\n');
  return Buffer.concat([header, Buffer.alloc(size - header.length - 2, 'x'), Buffer.from('\r\n')]);
}

/** POSTs `chunks` with chunked transfer encoding: no Content-Length tells the server the size. */
function postChunked(url: string, caPem: string, chunks: Buffer[]): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'message/rfc822' }, ca: caPem }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    // The server may answer and close before it has read everything: that is its right.
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('emulator admin API', () => {
  let emu: TestEmulator;
  before(async () => {
    emu = await startTestEmulator();
  });
  after(() => emu.close());

  it('counts requests per endpoint and grant type, and resets the counts', async () => {
    await emu.admin('DELETE', '/counters');
    await emu.token({ grant_type: 'client_credentials', client_id: DEFAULT_IDS.serviceApp });
    await emu.token({ grant_type: 'refresh_token', client_id: DEFAULT_IDS.desktopApp, refresh_token: 'x' });
    await emu.token({ grant_type: 'refresh_token', client_id: DEFAULT_IDS.desktopApp, refresh_token: 'y' });
    assert.deepEqual((await emu.counters()).token, { total: 3, client_credentials: 1, refresh_token: 2 });
  });

  it('moves the clock forward and back to real time', async () => {
    const moved = (await emu.admin('POST', '/clock', { advanceSeconds: 86_400 })).json<{ now: string; offsetSeconds: number }>();
    assert.equal(moved.offsetSeconds, 86_400);
    assert.ok(Math.abs(Date.parse(moved.now) - (Date.now() + 86_400_000)) < 5_000);
    assert.equal((await emu.admin('POST', '/clock', { reset: true })).json<{ offsetSeconds: number }>().offsetSeconds, 0);
  });

  it('adds and removes a mailbox permission (Add-/Remove-MailboxPermission)', async () => {
    const added = await emu.admin('POST', '/mailboxes/support@contoso.com/permissions', { principal: 'bob@contoso.com', accessRights: ['FullAccess'] });
    assert.equal(added.status, 201);
    const mailbox = () => emu.scenario.exchange.mailboxes.find((m) => m.address === 'support@contoso.com')!;
    assert.ok(mailbox().permissions.some((p) => p.principal === 'bob@contoso.com'));
    await emu.admin('DELETE', '/mailboxes/support@contoso.com/permissions/bob@contoso.com');
    assert.ok(!mailbox().permissions.some((p) => p.principal === 'bob@contoso.com'));
  });

  it('adds a secret that then works, and expires one so that it stops working', async () => {
    const secret = (await emu.admin('POST', `/apps/${DEFAULT_IDS.serviceApp}/secrets`, {})).json<{ id: string; value: string }>();
    const ask = () =>
      emu.token({
        grant_type: 'client_credentials',
        client_id: DEFAULT_IDS.serviceApp,
        client_secret: secret.value,
        scope: 'https://outlook.office365.com/.default',
      });
    assert.equal((await ask()).status, 200);
    await emu.admin('POST', `/apps/${DEFAULT_IDS.serviceApp}/secrets/${secret.id}/expire`);
    const refused = await ask();
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.json<{ error_codes: number[] }>().error_codes, [7000222]);
  });

  it('PATCH /settings changes only the fields it names, also inside settings.mail', async () => {
    const settings = async () =>
      (await emu.admin('GET', '/scenario')).json<{ settings: Record<string, unknown> & { mail: Record<string, unknown> } }>().settings;
    const before = await settings();
    assert.equal(before.accessTokenLifetime, 3600, 'the test emulator starts with a fixed lifetime, not the default');
    try {
      const patched = await emu.admin('PATCH', '/settings', { refreshTokenReuse: 'revoke' });
      assert.equal(patched.status, 200, patched.text);
      assert.deepEqual(await settings(), { ...before, refreshTokenReuse: 'revoke' });
      assert.equal((await emu.admin('PATCH', '/settings', { mail: { idleTimeoutSeconds: 60 } })).status, 200);
      assert.deepEqual(await settings(), { ...before, refreshTokenReuse: 'revoke', mail: { ...before.mail, idleTimeoutSeconds: 60 } });
      const bad = await emu.admin('PATCH', '/settings', { mail: { maxLineBytes: 10 }, deviceCodeInterval: 9 });
      assert.equal(bad.status, 400);
      assert.match(bad.json<{ message: string }>().message, /mail\.maxLineBytes/);
      assert.equal((await settings()).deviceCodeInterval, before.deviceCodeInterval, 'a refused PATCH changes nothing');
    } finally {
      await emu.admin('PATCH', '/settings', { refreshTokenReuse: before.refreshTokenReuse, mail: before.mail });
    }
  });

  it('PATCH of a user, a mailbox or a tenant leaves the fields it does not name as they were', async () => {
    try {
      await emu.admin('PATCH', '/users/bob@contoso.com', { mfa: 'required' });
      const user = await emu.admin('PATCH', '/users/bob@contoso.com', { locked: true });
      assert.deepEqual([user.json<{ mfa: string }>().mfa, user.json<{ locked: boolean }>().locked], ['required', true]);
      await emu.admin('PATCH', '/mailboxes/bob@contoso.com', { imapEnabled: false });
      const mailbox = await emu.admin('PATCH', '/mailboxes/bob@contoso.com', { popEnabled: false });
      assert.deepEqual([mailbox.json<{ imapEnabled: boolean }>().imapEnabled, mailbox.json<{ popEnabled: boolean }>().popEnabled], [false, false]);
      await emu.admin('PATCH', '/tenants/contoso.com', { securityDefaults: true });
      const tenant = await emu.admin('PATCH', '/tenants/contoso.com', { smtpClientAuthenticationDisabled: true });
      assert.equal(tenant.json<{ securityDefaults: boolean }>().securityDefaults, true);
    } finally {
      await emu.admin('PATCH', '/users/bob@contoso.com', { mfa: 'off', locked: false });
      await emu.admin('PATCH', '/mailboxes/bob@contoso.com', { imapEnabled: true, popEnabled: true });
      await emu.admin('PATCH', '/tenants/contoso.com', { securityDefaults: false, smtpClientAuthenticationDisabled: false });
    }
  });

  describe('delivering a message (POST /mailboxes/{address}/messages)', () => {
    const messagesUrl = () => `${emu.url}/_emulator/mailboxes/bob@contoso.com/messages`;
    const inboxSizes = async () =>
      (await emu.admin('GET', '/mailboxes/bob@contoso.com/messages'))
        .json<{ folder: string; messages: { size: number }[] }[]>()
        .find((f) => f.folder === 'INBOX')!
        .messages.map((m) => m.size);

    it('answers a JSON body over its limit with HTTP 413 and its own text, not an Entra error', async () => {
      const res = await emu.admin('POST', '/mailboxes/bob@contoso.com/messages', { raw: messageOf(300 * 1024).toString('latin1') });
      assert.equal(res.status, 413, res.text);
      const body = res.json<{ error: string; message: string }>();
      assert.equal(body.error, 'payload_too_large');
      assert.doesNotMatch(res.text, /AADSTS/);
      assert.match(body.message, /message\/rfc822/);
    });

    it('takes a message larger than a JSON body as message/rfc822, streamed to the mailbox', async () => {
      const before = await inboxSizes();
      const raw = messageOf(3 * 1024 * 1024);
      const res = await postChunked(messagesUrl(), emu.caPem, [raw.subarray(0, 1_000_000), raw.subarray(1_000_000)]);
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json<{ size: number }>().size, raw.length);
      assert.deepEqual(await inboxSizes(), [...before, raw.length]);
    });

    it('answers a message over settings.mail.maxMessageBytes with HTTP 413, and stores nothing', async () => {
      const limit = (await emu.admin('GET', '/scenario')).json<{ settings: { mail: { maxMessageBytes: number } } }>().settings.mail.maxMessageBytes;
      assert.equal(limit, 150 * 1024 * 1024, 'the default is what Exchange Online accepts (SIZE 157286400)');
      await emu.admin('PATCH', '/settings', { mail: { maxMessageBytes: 64 * 1024 } });
      try {
        const before = await inboxSizes();
        const raw = messageOf(100 * 1024);
        const announced = await httpsRequest(messagesUrl(), { method: 'POST', caPem: emu.caPem, headers: { 'content-type': 'message/rfc822' }, body: raw });
        const streamed = await postChunked(messagesUrl(), emu.caPem, [raw.subarray(0, 40_000), raw.subarray(40_000)]);
        for (const res of [announced, streamed]) {
          assert.equal(res.status, 413, res.text);
          assert.equal(res.json<{ error: string }>().error, 'payload_too_large');
          assert.match(res.json<{ message: string }>().message, /65536 bytes/);
        }
        assert.deepEqual(await inboxSizes(), before);
      } finally {
        await emu.admin('PATCH', '/settings', { mail: { maxMessageBytes: 150 * 1024 * 1024 } });
      }
    });
  });

  it('refuses wrong calls with a message naming the problem', async () => {
    const unknownUser = await emu.admin('POST', '/users/nobody@contoso.com/revoke');
    assert.equal(unknownUser.status, 404);
    assert.match(unknownUser.json<{ message: string }>().message, /no user nobody@contoso.com/);
    const badClock = await emu.admin('POST', '/clock', { advanceSeconds: 'soon' });
    assert.equal(badClock.status, 400);
    assert.match(badClock.json<{ message: string }>().message, /advanceSeconds/);
    const badMfa = await emu.admin('PATCH', '/users/alice@contoso.com', { mfa: 'sometimes' });
    assert.equal(badMfa.status, 400);
    assert.match(badMfa.json<{ message: string }>().message, /mfa/);
  });
});
