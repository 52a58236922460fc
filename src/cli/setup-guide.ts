// The app registration guide for each scenario (delegated desktop/headless, delegated web app,
// app-only service): the portal settings, permissions and redirect URIs, and for app-only the
// Exchange Online PowerShell with the admin's own ids filled in. Pure functions returning text,
// so `mailbridge init`, the web admin and tests all show the same words.
import { CLOUDS, type CloudName } from '../config/clouds.ts';
import { scopesFor } from '../config/scopes.ts';
import { GUID } from '../config/names.ts';
import type { GrantType, Protocol } from '../config/schema.ts';

export type SetupScenario = 'desktop' | 'web' | 'service';

export interface GuideInput {
  scenario: SetupScenario;
  cloud: CloudName;
  /** Directory (tenant) ID, a verified domain, or organizations/common/consumers (delegated only). */
  tenant: string;
  clientId: string;
  protocols: readonly Protocol[];
  mailboxes: readonly string[];
  /** Desktop: authorization_code (browser on this machine) or device_code (headless). */
  grant?: GrantType;
  /** Web app: where the sign-in comes back to. */
  redirectUri?: string;
  /** Confidential apps: the credential mailbridge holds. */
  credential?: 'secret' | 'certificate';
  /** App-only: the Object ID of the Enterprise application (service principal), when known. */
  servicePrincipalObjectId?: string;
  /** The tenant's display name, which the portal's "Grant admin consent for …" button shows, when known. */
  tenantDisplayName?: string;
}

/** What the consent button says: the tenant's name when known, else where to read it. */
export const TENANT_NAME_PLACEHOLDER = "<your organisation's name, as on Microsoft Entra ID > Overview>";

function consentButton(input: GuideInput): string {
  return `"Grant admin consent for ${input.tenantDisplayName || TENANT_NAME_PLACEHOLDER}"`;
}

/** `Connect-ExchangeOnline -ExchangeEnvironmentName` for each national cloud. */
export const EXCHANGE_ENVIRONMENT: Record<CloudName, string | undefined> = {
  global: undefined,
  'usgov-gcc-high': 'O365USGovGCCHigh',
  'usgov-dod': 'O365USGovDoD',
  china: 'O365China',
};

/** `az cloud set --name` for each cloud, for looking the object id up with the Azure CLI. */
const AZ_CLOUD: Record<CloudName, string> = {
  global: 'AzureCloud',
  'usgov-gcc-high': 'AzureUSGovernment',
  'usgov-dod': 'AzureUSGovernment',
  china: 'AzureChinaCloud',
};

export const DELEGATED_PERMISSIONS: Record<Protocol, string> = {
  imap: 'IMAP.AccessAsUser.All',
  pop: 'POP.AccessAsUser.All',
  smtp: 'SMTP.Send',
};

export const APPLICATION_PERMISSIONS: Record<Protocol, string> = {
  imap: 'IMAP.AccessAsApp',
  pop: 'POP.AccessAsApp',
  smtp: 'SMTP.SendAsApp',
};

/** The placeholder printed when the Enterprise application's object id is not known yet. */
export const OBJECT_ID_PLACEHOLDER = '<ENTERPRISE-APPLICATION-OBJECT-ID>';

const PERSONAL = new Set(['common', 'consumers']);

