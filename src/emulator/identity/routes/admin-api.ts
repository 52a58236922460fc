// The emulator's own API under /_emulator, for tests and demos: read the live scenario, move the
// clock, revoke grants, expire secrets, change consent, MFA and mailbox permissions, arm
// failures, count requests, and introspect tokens (Dovecot's `introspection_mode = post`).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { failureSchema, mailSettingsSchema, mailboxPermissionSchema, settingsSchema, userSchema } from '../../scenario/schema.ts';
import { generateSecretValue } from '../../scenario/default.ts';
import { verifyAccessToken } from '../access-token-verifier.ts';
import { findUser } from '../directory.ts';
import { formBody } from '../http.ts';
import { requestOrigin } from '../http.ts';
import type { IdentityState } from '../state.ts';
import { namedFields } from './admin-patch.ts';

export class AdminError extends Error {
  readonly status: number;
  /** The `error` field of the JSON answer. */
  readonly error: string;
  constructor(status: number, message: string, error = 'bad_request') {
    super(message);
    this.status = status;
    this.error = error;
  }
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    throw new AdminError(400, result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  }
  return result.data;
}

const clockBody = z.object({
  advanceSeconds: z.number().finite().optional(),
  reset: z.boolean().optional(),
});

const consentBody = z.object({
  clientId: z.string(),
  tenant: z.string().optional(),
  user: z.string().optional(),
  scopes: z.array(z.string()).default([]),
});

const userPatch = userSchema.pick({ mfa: true, accountEnabled: true, locked: true, blockedByConditionalAccess: true, password: true, admin: true }).partial();
const settingsPatch = settingsSchema.omit({ mail: true }).partial().extend({ mail: mailSettingsSchema.partial().optional() });

const secretBody = z.object({
  value: z.string().min(1).optional(),
  expiresAt: z.string().optional(),
  description: z.string().default('added by the admin API'),
});

