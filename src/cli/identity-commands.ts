// `mailbridge login | token | accounts | logout`: sign a mailbox in, print a fresh token for
// another program (msmtp's passwordeval, mutt, isync), list grants and their health, sign out.
import type { Command } from 'commander';
import { PROTOCOLS } from '../config/names.ts';
import { resolveGrant } from '../identity/grants.ts';
import type { GrantMeta } from '../store/token-store.ts';
import { EXIT } from './exit-codes.ts';
import { openIdentity, runIdentityCommand } from './identity-context.ts';
import { CONFIG_HELP } from './options.ts';
import { runToken, type TokenFlags } from './token-fast-path.ts';

/** Opens the system browser when there is one (a desktop session); false otherwise. */
async function openBrowser(url: string): Promise<boolean> {
  const opener =
    process.platform === 'darwin'
      ? 'open'
      : process.platform === 'win32'
        ? 'explorer'
        : process.env.DISPLAY || process.env.WAYLAND_DISPLAY
          ? 'xdg-open'
          : undefined;
  if (!opener) return false;
  const { spawn } = await import('node:child_process');
  return new Promise((resolve) => {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => resolve(false));
    child.on('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}

/** Two months without a refresh: still valid, but closing in on Entra's 90-day limit. */
const EXPIRING_AFTER_MS = 60 * 86_400_000;

function health(meta: GrantMeta | undefined, now: number): string {
  if (!meta) return 'not signed in';
  if (meta.status === 'ok' && meta.grant !== 'client_credentials' && now - (meta.refreshedAt ?? meta.createdAt) > EXPIRING_AFTER_MS) return 'expiring';
  return meta.status;
}

export function registerIdentityCommands(program: Command): void {
  program
    .command('login')
    .description("sign a mailbox's grant in (authorization code with PKCE, device code, or app-only) and store it encrypted")
    .argument('<mailbox>', 'a mailbox address from the configuration')
    .option('--config <file>', CONFIG_HELP)
    .option('--device', 'sign in with a code on another device (headless machines)')
    .option('--browser', 'open the system browser (the default when there is one)')
    .option('--no-browser', 'print the sign-in URL instead of opening a browser; paste back the address it ends on')
    .action((mailbox: string, flags: { config?: string; device?: boolean; browser?: boolean }) =>
      runIdentityCommand('login', async () => {
        const ctx = await openIdentity(flags.config);
        try {
          // Loaded here: sign-in brings msal-node, which `token` with a cached token does without.
          const { login } = await import('../identity/login.ts');
          const meta = await login(ctx.loaded, ctx.store, mailbox, {
            mode: flags.device ? 'device' : flags.browser === false ? 'manual' : 'browser',
            say: (text) => process.stderr.write(`${text}\n`),
            openBrowser,
            // A terminal or a pipe: the address the browser ended on may be pasted (or piped) in.
            paste: process.stdin,
          });
          process.stderr.write(
            `Signed in: ${meta.mailbox}${meta.account ? ` as ${meta.account.username}` : ' (app-only)'}; the grant is stored encrypted in ${ctx.loaded.dataDir}.\n`,
          );
        } finally {
          await ctx.close();
        }
      }),
    );

  program
    .command('token')
    .description('print a fresh access token for a mailbox on stdout, and nothing else (for passwordeval, PassCmd, scripts)')
    .argument('<mailbox>', 'a mailbox address from the configuration')
    .option('--config <file>', CONFIG_HELP)
    .option('--protocol <protocol>', `which protocol the token is for: ${PROTOCOLS.join(', ')} (default: the mailbox's first)`)
    .option('--sasl', 'print the base64 SASL XOAUTH2 string (user=...^Aauth=Bearer ...^A^A) instead of the bare token')
    .action((mailbox: string, flags: TokenFlags) => runToken(mailbox, flags));

  program
    .command('accounts')
    .description("list the configured mailboxes, their grants' health and token expiry")
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'print JSON for scripts')
    .action((flags: { config?: string; json?: boolean }) =>
      runIdentityCommand('accounts', async () => {
        const ctx = await openIdentity(flags.config);
        try {
          const stored = new Map((await ctx.store.listMeta()).map((m) => [m.mailbox.toLowerCase(), m]));
          const now = Date.now();
          const rows = Object.entries(ctx.loaded.config.mailboxes).map(([address, mailbox]) => {
            const meta = stored.get(address.toLowerCase());
            const expiries = Object.values(meta?.accessTokenExpiry ?? {}).filter((x): x is number => typeof x === 'number');
            return {
              mailbox: address,
              grant: mailbox.grant,
              app: mailbox.app,
              status: health(meta, now),
              ...(meta?.account ? { account: meta.account.username } : {}),
              ...(meta?.reason ? { reason: meta.reason } : {}),
              ...(meta?.aadsts !== undefined ? { aadsts: meta.aadsts } : {}),
              ...(meta?.refreshedAt ? { refreshedAt: new Date(meta.refreshedAt).toISOString() } : {}),
              ...(expiries.length ? { accessTokenExpiresAt: new Date(Math.max(...expiries)).toISOString() } : {}),
            };
          });
          if (flags.json) {
            process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
          } else if (rows.length === 0) {
            process.stdout.write('No mailboxes are configured.\n');
          } else {
            for (const r of rows) {
              process.stdout.write(
                `${r.mailbox}  ${r.grant}  ${r.status}${'account' in r ? `  as ${r.account}` : ''}${'accessTokenExpiresAt' in r ? `  token until ${r.accessTokenExpiresAt}` : ''}\n`,
              );
              if ('reason' in r) process.stdout.write(`    ${r.reason}\n`);
            }
          }
          return rows.every((r) => r.status === 'ok' || r.status === 'expiring') ? EXIT.ok : EXIT.failure;
        } finally {
          await ctx.close();
        }
      }),
    );

  program
    .command('logout')
    .description("forget a mailbox's grant (its stored tokens); the app registration stays as it is")
    .argument('<mailbox>', 'a mailbox address from the configuration')
    .option('--config <file>', CONFIG_HELP)
    .action((mailbox: string, flags: { config?: string }) =>
      runIdentityCommand('logout', async () => {
        const ctx = await openIdentity(flags.config);
        try {
          const grant = resolveGrant(ctx.loaded, mailbox);
          const removed = await ctx.store.delete(grant.address);
          process.stderr.write(removed ? `Signed out: ${grant.address}.\n` : `${grant.address} was not signed in.\n`);
        } finally {
          await ctx.close();
        }
      }),
    );
}
