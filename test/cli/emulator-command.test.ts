// `mailbridge emulator` as a person or script runs it: a separate process, lines on stdout,
// the scenario served, a clean stop on SIGTERM, and clear exits for bad options.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { httpsRequest } from '../helpers/https.ts';

const CLI = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('mailbridge emulator (command line)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('prints one line per service and the CA, serves the scenario, and stops on SIGTERM', async () => {
    const data = join(dir, 'data');
    const child = spawn(process.execPath, [CLI, 'emulator', '--data', data, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const lines: string[] = [];
    for await (const line of createInterface({ input: child.stdout })) {
      lines.push(line);
      if (line.startsWith('ca ')) break;
    }
    assert.match(lines[0] ?? '', /^identity https:\/\/localhost:\d+$/);
    assert.deepEqual(
      lines.slice(1, -1).map((l) => l.replace(/:\d+$/, '')),
      ['pop3s pop3s://localhost', 'pop3 pop3://localhost', 'imaps imaps://localhost', 'imap imap://localhost', 'smtp smtp://localhost'],
    );
    const caPath = (lines.at(-1) ?? '').slice(3);
    assert.equal(caPath, join(data, 'ca.crt'));
    const caPem = await readFile(caPath, 'utf8');
    const url = lines[0]!.split(' ')[1]!;
    const scenario = (await httpsRequest(`${url}/_emulator/scenario`, { caPem })).json<{
      identity: string;
      users: { userPrincipalName: string; password: string }[];
    }>();
    assert.equal(scenario.identity, url);
    assert.deepEqual(
      scenario.users.map((u) => u.userPrincipalName),
      ['alice@contoso.com', 'bob@contoso.com', 'carol@outlook.com'],
    );
    assert.match(stderr, /device code sign-in page: https:\/\/localhost:\d+\/devicelogin/);
    // Key material stays private to the user who ran it.
    assert.equal((await stat(join(data, 'ca.key'))).mode & 0o077, 0);
    assert.equal((await stat(join(data, 'signing-key.pem'))).mode & 0o077, 0);
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('keeps the generated passwords and CA across restarts of the same data folder', async () => {
    const data = join(dir, 'data');
    const before = await readFile(join(data, 'scenario.json'), 'utf8');
    const ca = await readFile(join(data, 'ca.crt'), 'utf8');
    const child = spawn(process.execPath, [CLI, 'emulator', '--data', data, '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
    for await (const line of createInterface({ input: child.stdout })) if (line.startsWith('ca ')) break;
    const exited = new Promise((resolve) => child.on('close', resolve));
    child.kill('SIGTERM');
    await exited;
    assert.equal(await readFile(join(data, 'scenario.json'), 'utf8'), before);
    assert.equal(await readFile(join(data, 'ca.crt'), 'utf8'), ca);
  });

  it('names the broken field of a scenario file and exits 3', async () => {
    const file = join(dir, 'broken.json');
    await writeFile(file, JSON.stringify({ tenants: [{ id: 'not-a-guid', displayName: 'X', domains: ['x.com'] }] }));
    const result = await run(['emulator', '--data', join(dir, 'data2'), '--port', '0', '--scenario', file]);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /The scenario is not valid:\n {2}tenants\.0\.id: must be a GUID/);
  });

  it('refuses a port that is not a number with exit code 3 and says what is allowed', async () => {
    const result = await run(['emulator', '--data', join(dir, 'data3'), '--port', 'http']);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /--port must be a whole number from 0 to 65535/);
  });

  it('says when the port is taken and exits 4', async () => {
    const first = spawn(process.execPath, [CLI, 'emulator', '--data', join(dir, 'data'), '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let port = '';
    for await (const line of createInterface({ input: first.stdout })) {
      if (line.startsWith('identity ')) port = new URL(line.split(' ')[1]!).port;
      if (line.startsWith('ca ')) break;
    }
    try {
      const result = await run(['emulator', '--data', join(dir, 'data'), '--port', port]);
      assert.equal(result.code, 4);
      assert.match(result.stderr, /port \d+ is taken; pass --port 0/);
    } finally {
      first.kill('SIGTERM');
    }
  });

  it('shows help with the output format', async () => {
    const result = await run(['emulator', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /identity https:\/\/localhost:44300 {4}the login host to use as authority/);
  });
});
