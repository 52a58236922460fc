// `mailbridge token` without commander (src/cli/token-fast-path.ts) takes only the plain command
// lines; everything else must reach commander, whose messages and exit codes the users know.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plainTokenArgs } from '../../src/cli/token-fast-path.ts';

describe('token fast path', () => {
  it('takes one mailbox with --config, --protocol (spaced or with =) and --sasl, in any order', () => {
    assert.deepEqual(plainTokenArgs(['a@b.c']), { mailbox: 'a@b.c', flags: {} });
    assert.deepEqual(plainTokenArgs(['--config', 'c.json', 'a@b.c', '--sasl', '--protocol=smtp']), {
      mailbox: 'a@b.c',
      flags: { config: 'c.json', sasl: true, protocol: 'smtp' },
    });
    assert.deepEqual(plainTokenArgs(['a@b.c', '--config=x=y.json']), { mailbox: 'a@b.c', flags: { config: 'x=y.json' } });
  });

  it('leaves everything else to commander', () => {
    for (const args of [
      [],
      ['--help'],
      ['-h', 'a@b.c'],
      ['a@b.c', 'd@e.f'],
      ['a@b.c', '--config'],
      ['a@b.c', '--config', '--sasl'],
      ['a@b.c', '--config', 'x', '--config', 'y'],
      ['a@b.c', '--sasl', '--sasl'],
      ['a@b.c', '--sasl=yes'],
      ['a@b.c', '--bogus'],
      ['--', 'a@b.c'],
    ]) {
      assert.equal(plainTokenArgs(args), undefined, args.join(' '));
    }
  });
});