export function registerAdminApi(app: FastifyInstance, state: IdentityState, extras: { caPath: string; services: () => Record<string, string> }): void {
  const sc = state.scenario;
  const send = (reply: FastifyReply, body: unknown) => reply.header('cache-control', 'no-store').send(body);

  const userOr404 = (upn: string) => {
    const user = findUser(sc, upn);
    if (!user) throw new AdminError(404, `no user ${upn} in the scenario`);
    return user;
  };
  const appOr404 = (clientId: string) => {
    const found = sc.apps.find((a) => a.clientId.toLowerCase() === clientId.toLowerCase());
    if (!found) throw new AdminError(404, `no app ${clientId} in the scenario`);
    return found;
  };
  const mailboxOr404 = (address: string) => {
    const found = sc.exchange.mailboxes.find((m) => m.address.toLowerCase() === address.toLowerCase());
    if (!found) throw new AdminError(404, `no mailbox ${address} in the scenario`);
    return found;
  };

  app.get('/_emulator/scenario', async (request, reply) =>
    send(reply, { identity: requestOrigin(request, state), ca: extras.caPath, services: extras.services(), ...sc }),
  );
  app.get('/_emulator/health', async (_request, reply) => send(reply, { ok: true }));

  app.get('/_emulator/counters', async (_request, reply) => send(reply, state.counterReport()));
  app.delete('/_emulator/counters', async (_request, reply) => {
    state.counters.clear();
    return send(reply, state.counterReport());
  });

  const clockReport = () => ({ now: new Date(state.clock.nowMs()).toISOString(), offsetSeconds: state.clock.offsetMs / 1000 });
  app.get('/_emulator/clock', async (_request, reply) => send(reply, clockReport()));
  app.post('/_emulator/clock', async (request, reply) => {
    const body = parse(clockBody, request.body);
    if (body.reset) state.clock.reset();
    if (body.advanceSeconds !== undefined) state.clock.advance(body.advanceSeconds);
    return send(reply, clockReport());
  });

  app.post<{ Params: { upn: string } }>('/_emulator/users/:upn/revoke', async (request, reply) => {
    const user = userOr404(request.params.upn);
    // Like "Revoke sessions": every refresh token issued before now stops working.
    user.tokensValidFrom = new Date(state.clock.nowMs()).toISOString();
    for (const session of state.sessions.values()) {
      session.signIns = session.signIns.filter((s) => s.userId !== user.id);
    }
    return send(reply, { user: user.userPrincipalName, tokensValidFrom: user.tokensValidFrom });
  });
  app.patch<{ Params: { upn: string } }>('/_emulator/users/:upn', async (request, reply) => {
    const user = userOr404(request.params.upn);
    Object.assign(user, namedFields(parse(userPatch, request.body), request.body));
    return send(reply, { ...user, password: undefined });
  });

  app.post<{ Params: { clientId: string; secretId: string } }>('/_emulator/apps/:clientId/secrets/:secretId/expire', async (request, reply) => {
    const secret = appOr404(request.params.clientId).secrets.find((s) => s.id === request.params.secretId);
    if (!secret) throw new AdminError(404, `no secret ${request.params.secretId} on that app`);
    secret.expiresAt = new Date(state.clock.nowMs() - 1000).toISOString();
    return send(reply, { id: secret.id, expiresAt: secret.expiresAt });
  });
  app.post<{ Params: { clientId: string } }>('/_emulator/apps/:clientId/secrets', async (request, reply) => {
    const target = appOr404(request.params.clientId);
    const body = parse(secretBody, request.body);
    const secret = {
      id: crypto.randomUUID(),
      value: body.value ?? generateSecretValue(),
      description: body.description,
      expiresAt: body.expiresAt ?? new Date(state.clock.nowMs() + 730 * 86_400_000).toISOString(),
    };
    target.secrets.push(secret);
    return send(reply.code(201), secret);
  });

  app.post('/_emulator/consents', async (request, reply) => {
    const body = parse(consentBody, request.body);
    const target = appOr404(body.clientId);
    const tenant = body.tenant ?? (body.user ? userOr404(body.user).tenant : target.homeTenant);
    sc.consents.push({ clientId: target.clientId, tenant, scopes: body.scopes, ...(body.user ? { user: body.user } : {}) });
    return send(reply.code(201), sc.consents);
  });
  app.delete('/_emulator/consents', async (request, reply) => {
    const body = parse(consentBody, request.body);
    const keep = sc.consents.filter(
      (c) => c.clientId.toLowerCase() !== body.clientId.toLowerCase() || (body.user !== undefined && c.user?.toLowerCase() !== body.user.toLowerCase()),
    );
    sc.consents.splice(0, sc.consents.length, ...keep);
    return send(reply, sc.consents);
  });

  app.post<{ Params: { address: string } }>('/_emulator/mailboxes/:address/permissions', async (request, reply) => {
    const mailbox = mailboxOr404(request.params.address);
    const permission = parse(mailboxPermissionSchema, request.body);
    mailbox.permissions = mailbox.permissions.filter((p) => p.principal.toLowerCase() !== permission.principal.toLowerCase());
    mailbox.permissions.push(permission);
    return send(reply.code(201), mailbox);
  });
  app.delete<{ Params: { address: string; principal: string } }>('/_emulator/mailboxes/:address/permissions/:principal', async (request, reply) => {
    const mailbox = mailboxOr404(request.params.address);
    mailbox.permissions = mailbox.permissions.filter((p) => p.principal.toLowerCase() !== request.params.principal.toLowerCase());
    return send(reply, mailbox);
  });

  app.get('/_emulator/failures', async (_request, reply) => send(reply, state.failures));
  app.post('/_emulator/failures', async (request, reply) => {
    const body = parse(failureSchema, request.body);
    try {
      return send(reply.code(201), state.armFailure(body));
    } catch (err) {
      throw new AdminError(400, (err as Error).message);
    }
  });
  app.delete('/_emulator/failures', async (_request, reply) => {
    state.failures.splice(0);
    return send(reply, state.failures);
  });

  const outageBody = z.object({
    endpoint: z.enum(['token', 'devicecode', 'any']).default('token'),
    kind: z.enum(['http500', 'garbage', 'hang']),
    times: z.number().int().positive().optional(),
  });
  app.get('/_emulator/outages', async (_request, reply) => send(reply, state.outages));
  app.post('/_emulator/outages', async (request, reply) => {
    const body = parse(outageBody, request.body);
    const outage = { id: crypto.randomUUID(), endpoint: body.endpoint, kind: body.kind, ...(body.times ? { remaining: body.times } : {}) };
    state.outages.push(outage);
    return send(reply.code(201), outage);
  });
  app.delete('/_emulator/outages', async (_request, reply) => {
    state.outages.splice(0);
    return send(reply, state.outages);
  });

  app.patch('/_emulator/settings', async (request, reply) => {
    const { mail, ...rest } = namedFields(parse(settingsPatch, request.body), request.body);
    Object.assign(sc.settings, rest);
    if (mail) Object.assign(sc.settings.mail, namedFields(mail, (request.body as { mail: unknown }).mail));
    return send(reply, sc.settings);
  });

  app.get('/_emulator/keys', async (_request, reply) => send(reply, { kid: state.signingKey.kid, alg: 'RS256', publicKeyPem: state.signingKey.publicKeyPem }));

  // RFC 7662-style introspection on the emulator's clock, for resource servers such as Dovecot.
  app.post('/_emulator/introspect', async (request, reply) => {
    state.count('introspect');
    const token = formBody(request).get('token') ?? '';
    const check = await verifyAccessToken(state, token);
    if (!check.ok) return send(reply, { active: false, reason: check.reason });
    return send(reply, { active: true, ...check.claims });
  });
}
