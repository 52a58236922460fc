// The report for people: one block per protocol, one line per step with ✔/✘ (or ok/FAIL when
// the output is not a terminal), and the cause and fix under the step that failed. `--json`
// prints the report object itself.
import type { Protocol } from '../config/schema.ts';
import { describeToken } from './claims.ts';
import { protocolName } from './causes.ts';
import type { VerifyReport } from './types.ts';

export interface RenderOptions {
  /** ✔/✘ on a terminal; ok/FAIL otherwise. */
  symbols: boolean;
}

export function renderJson(report: VerifyReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/**
 * The `--json` output when verify stopped before any protocol ran: the report's shape with no
 * protocols, and the error's stable code, message and the exit code it gives.
 */
export function renderJsonError(mailbox: string, code: string, message: string, exitCode: number): string {
  return `${JSON.stringify({ mailbox, ok: false, protocols: {}, error: { code, message, exitCode } }, null, 2)}\n`;
}

export function renderText(report: VerifyReport, options: RenderOptions): string {
  const pass = options.symbols ? '✔' : 'ok  ';
  const fail = options.symbols ? '✘' : 'FAIL';
  const out: string[] = [`mailbridge verify ${report.mailbox} (${report.grant}, app ${report.app})`];
  const first = (Object.entries(report.protocols) as [Protocol, NonNullable<VerifyReport['protocols'][Protocol]>][]).find(([, r]) => r.token);
  if (first) out.push(`token (${protocolName(first[0])}): ${describeToken(first[1].token!)}`);
  const width = Math.max(...Object.values(report.protocols).flatMap((r) => r?.steps.map((s) => s.name.length) ?? [0]), 5);
  for (const [protocol, result] of Object.entries(report.protocols) as [Protocol, NonNullable<VerifyReport['protocols'][Protocol]>][]) {
    out.push('', `${protocolName(protocol)}  ${result.endpoint}`);
    for (const step of result.steps) {
      const ms = step.ms >= 1000 ? `${(step.ms / 1000).toFixed(1)} s` : `${Math.round(step.ms)} ms`;
      out.push(`  ${step.ok ? pass : fail} ${step.name.padEnd(width)}  ${step.detail ?? ''}${step.detail ? '  ' : ''}(${ms})`);
      if (!step.ok && result.cause && result.steps.find((s) => !s.ok) === step) {
        out.push(`      cause: ${result.cause.id}: ${result.cause.summary}`, `      fix:   ${result.cause.fix}`);
      }
    }
  }
  const entries = Object.entries(report.protocols) as [Protocol, NonNullable<VerifyReport['protocols'][Protocol]>][];
  const failed = entries.filter(([, r]) => !r.ok).map(([p]) => protocolName(p));
  const passed = entries.filter(([, r]) => r.ok).map(([p]) => protocolName(p));
  out.push(
    '',
    report.ok
      ? `${pass} ${report.mailbox} works: ${passed.join(', ')} passed every step.`
      : `${fail} ${report.mailbox}: ${failed.join(', ')} failed${passed.length ? `; ${passed.join(', ')} passed` : ''}.`,
  );
  return `${out.join('\n')}\n`;
}
