// Records the steps of one protocol's verification: each passed or failed, with what was seen
// and how long it took. The first failure's cause is the protocol's cause. Every detail passes
// through redact(): the token and its SASL encoding never reach a report, even when a server
// echoes what it was sent.
import { performance } from 'node:perf_hooks';
import type { Cause, ProtocolReport, StepName, StepResult, TokenSummary } from './types.ts';

const MAX_DETAIL = 600;

export class Steps {
  readonly list: StepResult[] = [];
  readonly endpoint: string;
  cause: Cause | undefined;
  token: TokenSummary | undefined;
  readonly #secrets: string[] = [];
  #mark = performance.now();

  constructor(endpoint: string) {
    this.endpoint = endpoint;
  }

  /** Starts the clock of the next step. */
  begin(): void {
    this.#mark = performance.now();
  }

  /** Strings that must never appear in a report (the token, its XOAUTH2 encoding). */
  secret(...values: string[]): void {
    for (const v of values) if (v.length >= 8) this.#secrets.push(v);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) out = out.split(s).join('[redacted]');
    // Anything that looks like a long base64 or JWT blob is not shown either.
    out = out.replace(/[A-Za-z0-9+/_\-.=]{240,}/g, '[redacted]');
    return out.length > MAX_DETAIL ? `${out.slice(0, MAX_DETAIL)}…` : out;
  }

  #add(name: StepName, ok: boolean, detail: string | undefined): void {
    const ms = Math.round((performance.now() - this.#mark) * 10) / 10;
    this.list.push({ name, ok, ...(detail !== undefined && detail !== '' ? { detail: this.redact(detail) } : {}), ms });
    this.#mark = performance.now();
  }

  pass(name: StepName, detail?: string): void {
    this.#add(name, true, detail);
  }

  fail(name: StepName, detail: string | undefined, cause?: Cause): void {
    this.#add(name, false, detail);
    if (cause && !this.cause) this.cause = { ...cause, summary: this.redact(cause.summary), fix: this.redact(cause.fix) };
  }

  get failed(): boolean {
    return this.list.some((s) => !s.ok);
  }

  report(): ProtocolReport {
    const ok = this.list.length > 0 && !this.failed;
    return { ok, endpoint: this.endpoint, steps: this.list, ...(this.token ? { token: this.token } : {}), ...(this.cause ? { cause: this.cause } : {}) };
  }
}
