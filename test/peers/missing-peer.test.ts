// The peer rule (test/helpers/peers.ts) as node:test applies it: a suite needing a missing peer is
// skipped with the reason locally, and makes the run fail in CI (CI=true), naming the peer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inCi } from '../helpers/peers.ts';

const PEERS = new URL('../helpers/peers.ts', import.meta.url).href;

// A suite that needs a peer nobody has, and one that needs nothing.
const SUITE = `
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { missingPeer } from ${JSON.stringify(PEERS)};

describe('needs the imaginary peer', { skip: missingPeer('imaginary', 'imaginary is not installed') }, () => {
  it('uses it', () => assert.fail('must not run without its peer'));
});
it('needs nothing', () => {});
`;

interface Outcome {
  code: number | null;
  output: string;
}

function runSuite(file: string, ci: string | undefined): Promise<Outcome> {
  const env = { ...process.env };
  // A test file run by `node --test` has NODE_TEST_CONTEXT set; the inner run must be a runner of its own.
  delete env.NODE_TEST_CONTEXT;
  delete env.CI;
  if (ci !== undefined) env.CI = ci;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=spec', file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** node:test's closing count for `name` (pass, fail, skipped...). */
function count(output: string, name: string): number {
  const found = new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(output);
  assert.ok(found, `no "${name}" count in:\n${output}`);
  return Number(found[1]);
}

describe('a missing peer', () => {
  let dir: string;
  let file: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-peers-'));
    file = join(dir, 'needs-peer.test.ts');
    await writeFile(file, SUITE);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('locally: the suite is skipped with the reason, the rest runs, the run passes', async () => {
    const run = await runSuite(file, undefined);
    assert.equal(run.code, 0, run.output);
    assert.equal(count(run.output, 'fail'), 0);
    assert.equal(count(run.output, 'pass'), 1);
    assert.match(run.output, /needs the imaginary peer.*# imaginary is not installed/);
  });

  for (const ci of ['true', '1']) {
    it(`in CI (CI=${ci}): a failing test names the peer and the reason, the run fails`, async () => {
      const run = await runSuite(file, ci);
      assert.equal(run.code, 1, run.output);
      assert.equal(count(run.output, 'fail'), 1);
      assert.match(run.output, /✖ peer imaginary present \(CI runs every test\)/);
      assert.match(run.output, /imaginary is not installed\. In CI every peer must be installed/);
      assert.doesNotMatch(run.output, /must not run without its peer/);
    });
  }

  it('CI is read as CI does: unset, empty, 0 and false are not CI', () => {
    for (const value of [undefined, '', '0', 'false', 'FALSE']) assert.equal(inCi(value === undefined ? {} : { CI: value }), false, String(value));
    for (const value of ['true', '1', 'yes']) assert.equal(inCi({ CI: value }), true, value);
  });
});
