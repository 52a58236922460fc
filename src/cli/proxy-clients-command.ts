// `mailbridge proxy add-client | clients | revoke-client`: the local clients of the legacy proxy
// and their app passwords. A password is printed once, when it is made; only its hash is kept,
// and no command ever prints the hash.
import type { Command } from 'commander';
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import { createProxyClient } from '../proxy/clients/app-password.ts';
import { openProxyClientStore } from '../store/open-stores.ts';
import { CLIENT_NAME, ProxyClientStoreError, type ProxyClientRecord, type ProxyClientStore } from '../store/proxy-client-store.ts';
import { EXIT } from './exit-codes.ts';
import { runIdentityCommand } from './identity-context.ts';
import { CONFIG_HELP, collect } from './options.ts';

/** The configured store's proxy clients (beside the grants); without the key, which hashes do not need. */
async function withStore<T>(loaded: LoadedConfig, body: (store: ProxyClientStore) => Promise<T>): Promise<T> {
  const store = await openProxyClientStore(loaded);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

/** A name as it would be typed in a shell. */
const quote = (name: string) => (/^[\w.@+-]+$/.test(name) ? name : `'${name}'`);

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** What may be shown of a client: everything but the hash. */
function publicView(c: ProxyClientRecord) {
  return { name: c.name, id: c.id, mailboxes: c.mailboxes, createdAt: iso(c.createdAt), lastUsedAt: iso(c.lastUsedAt), revokedAt: iso(c.revokedAt) };
}

export function registerProxyClientCommands(proxy: Command): void {
  proxy
    .command('add-client')
    .description('create a local client of the proxy with its own app password, for the given mailboxes')
    .argument('<name>', 'a name for the program or device, such as crm or scanner-2nd-floor')
    .requiredOption('--mailbox <address>', 'a configured mailbox the client may open; repeat or separate with commas for more', collect)
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'print { name, id, mailboxes, password } as JSON')
    .action((rawName: string, flags: { mailbox: string[]; config?: string; json?: boolean }) =>
      runIdentityCommand('proxy add-client', async () => {
        const name = rawName.trim();
        if (!CLIENT_NAME.test(name)) {
          process.stderr.write(
            `mailbridge proxy add-client: "${name}" cannot be a client name: use up to 64 letters, digits, spaces and . _ @ + -, starting with a letter or digit\n`,
          );
          return EXIT.usage;
        }
        if (flags.mailbox.length === 0) {
          process.stderr.write('mailbridge proxy add-client: give at least one --mailbox\n');
          return EXIT.usage;
        }
        const loaded = await loadConfig(flags.config);
        const configured = Object.keys(loaded.config.mailboxes);
        const byKey = new Map(configured.map((a) => [a.toLowerCase(), a]));
        const unknown = flags.mailbox.filter((m) => !byKey.has(m.toLowerCase()));
        if (unknown.length > 0) {
          const list = configured.length > 0 ? `the configured mailboxes are: ${configured.join(', ')}` : 'no mailboxes are configured';
          process.stderr.write(
            `mailbridge proxy add-client: ${unknown.join(', ')} ${unknown.length === 1 ? 'is not a configured mailbox' : 'are not configured mailboxes'} in ${loaded.file}; ${list}\n`,
          );
          return EXIT.config;
        }
        const mailboxes = flags.mailbox.map((m) => byKey.get(m.toLowerCase())!);
        return withStore(loaded, async (store) => {
          const taken = (existing: string) => {
            process.stderr.write(
              `mailbridge proxy add-client: a client named "${existing}" already exists; to give it a new password, run \`mailbridge proxy revoke-client ${quote(existing)}\` first, or choose another name\n`,
            );
            return EXIT.failure;
          };
          const existing = await store.getByName(name);
          if (existing && existing.revokedAt === null) return taken(existing.name);
          let created: Awaited<ReturnType<typeof createProxyClient>>;
          try {
            created = await createProxyClient(store, { name, mailboxes });
          } catch (err) {
            // Another add-client took the name while this one hashed.
            if (err instanceof ProxyClientStoreError && err.code === 'name_taken') return taken(name);
            throw err;
          }
          const { client, password } = created;
          if (flags.json) {
            process.stdout.write(`${JSON.stringify({ name: client.name, id: client.id, mailboxes: client.mailboxes, password }, null, 2)}\n`);
            return EXIT.ok;
          }
          const usernames = mailboxes.length === 1 ? mailboxes[0]! : `one of ${mailboxes.join(', ')}`;
          process.stdout.write(
            [
              `Created the proxy client "${client.name}" (id ${client.id}) for ${mailboxes.join(', ')}.`,
              '',
              `  username: the mailbox address (${usernames})`,
              `  password: ${password}`,
              '',
              "Enter these in the program instead of the mailbox's Microsoft password. The password is shown",
              'only now: mailbridge keeps nothing but a hash of it. If it is lost, revoke the client and add it again.',
              `To revoke it: mailbridge proxy revoke-client ${quote(client.name)}`,
              '',
            ].join('\n'),
          );
          return EXIT.ok;
        });
      }),
    );

  proxy
    .command('clients')
    .description("list the proxy's local clients: name, id, mailboxes, created, last used, revoked (never a password or hash)")
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'print JSON for scripts')
    .action((flags: { config?: string; json?: boolean }) =>
      runIdentityCommand('proxy clients', async () => {
        const loaded = await loadConfig(flags.config);
        const clients = await withStore(loaded, (store) => store.list());
        const rows = clients.map(publicView);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        } else if (rows.length === 0) {
          process.stdout.write('No proxy clients yet; add one with `mailbridge proxy add-client <name> --mailbox <address>`.\n');
        } else {
          for (const r of rows) {
            const state = r.revokedAt ? `revoked ${r.revokedAt}` : `last used ${r.lastUsedAt ?? 'never'}`;
            process.stdout.write(`${r.name}  ${r.id}  ${r.mailboxes.join(',')}  created ${r.createdAt}  ${state}\n`);
          }
        }
      }),
    );

  proxy
    .command('revoke-client')
    .description('revoke a proxy client: its app password stops working at the next login')
    .argument('<name>', 'the name given to add-client')
    .option('--config <file>', CONFIG_HELP)
    .action((name: string, flags: { config?: string }) =>
      runIdentityCommand('proxy revoke-client', async () => {
        const loaded = await loadConfig(flags.config);
        return withStore(loaded, async (store) => {
          const revoked = await store.revoke(name);
          if (!revoked) {
            const previous = await store.getByName(name);
            process.stderr.write(
              `mailbridge proxy revoke-client: ${previous ? `"${previous.name}" was already revoked on ${iso(previous.revokedAt)}` : `no proxy client is named "${name}"; \`mailbridge proxy clients\` lists them`}\n`,
            );
            return EXIT.failure;
          }
          process.stderr.write(`Revoked the proxy client "${revoked.name}" (id ${revoked.id}); new logins with its password are refused.\n`);
          return EXIT.ok;
        });
      }),
    );
}
