// The package as a user gets it: packed, installed from the tarball into a project outside the
// checkout, type-checked with `tsc --strict` (module nodenext) against the installed
// declarations, and run against the emulator: a token, POP3 STAT, IMAP SELECT, an SMTP send and
// verify. Only the entry points of package.json's `exports` are reachable.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { scratchProject, type ScratchProject } from './scratch-project.ts';

const run = promisify(execFile);

/** Types that must stay real: a declaration that lost its import would turn them into `any` silently. */
const CONSUMER = `
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMailbridgeError, MailbridgeError, openMailbridge, type MailSender } from 'mailbridge';
import { Pop3Client, Pop3Error } from 'mailbridge/pop3';
import { openImap } from 'mailbridge/imap';
import { sendMessage } from 'mailbridge/smtp';
import { verify, type VerifyReport } from 'mailbridge/verify';
import { startEmulator, type Emulator } from 'mailbridge/emulator';

type IsAny<T> = 0 extends 1 & T ? true : false;
/** Compiles only when \`value\`'s type is not \`any\`. */
function typed<T>(value: T, ..._proof: IsAny<T> extends true ? [never] : []): T {
  return value;
}

const MAILBOX = 'support@contoso.com';
const emulator: Emulator = await startEmulator();
const dir = await mkdtemp(join(tmpdir(), 'mailbridge-consumer-'));
try {
  const configFile = join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(emulator.exampleConfig(join(dir, 'data'))), { mode: 0o600 });
  const mb = await openMailbridge({ configFile });
  try {
    const popToken: string = typed(await mb.provider.getAccessToken(MAILBOX, 'pop'));
    await emulator.admin.mailboxes.deliver(MAILBOX, 'From: someone@example.com\\r\\nTo: support@contoso.com\\r\\nSubject: first\\r\\n\\r\\nhello\\r\\n');

    const pop3s = new URL(emulator.urls.pop3s);
    const pop = await Pop3Client.connect({ host: pop3s.hostname, port: Number(pop3s.port), security: 'implicit', ca: emulator.ca.pem });
    await pop.authXoauth2(MAILBOX, popToken);
    const stat = typed(await pop.stat());
    await pop.quit();

    const imap = await openImap({ loaded: mb.config, provider: mb.provider }, MAILBOX);
    const selected = typed(await imap.mailboxOpen('INBOX'));
    await imap.logout();

    const sent = typed(await sendMessage({ loaded: mb.config, provider: mb.provider }, MAILBOX, { to: [MAILBOX], subject: 'second', text: 'sent by sendMessage' }));
    const sender: MailSender = await mb.sender(MAILBOX);
    const viaSeam = typed(await sender.send('Subject: third\\r\\n\\r\\nsent through the seam\\r\\n', { to: [MAILBOX] }));
    const inbox = (await emulator.admin.mailboxes.list(MAILBOX)).find((f) => f.folder === 'INBOX');

    const report: VerifyReport = typed(await verify(mb, MAILBOX, { protocols: ['imap', 'pop', 'smtp'] }));

    let unknownMailbox = '';
    try {
      await mb.provider.getAccessToken('nobody@contoso.com', 'imap');
    } catch (err) {
      if (isMailbridgeError(err) && err instanceof MailbridgeError) unknownMailbox = err.code;
    }
    const popError: Pop3Error | undefined = undefined;

    console.log(
      JSON.stringify({
        tokenLength: popToken.length,
        stat: stat.count,
        exists: selected.exists,
        sentMessageId: typeof sent.messageId === 'string' && sent.messageId.length > 0,
        seamMessageId: viaSeam.messageId,
        inboxAfterSend: inbox?.messages.length ?? 0,
        verify: { ok: report.ok, protocols: Object.keys(report.protocols) },
        unknownMailbox,
        popError: popError === undefined,
      }),
    );
  } finally {
    await mb.close();
  }
} finally {
  await emulator.close();
  await rm(dir, { recursive: true, force: true });
}
`;

