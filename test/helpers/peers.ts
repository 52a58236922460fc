// The one rule for tests that need a program beside Node (a peer: Dovecot, Postfix, Chromium, curl,
// mutt, msmtp, python3, script). Locally a missing peer skips the tests that need it, saying why and
// how to install it. In CI (CI set, as .ci/run runs) a missing peer is a failure: a test named for
// the peer fails with the reason, so a green CI run means every test ran. The tests that need the
// peer are then not run, since each would only fail again for the same cause.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

export type PeerName = 'dovecot' | 'postfix' | 'chromium' | 'curl' | 'mutt' | 'msmtp' | 'python3' | 'script';

const INSTALL = 'source scripts/setup.sh --test-peers installs it';
const PROGRAM_DIRS = ['/usr/bin', '/usr/local/bin', '/bin'];

/** Where each peer is looked for, first found wins. */
const LOCATIONS: Record<PeerName, string[]> = {
  dovecot: ['/usr/sbin/dovecot'],
  postfix: ['/usr/sbin/postfix'],
  chromium: ['/usr/bin/chromium'],
  curl: PROGRAM_DIRS.map((d) => join(d, 'curl')),
  mutt: PROGRAM_DIRS.map((d) => join(d, 'mutt')),
  msmtp: PROGRAM_DIRS.map((d) => join(d, 'msmtp')),
  python3: [...PROGRAM_DIRS.map((d) => join(d, 'python3')), '/root/.pyenv/shims/python3'],
  script: PROGRAM_DIRS.map((d) => join(d, 'script')),
};

/** Whether this run is CI's: CI=true (or any value other than empty, 0 and false). */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.CI?.trim().toLowerCase();
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

/** The peer's executable, or undefined when it is not installed. */
export function peerPath(name: PeerName): string | undefined {
  return LOCATIONS[name].find((path) => existsSync(path));
}

/** Why the peer cannot run here, or undefined when it can. */
function peerProblem(name: PeerName): string | undefined {
  if (peerPath(name) === undefined) return `${name} is not installed (looked for ${LOCATIONS[name].join(', ')}; ${INSTALL})`;
  // "the postfix command is reserved for the superuser".
  if (name === 'postfix' && (process.getuid?.() ?? 0) !== 0) return 'Postfix only runs as root';
  return undefined;
}

/**
 * The `skip` option for a describe() or it() whose tests need these peers, as in
 * `describe('...', { skip: needPeers('dovecot') }, ...)`: false when all of them can run, else the
 * reason (and, in CI, a failing test; see missingPeer).
 */
export function needPeers(...names: PeerName[]): false | string {
  const problems = names.map(peerProblem).filter((p) => p !== undefined);
  return problems.length === 0 ? false : missingPeer(names.join(', '), problems.join('; '));
}

/**
 * The rule itself, for peers that are missing for `reason`: returns the reason as the skip option;
 * in CI it also registers (where it is called) a test named for the peers that fails with it.
 */
export function missingPeer(peers: string, reason: string): string {
  if (inCi()) {
    it(`peer ${peers} present (CI runs every test)`, () => {
      throw new Error(`${reason}. In CI every peer must be installed: a skipped test would pass unseen.`);
    });
  }
  return reason;
}
