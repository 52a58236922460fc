// msal-node client applications for a configured app: the authority in its cloud, the HTTPS
// client (trusting an emulator's CA when the cloud names one), and the credential. msal-node is
// loaded on the first call only: a token served from the store never needs it.
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ConfidentialClientApplication, Configuration, PublicClientApplication } from '@azure/msal-node';
import type { Cloud } from '../config/clouds.ts';
import { CLOUDS } from '../config/clouds.ts';
import { resolveSecret, type LoadedConfig } from '../config/load.ts';
import type { AppConfig } from '../config/schema.ts';
import type { HttpsNetworkClient } from './https-network-client.ts';

export type MsalApp = PublicClientApplication | ConfidentialClientApplication;

const MICROSOFT_LOGIN_HOSTS = new Set(Object.values(CLOUDS).map((c) => new URL(c.loginUrl).host));

export function authorityUrl(cloud: Cloud, app: AppConfig): string {
  return `${cloud.loginUrl}/${app.tenant}`;
}

async function baseConfiguration(cloud: Cloud, app: AppConfig, timeoutMs?: number): Promise<{ configuration: Configuration; network: HttpsNetworkClient }> {
  const host = new URL(cloud.loginUrl).host;
  const caPem = cloud.caFile ? await readFile(cloud.caFile, 'utf8') : undefined;
  const { HttpsNetworkClient } = await import('./https-network-client.ts');
  // The caller's timeout (tests), else the cloud's configured one, else the client's default.
  const timeout = timeoutMs ?? cloud.identityTimeoutMs;
  const network = new HttpsNetworkClient({ ...(caPem ? { caPem } : {}), ...(timeout ? { timeoutMs: timeout } : {}) });
  const configuration: Configuration = {
    auth: {
      clientId: app.clientId,
      authority: authorityUrl(cloud, app),
      // A login host MSAL does not know (an emulator) must be named, or MSAL asks Microsoft about it.
      ...(MICROSOFT_LOGIN_HOSTS.has(host) ? {} : { knownAuthorities: [host] }),
    },
    system: { networkClient: network },
  };
  return { configuration, network };
}

/**
 * The app with its failures explained: msal-node replaces a network failure while it looks up
 * the authority's endpoints by a bare `endpoints_resolution_error`; every method's rejection goes
 * through the network client's explain(), which puts the real failure (reset, timeout, DNS) back.
 */
function explainingFailures<T extends MsalApp>(app: T, network: HttpsNetworkClient): T {
  return new Proxy(app, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result instanceof Promise
          ? result.catch((err: unknown) => {
              throw network.explain(err);
            })
          : result;
      };
    },
  });
}

export function isConfidential(app: AppConfig): boolean {
  return app.clientSecret !== undefined || app.certificate !== undefined;
}

/** A public or confidential msal-node application for `app` (confidential when it has a credential). */
export async function msalApp(loaded: LoadedConfig, appName: string, app: AppConfig, cloud: Cloud, timeoutMs?: number): Promise<MsalApp> {
  const [{ configuration, network }, { ConfidentialClientApplication, PublicClientApplication }] = await Promise.all([
    baseConfiguration(cloud, app, timeoutMs),
    import('@azure/msal-node'),
  ]);
  if (!isConfidential(app)) return explainingFailures(new PublicClientApplication(configuration), network);
  if (app.clientSecret !== undefined) {
    const clientSecret = await resolveSecret(loaded, app.clientSecret, `apps.${appName}.clientSecret`);
    return explainingFailures(new ConfidentialClientApplication({ ...configuration, auth: { ...configuration.auth, clientSecret } }), network);
  }
  const certFile = resolve(loaded.baseDir, app.certificate!.certFile);
  const keyFile = resolve(loaded.baseDir, app.certificate!.keyFile);
  const [certPem, privateKey] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  const thumbprintSha256 = createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex').toUpperCase();
  return explainingFailures(
    new ConfidentialClientApplication({
      ...configuration,
      auth: { ...configuration.auth, clientCertificate: { thumbprintSha256, privateKey, x5c: certPem } },
    }),
    network,
  );
}
