// The scenario: the tenants, app registrations, users and mailboxes an emulator run pretends to
// be Microsoft for. Validated with zod so a broken scenario file names the field at fault.
import { z } from 'zod';

export const GUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const guid = z.string().regex(GUID_PATTERN, 'must be a GUID like 00000000-0000-0000-0000-000000000000');
const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date');

/** The directory tenant personal Microsoft accounts live in. */
export const CONSUMER_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad';

export const tenantSchema = z.object({
  id: guid,
  displayName: z.string().min(1),
  /** The first is the initial `*.onmicrosoft.com` domain; all resolve the tenant in URLs. */
  domains: z.array(z.string().min(1)).min(1),
  /** `consumers` is the one tenant of personal Microsoft accounts. */
  kind: z.enum(['organization', 'consumers']).default('organization'),
  region: z.string().default('NA'),
  /** Exchange Online: `Set-TransportConfig -SmtpClientAuthenticationDisabled`. */
  smtpClientAuthenticationDisabled: z.boolean().default(false),
  /** Security defaults on: SMTP AUTH is refused for every mailbox. */
  securityDefaults: z.boolean().default(false),
});

export const secretSchema = z.object({
  /** The "Secret ID" column of the portal (the value people paste by mistake). */
  id: guid,
  value: z.string().min(1),
  description: z.string().default(''),
  expiresAt: isoDate,
});

export const certificateSchema = z.object({
  description: z.string().default(''),
  /** PEM certificate as uploaded to the app registration. */
  certPem: z.string().optional(),
  /** Kept so a client using the emulator can sign assertions; never needed by the server. */
  keyPem: z.string().optional(),
  /** Generate a key and self-signed certificate on first start (kept in the data folder). */
  generate: z.boolean().default(false),
});

export const redirectUrisSchema = z.object({
  web: z.array(z.string()).default([]),
  spa: z.array(z.string()).default([]),
  publicClient: z.array(z.string()).default([]),
});

export const appSchema = z.object({
  clientId: guid,
  displayName: z.string().min(1),
  /** Object id of the app registration (not of its service principal). */
  objectId: guid,
  homeTenant: guid,
  signInAudience: z.enum(['AzureADMyOrg', 'AzureADMultipleOrgs', 'AzureADandPersonalMicrosoftAccount', 'PersonalMicrosoftAccount']).default('AzureADMyOrg'),
  /** "Allow public client flows": device code and public auth-code redemption. */
  publicClient: z.boolean().default(false),
  /** Implicit grant: ID tokens from /authorize (`response_type=code id_token`). */
  idTokenIssuance: z.boolean().default(false),
  redirectUris: redirectUrisSchema.default({ web: [], spa: [], publicClient: [] }),
  secrets: z.array(secretSchema).default([]),
  certificates: z.array(certificateSchema).default([]),
  /** Application permissions granted with admin consent, per resource (`exchange`, `graph`). */
  appRoles: z.partialRecord(z.enum(['exchange', 'graph']), z.array(z.string())).default({}),
  /** Object ids of the app's service principal (Enterprise application), per tenant id. */
  servicePrincipals: z.record(z.string(), guid).default({}),
});

export const userSchema = z.object({
  id: guid,
  tenant: guid,
  userPrincipalName: z.string().min(3),
  displayName: z.string().min(1),
  password: z.string().min(1),
  /** `required`: MFA on every interactive sign-in; `enroll`: must register first. */
  mfa: z.enum(['off', 'required', 'enroll']).default('off'),
  accountEnabled: z.boolean().default(true),
  locked: z.boolean().default(false),
  /** Global administrator: may grant admin consent. */
  admin: z.boolean().default(false),
  /** A Conditional Access policy blocks token issuance for this user. */
  blockedByConditionalAccess: z.boolean().default(false),
  /** TokensValidFrom: refresh tokens issued before this are revoked. */
  tokensValidFrom: isoDate.optional(),
});

export const consentSchema = z.object({
  clientId: guid,
  tenant: guid,
  /** UPN of the user who consented; absent for an admin consent covering every user. */
  user: z.string().optional(),
  /** Fully qualified permissions, e.g. `https://outlook.office.com/IMAP.AccessAsUser.All`. */
  scopes: z.array(z.string()),
});

export const mailboxPermissionSchema = z.object({
  /** A UPN (delegate) or a service principal object id (app-only access). */
  principal: z.string(),
  accessRights: z.array(z.enum(['FullAccess', 'SendAs'])).default(['FullAccess']),
});

/** Where a mailbox's first messages come from when the emulator creates it. */
export const mailboxSeedSchema = z.union([
  z.object({ emlDir: z.string().min(1) }),
  z.object({
    generate: z.object({
      count: z.number().int().min(0).max(1_000_000),
      sizeBytes: z
        .number()
        .int()
        .min(300)
        .max(200 * 1024 * 1024),
    }),
  }),
]);