/** A PowerShell string literal (single quotes: nothing inside is expanded). */
export function psQuote(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function ordered(protocols: readonly Protocol[]): Protocol[] {
  return (['imap', 'pop', 'smtp'] as const).filter((p) => protocols.includes(p));
}

/** The "Supported account types" choice that matches the tenant mailbridge signs in with. */
export function accountTypeFor(tenant: string): string {
  switch (tenant.toLowerCase()) {
    case 'organizations':
      return 'Accounts in any organizational directory (Any Microsoft Entra ID tenant - Multitenant)';
    case 'common':
      return 'Accounts in any organizational directory (Any Microsoft Entra ID tenant - Multitenant) and personal Microsoft accounts (e.g. Skype, Xbox)';
    case 'consumers':
      return 'Personal Microsoft accounts only (or the choice with both organizational and personal accounts)';
    default:
      return 'Accounts in this organizational directory only (Single tenant); choose Multitenant only if other organisations will use it';
  }
}

function numbered(steps: string[]): string {
  return steps.map((step, i) => `${String(i + 1).padStart(2)}. ${step.replaceAll('\n', '\n    ')}`).join('\n');
}

function delegatedPermissionsStep(input: GuideInput): string {
  const cloud = CLOUDS[input.cloud];
  const protocols = ordered(input.protocols);
  const names = protocols.map((p) => DELEGATED_PERMISSIONS[p]);
  const scopes = scopesFor(cloud, protocols, input.grant ?? 'authorization_code');
  const consent = PERSONAL.has(input.tenant.toLowerCase())
    ? 'Each person consents at their first sign-in (an organisation admin may also "Grant admin consent").'
    : `Press ${consentButton(input)} (or let each user consent at first sign-in if your tenant allows user consent).`;
  return [
    'API permissions > Add a permission > Microsoft Graph > Delegated permissions:',
    `  ${[...names, 'offline_access'].join(', ')}`,
    'The portal lists the mail permissions under Microsoft Graph, but they belong to Office 365 Exchange',
    `Online: mailbridge requests them with the Outlook prefix (${scopes.join(' ')}).`,
    'A Graph-prefixed scope (https://graph.microsoft.com/IMAP.AccessAsUser.All) yields a Graph token that',
    'IMAP, POP and SMTP refuse.',
    consent,
  ].join('\n');
}

/** Where mailbridge signs in, said for the form the tenant was given in. */
function tenantSentence(tenant: string): string {
  switch (tenant.toLowerCase()) {
    case 'organizations':
      return 'mailbridge signs in at /organizations: a work or school account of any organisation, so the\nsupported account types must be a Multitenant choice (step 1).';
    case 'common':
      return 'mailbridge signs in at /common: work or school accounts of any organisation and personal Microsoft\naccounts, so the supported account types must include both (step 1).';
    case 'consumers':
      return 'mailbridge signs in at /consumers: personal Microsoft accounts (Outlook.com) only, so the supported\naccount types must include personal accounts (step 1).';
  }
  if (GUID.test(tenant)) return `mailbridge signs in at your tenant: the Directory (tenant) ID ${tenant} on the same page.`;
  return `mailbridge signs in at tenant ${tenant}, a verified domain of your tenant (Microsoft Entra ID > Custom\ndomain names); the Directory (tenant) ID on the same page would do as well.`;
}

function overviewStep(input: GuideInput): string {
  return `Overview: the Application (client) ID must be ${input.clientId}.\n${tenantSentence(input.tenant)}`;
}

function credentialStep(input: GuideInput): string {
  if (input.credential === 'secret') {
    return [
      'Certificates & secrets > Client secrets > New client secret. Copy the Value column at once (it is',
      'shown only once); the Secret ID next to it is a GUID and is NOT the secret (AADSTS7000215).',
      'A secret lasts at most 24 months: note its expiry and make a new one before it (AADSTS7000222).',
      'A certificate is the safer choice: Certificates & secrets > Certificates > Upload certificate.',
    ].join('\n');
  }
  return [
    'Certificates & secrets > Certificates > Upload certificate: the public certificate (.cer, .crt or',
    '.pem) whose private key mailbridge holds. Never upload the private key.',
  ].join('\n');
}

/** Exchange Online PowerShell for delegated mailboxes: IMAP/POP on for each, and SMTP AUTH. */
function exchangeNote(input: GuideInput): string[] {
  if (input.tenant.toLowerCase() === 'consumers') return [];
  const protocols = ordered(input.protocols);
  const casFlags = [...(protocols.includes('imap') ? ['-ImapEnabled $true'] : []), ...(protocols.includes('pop') ? ['-PopEnabled $true'] : [])];
  const smtp = protocols.includes('smtp');
  if (casFlags.length === 0 && !smtp) return [];
  const cloud = EXCHANGE_ENVIRONMENT[input.cloud];
  const mailboxes = input.mailboxes.length > 0 ? input.mailboxes : ['<mailbox>'];
  const lines = [
    '',
    'In Exchange Online PowerShell, as an Exchange administrator:',
    `  Connect-ExchangeOnline${cloud ? ` -ExchangeEnvironmentName ${cloud}` : ''}`,
  ];
  if (casFlags.length > 0) {
    const names = protocols.filter((p) => p !== 'smtp').map((p) => p.toUpperCase());
    lines.push(
      `${names.join(' and ')} must be on for each mailbox (on by default, but often turned off; otherwise login fails`,
      'with "User is authenticated but not connected" or -ERR Logon failure):',
      ...mailboxes.map((m) => `  Set-CASMailbox -Identity ${psQuote(m)} ${casFlags.join(' ')}`),
    );
  }
  if (smtp) {
    lines.push(
      'SMTP AUTH is off by default in tenants created since 2020 (sending fails with 535 5.7.139).',
      'To turn it on for these mailboxes:',
      ...mailboxes.map((m) => `  Set-CASMailbox -Identity ${psQuote(m)} -SmtpClientAuthenticationDisabled $false`),
      '  (tenant-wide instead: Set-TransportConfig -SmtpClientAuthenticationDisabled $false)',
    );
  }
  return lines;
}

function personalNote(input: GuideInput): string[] {
  if (!PERSONAL.has(input.tenant.toLowerCase())) return [];
  return [
    '',
    'Outlook.com accounts: each person turns on "Let devices and apps use POP" / IMAP in Outlook.com',
    'Settings > Mail > Forwarding and IMAP. Personal accounts have no app-only access.',
  ];
}

/** The portal checklist for one scenario: registration, platform, redirect URIs, credential, permissions. */
export function registrationChecklist(input: GuideInput): string {
  const cloud = CLOUDS[input.cloud];
  const portal = cloud.portal;
  const header = `App registration checklist (${portal}, ${scenarioTitle(input.scenario)})`;
  const register = `${portal} > App registrations > New registration (or open your app).\nSupported account types: ${accountTypeFor(input.tenant)}.`;
  const steps: string[] = [register];
  if (input.scenario === 'desktop') {
    steps.push(
      [
        'Authentication > Add a platform > Mobile and desktop applications > custom redirect URI:',
        '  http://localhost',
        'Exactly that, without a port: Entra ignores the port of a loopback redirect, and mailbridge',
        'listens on a free one for the browser sign-in.',
      ].join('\n'),
    );
    steps.push(
      input.grant === 'device_code'
        ? 'Authentication > Advanced settings > "Allow public client flows": Yes. Device code sign-in (headless\nmachines) needs it (AADSTS7000218 otherwise).'
        : 'Authentication > Advanced settings > "Allow public client flows": Yes, so device code sign-in works on\nheadless machines too. No client secret or certificate: this is a public client.',
    );
    steps.push(delegatedPermissionsStep(input));
  } else if (input.scenario === 'web') {
    steps.push(
      [
        'Authentication > Add a platform > Web > Redirect URIs:',
        `  ${input.redirectUri ?? '<your redirect URI>'}`,
        'It must match exactly (scheme, host, path; AADSTS50011 otherwise) and use https://, except',
        'http://localhost or http://127.0.0.1. Leave "Allow public client flows" at No.',
      ].join('\n'),
    );
    steps.push(credentialStep(input));
    steps.push(delegatedPermissionsStep(input));
  } else {
    const protocols = ordered(input.protocols);
    steps.push('No redirect URI and no platform: app-only access signs in as the app itself.');
    steps.push(credentialStep(input));
    steps.push(
      [
        'API permissions > Add a permission > APIs my organization uses > "Office 365 Exchange Online" >',
        'Application permissions:',
        `  ${protocols.map((p) => APPLICATION_PERMISSIONS[p]).join(', ')}`,
        `Then ${consentButton(input)}: application permissions do nothing without`,
        `admin consent. mailbridge requests ${cloud.appOnlyScope}.`,
      ].join('\n'),
    );
    steps.push(
      'Enterprise applications > your app > Overview: copy its Object ID for New-ServicePrincipal below\n(it differs from the Object ID on the App registration page).',
    );
  }
  steps.push(overviewStep(input));
  const notes = input.scenario === 'service' ? [] : [...exchangeNote(input), ...personalNote(input)];
  return [header, '', numbered(steps), ...notes].join('\n') + '\n';
}

function scenarioTitle(scenario: SetupScenario): string {
  return scenario === 'desktop' ? 'delegated, desktop or headless' : scenario === 'web' ? 'delegated, web app' : 'app-only service';
}

/** Exchange Online PowerShell that lets an app-only registration open the mailboxes. */
export function exchangePowerShell(input: GuideInput): string {
  const environment = EXCHANGE_ENVIRONMENT[input.cloud];
  const objectId = input.servicePrincipalObjectId || OBJECT_ID_PLACEHOLDER;
  const mailboxes = input.mailboxes.length > 0 ? input.mailboxes : ['<mailbox>'];
  const protocols = ordered(input.protocols);
  const lines = [
    '# Exchange Online PowerShell, as an Exchange administrator (Install-Module ExchangeOnlineManagement once).',
    `Connect-ExchangeOnline${environment ? ` -ExchangeEnvironmentName ${environment}` : ''}`,
    '',
    '# Register the app in Exchange. -ObjectId is the Object ID of the ENTERPRISE APPLICATION (service',
    '# principal: Enterprise applications > your app > Overview), not the Object ID shown on the App',
    '# registration page; the wrong one makes every login fail.',
  ];
  if (!input.servicePrincipalObjectId) {
    lines.push(
      `# Replace ${OBJECT_ID_PLACEHOLDER}; to look it up:`,
      `#   az cloud set --name ${AZ_CLOUD[input.cloud]}; az ad sp show --id ${input.clientId} --query id -o tsv`,
    );
  }
  lines.push(`New-ServicePrincipal -AppId ${input.clientId} -ObjectId ${objectId} -DisplayName 'mailbridge'`, '', '# Let it open each mailbox:');
  for (const m of mailboxes) lines.push(`Add-MailboxPermission -Identity ${psQuote(m)} -User ${objectId} -AccessRights FullAccess`);
  const casFlags = [...(protocols.includes('imap') ? ['-ImapEnabled $true'] : []), ...(protocols.includes('pop') ? ['-PopEnabled $true'] : [])];
  if (casFlags.length > 0) {
    lines.push(
      '',
      `# ${protocols
        .filter((p) => p !== 'smtp')
        .map((p) => p.toUpperCase())
        .join(' and ')} must be on for the mailbox:`,
    );
    for (const m of mailboxes) lines.push(`Set-CASMailbox -Identity ${psQuote(m)} ${casFlags.join(' ')}`);
  }
  if (protocols.includes('smtp')) {
    lines.push('', '# SMTP AUTH is off by default in tenants created since 2020 (535 5.7.139):');
    for (const m of mailboxes) lines.push(`Set-CASMailbox -Identity ${psQuote(m)} -SmtpClientAuthenticationDisabled $false`);
    lines.push(
      '# (or tenant-wide: Set-TransportConfig -SmtpClientAuthenticationDisabled $false)',
      '# To send as an address other than the mailbox: Add-RecipientPermission -Identity <address> -Trustee',
      `# ${objectId} -AccessRights SendAs`,
    );
  }
  return lines.join('\n') + '\n';
}

/** The whole guide for a scenario: the portal checklist and, for app-only, the PowerShell. */
export function setupGuide(input: GuideInput): string {
  const checklist = registrationChecklist(input);
  if (input.scenario !== 'service') return checklist;
  return `${checklist}\n${exchangePowerShell(input)}`;
}
