// What the three protocol probes share: the input they get, the DNS/TCP/TLS opening, the token
// step with its claim checks, and the reading of a refused login or an "authenticated but not
// connected" mailbox into a cause (reference sections 4.4 and 8).
import type { Socket } from 'node:net';
import type { MailEndpoint } from '../config/clouds.ts';
import type { Protocol } from '../config/schema.ts';
import { TokenError } from '../identity/token-errors.ts';
import { encodeXoauth2 } from '../net/sasl-xoauth2.ts';
import { describeNotAToken, describeToken, hasAppRole, hasDelegatedScope, isGraphAudience, summarizeToken } from './claims.ts';
import { causes, type CauseContext } from './causes.ts';
import { connectTcp, ConnectionError, describeTls, LineConnection, NetFailure, resolveHost, startTls } from '../net/connection.ts';
import { Steps } from './steps.ts';
import type { Cause, StepName } from './types.ts';

/** What one protocol run learns that helps explain another's failure. */
export interface SharedKnowledge {
  /**
   * Whether Exchange Online knows the app's service principal, once a login told: any app-only
   * login that went through says yes; an IMAP refusal of a token with the IMAP role says no (IMAP
   * accepts the login of a known app without mailbox permission and refuses only the mailbox).
   * POP3 and SMTP refuse both cases alike, so their refusals tell nothing. `byImap`: IMAP told.
   */
  servicePrincipal?: { exists: boolean; byImap: boolean };
}

/** An app-only login went through: Exchange knows the service principal. */
export function loginAccepted(p: ProbeInput): void {
  if (p.context.token?.kind === 'app') p.knowledge.servicePrincipal = { exists: true, byImap: p.protocol === 'imap' };
}

export interface ProbeInput {
  protocol: Protocol;
  endpoint: MailEndpoint;
  /** PEM of the cloud's caFile, trusted besides the system's CAs. */
  caPem?: string;
  mailbox: string;
  delegated: boolean;
  timeoutMs: number;
  sendTest: boolean;
  /** A token for this protocol from the token provider. */
  getToken(): Promise<string>;
  /** Ids for the fixes (the token's claims are added once it is known). */
  context: CauseContext;
  knowledge: SharedKnowledge;
  /**
   * Whether the cloud's IMAP server accepts this token's login (true), refuses it (false), or
   * cannot say (undefined): the second probe that tells a missing service principal from a missing
   * mailbox permission when POP3 or SMTP refused an app-only token.
   */
  imapAccepts(token: string): Promise<boolean | undefined>;
}

export const THROTTLED = /Suggested Backoff Time:\s*\d+\s*milliseconds|Request is throttled|submission rate .* exceeded/i;

/** Exchange's "come back later": POP3 `-ERR Server Unavailable. 21`, IMAP `BAD Server Unavailable. 15`, SMTP `421 4.3.2`. */
export const SERVER_UNAVAILABLE = /Server Unavailable\.|^421[ -]4\.3\.2\b|Service not available/i;

export function endpointLabel(e: MailEndpoint): string {
  return `${e.host}:${e.port} (${e.security === 'implicit' ? 'implicit TLS' : 'STARTTLS'})`;
}

/** DNS, then TCP to the first address that answers. Undefined when one failed (recorded). */
export async function dnsAndTcp(steps: Steps, p: ProbeInput): Promise<Socket | undefined> {
  const { host, port } = p.endpoint;
  steps.begin();
  let addresses: string[];
  try {
    addresses = await resolveHost(host);
    steps.pass('dns', `${host} → ${addresses.join(', ')}`);
  } catch (err) {
    steps.fail('dns', (err as Error).message, causes.dns(host, err instanceof NetFailure ? err.systemCode : 'ENOTFOUND', p.protocol));
    return undefined;
  }
  try {
    const connected = await connectTcp(addresses, port, p.timeoutMs);
    steps.pass('tcp', `connected to ${connected.address}:${port}`);
    return connected.socket;
  } catch (err) {
    steps.fail('tcp', (err as Error).message, causes.tcp(host, port, err instanceof NetFailure ? err.systemCode : 'ECONNREFUSED'));
    return undefined;
  }
}

