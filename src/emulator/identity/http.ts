// Small pieces every identity route uses: the origin a client reached us by, Entra's JSON
// headers, and the error reply.
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AadError, renderAadError } from './aad-error.ts';
import { FormParams } from './form.ts';
import type { IdentityState } from './state.ts';

/** `https://<Host header>`: discovery documents name the host the client used. */
export function requestOrigin(request: FastifyRequest, state: IdentityState): string {
  const host = request.headers.host;
  return host && /^[\w.\-:[\]]{1,255}$/.test(host) ? `https://${host}` : state.origin;
}

export function jsonHeaders(reply: FastifyReply, cache = 'no-store, no-cache'): FastifyReply {
  return reply
    .header('content-type', 'application/json; charset=utf-8')
    .header('cache-control', cache)
    .header('pragma', 'no-cache')
    .header('x-ms-request-id', randomUUID());
}

export function sendAadError(reply: FastifyReply, request: FastifyRequest, state: IdentityState, err: AadError): FastifyReply {
  const correlation = request.headers['client-request-id'];
  const body = renderAadError(err, {
    nowMs: state.clock.nowMs(),
    origin: requestOrigin(request, state),
    ...(typeof correlation === 'string' ? { correlationId: correlation } : {}),
  });
  if (err.code === 90055) reply.header('retry-after', '30');
  return jsonHeaders(reply).code(err.status).send(body);
}

/**
 * Answers as an armed outage says, if one is armed for this endpoint: a 500 page, a 200 whose
 * body is not JSON, or no answer at all (the connection is dropped after a minute).
 */
export function sendOutage(reply: FastifyReply, state: IdentityState, endpoint: 'token' | 'devicecode'): boolean {
  const outage = state.takeOutage(endpoint);
  if (!outage) return false;
  state.count(endpoint, `outage_${outage.kind}`);
  if (outage.kind === 'http500') {
    void reply
      .code(500)
      .header('content-type', 'text/html')
      .send('<html><body><h1>Service Unavailable</h1><p>HTTP Error 500. The service is unavailable.</p></body></html>');
  } else if (outage.kind === 'garbage') {
    void reply.code(200).header('content-type', 'application/json; charset=utf-8').send('{"token_type":"Bearer","access_token":');
  } else {
    reply.hijack();
    setTimeout(() => reply.raw.destroy(), 60_000).unref();
  }
  return true;
}

/** The parsed form body, or an empty one for any other content type (Entra reads none). */
export function formBody(request: FastifyRequest): FormParams {
  return request.body instanceof FormParams ? request.body : FormParams.parse('');
}
