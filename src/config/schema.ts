// The configuration file: app registrations, the clouds they live in, and the mailboxes that use
// them. Validated with zod; each rule admins trip over has a message that says what to change.
import { z } from 'zod';
import { CLOUD_NAMES } from './clouds.ts';
import { GRANTS, PROTOCOLS } from './names.ts';
import { unknownStoreKindMessage } from './store-kinds.ts';

export { GRANTS, GUID, PROTOCOLS, type GrantType, type Protocol } from './names.ts';

/** A secret given inline, or by the name of an environment variable or a file holding it. */
export const secretRefSchema = z.union([z.string().min(1), z.object({ env: z.string().min(1) }), z.object({ file: z.string().min(1) })]);
export type SecretRef = z.infer<typeof secretRefSchema>;

const customCloudSchema = z.object({
  /** The Microsoft cloud this one is based on. */
  base: z.enum(CLOUD_NAMES as [string, ...string[]]).default('global'),
  loginUrl: z.url({ protocol: /^https$/, error: 'loginUrl must be an https:// URL' }).optional(),
  imap: z.string().optional(),
  pop: z.string().optional(),
  smtp: z.string().optional(),
  /** A CA (PEM file) to trust for this cloud, such as the emulator's. */
  caFile: z.string().optional(),
  /** How long to wait for the login host's answer to each request (default 15 s). */
  timeoutSeconds: z.number().positive().optional(),
});

const appSchema = z.object({
  /** `global`, `usgov-gcc-high`, `usgov-dod`, `china`, or the name of a cloud under `clouds`. */
  cloud: z.string().default('global'),
  /** Directory (tenant) ID or a verified domain; `organizations`, `common`, `consumers` for delegated sign-in. */
  tenant: z.string().min(1),
  clientId: z.string(),
  clientSecret: secretRefSchema.optional(),
  certificate: z.object({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  /** For web apps; desktop sign-in uses `http://localhost` on a free port. */
  redirectUri: z.string().optional(),
});

const mailboxSchema = z.object({
  /** The name of an entry in `apps`. */
  app: z.string().min(1),
  grant: z.enum(GRANTS),
  protocols: z.array(z.enum(PROTOCOLS)).min(1).default(['imap', 'smtp']),
  /** Who signs in for a shared mailbox (delegated grants): a user with FullAccess to it. */
  signInAs: z.string().optional(),
  /** Replace the scopes built from the protocols (rarely needed; checked). */
  scopes: z.array(z.string()).optional(),
});

/** One local endpoint of the legacy proxy (docs/proxy.md). */
const proxyListenerSchema = z.object({
  protocol: z.enum(PROTOCOLS),
  /** Loopback unless told otherwise: the proxy hands out mailboxes to whoever can log in. */
  host: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port (printed at start). */
  port: z.number().int().min(0).max(65535),
  /** plain; starttls (STARTTLS/STLS offered, login only after it); implicit (TLS from the first byte). */
  security: z.enum(['plain', 'starttls', 'implicit']).default('plain'),
  /** PEM files; without them a self-signed certificate is made once and kept in dataDir. */
  certificate: z.object({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  /**
   * The server to log in to, as imaps://host:993, imap://host:143 (STARTTLS), pop3s://, pop3://,
   * smtp://host:587 (STARTTLS) or smtps://. Default: the mailbox's cloud (Exchange Online).
   */
  upstream: z.string().optional(),
  /** A CA (PEM file) to trust for `upstream`, such as Dovecot's or the emulator's. */
  upstreamCaFile: z.string().optional(),
});

const proxySchema = z.object({
  listeners: z.array(proxyListenerSchema).default([]),
  /** Client connections open at once, over all listeners; more are refused with a reply. */
  maxConnections: z.number().int().positive().default(1000),
  /** Silence after which a session is closed; default IMAP 30 min (RFC 3501), POP3 10 min, SMTP 5 min. */
  idleTimeoutSeconds: z.number().int().positive().optional(),
  /** Time a client has to log in after connecting. */
  loginTimeoutSeconds: z.number().int().positive().default(60),
  /** Connections not yet logged in from one client address: a flood from one address leaves room for others. */
  maxPreLoginPerAddress: z.number().int().positive().default(50),
  /** On shutdown, how long open sessions may go on before they are cut. */
  shutdownGraceSeconds: z.number().int().min(0).default(30),
  /** Failed logins from one client address within the window before its logins are refused. */
  failedLogins: z
    .object({ max: z.number().int().positive().default(10), windowSeconds: z.number().int().positive().default(300) })
    .default({ max: 10, windowSeconds: 300 }),
});

/** The embedded store: one SQLite file holding the grants and the proxy's clients. */
const sqliteStoreSchema = z.object({
  kind: z.literal('sqlite').default('sqlite'),
  /** The database file; default <dataDir>/tokens.db. A relative path is resolved from the configuration file's folder. */
  path: z.string().min(1).optional(),
});

/**
 * Where grants and proxy clients are kept, chosen by `kind`. A PostgreSQL store (shared by many
 * workers) will be a second member of this union; src/store/open-stores.ts opens each kind.
 */
const storeSchema = z.discriminatedUnion('kind', [sqliteStoreSchema], {
  error: (issue) => (issue.code === 'invalid_union' ? unknownStoreKindMessage((issue.input as { kind?: unknown } | undefined)?.kind) : undefined),
});

export const configSchema = z.object({
  /** Where the token store and its key live; default ~/.local/share/mailbridge. */
  dataDir: z.string().optional(),
  store: storeSchema.default({ kind: 'sqlite' }),
  clouds: z.record(z.string(), customCloudSchema).default({}),
  apps: z.record(z.string(), appSchema).default({}),
  mailboxes: z.record(z.string(), mailboxSchema).default({}),
  alerts: z
    .object({
      /** Run on every status change, with MAILBRIDGE_MAILBOX, MAILBRIDGE_STATUS, MAILBRIDGE_REASON set. */
      command: z.string().optional(),
      /** POST a JSON status change here. */
      url: z.url().optional(),
    })
    .default({}),
  proxy: proxySchema.default({
    listeners: [],
    maxConnections: 1000,
    loginTimeoutSeconds: 60,
    maxPreLoginPerAddress: 50,
    shutdownGraceSeconds: 30,
    failedLogins: { max: 10, windowSeconds: 300 },
  }),
});

export type MailbridgeConfig = z.infer<typeof configSchema>;
export type AppConfig = z.infer<typeof appSchema>;
export type MailboxConfig = z.infer<typeof mailboxSchema>;
export type ProxyConfig = z.infer<typeof proxySchema>;
export type ProxyListenerConfig = z.infer<typeof proxyListenerSchema>;
export type CustomCloudConfig = z.infer<typeof customCloudSchema>;
export type StoreConfig = z.infer<typeof storeSchema>;