/** DNS, TCP and, for implicit TLS, the handshake. Undefined when one failed (recorded). */
export async function open(steps: Steps, p: ProbeInput): Promise<LineConnection | undefined> {
  const socket = await dnsAndTcp(steps, p);
  if (!socket) return undefined;
  if (p.endpoint.security !== 'implicit') return new LineConnection(socket, p.timeoutMs);
  try {
    const secure = await startTls(socket, p.endpoint.host, p.caPem, p.timeoutMs);
    steps.pass('tls', describeTls(secure.facts));
    return new LineConnection(secure.socket, p.timeoutMs);
  } catch (err) {
    tlsFailed(steps, p, err);
    return undefined;
  }
}

export function tlsFailed(steps: Steps, p: ProbeInput, err: unknown): void {
  const f = err instanceof NetFailure ? err : new NetFailure('tls', 'TLS_ERROR', (err as Error).message);
  steps.fail('tls', f.message, causes.tls(p.endpoint.host, p.endpoint.port, f.message, f.systemCode, f.hint));
}

/** STARTTLS/STLS was accepted: the handshake, recorded as the tls step. */
export async function upgrade(steps: Steps, p: ProbeInput, conn: LineConnection, before: string): Promise<boolean> {
  try {
    const facts = await conn.upgrade(p.endpoint.host, p.caPem);
    steps.pass('tls', `${before}; ${describeTls(facts)}`);
    return true;
  } catch (err) {
    tlsFailed(steps, p, err);
    return false;
  }
}

/** The cause of a token that the servers will refuse, read from its claims. */
function tokenProblem(p: ProbeInput, ctx: CauseContext): Cause | undefined {
  const t = ctx.token;
  if (!t || t.opaque) return undefined;
  if (isGraphAudience(t.aud)) return causes.graph_audience(ctx);
  if (t.kind === 'delegated') {
    if (!hasDelegatedScope(t, p.protocol)) return causes.missing_scope(ctx);
    // The user's own mailbox, or a shared one the configured "signInAs" user opens.
    const upn = t.upn?.toLowerCase();
    if (upn && upn !== p.mailbox.toLowerCase() && upn !== (ctx.signInAs ?? p.mailbox).toLowerCase()) return causes.wrong_user(ctx);
  } else if (!hasAppRole(t, p.protocol)) {
    return causes.missing_role(ctx);
  }
  return undefined;
}

/**
 * The token step: a token from the provider, its claims (never the token) in the detail, and the
 * checks that predict a refusal. Returns the token, or undefined when there is none to log in with.
 */
export async function tokenStep(steps: Steps, p: ProbeInput): Promise<string | undefined> {
  steps.begin();
  let token: string;
  try {
    token = await p.getToken();
  } catch (err) {
    const ctx = p.context;
    if (err instanceof TokenError) {
      const cause =
        err.code === 'needs_sign_in'
          ? causes.grant_expired_or_revoked(ctx, err.message, err.explanation)
          : err.code === 'unavailable'
            ? causes.identity_unavailable(ctx, err.message)
            : causes.token_request_failed(ctx, err.message, err.explanation);
      // The provider's message carries its own explanation; the cause has it again with this
      // cloud's hosts, so the detail keeps only what the identity platform said.
      const detail = err.explanation ? `${err.mailbox}: AADSTS${err.explanation.code}: ${err.explanation.title}` : err.message;
      steps.fail('token', detail, cause);
    } else {
      steps.fail('token', (err as Error).message, causes.token_request_failed(ctx, (err as Error).message));
    }
    return undefined;
  }
  steps.secret(token, encodeXoauth2(p.mailbox, token));
  const summary = summarizeToken(token, p.delegated);
  steps.token = summary;
  p.context.token = summary;
  if (summary.notAToken) {
    // Nothing that is not a token goes to a server: it cannot log in, and it may be a secret.
    steps.fail('token', describeToken(summary), causes.not_a_token(p.context, describeNotAToken(token)));
    return undefined;
  }
  const problem = tokenProblem(p, p.context);
  if (problem) steps.fail('token', describeToken(summary), problem);
  else steps.pass('token', describeToken(summary));
  return token;
}