/** Deep imports: tsc must not resolve them (an unused @ts-expect-error fails the check). */
const DEEP_IMPORTS = ['mailbridge/dist/index.js', 'mailbridge/dist/emulator/start.js', 'mailbridge/src/index.ts', 'mailbridge/dist/cli/main.js'];
const DEEP = DEEP_IMPORTS.map((specifier, i) => `// @ts-expect-error not exported\nexport * as deep${i} from '${specifier}';\n`).join('');

const TSCONFIG = {
  compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2024', lib: ['es2024'], types: ['node'], noEmit: true },
  files: ['consumer.ts', 'deep.ts'],
};

let project: ScratchProject;
let dir: string;

before(async () => {
  project = await scratchProject();
  dir = await mkdtemp(join(project.dir, 'consumer-'));
  await writeFile(join(dir, 'consumer.ts'), CONSUMER);
  await writeFile(join(dir, 'deep.ts'), DEEP);
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the tarball holds the built entry points with their declarations, and no sources or tests', async () => {
  const { stdout } = await run('tar', ['-tzf', project.tarball]);
  const files = new Set(stdout.split('\n').filter(Boolean));
  for (const entry of ['', 'pop3/', 'imap/', 'smtp/', 'verify/', 'emulator/']) {
    assert.ok(files.has(`package/dist/${entry}index.js`), `dist/${entry}index.js`);
    assert.ok(files.has(`package/dist/${entry}index.d.ts`), `dist/${entry}index.d.ts`);
  }
  assert.ok(files.has('package/package.json'));
  assert.deepEqual(
    [...files].filter((f) => !f.startsWith('package/dist/') && f !== 'package/package.json' && !/^package\/(README|LICENSE)/i.test(f)),
    [],
  );
});

test('a strict TypeScript consumer type-checks against the installed package; deep imports do not resolve', async () => {
  // tsc exits non-zero with the errors on stdout; the assertion shows them.
  const result = await run(process.execPath, [project.tsc, '-p', dir]).then(
    () => '',
    (err: { stdout?: string; stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}`,
  );
  assert.equal(result, '');
});

test('deep imports are not reachable at run time (ERR_PACKAGE_PATH_NOT_EXPORTED); the entry points are', async () => {
  const script = `
    const codes = {};
    for (const s of ${JSON.stringify([...DEEP_IMPORTS, 'mailbridge/package.json'])}) {
      try { await import(s, s.endsWith('.json') ? { with: { type: 'json' } } : undefined); codes[s] = 'ok'; } catch (err) { codes[s] = err.code; }
    }
    for (const s of ['mailbridge', 'mailbridge/pop3', 'mailbridge/imap', 'mailbridge/smtp', 'mailbridge/verify', 'mailbridge/emulator']) {
      codes[s] = Object.keys(await import(s)).length > 0 ? 'ok' : 'empty';
    }
    console.log(JSON.stringify(codes));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: dir });
  const codes = JSON.parse(stdout) as Record<string, string>;
  for (const specifier of DEEP_IMPORTS) assert.equal(codes[specifier], 'ERR_PACKAGE_PATH_NOT_EXPORTED', specifier);
  for (const specifier of [
    'mailbridge/package.json',
    'mailbridge',
    'mailbridge/pop3',
    'mailbridge/imap',
    'mailbridge/smtp',
    'mailbridge/verify',
    'mailbridge/emulator',
  ])
    assert.equal(codes[specifier], 'ok', specifier);
});

test('the consumer runs against the emulator: token, POP3 STAT, IMAP SELECT, SMTP send, verify', async () => {
  const { stdout } = await run(process.execPath, ['consumer.ts'], { cwd: dir });
  const seen = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  assert.ok((seen.tokenLength as number) > 100, 'an access token');
  assert.equal(seen.stat, 1, 'POP3 STAT counts the delivered message');
  assert.equal(seen.exists, 1, 'IMAP SELECT sees it too');
  assert.equal(seen.sentMessageId, true);
  assert.match(seen.seamMessageId as string, /^<[^<>@\s]+@[^<>\s]+>$/);
  assert.equal(seen.inboxAfterSend, 3, 'both sent messages reached the mailbox');
  assert.deepEqual(seen.verify, { ok: true, protocols: ['imap', 'pop', 'smtp'] });
  assert.equal(seen.unknownMailbox, 'not_configured');
});
