// A separate process asking one shared token store for tokens: `node token-worker.ts <config>
// <mailbox> <callers> <nowOffsetMs>` prints how many distinct tokens it got (one, when single-flight
// works). Used to show that two processes cause one refresh between them.
import { openMailbridge } from '../../src/app/open-mailbridge.ts';

const [configFile, mailbox, callers, offset] = process.argv.slice(2);
const mailbridge = await openMailbridge({ configFile: configFile!, provider: { now: () => Date.now() + Number(offset) } });
const { provider } = mailbridge;
// Both workers start together when the parent says "go" on stdin.
await new Promise((resolve) => process.stdin.once('data', resolve));
const tokens = await Promise.all(Array.from({ length: Number(callers) }, () => provider.getAccessToken(mailbox!, 'imap')));
process.stdout.write(`${new Set(tokens).size}\n`);
await mailbridge.close();
process.exit(0);
