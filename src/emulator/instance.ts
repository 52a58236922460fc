// The emulator as a library: start it in-process on free loopback ports, get its URLs, its CA and
// a typed admin client, and close it. This is what `mailbridge/emulator` offers to people testing
// their own mail integration, and all a test needs to run mailbridge against "Microsoft" offline.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmulatorAdmin } from './admin-client.ts';
import type { EmulatorLogger } from './identity/server.ts';
import { DEFAULT_IDS, defaultScenario } from './scenario/default.ts';
import type { ScenarioInput } from './scenario/schema.ts';
import { startEmulator as startServers, type MailServiceName } from './start.ts';

export interface StartEmulatorOptions {
  /** Where the CA, keys, scenario and mailboxes live. Default: a new temporary folder, removed by close(). */
  dataDir?: string;
  /** Address to listen on (default 127.0.0.1). The admin API has no authentication: keep it on loopback. */
  host?: string;
  /** First port; each further service takes the next one. Default 0: free ports. */
  port?: number;
  /** A whole scenario (tenants, apps, users, mailboxes, settings); default the built-in one (docs/emulator.md). */
  scenario?: ScenarioInput;
  /** Changes to make to the scenario (the built-in one unless `scenario` is given) before it starts: settings, users, failures. */
  adjust?: (scenario: ScenarioInput) => void;
  /** A scenario file instead of `scenario`. */
  scenarioFile?: string;
  /** Request logs: `true`, or a level and a stream. Off by default. */
  logger?: EmulatorLogger;
}

export interface EmulatorUrls {
  /** The identity platform: the authority is `${identity}/<tenant>`. */
  identity: string;
  pop3s: string;
  pop3: string;
  imaps: string;
  imap: string;
  smtp: string;
}

/** A custom cloud for a mailbridge configuration (`clouds.<name>`), pointing at this emulator. */
export interface EmulatorCloud {
  base: 'global';
  loginUrl: string;
  imap: string;
  pop: string;
  smtp: string;
  caFile: string;
}

/**
 * A mailbridge configuration for the built-in scenario: the app-only `service` app (client
 * credentials with its secret) reading and sending as `support@contoso.com` over IMAP, POP3 and SMTP.
 */
export interface EmulatorExampleConfig {
  dataDir: string;
  clouds: { emulator: EmulatorCloud };
  apps: { service: { cloud: 'emulator'; tenant: string; clientId: string; clientSecret: string } };
  mailboxes: { 'support@contoso.com': { app: 'service'; grant: 'client_credentials'; protocols: ('imap' | 'pop' | 'smtp')[] } };
}

export interface Emulator {
  urls: EmulatorUrls;
  /** Mail server ports by service. */
  ports: Record<MailServiceName, number>;
  /** The emulator's own CA: trust it (and only it) to talk to the emulator. */
  ca: { pem: string; path: string };
  dataDir: string;
  /** The ids of the built-in scenario's tenant, apps and users. */
  ids: typeof DEFAULT_IDS;
  /** `clouds.<name>` for a mailbridge configuration. */
  cloud: EmulatorCloud;
  /** A whole mailbridge configuration for the built-in scenario; `dataDir` is where mailbridge keeps its token store. */
  exampleConfig(dataDir: string): EmulatorExampleConfig;
  admin: EmulatorAdmin;
  /** Stops the servers and writes the mailboxes out; removes the data folder if it was made here. */
  close(): Promise<void>;
}

export async function startEmulator(options: StartEmulatorOptions = {}): Promise<Emulator> {
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'mailbridge-emulator-')));
  try {
    let scenarioFile = options.scenarioFile;
    if (options.scenario !== undefined || options.adjust !== undefined) {
      const scenario = structuredClone(options.scenario) ?? defaultScenario();
      options.adjust?.(scenario);
      scenarioFile = join(dataDir, 'scenario-given.json');
      await writeFile(scenarioFile, JSON.stringify(scenario), { mode: 0o600 });
    }
    const running = await startServers({
      dataDir,
      port: options.port ?? 0,
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(scenarioFile !== undefined ? { scenarioFile } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
    const url = (name: string) => running.services.find((s) => s.name === name)?.url ?? '';
    const urls: EmulatorUrls = {
      identity: running.identityUrl,
      pop3s: url('pop3s'),
      pop3: url('pop3'),
      imaps: url('imaps'),
      imap: url('imap'),
      smtp: url('smtp'),
    };
    const cloud: EmulatorCloud = { base: 'global', loginUrl: urls.identity, imap: urls.imaps, pop: urls.pop3s, smtp: urls.smtp, caFile: running.caPath };
    let closing: Promise<void> | undefined;
    return {
      urls,
      ports: { ...running.mailPorts },
      ca: { pem: running.caPem, path: running.caPath },
      dataDir,
      ids: DEFAULT_IDS,
      cloud,
      exampleConfig: (configDataDir) => {
        const service = running.state.scenario.apps.find((a) => a.clientId === DEFAULT_IDS.serviceApp);
        const secret = service?.secrets[0]?.value;
        if (!secret) throw new Error('exampleConfig needs the built-in scenario: its service app with a secret is not there');
        return {
          dataDir: configDataDir,
          clouds: { emulator: cloud },
          apps: { service: { cloud: 'emulator', tenant: 'contoso.com', clientId: DEFAULT_IDS.serviceApp, clientSecret: secret } },
          mailboxes: { 'support@contoso.com': { app: 'service', grant: 'client_credentials', protocols: ['imap', 'pop', 'smtp'] } },
        };
      },
      admin: new EmulatorAdmin(running.identityUrl, running.caPem),
      close: () => {
        closing ??= running.close().finally(async () => {
          if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
        });
        return closing;
      },
    };
  } catch (err) {
    if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
