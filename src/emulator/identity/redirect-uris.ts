// Redirect URI matching of reference section 2.6: exact, except that for http loopback hosts the
// port is ignored; a URI without a path equals the same URI with "/".
import type { App } from '../scenario/schema.ts';

export type RedirectUriKind = 'web' | 'spa' | 'publicClient';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1']);

function comparable(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  const loopback = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  const host = loopback ? url.hostname : url.host;
  const path = url.pathname === '' ? '/' : url.pathname;
  return `${url.protocol}//${host.toLowerCase()}${path}${url.search}`;
}

/** Which registered URI (and of which platform) a requested redirect URI matches, if any. */
export function matchRedirectUri(app: App, requested: string): { kind: RedirectUriKind; registered: string } | undefined {
  const wanted = comparable(requested);
  if (wanted === undefined) return undefined;
  for (const kind of ['publicClient', 'spa', 'web'] as const) {
    const registered = app.redirectUris[kind].find((r) => comparable(r) === wanted);
    if (registered) return { kind, registered };
  }
  return undefined;
}

export function redirectUriKind(app: App, uri: string): RedirectUriKind {
  return matchRedirectUri(app, uri)?.kind ?? 'web';
}

export function hasAnyRedirectUri(app: App): boolean {
  return app.redirectUris.web.length + app.redirectUris.spa.length + app.redirectUris.publicClient.length > 0;
}

/** Rules a URI must meet to be used at all: https, or http on a loopback name; no fragment. */
export function isAllowedRedirectUri(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  if (url.hash || uri.length > 256) return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
}
