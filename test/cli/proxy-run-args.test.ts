// `mailbridge proxy [run]` without commander (src/cli/proxy-run.ts) takes only the plain command
// lines; everything else must reach commander, whose messages and exit codes the users know.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plainProxyRunArgs } from '../../src/cli/proxy-run.ts';

describe('proxy run fast path', () => {
  it('takes `proxy` and `proxy run` with --config (spaced or with =), --json and --debug, in any order', () => {
    assert.deepEqual(plainProxyRunArgs([]), {});
    assert.deepEqual(plainProxyRunArgs(['run']), {});
    assert.deepEqual(plainProxyRunArgs(['--json', '--config', 'c.json']), { json: true, config: 'c.json' });
    assert.deepEqual(plainProxyRunArgs(['run', '--debug', '--config=x=y.json', '--json']), { debug: true, config: 'x=y.json', json: true });
  });

  it('leaves everything else to commander', () => {
    for (const args of [
      ['--help'],
      ['run', '--help'],
      ['-h'],
      ['add-client', 'crm', '--mailbox', 'a@b.c'],
      ['clients'],
      ['revoke-client', 'crm'],
      ['run', 'extra'],
      ['run', 'run'],
      ['--config'],
      ['--config', '--json'],
      ['--config', 'x', '--config', 'y'],
      ['--json', '--json'],
      ['--json=yes'],
      ['--bogus'],
      ['--', 'run'],
      ['--json', 'run'],
    ]) {
      assert.equal(plainProxyRunArgs(args), undefined, args.join(' '));
    }
  });
});
