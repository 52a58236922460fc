// The admin API's Exchange half (/_emulator/...): protocol switches per mailbox and tenant,
// service principals (New-ServicePrincipal), armed mail failures, and mailbox contents.
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { exchangeServicePrincipalSchema, mailFailureSchema, mailboxSchema, tenantSchema } from '../scenario/schema.ts';
import { AdminError } from '../identity/routes/admin-api.ts';
import { namedFields } from '../identity/routes/admin-patch.ts';
import type { ExchangeContext } from './context.ts';
import { MessageTooLargeError } from './mail-store.ts';

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (!result.success) throw new AdminError(400, result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return result.data;
}

const mailboxPatch = mailboxSchema.pick({ imapEnabled: true, popEnabled: true, smtpClientAuthenticationDisabled: true }).partial();
const tenantPatch = tenantSchema.pick({ smtpClientAuthenticationDisabled: true, securityDefaults: true }).partial();
const deliverBody = z.object({ raw: z.string().min(1), folder: z.string().default('INBOX') });

export function registerExchangeAdminRoutes(app: FastifyInstance, exchange: ExchangeContext): void {
  const sc = exchange.identity.scenario;
  const mailboxOr404 = (address: string) => {
    const mailbox = exchange.findMailbox(address);
    if (!mailbox) throw new AdminError(404, `no mailbox ${address} in the scenario`);
    return mailbox;
  };

  app.patch<{ Params: { address: string } }>('/_emulator/mailboxes/:address', async (request) => {
    const mailbox = mailboxOr404(request.params.address);
    Object.assign(mailbox, namedFields(parse(mailboxPatch, request.body), request.body));
    return mailbox;
  });

  app.patch<{ Params: { tenant: string } }>('/_emulator/tenants/:tenant', async (request) => {
    const wanted = request.params.tenant.toLowerCase();
    const tenant = sc.tenants.find((t) => t.id === wanted || t.domains.some((d) => d.toLowerCase() === wanted));
    if (!tenant) throw new AdminError(404, `no tenant ${request.params.tenant} in the scenario`);
    Object.assign(tenant, namedFields(parse(tenantPatch, request.body), request.body));
    return tenant;
  });

  app.post('/_emulator/exchange/service-principals', async (request, reply) => {
    const sp = parse(exchangeServicePrincipalSchema, request.body);
    sc.exchange.servicePrincipals.push(sp);
    return reply.code(201).send(sp);
  });
  app.delete<{ Params: { objectId: string } }>('/_emulator/exchange/service-principals/:objectId', async (request) => {
    const keep = sc.exchange.servicePrincipals.filter((s) => s.objectId.toLowerCase() !== request.params.objectId.toLowerCase());
    sc.exchange.servicePrincipals.splice(0, sc.exchange.servicePrincipals.length, ...keep);
    return sc.exchange.servicePrincipals;
  });

  app.get('/_emulator/mail-failures', async () => exchange.failures);
  app.post('/_emulator/mail-failures', async (request, reply) => reply.code(201).send(exchange.armFailure(parse(mailFailureSchema, request.body))));
  app.delete('/_emulator/mail-failures', async () => {
    exchange.failures.splice(0);
    return exchange.failures;
  });

  app.get<{ Params: { address: string } }>('/_emulator/mailboxes/:address/messages', async (request) => {
    const data = await exchange.openMailbox(mailboxOr404(request.params.address));
    return data.folders().map((f) => ({ folder: f.name, uidValidity: f.uidValidity, uidNext: f.uidNext, messages: f.messages }));
  });
  // A message as JSON (`{"raw"}`, small ones) or as the body itself (message/rfc822, streamed to
  // the mailbox, up to the size Exchange accepts); over the limit, HTTP 413 and nothing stored.
  const tooLarge = (limit: number) =>
    new AdminError(413, `The message is larger than settings.mail.maxMessageBytes (${limit} bytes); nothing was stored.`, 'payload_too_large');
  app.register(async (scope) => {
    scope.addContentTypeParser('message/rfc822', (_request, payload, done) => done(null, payload));
    scope.post<{ Params: { address: string }; Querystring: { folder?: string } }>('/_emulator/mailboxes/:address/messages', async (request, reply) => {
      const mailbox = mailboxOr404(request.params.address);
      const limit = exchange.settings.maxMessageBytes;
      if (request.body instanceof Readable) {
        if (Number(request.headers['content-length'] ?? 0) > limit) throw tooLarge(limit);
        const data = await exchange.openMailbox(mailbox);
        try {
          return reply.code(201).send(await data.appendStream(request.query.folder ?? 'INBOX', request.body, limit));
        } catch (err) {
          if (err instanceof MessageTooLargeError) throw tooLarge(limit);
          throw err;
        }
      }
      const body = parse(deliverBody, request.body);
      const raw = Buffer.from(body.raw, 'utf8');
      if (raw.length > limit) throw tooLarge(limit);
      return reply.code(201).send(await (await exchange.openMailbox(mailbox)).append(body.folder, raw));
    });
  });
}
