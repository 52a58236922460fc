// Turns a scenario (the built-in one or a file) into the live scenario of a run: the default is
// written to the data folder on first start so its generated secrets and passwords stay the same
// across restarts; certificates marked `generate` are made once and kept beside it.
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { createSelfSignedCertificate } from '../../tls/certificates.ts';
import { defaultScenario } from './default.ts';
import { parseScenario, type Scenario } from './schema.ts';

export async function readJsonFile(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

async function fileExists(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}

/** Writes through a temporary file and a rename, so a crash never leaves half a file. */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

async function fillGeneratedCertificates(scenario: Scenario, dataDir: string): Promise<void> {
  const dir = join(dataDir, 'app-certificates');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const app of scenario.apps) {
    for (const [index, cert] of app.certificates.entries()) {
      if (cert.certPem || !cert.generate) continue;
      const certPath = join(dir, `${app.clientId}-${index}.crt`);
      const keyPath = join(dir, `${app.clientId}-${index}.key`);
      if (!(await fileExists(certPath)) || !(await fileExists(keyPath))) {
        const made = await createSelfSignedCertificate({ commonName: app.displayName });
        await writeFileAtomic(keyPath, made.keyPem);
        await writeFileAtomic(certPath, made.certPem, 0o644);
      }
      cert.certPem = await readFile(certPath, 'utf8');
      cert.keyPem = await readFile(keyPath, 'utf8');
    }
  }
}

export interface LoadedScenario {
  scenario: Scenario;
  /** Where it came from, for the start-up message. */
  source: string;
}

export async function loadScenario(dataDir: string, scenarioFile?: string): Promise<LoadedScenario> {
  let scenario: Scenario;
  let source: string;
  if (scenarioFile) {
    scenario = parseScenario(await readJsonFile(scenarioFile));
    source = scenarioFile;
  } else {
    source = join(dataDir, 'scenario.json');
    if (!(await fileExists(source))) {
      await writeFileAtomic(source, `${JSON.stringify(defaultScenario(), null, 2)}\n`);
    }
    scenario = parseScenario(await readJsonFile(source));
  }
  await fillGeneratedCertificates(scenario, dataDir);
  return { scenario, source };
}
