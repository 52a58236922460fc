// A Microsoft-shaped identity error: raised anywhere in a request, rendered once by the server
// as the JSON body (or redirect parameters) that Entra ID sends for it.
import { randomUUID } from 'node:crypto';
import { AADSTS, fillTemplate, type AadstsCode } from './aadsts-catalogue.ts';

export type AadErrorParams = Record<string, string | number | undefined>;

export class AadError extends Error {
  readonly code: AadstsCode;
  readonly params: AadErrorParams;

  constructor(code: AadstsCode, params: AadErrorParams = {}) {
    super(`AADSTS${code}: ${fillTemplate(AADSTS[code].text, params)}`);
    this.name = 'AadError';
    this.code = code;
    this.params = params;
  }

  get status(): number {
    return AADSTS[this.code].status;
  }

  get error(): string {
    return AADSTS[this.code].error;
  }
}

/** `YYYY-MM-DD HH:MM:SSZ`, the form Entra uses in error bodies. */
export function entraTimestamp(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

export interface ErrorContext {
  nowMs: number;
  /** The caller's `client-request-id`, echoed as the correlation id. */
  correlationId?: string;
  /** `https://host:port` of the emulator, for `error_uri`. */
  origin: string;
}

export interface AadErrorBody {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
  error_uri: string;
  suberror?: string;
}

export function renderAadError(err: AadError, ctx: ErrorContext): AadErrorBody {
  const entry = AADSTS[err.code] as (typeof AADSTS)[AadstsCode] & { suberror?: string; precededBy?: number };
  const timestamp = entraTimestamp(ctx.nowMs);
  const traceId = randomUUID();
  const correlationId = ctx.correlationId && /^[\w-]{1,64}$/.test(ctx.correlationId) ? ctx.correlationId : randomUUID();
  const body: AadErrorBody = {
    error: entry.error,
    error_description: `${err.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: entry.precededBy ? [entry.precededBy, err.code] : [err.code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `${ctx.origin}/error?code=${err.code}`,
  };
  if (entry.suberror) body.suberror = entry.suberror;
  return body;
}
