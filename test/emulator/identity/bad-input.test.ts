// Hostile and broken requests to the identity endpoints: every answer must be an Entra-shaped
// error (never a 500, never a hang), and the emulator must still serve a good client afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { appById, startTestEmulator, TENANT, type TestEmulator } from '../../helpers/emulator.ts';
import { httpsRequest, type HttpsResponse } from '../../helpers/https.ts';
import { prng } from '../../helpers/fuzz.ts';

const GRANTS = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'password',
  'device_code',
  'urn:ietf:params:oauth:grant-type:device_code',
  'implicit',
  '',
  'CLIENT_CREDENTIALS',
];
const PARAMS = [
  'grant_type',
  'client_id',
  'client_secret',
  'scope',
  'code',
  'redirect_uri',
  'code_verifier',
  'refresh_token',
  'device_code',
  'username',
  'password',
  'client_assertion',
  'client_assertion_type',
  'client_info',
];
const CONTENT_TYPES = [
  'application/x-www-form-urlencoded',
  'application/json',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/x-www-form-urlencoded; charset=utf-16',
  '',
];

function b64url(s: string): string {
  return Buffer.from(s).toString('base64url');
}

function garbageAssertion(rand: () => number): string {
  const choices = [
    () => 'not-a-jwt',
    () => 'a.b.c',
    () => `${b64url('{"alg":"none"}')}.${b64url('{}')}.`,
    () => `${b64url('{"alg":"PS256","x5t#S256":"AAAA"}')}.${b64url('{"aud":1}')}.${b64url('sig')}`,
    () => `${b64url('{"alg":"RS256","x5t":' + '"x"'.repeat(1) + '}')}.${b64url('[]')}.AAAA`,
    () => `${b64url('x'.repeat(5000))}.${b64url('{')}.${b64url('}')}`,
    () => '.'.repeat(Math.floor(rand() * 10)),
    () => `${b64url('{"alg":"HS256"}')}.${b64url('{"iss":"x","sub":"x","aud":"x","exp":1}')}.${b64url('s')}`,
  ];
  return choices[Math.floor(rand() * choices.length)]!();
}

function randomValue(rand: () => number): string {
  const choices = [
    () => '',
    () => 'x'.repeat(1 + Math.floor(rand() * 4000)),
    () => DEFAULT_IDS.serviceApp,
    () => '00000000-0000-0000-0000-000000000000',
    () => '%zz%%%',
    () => '\u0000\u0001\r\n',
    () => '😀 Ünïcödé',
    () => 'https://outlook.office365.com/.default',
    () => 'openid offline_access https://outlook.office.com/IMAP.AccessAsUser.All https://graph.microsoft.com/Mail.Read',
    () => '<script>alert(1)</script>',
    () => garbageAssertion(rand),
  ];
  return choices[Math.floor(rand() * choices.length)]!();
}

function randomBody(rand: () => number, secret: string): string {
  const parts: string[] = [];
  const count = Math.floor(rand() * 8);
  if (rand() < 0.8) parts.push(`grant_type=${encodeURIComponent(GRANTS[Math.floor(rand() * GRANTS.length)]!)}`);
  for (let i = 0; i < count; i++) {
    const name = PARAMS[Math.floor(rand() * PARAMS.length)]!;
    const value = name === 'client_secret' && rand() < 0.3 ? secret : randomValue(rand);
    parts.push(`${name}=${rand() < 0.1 ? value : encodeURIComponent(value)}`);
    if (rand() < 0.15) parts.push(`${name}=${encodeURIComponent(randomValue(rand))}`); // repeated
  }
  if (rand() < 0.05) parts.push('&&&==&');
  return parts.join('&');
}

