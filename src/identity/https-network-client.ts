// The HTTP client msal-node uses for every call to the identity platform: node:https with a
// chosen CA (the emulator's, or the system's for Microsoft), a timeout, and a bound on response
// size, so a broken or hostile endpoint gives an error rather than a hang or unbounded memory.
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import { AuthError, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node';

export interface HttpsNetworkClientOptions {
  /** Extra CA certificates to trust (PEM), e.g. the emulator's; system CAs stay trusted. */
  caPem?: string;
  timeoutMs?: number;
  maxResponseBytes?: number;
}

/**
 * A failure of the identity endpoint below OAuth (no answer, too much, not JSON). An msal-node
 * AuthError, because msal-node passes those through unchanged and turns anything else into a
 * bare "network_error" that no longer says what happened. So it is the one error outside the
 * MailbridgeError family (src/errors.ts): it never leaves the identity code, where
 * classifyFailure (token-errors.ts) turns it into a TokenError 'unavailable'. 'timeout' and
 * 'unreachable' are spelled as in the family.
 */
export class IdentityEndpointError extends AuthError {
  readonly code: 'timeout' | 'too_large' | 'not_json' | 'unreachable';
  readonly url: string;
  constructor(code: IdentityEndpointError['code'], url: string, message: string) {
    super(code, '', message);
    Object.setPrototypeOf(this, IdentityEndpointError.prototype);
    this.name = 'IdentityEndpointError';
    this.message = message;
    this.code = code;
    this.url = url;
  }
}

function withoutQuery(url: string): string {
  return url.split('?')[0] ?? url;
}

/** Seconds as people write them: 1 s, 1.5 s, 15 s. */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** What could not be reached and why, in words (a reset, DNS, a refusal), as for the mail hosts. */
function unreachable(url: string, err: NodeJS.ErrnoException): IdentityEndpointError {
  const { host, hostname } = new URL(url);
  const asked = withoutQuery(url);
  const why =
    err.code === 'ECONNRESET'
      ? `the connection to ${host} was reset (a proxy or firewall in the way?)`
      : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
        ? `${hostname} does not resolve (DNS: ${err.code})`
        : err.code === 'ECONNREFUSED'
          ? `nothing accepts connections at ${host} (connection refused)`
          : err.code === 'ETIMEDOUT' || err.code === 'ENETUNREACH' || err.code === 'EHOSTUNREACH'
            ? `${host} cannot be reached (${err.code})`
            : `${host}: ${err.message}`;
  return new IdentityEndpointError('unreachable', url, `cannot reach the identity platform: ${why}, asking ${asked}`);
}

export class HttpsNetworkClient implements INetworkModule {
  readonly #ca: string[] | undefined;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  /** The failure of the latest request (undefined once one succeeds): msal-node drops some, see explain(). */
  #lastFailure: IdentityEndpointError | undefined;

  constructor(options: HttpsNetworkClientOptions = {}) {
    // Passing `ca` replaces Node's bundle, so keep the system roots beside the extra CA.
    this.#ca = options.caPem ? [...rootCertificates, options.caPem] : undefined;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#maxBytes = options.maxResponseBytes ?? 1024 * 1024;
  }

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.#send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.#send<T>('POST', url, options);
  }

  /**
   * The network failure behind an msal-node error, when msal-node dropped it: looking up the
   * authority's endpoints, msal-node catches what this client threw and throws a bare
   * `endpoints_resolution_error` (see aka.ms) that says neither what nor why. Anything else is
   * returned as it is.
   */
  explain(err: unknown): unknown {
    const failure = this.#lastFailure;
    if (failure && (err as { errorCode?: unknown } | undefined)?.errorCode === 'endpoints_resolution_error') return failure;
    return err;
  }

  async #send<T>(method: string, url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    this.#lastFailure = undefined;
    try {
      return await this.#request<T>(method, url, options, timeout);
    } catch (err) {
      if (err instanceof IdentityEndpointError) this.#lastFailure = err;
      throw err;
    }
  }

  #request<T>(method: string, url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    const timeoutMs = timeout ?? this.#timeoutMs;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          headers: { ...options?.headers, ...(options?.body !== undefined ? { 'content-length': Buffer.byteLength(options.body) } : {}) },
          ...(this.#ca ? { ca: this.#ca } : {}),
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.#maxBytes) {
              req.destroy(new IdentityEndpointError('too_large', url, `${withoutQuery(url)} sent more than ${this.#maxBytes} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(res.headers)) {
              if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
            }
            let body: unknown;
            try {
              body = text === '' ? {} : JSON.parse(text);
            } catch {
              reject(new IdentityEndpointError('not_json', url, `${withoutQuery(url)} answered HTTP ${res.statusCode} with a body that is not JSON`));
              return;
            }
            resolve({ headers, body: body as T, status: res.statusCode ?? 0 });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => {
        const { host } = new URL(url);
        req.destroy(
          new IdentityEndpointError(
            'timeout',
            url,
            `the identity platform at ${host} did not answer within ${seconds(timeoutMs)}, asking ${withoutQuery(url)}`,
          ),
        );
      });
      req.on('error', (err) => {
        reject(err instanceof IdentityEndpointError ? err : unreachable(url, err));
      });
      if (options?.body !== undefined) req.write(options.body);
      req.end();
    });
  }
}
