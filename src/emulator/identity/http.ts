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

/** The parsed form body, or an empty one for any other content type (Entra reads none). */
export function formBody(request: FastifyRequest): FormParams {
  return request.body instanceof FormParams ? request.body : FormParams.parse('');
}