function assertEntraError(res: HttpsResponse, what: string): void {
  assert.ok(res.status >= 400 && res.status < 500, `${what}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  let body: { error?: unknown; error_codes?: unknown; error_description?: unknown };
  try {
    body = res.json();
  } catch {
    assert.fail(`${what}: not JSON: ${res.text.slice(0, 200)}`);
  }
  assert.equal(typeof body.error, 'string', what);
  assert.ok(Array.isArray(body.error_codes) && body.error_codes.every((c) => Number.isInteger(c)), what);
  assert.match(String(body.error_description), /^AADSTS\d+: .+\r\nTrace ID: /, what);
}

describe('bad input to the identity endpoints', () => {
  let emu: TestEmulator;
  let secret: string;
  before(async () => {
    emu = await startTestEmulator();
    secret = appById(emu, DEFAULT_IDS.serviceApp).secrets[0]!.value;
  });
  after(() => emu.close());

  it('answers 400 random malformed token and device-code requests with Entra errors', async () => {
    const rand = prng(20261121);
    for (let i = 0; i < 400; i++) {
      const path = rand() < 0.8 ? 'token' : 'devicecode';
      const tenant = rand() < 0.9 ? TENANT : ['common', 'consumers', 'nope.example', '%2e%2e', 'x'.repeat(300)][Math.floor(rand() * 5)]!;
      const contentType = rand() < 0.7 ? CONTENT_TYPES[0]! : CONTENT_TYPES[Math.floor(rand() * CONTENT_TYPES.length)]!;
      const body = randomBody(rand, secret);
      const res = await httpsRequest(`${emu.url}/${tenant}/oauth2/v2.0/${path}`, {
        method: 'POST',
        caPem: emu.caPem,
        headers: contentType ? { 'content-type': contentType } : {},
        body,
      });
      if (res.status === 200) continue; // a random body can be a valid request (e.g. the real secret)
      if (res.status === 404) continue; // a tenant segment that is not a path segment at all
      assertEntraError(res, `request ${i}: POST /${tenant.slice(0, 20)}/${path} [${contentType}] ${body.slice(0, 120)}`);
    }
  });

  it('refuses wrong methods, oversized bodies and binary bodies with Entra errors', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      assertEntraError(await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/token`, { method, caPem: emu.caPem }), method);
    }
    const huge = `grant_type=client_credentials&client_assertion=${'A'.repeat(400 * 1024)}`;
    assertEntraError(
      await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/token`, {
        method: 'POST',
        caPem: emu.caPem,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: huge,
      }),
      'oversized body',
    );
    const binary = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131) % 256));
    assertEntraError(
      await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/token`, {
        method: 'POST',
        caPem: emu.caPem,
        headers: { 'content-type': 'application/octet-stream' },
        body: binary,
      }),
      'binary body',
    );
    const repeated = await httpsRequest(`${emu.url}/${TENANT}/oauth2/v2.0/token`, {
      method: 'POST',
      caPem: emu.caPem,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&grant_type=password',
    });
    assertEntraError(repeated, 'repeated grant_type');
    assert.match(repeated.json<{ error_description: string }>().error_description, /^AADSTS90015: Requested parameter 'grant_type' is duplicated\./);
  });

  it('answers 300 random malformed sign-in requests and page posts with a page or a redirect, never a 500', async () => {
    const rand = prng(7);
    const names = [
      'client_id',
      'response_type',
      'redirect_uri',
      'scope',
      'state',
      'prompt',
      'login_hint',
      'code_challenge',
      'code_challenge_method',
      'response_mode',
      'nonce',
      'ctx',
      'login',
      'passwd',
      'otc',
      'action',
    ];
    const paths = [
      `/${TENANT}/oauth2/v2.0/authorize`,
      `/${TENANT}/login`,
      '/devicelogin',
      `/${TENANT}/v2.0/adminconsent`,
      `/${TENANT}/oauth2/v2.0/logout`,
      '/error',
    ];
    for (let i = 0; i < 300; i++) {
      const params = new URLSearchParams();
      const count = Math.floor(rand() * 10);
      for (let j = 0; j < count; j++) {
        const name = names[Math.floor(rand() * names.length)]!;
        const value =
          name === 'client_id' && rand() < 0.5
            ? DEFAULT_IDS.desktopApp
            : name === 'redirect_uri' && rand() < 0.5
              ? 'http://localhost:1234/'
              : randomValue(rand);
        params.append(name, value);
      }
      const path = paths[Math.floor(rand() * paths.length)]!;
      const post = rand() < 0.4;
      const res = await httpsRequest(post ? `${emu.url}${path}` : `${emu.url}${path}?${params.toString()}`, {
        method: post ? 'POST' : 'GET',
        caPem: emu.caPem,
        ...(post ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: params.toString() } : {}),
      });
      assert.ok(
        [200, 302, 303, 400, 404].includes(res.status),
        `request ${i}: ${post ? 'POST' : 'GET'} ${path} ${params.toString().slice(0, 200)} -> ${res.status} ${res.text.slice(0, 200)}`,
      );
      if (res.status === 400 && String(res.headers['content-type']).startsWith('text/html')) {
        assert.match(res.text, /AADSTS\d+|no longer valid/, `request ${i}: an error page names its code`);
      }
    }
  });

  it('still serves a well-formed client afterwards', async () => {
    const res = await emu.token({
      grant_type: 'client_credentials',
      client_id: DEFAULT_IDS.serviceApp,
      client_secret: secret,
      scope: 'https://outlook.office365.com/.default',
    });
    assert.equal(res.status, 200, res.text);
  });
});
