// Where each Microsoft cloud lives (reference section 1.6): the login host, Exchange Online's
// mail hosts and ports, and the resource prefixes scopes are built from. A configuration can
// define its own cloud on top of one of these (for example pointing at the emulator).

export type CloudName = 'global' | 'usgov-gcc-high' | 'usgov-dod' | 'china';
export const CLOUD_NAMES: readonly CloudName[] = ['global', 'usgov-gcc-high', 'usgov-dod', 'china'];

export interface MailEndpoint {
  host: string;
  port: number;
  /** implicit: TLS from the first byte (993, 995); starttls: plain, then upgraded (587). */
  security: 'implicit' | 'starttls';
}

export interface Cloud {
  name: string;
  /** `https://login.microsoftonline.com` and its national equivalents. */
  loginUrl: string;
  /** Prefix of delegated mail scopes, e.g. `https://outlook.office.com/IMAP.AccessAsUser.All`. */
  delegatedScopePrefix: string;
  /** The app-only scope for Exchange's mail protocols. */
  appOnlyScope: string;
  imap: MailEndpoint;
  pop: MailEndpoint;
  smtp: MailEndpoint;
  /** The Entra portal, for fixes that point at a setting. */
  portal: string;
  /** PEM CA to trust besides the system's (an emulator's); never set for Microsoft's clouds. */
  caFile?: string;
  /** How long to wait for each answer of the login host (a custom cloud's timeoutSeconds); default 15 s. */
  identityTimeoutMs?: number;
}

function exchange(host: string, smtpHost: string): Pick<Cloud, 'imap' | 'pop' | 'smtp'> {
  return {
    imap: { host, port: 993, security: 'implicit' },
    pop: { host, port: 995, security: 'implicit' },
    smtp: { host: smtpHost, port: 587, security: 'starttls' },
  };
}

export const CLOUDS: Record<CloudName, Cloud> = {
  global: {
    name: 'global',
    loginUrl: 'https://login.microsoftonline.com',
    delegatedScopePrefix: 'https://outlook.office.com',
    appOnlyScope: 'https://outlook.office365.com/.default',
    ...exchange('outlook.office365.com', 'smtp.office365.com'),
    portal: 'https://entra.microsoft.com',
  },
  'usgov-gcc-high': {
    name: 'usgov-gcc-high',
    loginUrl: 'https://login.microsoftonline.us',
    delegatedScopePrefix: 'https://outlook.office365.us',
    appOnlyScope: 'https://outlook.office365.us/.default',
    ...exchange('outlook.office365.us', 'smtp.office365.us'),
    portal: 'https://portal.azure.us',
  },
  'usgov-dod': {
    name: 'usgov-dod',
    loginUrl: 'https://login.microsoftonline.us',
    delegatedScopePrefix: 'https://outlook-dod.office365.us',
    appOnlyScope: 'https://outlook-dod.office365.us/.default',
    ...exchange('outlook-dod.office365.us', 'outlook-dod.office365.us'),
    portal: 'https://portal.azure.us',
  },
  china: {
    name: 'china',
    loginUrl: 'https://login.partner.microsoftonline.cn',
    delegatedScopePrefix: 'https://partner.outlook.cn',
    appOnlyScope: 'https://partner.outlook.cn/.default',
    ...exchange('partner.outlook.cn', 'smtp.partner.outlook.cn'),
    portal: 'https://portal.azure.cn',
  },
};

/** Outlook.com personal accounts: global cloud, their own SMTP host. */
export const OUTLOOK_COM_SMTP: MailEndpoint = { host: 'smtp-mail.outlook.com', port: 587, security: 'starttls' };

/** Parses `imaps://host:993`, `pop3s://host:995`, `smtp://host:587` (and plain forms) into an endpoint. */
export function parseMailUrl(url: string): MailEndpoint {
  const parsed = new URL(url);
  const scheme = parsed.protocol.replace(/:$/, '');
  const implicit = scheme === 'imaps' || scheme === 'pop3s' || scheme === 'smtps';
  const defaults: Record<string, number> = { imaps: 993, imap: 143, pop3s: 995, pop3: 110, smtp: 587, smtps: 465 };
  const port = parsed.port ? Number(parsed.port) : defaults[scheme];
  if (!port) throw new Error(`${url}: use imaps://, imap://, pop3s://, pop3://, smtp:// or smtps://`);
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port, security: implicit ? 'implicit' : 'starttls' };
}
