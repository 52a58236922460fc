// HTTPS requests from tests to a server whose CA they trust explicitly (no global NODE_EXTRA_CA_CERTS).
import { request } from 'node:https';

export interface HttpsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface HttpsRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  caPem: string;
}

export function httpsRequest(url: string, options: HttpsRequestOptions): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    // With a length, a body goes out with any method (Node sends no chunked DELETE or GET body).
    const length = options.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(options.body)) };
    const req = request(url, { method: options.method ?? 'GET', headers: { ...length, ...options.headers }, ca: options.caPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: <T>() => JSON.parse(text) as T,
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** POST an `application/x-www-form-urlencoded` body. */
export function postForm(url: string, fields: Record<string, string>, options: Omit<HttpsRequestOptions, 'body' | 'method'>): Promise<HttpsResponse> {
  return httpsRequest(url, {
    ...options,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...options.headers },
    body: new URLSearchParams(fields).toString(),
  });
}
