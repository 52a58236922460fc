// A tiny "browser" for tests: keeps cookies, follows redirects and fills in the emulator's sign-in,
// account picker, MFA, consent and device code pages the way a person would. It never fetches
// the app's redirect target: it stops at the first redirect leaving the emulator's origin (or at
// a form_post page posting elsewhere) and hands back where it was sent.
import { request } from 'node:https';

export interface SignInOptions {
  caPem: string;
  username: string;
  password: string;
  /** What to press on a consent page (default accept). */
  consent?: 'accept' | 'cancel';
  /** Approve the MFA push (default true); false presses "I can't use my app". */
  approveMfa?: boolean;
}

export interface BrowserResponse {
  url: URL;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export type Visit = { kind: 'left'; url: URL; via: 'redirect' | 'form_post' } | { kind: 'page'; url: URL; status: number; html: string };

export interface FormField {
  tag: 'input' | 'button';
  type: string;
  name?: string;
  id?: string;
  value: string;
  checked: boolean;
  text: string;
}

export interface ParsedForm {
  action: URL;
  method: string;
  id?: string;
  fields: FormField[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, body: string) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[body.toLowerCase()] ?? whole;
  });
}

/** The visible text of a page: tags dropped, entities decoded, whitespace tidied per line. */
export function pageText(html: string): string {
  const text = html
    .replace(/<(script|style|title)[^>]*>[\s\S]*?<\/\1>/gi, '')
    .replace(/<svg[\s\S]*?<\/svg>/gi, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/?(p|div|h\d|li|ul|form|label|main|small|button)\b[^>]*>/gi, '\n')
    .replace(/<[^>]+>/g, '');
  return decodeEntities(text)
    .split('\n')
    .map((line) => line.replace(/[ \t]+/g, ' ').trim())
    .filter(Boolean)
    .join('\n');
}

