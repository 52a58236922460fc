// The published CLI: `tsc -p tsconfig.build.json` emits JavaScript that runs without TypeScript
// support in Node (the `.ts` import specifiers rewritten to `.js`).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;

describe('npm run build', () => {
  let out: string;
  after(() => rm(out, { recursive: true, force: true }));

  it('emits a CLI that runs with type stripping switched off', async () => {
    out = await mkdtemp(join(tmpdir(), 'mailbridge-build-'));
    await run(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', join(out, 'dist')], { cwd: root });
    // The emitted file sits two folders below where package.json is expected; link it in place.
    await symlink(join(root, 'package.json'), join(out, 'package.json'));
    await symlink(join(root, 'node_modules'), join(out, 'node_modules'));
    const { stdout } = await run(process.execPath, ['--no-experimental-strip-types', join(out, 'dist/cli/main.js'), 'emulator', '--help']);
    assert.match(stdout, /Usage: mailbridge emulator \[options\]/);
  });
});