function ownMailbox(p: ProbeInput): boolean {
  const t = p.context.token;
  if (!t || t.opaque || !t.upn) return true;
  return t.upn.toLowerCase() === p.mailbox.toLowerCase();
}

/**
 * What is known about the app's service principal for an app-only token that `protocol` refused:
 * an IMAP refusal decides (no); for POP3 and SMTP, what another login showed, or else an IMAP login
 * with the same token when it carries the IMAP role. Undefined when nothing can tell.
 */
async function servicePrincipalOf(p: ProbeInput, token: string): Promise<SharedKnowledge['servicePrincipal']> {
  const t = p.context.token;
  if (p.protocol === 'imap') {
    if (!p.knowledge.servicePrincipal && t && !t.opaque) p.knowledge.servicePrincipal = { exists: false, byImap: true };
    return { exists: false, byImap: true };
  }
  if (p.knowledge.servicePrincipal) return p.knowledge.servicePrincipal;
  if (!t || t.opaque || !hasAppRole(t, 'imap')) return undefined;
  const accepted = await p.imapAccepts(token);
  if (accepted === undefined) return undefined;
  p.knowledge.servicePrincipal = { exists: accepted, byImap: true };
  return p.knowledge.servicePrincipal;
}

/** A login the server refused (IMAP NO, POP -ERR, SMTP 535), read into its cause. */
export async function loginRefused(p: ProbeInput, reply: string, token: string): Promise<Cause> {
  const ctx = p.context;
  if (THROTTLED.test(reply)) return causes.throttled(ctx, reply);
  if (p.protocol === 'smtp') {
    if (/5\.7\.139/.test(reply) && /disabled for the Tenant/i.test(reply)) return causes.smtp_auth_disabled_tenant(ctx, reply);
    if (/5\.7\.139/.test(reply) && /disabled for the Mailbox/i.test(reply)) return causes.smtp_auth_disabled_mailbox(ctx, reply);
    if (/security defaults/i.test(reply)) return causes.security_defaults(ctx, reply);
  }
  const t = ctx.token;
  if (t?.kind === 'app') {
    if (!t.opaque && !hasAppRole(t, p.protocol)) return causes.missing_role(ctx);
    const sp = await servicePrincipalOf(p, token);
    if (!sp) return causes.service_principal_or_mailbox_permission_missing(ctx, reply);
    return sp.exists ? causes.mailbox_permission_missing(ctx, reply, undefined, sp.byImap) : causes.service_principal_missing(ctx, reply, sp.byImap);
  }
  if (!ownMailbox(p)) return causes.mailbox_permission_missing(ctx, reply, t?.upn);
  if (p.protocol === 'pop') return causes.protocol_disabled(ctx, reply);
  return causes.token_rejected(ctx, reply);
}

/** Logged in, but the mailbox cannot be used ("User is authenticated but not connected."). */
export function notConnected(p: ProbeInput, reply: string): Cause {
  const ctx = p.context;
  if (THROTTLED.test(reply)) return causes.throttled(ctx, reply);
  if (ctx.token?.kind === 'app') return causes.mailbox_permission_missing(ctx, reply);
  if (ownMailbox(p)) return causes.protocol_disabled(ctx, reply);
  return causes.authenticated_not_connected(ctx, reply);
}

/** A reply that fits none of the known cases (or throttling, which can come at any step). */
export function unexpected(p: ProbeInput, step: StepName, reply: string): Cause {
  if (THROTTLED.test(reply)) return causes.throttled(p.context, reply);
  if (SERVER_UNAVAILABLE.test(reply)) return causes.server_unavailable(p.context, step, reply);
  return causes.unexpected_reply(p.context, step, reply);
}

/** A connection that closed or went silent in the middle of a step. */
export function connectionLost(steps: Steps, p: ProbeInput, step: StepName, err: unknown, lastReply?: string): void {
  if (!(err instanceof ConnectionError)) throw err;
  const text = lastReply ? `${err.message} after: ${lastReply}` : err.message;
  steps.fail(step, text, unexpected(p, step, text));
}
