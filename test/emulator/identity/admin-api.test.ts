// The emulator's admin API as a test or demo uses it: counters, the clock, mailbox permissions,
// consent, new secrets, and clear refusals of wrong calls.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { startTestEmulator, type TestEmulator } from '../../helpers/emulator.ts';

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
