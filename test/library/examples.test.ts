// Every ```ts example of docs/library.md, as a reader would use it: written into the scratch
// project where the packed mailbridge is installed (so 'mailbridge', 'mailbridge/pop3', ... are
// the package's exports), type-checked with `tsc --strict`, then run; each starts its own emulator.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CHECKOUT, scratchProject, type ScratchProject } from './scratch-project.ts';

const run = promisify(execFile);

interface Example {
  /** The `## ` heading the example is under. */
  heading: string;
  code: string;
}

/** The ```ts blocks of a Markdown text, each with the heading above it. */
export function extractExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  let heading = '';
  let code: string[] | undefined;
  for (const line of markdown.split('\n')) {
    if (code) {
      if (line.startsWith('```')) {
        examples.push({ heading, code: `${code.join('\n')}\n` });
        code = undefined;
      } else code.push(line);
    } else if (line.startsWith('## ')) heading = line.slice(3).trim();
    else if (/^```ts\s*$/.test(line)) code = [];
  }
  return examples;
}

/** What each example must print, by the start of its heading: proof that it did its work. */
const EXPECTED: Record<string, RegExp[]> = {
  '`mailbridge`:': [/token of \d{3,} characters/, /new messages: 1 /, /sent as <[^>]+>/, /refused with code not_configured/],
  '`mailbridge/pop3`': [/STAT: 1 messages, \d+ octets/],
  '`mailbridge/imap`': [/INBOX holds 1 messages/, /1 one/],
  '`mailbridge/smtp`': [/accepted: \[ 'support@contoso\.com' \]/, /refused with code auth_disabled/],
  '`mailbridge/verify`': [/works: IMAP, POP3, SMTP passed every step/, /^false [a-z_]+ \S/m],
  '`mailbridge/emulator`': [/token: 200/, /armed failure: 401 \[ 7000215 \]/, /clock: 7200/, /INBOX: 1 token requests: 2/],
};

const examples = extractExamples(await readFile(join(CHECKOUT, 'docs', 'library.md'), 'utf8'));
let project: ScratchProject;
let dir: string;

before(async () => {
  project = await scratchProject();
  dir = await mkdtemp(join(project.dir, 'examples-'));
  // What the examples leave in the temporary folder (their configurations, token stores) stays in here.
  await mkdir(join(dir, 'tmp'));
  for (const [i, example] of examples.entries()) await writeFile(join(dir, `example-${i}.ts`), example.code);
  const compilerOptions = { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2024', lib: ['es2024'], types: ['node'], noEmit: true };
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: examples.map((_, i) => `example-${i}.ts`) }, null, 2));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('docs/library.md has one example per entry point, each with what it must print', () => {
  const entryPoints = ['mailbridge', 'mailbridge/pop3', 'mailbridge/imap', 'mailbridge/smtp', 'mailbridge/verify', 'mailbridge/emulator'];
  for (const entry of entryPoints)
    assert.ok(
      examples.some((e) => e.heading.startsWith(`\`${entry}\``)),
      `an example under "## \`${entry}\`..."`,
    );
  for (const example of examples)
    assert.ok(
      Object.keys(EXPECTED).some((k) => example.heading.startsWith(k)),
      `expectations for "${example.heading}"`,
    );
});

test('the examples type-check with tsc --strict against the installed package', async () => {
  const errors = await run(process.execPath, [project.tsc, '-p', dir]).then(
    () => '',
    (err: { stdout?: string; stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}`,
  );
  assert.equal(errors, '');
});

for (const [i, example] of examples.entries()) {
  test(`example "${example.heading}" runs and does what it says`, async () => {
    const { stdout } = await run(process.execPath, [`example-${i}.ts`], { cwd: dir, env: { ...process.env, TMPDIR: join(dir, 'tmp') } });
    const expected = Object.entries(EXPECTED).find(([k]) => example.heading.startsWith(k))?.[1] ?? [];
    for (const pattern of expected) assert.match(stdout, pattern);
  });
}
