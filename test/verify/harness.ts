// What the `mailbridge verify` test files share: the environment the CLI runs in, configuration
// variants written beside the original, and the assertions that read a `--json` report.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { z } from 'zod';
import type { configSchema, Protocol } from '../../src/config/schema.ts';
import type { CauseId, ProtocolReport, VerifyReport } from '../../src/verify/types.ts';
import type { CliRun } from '../helpers/cli.ts';

/** The test's environment without what would point the CLI at another CA or configuration. */
export const VERIFY_ENV: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS' && k !== 'MAILBRIDGE_CONFIG' && !k.startsWith('MAILBRIDGE__')),
);

/** The built-in scenario's service principal of the service app. */
export const SERVICE_SP = 'b07c5e9b-3d8f-4b2a-8c4e-6f8d2b4a7c04';

export interface VerifyRun extends CliRun {
  report?: VerifyReport;
}

type ConfigInput = z.input<typeof configSchema>;
/** The configuration file's JSON as writeTestConfig writes it (with these records), as the variants change it. */
export type ConfigJson = ConfigInput & Required<Pick<ConfigInput, 'clouds' | 'apps' | 'mailboxes'>>;

/**
 * A copy of a configuration with some changes, in a new folder (pushed onto `cleanup`); the data
 * folder (token store) stays shared, and files named relative to the original (certificates) stay where they are.
 */
export async function configVariant(from: string, change: (config: ConfigJson) => void, cleanup: string[]): Promise<string> {
  const config = JSON.parse(await readFile(from, 'utf8')) as ConfigJson;
  for (const app of Object.values(config.apps)) {
    if (app.certificate)
      app.certificate = { certFile: resolve(dirname(from), app.certificate.certFile), keyFile: resolve(dirname(from), app.certificate.keyFile) };
  }
  change(config);
  const dir = await mkdtemp(join(tmpdir(), 'mailbridge-verify-'));
  cleanup.push(dir);
  const file = join(dir, 'config.json');
  await writeFile(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}

export function protocolOf(run: VerifyRun, protocol: Protocol): ProtocolReport {
  assert.ok(run.report, `no JSON report; exit ${run.code}\n${run.stdout}\n${run.stderr}`);
  const result = run.report.protocols[protocol];
  assert.ok(result, `no ${protocol} in the report`);
  return result;
}

/** The protocol failed with this cause (at `step`, when given); returns the cause for more checks. */
export function failedWith(run: VerifyRun, protocol: Protocol, id: CauseId, step?: string) {
  const result = protocolOf(run, protocol);
  assert.equal(result.ok, false, JSON.stringify(result, null, 2));
  assert.equal(result.cause?.id, id, JSON.stringify(result, null, 2));
  if (step) assert.equal(result.steps.find((s) => !s.ok)?.name, step, JSON.stringify(result.steps, null, 2));
  assert.equal(run.code, 1);
  assert.equal(run.report!.ok, false);
  return result.cause;
}
