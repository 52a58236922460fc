// `mailbridge verify`: for each protocol of a mailbox, the probe of that protocol, one after the
// other in the order IMAP, POP3, SMTP (what one run learns, such as "the app's service principal
// exists", helps explain the next). Problems found before any protocol can run (configuration,
// no grant at all) are thrown as ConfigError/TokenError for the command's exit codes.
import { readFile } from 'node:fs/promises';
import { ConfigError, resolveSecret, type LoadedConfig } from '../config/load.ts';
import { PROTOCOLS, type Protocol, type SecretRef } from '../config/schema.ts';
import { resolveGrant } from '../identity/grants.ts';
import { TokenError } from '../identity/token-errors.ts';
import type { TokenProvider } from '../identity/token-provider.ts';
import type { TokenStore } from '../store/token-store.ts';
import type { ConfiguredSecret } from './causes.ts';
import { imapAcceptsToken } from './imap-check.ts';
import { probeImap } from './imap-probe.ts';
import { probePop } from './pop-probe.ts';
import type { ProbeInput, SharedKnowledge } from './probe.ts';
import { probeSmtp } from './smtp-probe.ts';
import type { ProtocolReport, VerifyReport } from './types.ts';

export interface VerifyOptions {
  /** Default: every protocol configured for the mailbox. */
  protocols?: Protocol[];
  /** With SMTP: also send a short message to the mailbox itself. */
  sendTest?: boolean;
  /** Per connection and per reply (default 15 s). */
  timeoutMs?: number;
  /**
   * Use the token the provider would hand out now (possibly cached). By default a fresh one is
   * requested, which proves the grant itself still works, not just an access token from before.
   */
  cached?: boolean;
  /**
   * An access token obtained elsewhere (another tool) to check instead of mailbridge's own: the
   * same steps, with fixes addressed to whatever requested it. Used for every protocol checked.
   */
  externalToken?: string;
}

export interface VerifyDeps {
  loaded: LoadedConfig;
  store: TokenStore;
  provider: TokenProvider;
}

const PROBES: Record<Protocol, (p: ProbeInput) => Promise<ProtocolReport>> = { imap: probeImap, pop: probePop, smtp: probeSmtp };

/** The provider's token; unless `cached`, a new one (a stored token still fresh is passed over). */
async function tokenFor(deps: VerifyDeps, address: string, protocol: Protocol, cached: boolean): Promise<string> {
  if (cached) return deps.provider.getAccessToken(address, protocol);
  const stored = (await deps.store.get(address))?.secrets.accessTokens[protocol];
  if (stored && stored.expiresOnMs - Date.now() > 5 * 60_000) {
    await deps.provider.getAccessToken(address, protocol);
    deps.provider.invalidate(address, protocol);
  }
  return deps.provider.getAccessToken(address, protocol);
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Where the app's client secret is configured, and whether its value is shaped like a GUID (a
 * Secret ID pasted for the Value): for the fixes of a refused or expired secret. The value itself
 * goes no further than this function.
 */
async function configuredSecret(loaded: LoadedConfig, appName: string, ref: SecretRef | undefined): Promise<ConfiguredSecret | undefined> {
  if (ref === undefined) return undefined;
  const key = `apps.${appName}.clientSecret`;
  const override = `MAILBRIDGE__apps__${appName}__clientSecret`;
  const source =
    typeof ref === 'string'
      ? process.env[override]
        ? `set by the environment variable ${override}`
        : `in ${loaded.file}`
      : 'env' in ref
        ? `read from the environment variable ${ref.env}`
        : `read from the file ${ref.file}`;
  let guidShaped: boolean | undefined;
  try {
    guidShaped = GUID.test((await resolveSecret(loaded, ref, key)).trim());
  } catch {
    guidShaped = undefined;
  }
  return { key, source, ...(guidShaped === undefined ? {} : { guidShaped }) };
}

export async function verifyMailbox(deps: VerifyDeps, address: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const grant = resolveGrant(deps.loaded, address);
  const configured = grant.mailbox.protocols;
  const wanted = options.protocols?.length ? options.protocols : configured;
  const notConfigured = wanted.filter((p) => !configured.includes(p));
  if (notConfigured.length > 0) {
    throw new ConfigError(deps.loaded.file, [
      {
        path: `mailboxes.${grant.address}.protocols`,
        message: `${notConfigured.join(', ')} is not configured for ${grant.address} (configured: ${configured.join(', ')}); add it to "protocols" and sign in again`,
      },
    ]);
  }
  let caPem: string | undefined;
  if (grant.cloud.caFile) {
    try {
      caPem = await readFile(grant.cloud.caFile, 'utf8');
    } catch (err) {
      throw new ConfigError(deps.loaded.file, [
        { path: `clouds.${grant.cloud.name}.caFile`, message: `cannot read ${grant.cloud.caFile}: ${(err as Error).message}` },
      ]);
    }
  }
  if (grant.delegated && options.externalToken === undefined) {
    const record = await deps.store.get(grant.address);
    if (!record?.secrets.msalCache)
      throw new TokenError('needs_sign_in', grant.address, `${grant.address} is not signed in: run \`mailbridge login ${grant.address}\``);
  }

  const secret = await configuredSecret(deps.loaded, grant.appName, grant.app.clientSecret);
  const knowledge: SharedKnowledge = {};
  // A grant that needs a sign-in fails the same way for every protocol: asked once.
  let signInNeeded: TokenError | undefined;
  const getToken = async (protocol: Protocol) => {
    if (options.externalToken !== undefined) return options.externalToken;
    if (signInNeeded) throw signInNeeded;
    try {
      return await tokenFor(deps, grant.address, protocol, options.cached ?? false);
    } catch (err) {
      if (err instanceof TokenError && err.code === 'needs_sign_in') signInNeeded = err;
      throw err;
    }
  };
  const protocols: VerifyReport['protocols'] = {};
  let token: VerifyReport['token'];
  for (const protocol of PROTOCOLS.filter((p) => wanted.includes(p))) {
    const input: ProbeInput = {
      protocol,
      endpoint: grant.cloud[protocol],
      ...(caPem ? { caPem } : {}),
      mailbox: grant.address,
      delegated: grant.delegated,
      timeoutMs: options.timeoutMs ?? 15_000,
      sendTest: options.sendTest ?? false,
      getToken: () => getToken(protocol),
      context: {
        mailbox: grant.address,
        protocol,
        appName: grant.appName,
        clientId: grant.app.clientId,
        tenant: grant.app.tenant,
        loginUrl: grant.cloud.loginUrl,
        portal: grant.cloud.portal,
        delegatedScopePrefix: grant.cloud.delegatedScopePrefix,
        appOnlyScope: grant.cloud.appOnlyScope,
        ...(grant.mailbox.signInAs ? { signInAs: grant.mailbox.signInAs } : {}),
        ...(options.externalToken !== undefined ? { externalToken: true } : {}),
        ...(secret ? { secret } : {}),
      },
      knowledge,
      imapAccepts: (token) => imapAcceptsToken(input, grant.cloud.imap, token),
    };
    const result = await PROBES[protocol](input);
    protocols[protocol] = result;
    token ??= result.token;
  }
  const ok = Object.values(protocols).every((r) => r.ok);
  return { mailbox: grant.address, grant: grant.mailbox.grant, app: grant.appName, ...(token ? { token } : {}), protocols, ok };
}
