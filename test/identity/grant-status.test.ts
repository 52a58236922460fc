// A grant's status is what its last real attempt said (issue 12, point 13): a grant marked
// needs_sign_in does not hand out its cached access token as if nothing were wrong; `token` tries
// for real, fails with exit 5 while the cause is there, and once the cause is gone a successful
// refresh sets the status back to ok, which `accounts` then shows (no `verify` needed).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IDS } from '../../src/emulator/scenario/default.ts';
import { loadConfig, type LoadedConfig } from '../../src/config/load.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig, signInMailbox } from '../helpers/identity-config.ts';
import { runCli } from '../helpers/cli.ts';

const ALICE = 'alice@contoso.com';
const SCOPES = ['https://outlook.office.com/IMAP.AccessAsUser.All', 'https://outlook.office.com/POP.AccessAsUser.All', 'https://outlook.office.com/SMTP.Send'];

describe('grant status follows the last real attempt', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let loaded: LoadedConfig;
  let store: SqliteTokenStore;
  before(async () => {
    emu = await startTestEmulator();
    cfg = await writeTestConfig(emu);
    loaded = await loadConfig(cfg.file, {});
    store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
    await signInMailbox(emu, loaded, store, ALICE);
  });
  after(async () => {
    await store.close();
    await emu.close();
  });

  const accountsStatus = async () => {
    const run = await runCli(['accounts', '--config', cfg.file, '--json']);
    return (JSON.parse(run.stdout) as { mailbox: string; status: string; reason?: string }[]).find((r) => r.mailbox === ALICE);
  };

  it('needs_sign_in: token does not hand out the cached token silently; after the cause is gone, token and accounts say ok', async () => {
    // The sign-in cached a fresh token for every protocol. Consent is withdrawn, and a refresh for
    // IMAP (a server refused its token) fails: the grant is marked needs_sign_in (AADSTS65001).
    await emu.admin('DELETE', '/consents', { clientId: DEFAULT_IDS.desktopApp });
    const provider = new TokenProvider({ loaded, store, retryBaseDelayMs: 10 });
    const imap = await provider.getAccessToken(ALICE, 'imap');
    provider.invalidate(ALICE, 'imap', imap);
    await assert.rejects(provider.getAccessToken(ALICE, 'imap'), { code: 'needs_sign_in' });
    // The same provider (a long-running proxy) does not serve its remembered SMTP token either.
    await assert.rejects(provider.getAccessToken(ALICE, 'smtp'), { code: 'needs_sign_in' });
    assert.equal((await accountsStatus())?.status, 'needs_sign_in');

    // The SMTP token in the store is still fresh, but the grant is marked: token tries for real.
    const marked = await runCli(['token', ALICE, '--protocol', 'smtp', '--config', cfg.file]);
    assert.equal(marked.code, 5, `exit ${marked.code}: ${marked.stderr}`);
    assert.equal(marked.stdout, '', 'no token is handed out while the grant needs a sign-in');
    assert.match(marked.stderr, /AADSTS65001/);

    // The cause goes away (consent granted again): the next real attempt succeeds and says so.
    await emu.admin('POST', '/consents', { clientId: DEFAULT_IDS.desktopApp, user: ALICE, scopes: SCOPES });
    const fixed = await runCli(['token', ALICE, '--protocol', 'smtp', '--config', cfg.file]);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.match(fixed.stdout, /^ey[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const row = await accountsStatus();
    assert.equal(row?.status, 'ok');
    assert.equal(row?.reason, undefined);
    const listed = await runCli(['accounts', '--config', cfg.file]);
    assert.match(listed.stdout, /^alice@contoso\.com {2}authorization_code {2}ok {2}as alice@contoso\.com/m);
  });
});
