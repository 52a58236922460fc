// Access tokens for the emulator's mail servers, as a test needs them: delegated for a user (with
// consent granted on the way) or app-only for the service app.
import assert from 'node:assert/strict';
import { DEFAULT_IDS } from '../../src/emulator/scenario/default.ts';
import { appById, userByUpn, type TestEmulator } from './emulator.ts';

export const SCOPES = {
  imap: 'https://outlook.office.com/IMAP.AccessAsUser.All',
  pop: 'https://outlook.office.com/POP.AccessAsUser.All',
  smtp: 'https://outlook.office.com/SMTP.Send',
} as const;

/** A delegated token for `upn` (through the public desktop app, consent granted first). */
export async function userToken(emu: TestEmulator, upn: string, scopes: string[] = [SCOPES.imap, SCOPES.pop, SCOPES.smtp]): Promise<string> {
  const user = userByUpn(emu, upn);
  const granted = emu.scenario.consents.some((c) => c.clientId === DEFAULT_IDS.desktopApp && c.user === upn && scopes.every((s) => c.scopes.includes(s)));
  if (!granted) await emu.admin('POST', '/consents', { clientId: DEFAULT_IDS.desktopApp, user: upn, scopes });
  const tenant = user.tenant === '9188040d-6c67-4c5b-b112-36a304b66dad' ? 'consumers' : 'contoso.com';
  const res = await emu.token(
    { grant_type: 'password', client_id: DEFAULT_IDS.desktopApp, username: upn, password: user.password, scope: scopes.join(' ') },
    tenant,
  );
  assert.equal(res.status, 200, res.text);
  return res.json<{ access_token: string }>().access_token;
}

/** An app-only token of the service app (roles IMAP/POP/SMTP *AsApp). */
export async function appToken(emu: TestEmulator, scope = 'https://outlook.office365.com/.default'): Promise<string> {
  const app = appById(emu, DEFAULT_IDS.serviceApp);
  const res = await emu.token({ grant_type: 'client_credentials', client_id: app.clientId, client_secret: app.secrets[0]!.value, scope });
  assert.equal(res.status, 200, res.text);
  return res.json<{ access_token: string }>().access_token;
}
