// The one error family and its exit codes: every mailbridge error has a stable code, the same
// failure has the same code whatever the protocol, each code has one exit code (the table in
// docs/cli.md says the same), and `mailbridge fetch` / `send` exit with it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../src/config/load.ts';
import { EXIT, EXIT_FOR_CODE, exitCodeFor } from '../../src/cli/exit-codes.ts';
import { InitError } from '../../src/cli/init-command.ts';
import { MailbridgeError } from '../../src/errors.ts';
import { TokenError } from '../../src/identity/token-errors.ts';
import { ImapError } from '../../src/imap/connect.ts';
import { ConnectionError, NetFailure } from '../../src/net/connection.ts';
import { ImapSyntaxError } from '../../src/net/imap-syntax.ts';
import { LineTooLongError } from '../../src/net/line-reader.ts';
import { Pop3Error } from '../../src/pop3/errors.ts';
import { UpstreamError } from '../../src/proxy/upstream/errors.ts';
import { SmtpError } from '../../src/smtp/send.ts';
import { ProxyClientStoreError } from '../../src/store/proxy-client-store.ts';
import { TokenStoreError } from '../../src/store/token-store.ts';
import { TransportError } from '../../src/transport/errors.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestEmulator, type TestEmulator } from '../helpers/emulator.ts';
import { writeTestConfig, type TestConfig } from '../helpers/identity-config.ts';
import { freePorts } from '../peers/probe.ts';

const endpoint = { host: 'mail.example', port: 993, security: 'implicit' as const };