function attributes(tag: string): Map<string, string> {
  const attrs = new Map<string, string>();
  const re = /([a-zA-Z_:][\w:.-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
  const inner = tag.replace(/^<\s*[\w-]+/, '').replace(/\/?>$/, '');
  for (const m of inner.matchAll(re)) {
    attrs.set(m[1]!.toLowerCase(), decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return attrs;
}

export function parseForms(html: string, base: URL): ParsedForm[] {
  const forms: ParsedForm[] = [];
  for (const m of html.matchAll(/(<form\b[^>]*>)([\s\S]*?)<\/form>/gi)) {
    const attrs = attributes(m[1]!);
    const body = m[2]!;
    const fields: FormField[] = [];
    for (const f of body.matchAll(/<(input)\b[^>]*>|(<button\b[^>]*>)([\s\S]*?)<\/button>/gi)) {
      if (f[1]) {
        const a = attributes(f[0]);
        fields.push({
          tag: 'input',
          type: (a.get('type') ?? 'text').toLowerCase(),
          ...optional(a),
          value: a.get('value') ?? '',
          checked: a.has('checked'),
          text: '',
        });
      } else {
        const a = attributes(f[2]!);
        fields.push({
          tag: 'button',
          type: (a.get('type') ?? 'submit').toLowerCase(),
          ...optional(a),
          value: a.get('value') ?? '',
          checked: false,
          text: pageText(f[3] ?? ''),
        });
      }
    }
    const id = attrs.get('id');
    forms.push({
      action: new URL(attrs.get('action') ?? base.href, base),
      method: (attrs.get('method') ?? 'get').toUpperCase(),
      ...(id ? { id } : {}),
      fields,
    });
  }
  return forms;
}

function optional(a: Map<string, string>): { name?: string; id?: string } {
  const name = a.get('name');
  const id = a.get('id');
  return { ...(name !== undefined ? { name } : {}), ...(id !== undefined ? { id } : {}) };
}

/** The name/value pairs a form submits, with `values` filled in and `button` pressed. */
export function formData(form: ParsedForm, values: Record<string, string> = {}, button?: FormField): [string, string][] {
  const data: [string, string][] = [];
  const used = new Set<string>();
  for (const f of form.fields) {
    if (f.tag !== 'input' || !f.name || ['submit', 'button', 'image', 'reset'].includes(f.type)) continue;
    if ((f.type === 'checkbox' || f.type === 'radio') && !(f.checked || values[f.name] === f.value)) continue;
    const value = f.type === 'checkbox' || f.type === 'radio' ? f.value : (values[f.name] ?? f.value);
    data.push([f.name, value]);
    used.add(f.name);
  }
  for (const [name, value] of Object.entries(values)) {
    const isCheckable = form.fields.some((f) => f.name === name && (f.type === 'checkbox' || f.type === 'radio'));
    if (!used.has(name) && !isCheckable) data.push([name, value]);
  }
  if (button?.name) data.push([button.name, button.value]);
  return data;
}

export class Browser {
  readonly caPem: string;
  readonly #jar = new Map<string, Map<string, string>>();
  /** Every URL requested, in order (for tests that look at the path taken). */
  readonly history: string[] = [];

  constructor(caPem: string) {
    this.caPem = caPem;
  }

  cookies(host: string): Map<string, string> {
    let jar = this.#jar.get(host);
    if (!jar) {
      jar = new Map();
      this.#jar.set(host, jar);
    }
    return jar;
  }

  #store(host: string, setCookie: string | string[] | undefined): void {
    const jar = this.cookies(host);
    for (const line of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }

  /** One HTTPS request, cookies sent and stored, no redirect following. */
  fetch(method: string, url: URL, body?: string): Promise<BrowserResponse> {
    this.history.push(`${method} ${url.href}`);
    const cookie = [...this.cookies(url.host)].map(([n, v]) => `${n}=${v}`).join('; ');
    const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml', 'user-agent': 'mailbridge-tests browserless' };
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, ca: this.caPem }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          this.#store(url.host, res.headers['set-cookie']);
          resolve({ url, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /** Requests `url` and follows redirects while they stay on `origin`. */
  async go(method: string, url: URL, body?: string, origin = url.origin): Promise<Visit> {
    let current = url;
    let currentMethod = method;
    let currentBody = body;
    for (let hop = 0; hop < 20; hop++) {
      if (current.origin !== origin) return { kind: 'left', url: current, via: 'redirect' };
      const res = await this.fetch(currentMethod, current, currentBody);
      const location = res.headers.location;
      if (res.status >= 300 && res.status < 400 && typeof location === 'string') {
        current = new URL(location, current);
        if (res.status !== 307 && res.status !== 308) {
          currentMethod = 'GET';
          currentBody = undefined;
        }
        continue;
      }
      return { kind: 'page', url: current, status: res.status, html: res.body };
    }
    throw new Error(`too many redirects from ${url.href}`);
  }

  /** Submits a form; a form posting away from the emulator (form_post) is returned as a URL. */
  async submit(form: ParsedForm, values: Record<string, string> = {}, button?: FormField, origin?: string): Promise<Visit> {
    const data = formData(form, values, button);
    const home = origin ?? form.action.origin;
    if (form.action.origin !== home) {
      const url = new URL(form.action.href);
      for (const [n, v] of data) url.searchParams.append(n, v);
      return { kind: 'left', url, via: 'form_post' };
    }
    const encoded = new URLSearchParams(data).toString();
    if (form.method === 'GET') {
      const url = new URL(form.action.href);
      url.search = encoded;
      return this.go('GET', url, undefined, home);
    }
    return this.go('POST', form.action, encoded, home);
  }

  /**
   * Drives the emulator's pages from `visit` until the browser leaves the emulator (returned as
   * `left`) or lands on a page without anything to do (returned as `page`).
   */
  async drive(visit: Visit, opts: SignInOptions, origin: string, extra: { userCode?: string } = {}): Promise<Visit> {
    let enteredCode = false;
    let signedIn = false;
    for (let step = 0; step < 30; step++) {
      if (visit.kind === 'left') return visit;
      const form = parseForms(visit.html, visit.url)[0];
      if (!form) return visit;
      if (form.action.origin !== origin) return this.submit(form, {}, undefined, origin);
      const has = (name: string) => form.fields.some((f) => f.name === name);
      const buttons = form.fields.filter((f) => f.tag === 'button');
      const press = (value: string) => buttons.find((b) => b.value === value);
      const hasError = /role="alert"/.test(visit.html);

      if (has('otc')) {
        if (enteredCode && hasError) return visit;
        if (extra.userCode === undefined) return visit;
        enteredCode = true;
        visit = await this.submit(form, { otc: extra.userCode }, undefined, origin);
      } else if (has('login') && has('passwd')) {
        if (signedIn && hasError) return visit;
        signedIn = true;
        visit = await this.submit(form, { login: opts.username, passwd: opts.password }, undefined, origin);
      } else if (buttons.some((b) => b.name === 'account')) {
        const mine = buttons.find((b) => b.name === 'account' && b.value.toLowerCase() === opts.username.toLowerCase());
        visit = await this.submit(form, {}, mine ?? buttons.find((b) => b.value === 'other'), origin);
      } else if (press('register')) {
        visit = await this.submit(form, {}, press('register'), origin);
      } else if (press('approve')) {
        visit = await this.submit(form, {}, press(opts.approveMfa === false ? 'deny' : 'approve'), origin);
      } else if (press('accept')) {
        visit = await this.submit(form, {}, press(opts.consent === 'cancel' ? 'cancel' : 'accept'), origin);
      } else if (press('back')) {
        visit = await this.submit(form, {}, press('back'), origin);
      } else {
        return visit;
      }
    }
    throw new Error('the sign-in pages did not finish within 30 steps');
  }

  /** Opens an authorize (or admin consent) URL and signs in; resolves to where the app was sent. */
  async signIn(authorizeUrl: string, opts: SignInOptions): Promise<URL> {
    const start = new URL(authorizeUrl);
    const end = await this.drive(await this.go('GET', start), opts, start.origin);
    if (end.kind === 'left') return end.url;
    throw new Error(`sign-in stopped on a page (HTTP ${end.status}) at ${end.url.pathname}:\n${pageText(end.html)}`);
  }

  /** Enters a user code at the verification page and signs in; resolves to the final page's text. */
  async completeDeviceCode(verificationUri: string, userCode: string, opts: SignInOptions): Promise<string> {
    const start = new URL(verificationUri);
    const end = await this.drive(await this.go('GET', start), opts, start.origin, { userCode });
    if (end.kind === 'left') return end.url.href;
    return pageText(end.html);
  }
}

/** Signs in through the emulator's pages in a fresh browser; the URL the app was sent to. */
export async function signIn(
  authorizeUrl: string,
  opts: { caPem: string; username: string; password: string; consent?: 'accept' | 'cancel'; approveMfa?: boolean },
): Promise<URL> {
  return new Browser(opts.caPem).signIn(authorizeUrl, opts);
}

/** Completes a device code sign-in in a fresh browser; the text of the page it ends on. */
export async function completeDeviceCode(
  verificationUri: string,
  userCode: string,
  opts: { caPem: string; username: string; password: string; consent?: 'accept' | 'cancel'; approveMfa?: boolean },
): Promise<string> {
  return new Browser(opts.caPem).completeDeviceCode(verificationUri, userCode, opts);
}
