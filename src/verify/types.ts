// The shape of a `mailbridge verify` report: per protocol, the steps that ran (each passed or
// failed, with what was seen and how long it took) and, when one failed, the named cause and
// its fix. This is also the `--json` output, so field names are a stable interface.
import type { Protocol } from '../config/schema.ts';

export const CAUSE_IDS = [
  'graph_audience',
  'missing_scope',
  'missing_role',
  'service_principal_missing',
  'service_principal_or_mailbox_permission_missing',
  'mailbox_permission_missing',
  'protocol_disabled',
  'smtp_auth_disabled_tenant',
  'smtp_auth_disabled_mailbox',
  'security_defaults',
  'authenticated_not_connected',
  'send_as_denied',
  'throttled',
  'server_unavailable',
  'wrong_user',
  'grant_expired_or_revoked',
  'token_request_failed',
  'identity_unavailable',
  'token_rejected',
  'not_a_token',
  'tls',
  'dns',
  'tcp',
  'unexpected_reply',
] as const;
export type CauseId = (typeof CAUSE_IDS)[number];

export interface Cause {
  id: CauseId;
  /** One line: what happened. */
  summary: string;
  /** What to do, with the admin's ids filled in. */
  fix: string;
  /** `Suggested Backoff Time` of a throttled reply, in milliseconds. */
  backoffMs?: number;
  /** The AADSTS code behind a token-endpoint failure. */
  aadsts?: number;
}

export type StepName = 'dns' | 'tcp' | 'tls' | 'greeting' | 'capabilities' | 'token' | 'login' | 'mailbox' | 'send' | 'logout';

export interface StepResult {
  name: StepName;
  ok: boolean;
  /** What was seen (a server reply, certificate facts, claims): never a token. */
  detail?: string;
  ms: number;
}

/** The claims of an access token that matter for mail, read without verifying the signature. */
export interface TokenSummary {
  kind: 'delegated' | 'app';
  /** Personal Microsoft account tickets are not JWTs: nothing can be read from them. */
  opaque?: true;
  /** Neither a JWT nor a personal-account ticket (a `--token-file` that holds something else). */
  notAToken?: true;
  aud?: string;
  scp?: string;
  roles?: string[];
  upn?: string;
  oid?: string;
  tid?: string;
  appid?: string;
  expiresAt?: string;
}

export interface ProtocolReport {
  ok: boolean;
  /** `host:port` and how TLS is reached. */
  endpoint: string;
  steps: StepResult[];
  token?: TokenSummary;
  cause?: Cause;
}

export interface VerifyReport {
  mailbox: string;
  grant: string;
  app: string;
  token?: TokenSummary;
  protocols: Partial<Record<Protocol, ProtocolReport>>;
  ok: boolean;
}
