// With request logging on at its most detailed, no secret, password, code or token that crossed
// the wire appears in any log line.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { appById, startTestEmulator, TENANT, userByUpn, type TestEmulator } from '../../helpers/emulator.ts';
import { signIn } from '../../helpers/browserless.ts';

const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';

describe('emulator logs', () => {
  const lines: string[] = [];
  const secrets: string[] = [];
  let emu: TestEmulator;
  before(async () => {
    emu = await startTestEmulator(undefined, { logLines: lines });
  });
  after(() => emu.close());

  it('hold no secret, password, code or token of the requests they describe', async () => {
    const service = appById(emu, DEFAULT_IDS.serviceApp);
    const secret = service.secrets[0]!.value;
    secrets.push(secret);
    const cc = await emu.token({
      grant_type: 'client_credentials',
      client_id: service.clientId,
      client_secret: secret,
      scope: 'https://outlook.office365.com/.default',
    });
    secrets.push(cc.json<{ access_token: string }>().access_token);
    await emu.token({
      grant_type: 'client_credentials',
      client_id: service.clientId,
      client_secret: `${secret}x`,
      scope: 'https://outlook.office365.com/.default',
    });

    const password = userByUpn(emu, 'alice@contoso.com').password;
    secrets.push(password);
    const verifier = randomBytes(32).toString('base64url');
    secrets.push(verifier);
    const url = new URL(`${emu.url}/${TENANT}/oauth2/v2.0/authorize`);
    url.search = new URLSearchParams({
      client_id: DEFAULT_IDS.desktopApp,
      response_type: 'code',
      redirect_uri: 'http://localhost:4000/',
      scope: `${IMAP} offline_access`,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    const landed = await signIn(url.toString(), { caPem: emu.caPem, username: 'alice@contoso.com', password, consent: 'accept' });
    const code = landed.searchParams.get('code')!;
    secrets.push(code);
    const tokens = (
      await emu.token({
        grant_type: 'authorization_code',
        client_id: DEFAULT_IDS.desktopApp,
        code,
        redirect_uri: 'http://localhost:4000/',
        code_verifier: verifier,
        scope: IMAP,
      })
    ).json<{ access_token: string; refresh_token: string }>();
    secrets.push(tokens.access_token, tokens.refresh_token);
    const refreshed = await emu.token({ grant_type: 'refresh_token', client_id: DEFAULT_IDS.desktopApp, refresh_token: tokens.refresh_token, scope: IMAP });
    secrets.push(refreshed.json<{ access_token: string }>().access_token);

    assert.ok(lines.length >= 10, `the emulator logged its requests (${lines.length} lines)`);
    const log = lines.join('');
    for (const s of secrets) {
      assert.ok(s.length > 8);
      assert.ok(!log.includes(s), `a secret of ${s.length} characters appears in the log`);
      assert.ok(!log.includes(encodeURIComponent(s)), 'a secret appears URL-encoded in the log');
    }
  });
});