export const mailboxSchema = z.object({
  address: z.string().min(3),
  tenant: guid,
  kind: z.enum(['user', 'shared']).default('user'),
  displayName: z.string().optional(),
  imapEnabled: z.boolean().default(true),
  popEnabled: z.boolean().default(true),
  /** null follows the tenant setting, as `Set-CASMailbox` leaves it. */
  smtpClientAuthenticationDisabled: z.boolean().nullable().default(null),
  permissions: z.array(mailboxPermissionSchema).default([]),
  seed: mailboxSeedSchema.optional(),
});

export const exchangeServicePrincipalSchema = z.object({
  tenant: guid,
  appId: guid,
  /** What `New-ServicePrincipal -ObjectId` was given; must be the Enterprise application id. */
  objectId: guid,
});

/** A failure the emulator produces on matching requests, as a real tenant would. */
export const failureSchema = z.object({
  aadsts: z.number().int(),
  endpoint: z.enum(['token', 'authorize', 'devicecode', 'any']).default('token'),
  grantType: z.string().optional(),
  clientId: guid.optional(),
  /** UPN the failure applies to, where the request is for a known user. */
  user: z.string().optional(),
  /** How many matching requests fail; absent = every one until removed. */
  times: z.number().int().positive().optional(),
  params: z.record(z.string(), z.string()).default({}),
});

/** A failure of Exchange's mail servers, as tenants see them under load or in trouble. */
export const mailFailureSchema = z.object({
  protocol: z.enum(['imap', 'pop', 'smtp', 'any']).default('any'),
  /** Address the failure applies to; absent = every mailbox. */
  mailbox: z.string().optional(),
  kind: z.enum(['throttled', 'unavailable', 'not-connected']),
  /** For `throttled`: the "Suggested Backoff Time" in milliseconds. */
  backoffMs: z.number().int().positive().default(92415),
  times: z.number().int().positive().optional(),
});

export const mailSettingsSchema = z.object({
  /** Longest command line a server accepts. */
  maxLineBytes: z
    .number()
    .int()
    .min(512)
    .default(32 * 1024),
  /** Largest IMAP literal (APPEND) and SMTP message. */
  maxMessageBytes: z.number().int().min(1024).default(157_286_400),
  /** Idle sessions are closed after this long. */
  idleTimeoutSeconds: z.number().int().positive().default(1800),
  /** Concurrent sessions per mailbox and protocol, like Exchange Online's limit. */
  maxConnectionsPerMailbox: z.number().int().positive().default(20),
});

export const lifetimeSchema = z.union([z.number().int().positive(), z.object({ min: z.number().int().positive(), max: z.number().int().positive() })]);

export const settingsSchema = z.object({
  /** Seconds; Microsoft picks at random between 60 and 90 minutes. */
  accessTokenLifetime: lifetimeSchema.default({ min: 3600, max: 5400 }),
  authorizationCodeLifetime: z.number().int().positive().default(600),
  deviceCodeLifetime: z.number().int().positive().default(900),
  deviceCodeInterval: z.number().int().positive().default(5),
  /** Pad access tokens to at least this many characters, as tenants with many claims see (4 KB+). */
  accessTokenMinLength: z
    .number()
    .int()
    .min(0)
    .max(64 * 1024)
    .default(0),
  /** `keep`: old refresh tokens stay valid after use (Microsoft's default); `revoke`: one use each. */
  refreshTokenReuse: z.enum(['keep', 'revoke']).default('keep'),
  /** At code redemption, scopes of several resources: AADSTS28000, or the first scope decides. */
  multipleResources: z.enum(['error', 'first-wins']).default('error'),
  mail: mailSettingsSchema.default(mailSettingsSchema.parse({})),
});

export const scenarioSchema = z.object({
  tenants: z.array(tenantSchema).min(1),
  apps: z.array(appSchema).default([]),
  users: z.array(userSchema).default([]),
  consents: z.array(consentSchema).default([]),
  exchange: z
    .object({
      servicePrincipals: z.array(exchangeServicePrincipalSchema).default([]),
      mailboxes: z.array(mailboxSchema).default([]),
    })
    .default({ servicePrincipals: [], mailboxes: [] }),
  settings: settingsSchema.default(settingsSchema.parse({})),
  failures: z.array(failureSchema).default([]),
  mailFailures: z.array(mailFailureSchema).default([]),
});

export type Scenario = z.infer<typeof scenarioSchema>;
export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Tenant = z.infer<typeof tenantSchema>;
export type App = z.infer<typeof appSchema>;
export type AppSecret = z.infer<typeof secretSchema>;
export type AppCertificate = z.infer<typeof certificateSchema>;
export type User = z.infer<typeof userSchema>;
export type Consent = z.infer<typeof consentSchema>;
export type Mailbox = z.infer<typeof mailboxSchema>;
export type Failure = z.infer<typeof failureSchema>;
export type MailFailure = z.infer<typeof mailFailureSchema>;
export type MailSettings = z.infer<typeof mailSettingsSchema>;
export type Settings = z.infer<typeof settingsSchema>;

/** Validates a scenario, with every problem listed by its path. */
export function parseScenario(input: unknown): Scenario {
  const result = scenarioSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`The scenario is not valid:\n${problems.join('\n')}`);
  }
  return result.data;
}
