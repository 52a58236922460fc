// Errors of the token provider, each with what to do: the grant needs a sign-in, the
// configuration is wrong, or the identity service is (for now) unreachable.
import type { Explanation, ExplanationContext } from './explanations.ts';
import { MailbridgeError } from '../errors.ts';
import type { IdentityEndpointError } from './https-network-client.ts';
import type { ResolvedGrant } from './grants.ts';

export type TokenErrorCode = 'not_configured' | 'needs_sign_in' | 'broken_configuration' | 'unavailable';

export class TokenError extends MailbridgeError<TokenErrorCode> {
  readonly mailbox: string;
  readonly explanation?: Explanation;
  constructor(code: TokenErrorCode, mailbox: string, message: string, explanation?: Explanation, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'TokenError';
    this.mailbox = mailbox;
    if (explanation) this.explanation = explanation;
  }
}

export interface ClassifiedFailure {
  /** Worth another try after a pause. */
  transient: boolean;
  /** The service asked us to slow down: try later, not right away. */
  throttled?: boolean;
  aadsts?: number;
  explanation?: Explanation;
  /** One line naming what happened, never a token. */
  summary: string;
}

/**
 * By name, not instanceof: the class extends msal-node's AuthError, and importing it would load
 * msal-node into every process that handles a TokenError (`mailbridge token` with a cached token).
 */
function isIdentityEndpointError(err: unknown): err is IdentityEndpointError {
  return err instanceof Error && err.name === 'IdentityEndpointError';
}

/** What an msal-node (or network) failure means for the grant. */
/** What an explanation of a failed sign-in or refresh may name about the grant: its app, tenant, mailbox and portal. */
export function explanationContextOf(grant: ResolvedGrant): ExplanationContext {
  return { clientId: grant.app.clientId, tenant: grant.app.tenant, appName: grant.appName, mailbox: grant.address, cloudPortal: grant.cloud.portal };
}

export async function classifyFailure(err: unknown, ctx: ExplanationContext): Promise<ClassifiedFailure> {
  if (isIdentityEndpointError(err)) return { transient: true, summary: err.message };
  // The explanations (every AADSTS code's title and fix) load only when something failed.
  const { aadstsCodeOf, explainAadsts } = await import('./explanations.ts');
  const e = err as { errorCode?: string; errorMessage?: string; message?: string; subError?: string };
  const text = `${e.errorMessage ?? ''} ${e.message ?? ''}`;
  const aadsts = aadstsCodeOf(text);
  if (aadsts !== undefined) {
    const explanation = explainAadsts(aadsts, ctx);
    const throttled = aadsts === 90055 || aadsts === 50196 || /ThrottlingError|Retry-After/i.test(`${e.errorCode ?? ''} ${text}`);
    return { transient: explanation.retryable, throttled, aadsts, explanation, summary: `AADSTS${aadsts}: ${explanation.title}` };
  }
  // msal-node's own network failures, and HTTP 5xx/429 without an AADSTS body.
  const transient = /network|timeout|ECONN|ETIMEDOUT|EAI_AGAIN|socket|temporarily|server_error|429|50[0-9]/i.test(`${e.errorCode ?? ''} ${text}`);
  return { transient, summary: (e.errorCode ? `${e.errorCode}: ` : '') + (e.errorMessage ?? e.message ?? String(err)).split('\n')[0]! };
}
