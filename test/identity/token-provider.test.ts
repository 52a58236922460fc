// The token provider against the emulator over HTTPS with real msal-node: one refresh however
// many callers (in one process and across two), a week of refreshes with refresh tokens that die
// on use, and each way a grant breaks turned into a status, an explanation and an alert.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IDS } from '../../src/emulator/scenario/default.ts';
import { loadConfig, type LoadedConfig } from '../../src/config/load.ts';
import { TokenError } from '../../src/identity/token-errors.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import type { StatusChange } from '../../src/identity/alerts.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';
import { appById, startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig, signInMailbox } from '../helpers/identity-config.ts';

const HOUR = 3_600_000;
const WORKER = new URL('../helpers/token-worker.ts', import.meta.url).pathname;

describe('token provider', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  let loaded: LoadedConfig;
  let store: SqliteTokenStore;
  /** Simulated time, shared by the emulator's clock and the provider's. */
  let offsetMs = 0;
  const changes: StatusChange[] = [];
  const seen: string[] = [];
  let alertLog: string;

  async function advance(ms: number): Promise<void> {
    offsetMs += ms;
    await emu.admin('POST', '/clock', { advanceSeconds: ms / 1000 });
  }

  const provider = (options: Partial<ConstructorParameters<typeof TokenProvider>[0]> = {}) =>
    new TokenProvider({ loaded, store, now: () => Date.now() + offsetMs, retryBaseDelayMs: 10, onStatusChange: (c) => changes.push(c), ...options });

  async function signInAlice(): Promise<void> {
    await signInMailbox(emu, loaded, store, 'alice@contoso.com');
  }

  const refreshes = async () => (await emu.counters()).token?.refresh_token ?? 0;

  before(async () => {
    emu = await startTestEmulator();
    const dir = (await writeTestConfig(emu)).dir;
    alertLog = join(dir, 'alerts.log');
    cfg = await writeTestConfig(emu, {
      alerts: { command: `printf '%s %s %s\\n' "$MAILBRIDGE_MAILBOX" "$MAILBRIDGE_STATUS" "$MAILBRIDGE_AADSTS" >> ${alertLog}` },
    });
    loaded = await loadConfig(cfg.file, {});
    store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key'), {}));
    await signInAlice();
  });
  after(async () => {
    await store.close();
    await emu.close();
    await rm(cfg.dir, { recursive: true, force: true });
  });

  it('1,000 concurrent callers on an expired token cause exactly one token request', async () => {
    await advance(2 * HOUR);
    const p = provider();
    const before = await refreshes();
    const tokens = await Promise.all(Array.from({ length: 1000 }, () => p.getAccessToken('alice@contoso.com', 'imap')));
    assert.equal(new Set(tokens).size, 1);
    seen.push(tokens[0]!);
    assert.equal((await refreshes()) - before, 1);
    // And the next call is served from memory, with no request at all.
    assert.equal(await p.getAccessToken('alice@contoso.com', 'imap'), tokens[0]);
    assert.equal((await refreshes()) - before, 1);
  });

  it('invalidate: a token a server refused is not served again; the next call refreshes once', async () => {
    const p = provider();
    const first = await p.getAccessToken('alice@contoso.com', 'imap');
    const before = await refreshes();
    p.invalidate('alice@contoso.com', 'imap');
    const second = await p.getAccessToken('alice@contoso.com', 'imap');
    assert.notEqual(second, first);
    assert.equal((await refreshes()) - before, 1);
    assert.equal(await p.getAccessToken('alice@contoso.com', 'imap'), second);
  });

  it('two processes sharing one store cause one token request between them', async () => {
    await advance(2 * HOUR);
    const before = await refreshes();
    const workers = [0, 1].map(() =>
      spawn(process.execPath, [WORKER, cfg.file, 'alice@contoso.com', '200', String(offsetMs)], {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: { ...process.env, MAILBRIDGE_KEY: '' },
      }),
    );
    const outputs = workers.map(
      (w) =>
        new Promise<string>((resolve) => {
          let out = '';
          w.stdout.on('data', (d) => (out += d));
          w.on('close', () => resolve(out.trim()));
        }),
    );
    await new Promise((r) => setTimeout(r, 800)); // both have loaded config and opened the store
    for (const w of workers) w.stdin.end('go\n');
    assert.deepEqual(await Promise.all(outputs), ['1', '1']);
    assert.equal((await refreshes()) - before, 1);
  });

  it('a week of use with refresh tokens revoked once used keeps working: the rotated one is always saved', async () => {
    await emu.admin('PATCH', '/settings', { refreshTokenReuse: 'revoke' });
    try {
      const p = provider();
      const before = await refreshes();
      for (let step = 0; step < 7 * 12; step++) {
        await advance(2 * HOUR);
        seen.push(await p.getAccessToken('alice@contoso.com', step % 2 ? 'smtp' : 'imap'));
      }
      assert.equal((await refreshes()) - before, 84);
      assert.equal(new Set(seen).size, seen.length, 'every refresh gave a new token');
    } finally {
      await emu.admin('PATCH', '/settings', { refreshTokenReuse: 'keep' });
    }
  });

  it('an identity service answering 500 is retried, with back-off, until it answers', async () => {
    await advance(2 * HOUR);
    await emu.admin('POST', '/outages', { kind: 'http500', times: 2 });
    const before = (await emu.counters()).token ?? {};
    assert.ok(await provider().getAccessToken('alice@contoso.com', 'imap'));
    const after = (await emu.counters()).token ?? {};
    assert.equal((after.outage_http500 ?? 0) - (before.outage_http500 ?? 0), 2);
    assert.equal((after.refresh_token ?? 0) - (before.refresh_token ?? 0), 1, 'then one real refresh');
  });

  /** The grant as stored: still signed in, refresh token still there. */
  async function assertGrantKept(): Promise<void> {
    const record = await store.get('alice@contoso.com');
    assert.equal(record?.meta.status, 'ok');
    assert.ok(record?.secrets.msalCache?.includes('RefreshToken'));
  }

  it('garbage instead of JSON, or no answer at all: "unavailable", and the grant is kept', async () => {
    await advance(2 * HOUR);
    await emu.admin('POST', '/outages', { kind: 'garbage', times: 4 });
    await assert.rejects(
      provider().getAccessToken('alice@contoso.com', 'imap'),
      (err: TokenError) => err.code === 'unavailable' && /not JSON/.test(err.message),
    );
    await assertGrantKept();
    await emu.admin('POST', '/outages', { kind: 'hang', times: 4 });
    const started = Date.now();
    await assert.rejects(
      provider({ requestTimeoutMs: 300 }).getAccessToken('alice@contoso.com', 'imap'),
      (err: TokenError) => err.code === 'unavailable' && /did not answer within 0\.3 s/.test(err.message),
    );
    assert.ok(Date.now() - started < 10_000);
    await assertGrantKept();
    await emu.admin('DELETE', '/outages');
  });

  it('throttled (AADSTS90055, HTTP 429): "try later" at once, not hammered; the grant is kept', async () => {
    await advance(2 * HOUR);
    await emu.admin('POST', '/failures', { aadsts: 90055, grantType: 'refresh_token', times: 1 });
    const before = await refreshes();
    await assert.rejects(
      provider().getAccessToken('alice@contoso.com', 'imap'),
      (err: TokenError) => err.code === 'unavailable' && err.explanation?.code === 90055,
    );
    assert.equal((await refreshes()) - before, 1, 'one request, no retry storm');
    await assertGrantKept();
    assert.ok(await provider().getAccessToken('alice@contoso.com', 'imap'), 'later, it works again');
  });

  it('grants idle for a month are refreshed, well inside the 90-day inactivity limit', async () => {
    const p = provider();
    assert.deepEqual(await p.refreshIdleGrants(30 * 24 * HOUR), [], 'nothing is idle yet');
    await advance(31 * 24 * HOUR);
    const before = await refreshes();
    assert.deepEqual(await p.refreshIdleGrants(30 * 24 * HOUR), ['alice@contoso.com'], 'app-only grants have no refresh token to keep alive');
    assert.equal((await refreshes()) - before, 1);
    assert.ok(((await store.get('alice@contoso.com'))?.meta.refreshedAt ?? 0) > Date.now() + offsetMs - 60_000);
  });

  async function expectBroken(mailbox: string, code: 'needs_sign_in' | 'broken_configuration', aadsts: number, fix: RegExp): Promise<void> {
    await assert.rejects(provider().getAccessToken(mailbox, 'imap'), (err: unknown) => {
      assert.ok(err instanceof TokenError, String(err));
      assert.equal(err.code, code);
      assert.equal(err.explanation?.code, aadsts);
      assert.match(err.message, fix);
      // The configured cloud is the emulator: no fix may send the person to the real Microsoft.
      assert.doesNotMatch(err.message, /microsoftonline\.com/, err.message);
      return true;
    });
    const meta = (await store.listMeta()).find((m) => m.mailbox === mailbox);
    assert.equal(meta?.status, code);
    assert.equal(meta?.aadsts, aadsts);
    assert.ok(
      changes.some((c) => c.mailbox === mailbox && c.to === code && c.aadsts === aadsts),
      'the status change was reported',
    );
  }

  it('missing consent (AADSTS65001): needs sign-in, with the fix', async () => {
    await advance(2 * HOUR);
    // Alice is an admin: her sign-in consented for the whole organisation, so withdraw every consent.
    await emu.admin('DELETE', '/consents', { clientId: DEFAULT_IDS.desktopApp });
    await expectBroken('alice@contoso.com', 'needs_sign_in', 65001, /consent/i);
    await emu.admin('POST', '/consents', {
      clientId: DEFAULT_IDS.desktopApp,
      user: 'alice@contoso.com',
      scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All', 'https://outlook.office.com/POP.AccessAsUser.All', 'https://outlook.office.com/SMTP.Send'],
    });
  });

  it('a revoked grant (AADSTS50173): needs sign-in, and the alert command ran', async () => {
    await signInAlice();
    await advance(2 * HOUR);
    await emu.admin('POST', '/users/alice@contoso.com/revoke');
    await advance(60_000);
    await expectBroken('alice@contoso.com', 'needs_sign_in', 50173, /mailbridge login alice@contoso\.com/);
  });

  it('an expired secret (AADSTS7000222) and a wrong one (AADSTS7000215): broken configuration', async () => {
    const service = appById(emu, DEFAULT_IDS.serviceApp);
    await emu.admin('POST', `/apps/${service.clientId}/secrets/${service.secrets[0]!.id}/expire`);
    await expectBroken('shared@contoso.com', 'broken_configuration', 7000222, /secret/i);
    const wrong = await writeTestConfig(emu);
    const raw = JSON.parse(await readFile(wrong.file, 'utf8')) as { apps: Record<string, { clientSecret?: string }>; dataDir?: string };
    raw.apps['service-secret']!.clientSecret = 'not~the~right~secret';
    raw.dataDir = loaded.dataDir;
    await writeFile(wrong.file, JSON.stringify(raw));
    const wrongLoaded = await loadConfig(wrong.file, {});
    await assert.rejects(
      new TokenProvider({ loaded: wrongLoaded, store, retryBaseDelayMs: 10 }).getAccessToken('shared@contoso.com', 'imap'),
      (err: TokenError) => err.explanation?.code === 7000215 && /Value/.test(err.message),
    );
    await rm(wrong.dir, { recursive: true, force: true });
  });

  it('every status change reached the alert command', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const lines = (await readFile(alertLog, 'utf8')).trim().split('\n');
    assert.ok(lines.includes('alice@contoso.com needs_sign_in 65001'), lines.join('\n'));
    assert.ok(lines.includes('alice@contoso.com needs_sign_in 50173'), lines.join('\n'));
    assert.ok(lines.includes('shared@contoso.com broken_configuration 7000222'), lines.join('\n'));
  });

  it('neither the store nor anything beside its key holds a token or secret in clear', async () => {
    const secrets = [...seen, appById(emu, DEFAULT_IDS.serviceApp).secrets[0]!.value, appById(emu, DEFAULT_IDS.webApp).secrets[0]!.value];
    const record = await store.get('alice@contoso.com');
    for (const rt of Object.values((JSON.parse(record?.secrets.msalCache ?? '{}') as { RefreshToken?: Record<string, { secret: string }> }).RefreshToken ?? {}))
      secrets.push(rt.secret);
    assert.ok(secrets.length > 80);
    for (const name of await readdir(loaded.dataDir)) {
      const bytes = await readFile(join(loaded.dataDir, name));
      for (const s of secrets) assert.ok(!bytes.includes(s), `${name} holds a secret in clear`);
    }
  });
});
