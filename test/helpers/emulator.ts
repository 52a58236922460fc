// Starts an emulator for one test file: its own data folder, free ports, the built-in scenario
// (optionally adjusted), and small helpers to call it and its admin API.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type RunningEmulator } from '../../src/emulator/start.ts';
import { defaultScenario } from '../../src/emulator/scenario/default.ts';
import type { ScenarioInput } from '../../src/emulator/scenario/schema.ts';
import { HttpsNetworkClient } from '../../src/identity/https-network-client.ts';
import { httpsRequest, postForm, type HttpsResponse } from './https.ts';

export const TENANT = 'contoso.com';

export interface TestEmulator {
  running: RunningEmulator;
  url: string;
  caPem: string;
  dataDir: string;
  /** The live scenario, with generated secrets, passwords and certificates filled in. */
  scenario: RunningEmulator['state']['scenario'];
  token(fields: Record<string, string>, tenant?: string, headers?: Record<string, string>): Promise<HttpsResponse>;
  admin(method: string, path: string, body?: unknown): Promise<HttpsResponse>;
  counters(): Promise<Record<string, Record<string, number>>>;
  /** msal-node `system.networkClient` trusting this emulator's CA. */
  networkClient(): HttpsNetworkClient;
  /** msal-node `auth` settings for an authority at this emulator. */
  authority(tenant?: string): { authority: string; knownAuthorities: string[] };
  close(): Promise<void>;
}

export interface TestEmulatorOptions {
  /** Receives every request log line the emulator writes. */
  logLines?: string[];
}

export async function startTestEmulator(adjust?: (scenario: ScenarioInput) => void, options: TestEmulatorOptions = {}): Promise<TestEmulator> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mailbridge-emulator-'));
  const scenario = defaultScenario();
  // Fixed lifetimes and a short device-code interval keep tests exact and quick.
  scenario.settings = { accessTokenLifetime: 3600, deviceCodeInterval: 1, ...scenario.settings };
  adjust?.(scenario);
  const scenarioFile = join(dataDir, 'test-scenario.json');
  await writeFile(scenarioFile, JSON.stringify(scenario));
  const lines = options.logLines;
  const running = await startEmulator({
    dataDir,
    port: 0,
    scenarioFile,
    ...(lines ? { logger: { level: 'debug', stream: { write: (line: string) => void lines.push(line) } } } : {}),
  });
  const url = running.identityUrl;
  const caPem = running.caPem;
  const emulator: TestEmulator = {
    running,
    url,
    caPem,
    dataDir,
    scenario: running.state.scenario,
    token: (fields, tenant = TENANT, headers = {}) => postForm(`${url}/${tenant}/oauth2/v2.0/token`, fields, { caPem, headers }),
    admin: (method, path, body) =>
      httpsRequest(`${url}/_emulator${path}`, {
        method,
        caPem,
        ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
      }),
    counters: async () => (await httpsRequest(`${url}/_emulator/counters`, { caPem })).json(),
    networkClient: () => new HttpsNetworkClient({ caPem }),
    authority: (tenant = TENANT) => ({ authority: `${url}/${tenant}`, knownAuthorities: [new URL(url).host] }),
    close: async () => {
      await running.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return emulator;
}

export function appById(emulator: TestEmulator, clientId: string) {
  const app = emulator.scenario.apps.find((a) => a.clientId === clientId);
  if (!app) throw new Error(`no app ${clientId}`);
  return app;
}

export function userByUpn(emulator: TestEmulator, upn: string) {
  const user = emulator.scenario.users.find((u) => u.userPrincipalName === upn);
  if (!user) throw new Error(`no user ${upn}`);
  return user;
}
