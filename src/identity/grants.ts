// A configured mailbox resolved into everything needed to get its tokens: its grant settings,
// its app and the cloud that app lives in.
import type { Cloud } from '../config/clouds.ts';
import { resolveCloud, type LoadedConfig } from '../config/load.ts';
import type { AppConfig, MailboxConfig } from '../config/schema.ts';
import { TokenError } from './token-errors.ts';

export interface ResolvedGrant {
  /** The mailbox address as configured. */
  address: string;
  mailbox: MailboxConfig;
  appName: string;
  app: AppConfig;
  cloud: Cloud;
  delegated: boolean;
}

export function resolveGrant(loaded: LoadedConfig, address: string): ResolvedGrant {
  const wanted = address.trim().toLowerCase();
  const entry = Object.entries(loaded.config.mailboxes).find(([a]) => a.toLowerCase() === wanted);
  if (!entry) {
    const known = Object.keys(loaded.config.mailboxes);
    throw new TokenError(
      'not_configured',
      address,
      `${address} is not a mailbox in ${loaded.file}${known.length ? ` (configured: ${known.join(', ')})` : ''}; add it under "mailboxes"`,
    );
  }
  const [configured, mailbox] = entry;
  const app = loaded.config.apps[mailbox.app]!;
  return { address: configured, mailbox, appName: mailbox.app, app, cloud: resolveCloud(loaded, app), delegated: mailbox.grant !== 'client_credentials' };
}
