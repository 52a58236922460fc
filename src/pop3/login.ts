// A logged-in POP3 session for a configured mailbox, fed by the token provider, as openImap does
// for IMAP: the cloud's POP3 endpoint (implicit TLS or STLS, the cloud's caFile trusted besides
// the system's CAs), a fresh token from the provider (protocol 'pop'), AUTH XOAUTH2. When the
// server refuses the token, the provider is told (invalidate) and one more login is tried with a
// new token: the server may refuse a token that still looks fresh to us (revoked, expired early).
// A second refusal is a Pop3Error 'auth_rejected' that says so and keeps the server's reply; never the token.
import { readFile } from 'node:fs/promises';
import type { LoadedConfig } from '../config/load.ts';
import { resolveGrant } from '../identity/grants.ts';
import type { TokenProvider } from '../identity/token-provider.ts';
import { Pop3Client } from './client.ts';
import type { Pop3ConnectOptions } from './connect.ts';
import { Pop3Error } from './errors.ts';

export interface Pop3Context {
  loaded: LoadedConfig;
  provider: TokenProvider;
}

export interface OpenPop3Options extends Pick<Pop3ConnectOptions, 'timeoutMs' | 'maxLineBytes' | 'maxReplyBytes' | 'pipelineWindow'> {
  /** Pause before the second login after a refused token (default 250 ms, as openImap). */
  retryPauseMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A connected, logged-in Pop3Client for the mailbox. Errors: TokenError from the provider,
 * Pop3Error for everything on the wire. The caller ends it with quit() (or close()).
 */
export async function openPop3ForMailbox(ctx: Pop3Context, mailbox: string, options: OpenPop3Options = {}): Promise<Pop3Client> {
  const grant = resolveGrant(ctx.loaded, mailbox);
  const endpoint = grant.cloud.pop;
  const ca = grant.cloud.caFile ? await readFile(grant.cloud.caFile, 'utf8') : undefined;
  const { retryPauseMs = 250, ...limits } = options;
  const connect = () => Pop3Client.connect({ host: endpoint.host, port: endpoint.port, security: endpoint.security, ...(ca ? { ca } : {}), ...limits });

  for (let attempt = 0; ; attempt++) {
    const client = await connect();
    let token: string | undefined;
    try {
      token = await ctx.provider.getAccessToken(grant.address, 'pop');
      await client.authXoauth2(grant.address, token);
      return client;
    } catch (err) {
      client.close();
      if (!(err instanceof Pop3Error) || err.code !== 'auth_rejected' || token === undefined) throw err;
      if (attempt > 0) {
        throw new Pop3Error(
          'auth_rejected',
          `${err.message}, also with a freshly refreshed token: check the grant's scopes or roles, the mailbox permission and that POP is enabled for the mailbox (\`mailbridge verify ${grant.address}\` names the cause)`,
          { ...(err.reply !== undefined ? { reply: err.reply } : {}), ...(err.challenge !== undefined ? { challenge: err.challenge } : {}), cause: err },
        );
      }
      ctx.provider.invalidate(grant.address, 'pop', token);
      await sleep(retryPauseMs);
    }
  }
}