describe('error family and exit codes', () => {
  it('every error class is a MailbridgeError with a stable code, its own name and its cause', () => {
    const cause = new Error('ECONNREFUSED');
    const errors: [MailbridgeError, string][] = [
      [new TokenError('needs_sign_in', 'a@b.example', 'sign in'), 'TokenError'],
      [new ConfigError('/c.json', [{ path: 'apps', message: 'missing' }]), 'ConfigError'],
      [new NetFailure('tcp', 'ECONNREFUSED', 'refused'), 'NetFailure'],
      [new ConnectionError('closed', 'closed', { cause }), 'ConnectionError'],
      [new LineTooLongError(10), 'LineTooLongError'],
      [new ImapSyntaxError('bad'), 'ImapSyntaxError'],
      [new Pop3Error('unreachable', 'refused', { cause }), 'Pop3Error'],
      [new ImapError('unreachable', 'a@b.example', endpoint, 'refused', { cause }), 'ImapError'],
      [new SmtpError('unreachable', 'a@b.example', endpoint, 'refused', { cause }), 'SmtpError'],
      [new UpstreamError('unreachable', 'refused', { cause }), 'UpstreamError'],
      [new TokenStoreError('cannot_decrypt', 'another key'), 'TokenStoreError'],
      [new ProxyClientStoreError('name_taken', 'taken'), 'ProxyClientStoreError'],
      [new InitError('exists', 'exists'), 'InitError'],
      [new TransportError('unsupported', 'POP3 cannot move'), 'TransportError'],
    ];
    for (const [err, name] of errors) {
      assert.ok(err instanceof MailbridgeError, name);
      assert.ok(err instanceof Error, name);
      assert.equal(err.name, name);
      assert.ok(Object.hasOwn(EXIT_FOR_CODE, err.code), `${name}: ${err.code} is in the exit table`);
    }
    for (const [err] of errors.filter(([e]) => e.code === 'unreachable' && !(e instanceof NetFailure))) assert.equal(err.cause, cause, err.name);
  });

  it('the same failure has the same code whatever reports it', () => {
    const timeouts = [
      new NetFailure('tcp', 'ETIMEDOUT', 'no answer'),
      new NetFailure('tls', 'ETIMEDOUT', 'no handshake'),
      new ConnectionError('timeout', 'no reply'),
      new Pop3Error('timeout', 'no reply'),
      new ImapError('timeout', 'a@b.example', endpoint, 'no reply'),
      new SmtpError('timeout', 'a@b.example', endpoint, 'no reply'),
      new UpstreamError('timeout', 'no reply'),
    ];
    for (const err of timeouts) assert.equal(err.code, 'timeout', err.name);
    assert.equal(new NetFailure('dns', 'ENOTFOUND', 'no such host').code, 'unreachable');
    assert.equal(new NetFailure('tcp', 'ECONNREFUSED', 'refused').code, 'unreachable');
    const tls = new NetFailure('tls', 'CERT_HAS_EXPIRED', 'expired', 'expired');
    assert.equal(tls.code, 'tls');
    assert.equal(tls.systemCode, 'CERT_HAS_EXPIRED', "the system's code is kept beside the family's");
  });

  it('maps codes to exit codes in one table', () => {
    const cases: [unknown, number][] = [
      [new Pop3Error('timeout', 'x'), EXIT.unavailable],
      [new ImapError('unreachable', 'a@b.example', endpoint, 'x'), EXIT.unavailable],
      [new SmtpError('tls', 'a@b.example', endpoint, 'x'), EXIT.unavailable],
      [new ImapError('throttled', 'a@b.example', endpoint, 'x'), EXIT.unavailable],
      [new TokenError('unavailable', 'a@b.example', 'x'), EXIT.unavailable],
      [new SmtpError('auth_rejected', 'a@b.example', endpoint, 'x'), EXIT.failure],
      [new Pop3Error('protocol', 'x'), EXIT.failure],
      [new SmtpError('rejected', 'a@b.example', endpoint, 'x'), EXIT.failure],
      [new TokenError('needs_sign_in', 'a@b.example', 'x'), EXIT.needsSignIn],
      [new TokenError('not_configured', 'a@b.example', 'x'), EXIT.config],
      [new TokenError('broken_configuration', 'a@b.example', 'x'), EXIT.config],
      [new ConfigError('/c.json', []), EXIT.config],
      [new InitError('x', 'usage'), EXIT.usage],
      [new TokenStoreError('corrupt_record', 'x'), EXIT.store],
      [new ProxyClientStoreError('store_unavailable', 'x'), EXIT.store],
      [new ProxyClientStoreError('name_taken', 'x'), EXIT.failure],
      [new Error('a bug'), EXIT.failure],
      ['not even an error', EXIT.failure],
      [undefined, EXIT.failure],
    ];
    for (const [err, code] of cases) assert.equal(exitCodeFor(err), code, String((err as Error | undefined)?.message ?? err));
  });

  it('docs/cli.md lists every code with the exit code the table gives it', async () => {
    const doc = await readFile(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    const section = /^## Errors\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(doc)?.[1];
    assert.ok(section, 'docs/cli.md has an "Errors" section');
    const documented = new Map<string, number>();
    for (const row of section.matchAll(/^\| ((?:`\w+`(?:, )?)+) \| [^|]+ \| (\d) \|$/gm)) {
      for (const code of row[1]!.matchAll(/`(\w+)`/g)) documented.set(code[1]!, Number(row[2]));
    }
    assert.deepEqual(Object.fromEntries([...documented].sort()), Object.fromEntries(Object.entries(EXIT_FOR_CODE).sort()));
  });
});

describe('mailbridge fetch and send exit with the code of their failure (against the emulator)', () => {
  let emu: TestEmulator;
  let cfg: TestConfig;
  before(async () => {
    emu = await startTestEmulator();
    // The mail servers of this cloud are a port where nothing listens; the identity platform is the emulator's.
    const [dead] = (await freePorts(1)) as [number];
    const base = await writeTestConfig(emu);
    const config = JSON.parse(await readFile(base.file, 'utf8')) as { clouds: Record<string, Record<string, string>> };
    const cloud = config.clouds['emulator']!;
    cfg = await writeTestConfig(emu, {
      clouds: { emulator: { ...cloud, imap: `imaps://localhost:${dead}`, pop: `pop3s://localhost:${dead}`, smtp: `smtp://localhost:${dead}` } },
    });
  });
  after(async () => {
    await emu.close();
  });

  for (const protocol of ['pop', 'imap'] as const) {
    it(`fetch over ${protocol} from a server that does not answer: exit 4, the reason on stderr`, async () => {
      const run = await runCli(['fetch', 'support@contoso.com', '--protocol', protocol, '--out', cfg.dir, '--config', cfg.file]);
      assert.equal(run.code, EXIT.unavailable, run.stderr);
      assert.match(run.stderr, /^mailbridge fetch: .*(ECONNREFUSED|connect)/m);
      assert.doesNotMatch(run.stderr, /unexpected failure/);
    });
  }

  it('send through a server that does not answer: exit 4', async () => {
    const run = await runCli(['send', 'support@contoso.com', '--to', 'bob@contoso.com', '--subject', 'hi', '--body', 'x', '--config', cfg.file]);
    assert.equal(run.code, EXIT.unavailable, run.stderr);
    assert.match(run.stderr, /^mailbridge send: /m);
    assert.doesNotMatch(run.stderr, /unexpected failure/);
  });

  it('fetch for a mailbox nobody signed in yet: exit 5', async () => {
    const run = await runCli(['fetch', 'bob@contoso.com', '--protocol', 'imap', '--out', cfg.dir, '--config', cfg.file]);
    assert.equal(run.code, EXIT.needsSignIn, run.stderr);
    assert.match(run.stderr, /mailbridge login bob@contoso\.com/);
  });
});
