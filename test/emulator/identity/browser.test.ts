// The sign-in and consent pages in a real headless Chromium: a person types a username and a
// password, accepts consent, and the browser lands on the app's loopback redirect URI with a code
// that redeems (plain HTTPS POST) for an Exchange access token.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { chromium, type Browser } from 'playwright-core';
import { DEFAULT_IDS } from '../../../src/emulator/scenario/default.ts';
import { startTestEmulator, TENANT, userByUpn, type TestEmulator } from '../../helpers/emulator.ts';
import { needPeers, peerPath } from '../../helpers/peers.ts';

const IMAP = 'https://outlook.office.com/IMAP.AccessAsUser.All';
const SMTP = 'https://outlook.office.com/SMTP.Send';
const skip = needPeers('chromium');

/** The app's redirect target: a loopback HTTP server that records what arrives. */
class RedirectTarget {
  readonly server: Server;
  readonly #waiting: ((url: URL) => void)[] = [];
  port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', `http://localhost:${this.port}`);
      if (url.pathname === '/favicon.ico') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!DOCTYPE html><title>Signed in</title><p>You can close this window.</p>');
      this.#waiting.shift()?.(url);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** The next request's URL. */
  next(timeoutMs = 15_000): Promise<URL> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the browser never reached the redirect URI')), timeoutMs);
      this.#waiting.push((url) => {
        clearTimeout(timer);
        resolve(url);
      });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('sign-in pages in headless Chromium', { skip }, () => {
  let emu: TestEmulator;
  let browser: Browser;
  const target = new RedirectTarget();

  before(async () => {
    emu = await startTestEmulator();
    await target.listen();
    browser = await chromium.launch({
      executablePath: peerPath('chromium')!,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await target.close();
    await emu?.close();
  });

  function authorizeUrl(redirectUri: string, challenge: string): string {
    const url = new URL(`${emu.url}/${TENANT}/oauth2/v2.0/authorize`);
    url.search = new URLSearchParams({
      client_id: DEFAULT_IDS.desktopApp,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: `${IMAP} ${SMTP} offline_access openid profile`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'browser-state',
      client_info: '1',
    }).toString();
    return url.href;
  }

  it('types the password, accepts consent, lands on the app with a code that redeems for an Exchange token', async () => {
    const bob = userByUpn(emu, 'bob@contoso.com');
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const redirectUri = `http://localhost:${target.port}`;
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const page = await context.newPage();
      await page.goto(authorizeUrl(redirectUri, challenge));
      assert.equal(await page.title(), 'Sign in to your account');
      await page.getByLabel('Email, phone, or Skype').fill(bob.userPrincipalName);
      await page.getByLabel('Password').fill(bob.password);
      await page.click('#idSIButton9');
      await page.waitForSelector('#idBtn_Accept');
      const consentText = await page.locator('main').innerText();
      assert.match(consentText, /Permissions requested/);
      assert.match(consentText, /Read and write access to mailboxes via IMAP\./);
      const arrived = target.next();
      await page.click('#idBtn_Accept');
      const landed = await arrived;
      assert.equal(landed.pathname, '/');
      assert.equal(landed.searchParams.get('state'), 'browser-state');
      const code = landed.searchParams.get('code');
      assert.ok(code, `no code in ${landed.href}`);
      await page.waitForURL((u) => u.origin === `http://localhost:${target.port}`);

      const res = await fetchToken({
        grant_type: 'authorization_code',
        client_id: DEFAULT_IDS.desktopApp,
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        scope: `${IMAP} ${SMTP} offline_access`,
        client_info: '1',
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const claims = decodeJwt(String(res.body.access_token));
      assert.equal(claims.aud, 'https://outlook.office.com');
      assert.equal(claims.scp, 'IMAP.AccessAsUser.All SMTP.Send');
      assert.equal(claims.upn, 'bob@contoso.com');
      assert.ok(res.body.refresh_token);

      // The session cookie: a second sign-in in the same browser goes straight back to the app.
      const again = target.next();
      await page.goto(authorizeUrl(redirectUri, challenge));
      assert.ok((await again).searchParams.get('code'));
    } finally {
      await context.close();
    }
  });

  it('shows "Your account or password is incorrect." for a wrong password', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const page = await context.newPage();
      await page.goto(authorizeUrl(`http://localhost:${target.port}`, randomBytes(32).toString('base64url')));
      await page.fill('#login', 'alice@contoso.com');
      await page.fill('#passwd', 'not-the-password');
      await page.click('#idSIButton9');
      await page.waitForSelector('#passwordError');
      assert.match(await page.locator('#passwordError').innerText(), /Your account or password is incorrect\./);
      assert.match(await page.locator('#errorDetails').innerText(), /AADSTS50126: Error validating credentials due to invalid username or password\./);
      assert.equal(await page.inputValue('#login'), 'alice@contoso.com');
    } finally {
      await context.close();
    }
  });

  /** A plain HTTPS POST to the token endpoint, trusting the emulator's CA. */
  async function fetchToken(fields: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const { postForm } = await import('../../helpers/https.ts');
    const res = await postForm(`${emu.url}/${TENANT}/oauth2/v2.0/token`, fields, { caPem: emu.caPem });
    return { status: res.status, body: res.json() };
  }
});
