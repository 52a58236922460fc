// The configuration file: app registrations, the clouds they live in, and the mailboxes that use
// them. Validated with zod; each rule admins trip over has a message that says what to change.
import { z } from 'zod';
import { CLOUD_NAMES } from './clouds.ts';

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const PROTOCOLS = ['imap', 'pop', 'smtp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
export const GRANTS = ['authorization_code', 'device_code', 'client_credentials'] as const;
export type GrantType = (typeof GRANTS)[number];

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

export const configSchema = z.object({
  /** Where the token store and its key live; default ~/.local/share/mailbridge. */
  dataDir: z.string().optional(),
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
});

export type MailbridgeConfig = z.infer<typeof configSchema>;
export type AppConfig = z.infer<typeof appSchema>;
export type MailboxConfig = z.infer<typeof mailboxSchema>;
export type CustomCloudConfig = z.infer<typeof customCloudSchema>;
