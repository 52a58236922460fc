// The identity half of the emulator as a Fastify app: body parsing as Entra does it (forms keep
// repeated names; other content types are read as nothing), and one error reply for everything.
import Fastify, { type FastifyInstance } from 'fastify';
import { AadError } from './aad-error.ts';
import { FormParams } from './form.ts';
import { jsonHeaders, sendAadError } from './http.ts';
import type { IdentityState } from './state.ts';
import { AdminError, registerAdminApi } from './routes/admin-api.ts';
import { registerAuthorizeRoutes } from './routes/authorize.ts';
import { registerDeviceCodeRoutes } from './routes/devicecode.ts';
import { registerDiscoveryRoutes } from './routes/discovery.ts';
import { registerTokenRoutes } from './routes/token.ts';

/** Bodies beyond this are refused; the largest real request (a certificate assertion) is ~4 KB. */
export const BODY_LIMIT = 256 * 1024;

const ADMIN_BODY_TOO_LARGE =
  `The admin API takes JSON bodies up to ${BODY_LIMIT / 1024} KiB. ` +
  'Deliver a larger message as the body itself, with Content-Type: message/rfc822 (up to settings.mail.maxMessageBytes).';

export class UnparsedBody {
  readonly contentType: string;
  constructor(contentType: string) {
    this.contentType = contentType;
  }
}

class MalformedJson {}

/** Where request logs go; never carries bodies, so no secret or token reaches it. */
export type EmulatorLogger = boolean | { level: string; stream?: { write(line: string): void } };

export interface IdentityServerOptions {
  https: { key: string; cert: string };
  caPath: string;
  services: () => Record<string, string>;
  /** Request logs (pino, via Fastify): off by default. */
  logger?: EmulatorLogger;
  /** More routes on the same server (the Exchange half of the admin API). */
  extraRoutes?: (app: FastifyInstance) => void;
}

export async function buildIdentityServer(state: IdentityState, options: IdentityServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    https: options.https,
    bodyLimit: BODY_LIMIT,
    logger: options.logger ?? false,
    routerOptions: { maxParamLength: 512 },
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, FormParams.parse(body as string));
  });
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, body === '' ? {} : JSON.parse(body as string));
    } catch {
      done(null, new MalformedJson());
    }
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, _body, done) => {
    done(null, new UnparsedBody(String(request.headers['content-type'] ?? '')));
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof AadError) return sendAadError(reply, request, state, error);
    if (error instanceof AdminError) return reply.code(error.status).send({ error: error.error, message: error.message });
    const code = (error as { code?: string }).code ?? '';
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' && request.url.startsWith('/_emulator/')) {
      // The admin API is not Entra: a size limit gets a size error, not "malformed request".
      return reply.code(413).send({ error: 'payload_too_large', message: ADMIN_BODY_TOO_LARGE });
    }
    if (code.startsWith('FST_ERR_CTP') || code === 'FST_ERR_BAD_URL' || (error as { statusCode?: number }).statusCode === 400) {
      // Oversized, truncated or undecodable requests: Entra answers "malformed" without detail.
      return sendAadError(reply, request, state, new AadError(9002313));
    }
    request.log.error({ err: error }, 'unexpected error in the identity emulator');
    return jsonHeaders(reply).code(500).send({ error: 'server_error', error_description: 'The identity emulator failed unexpectedly; see its log.' });
  });
  app.setNotFoundHandler((request, reply) => {
    return jsonHeaders(reply)
      .code(404)
      .send({ error: 'not_found', error_description: `No identity endpoint at ${request.method} ${request.url.split('?')[0]}.` });
  });

  registerDiscoveryRoutes(app, state);
  registerTokenRoutes(app, state);
  registerDeviceCodeRoutes(app, state);
  registerAuthorizeRoutes(app, state);
  registerAdminApi(app, state, { caPath: options.caPath, services: options.services });
  options.extraRoutes?.(app);
  return app;
}
