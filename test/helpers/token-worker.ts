// A separate process asking one shared token store for tokens: `node token-worker.ts <config>
// <mailbox> <callers> <nowOffsetMs>` prints how many distinct tokens it got (one, when single-flight
// works). Used to show that two processes cause one refresh between them.
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { TokenProvider } from '../../src/identity/token-provider.ts';
import { loadKey } from '../../src/store/encryption.ts';
import { SqliteTokenStore } from '../../src/store/sqlite-token-store.ts';

const [configFile, mailbox, callers, offset] = process.argv.slice(2);
const loaded = await loadConfig(configFile);
const store = await SqliteTokenStore.open(join(loaded.dataDir, 'tokens.db'), await loadKey(join(loaded.dataDir, 'key')));
const provider = new TokenProvider({ loaded, store, now: () => Date.now() + Number(offset) });
// Both workers start together when the parent says "go" on stdin.
await new Promise((resolve) => process.stdin.once('data', resolve));
const tokens = await Promise.all(Array.from({ length: Number(callers) }, () => provider.getAccessToken(mailbox!, 'imap')));
process.stdout.write(`${new Set(tokens).size}\n`);
await store.close();
process.exit(0);
