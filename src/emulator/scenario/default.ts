// The built-in scenario: one tenant with a domain, the three kinds of app registration that
// mail integrations use, two users, a shared mailbox and one personal Outlook.com account.
// Secrets and passwords are made fresh for each data folder (see load.ts).
import { randomBytes } from 'node:crypto';
import { CONSUMER_TENANT_ID, type ScenarioInput } from './schema.ts';

export const DEFAULT_IDS = {
  tenant: 'c5a7e2b4-1f3d-4c8e-9a6b-2d7f0e1c3b5a',
  desktopApp: '4f2d8a1c-7b3e-4d9f-a6c5-1e8b2f7d3a90',
  webApp: '8b3e1d7f-2c4a-4e6b-9f1d-5a7c3e9b2d41',
  serviceApp: 'd1e9c3a5-6b7f-4a2d-8e4c-9f1b3d5a7c62',
  alice: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
  bob: '1b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e',
  carol: '00000000-0000-0000-4f2e-8d1c3b5a7e90',
} as const;

/** A secret value in the shape Entra generates: 40 characters with `~` at position 4. */
export function generateSecretValue(): string {
  const raw = randomBytes(30).toString('base64url').replace(/[-_]/g, 'x');
  return `${raw.slice(0, 3)}8Q~${raw.slice(4, 40)}`.slice(0, 40);
}

function generatePassword(): string {
  return `Pw-${randomBytes(9).toString('base64url')}`;
}

function inTwoYears(): string {
  return new Date(Date.now() + 730 * 86_400_000).toISOString();
}

export function defaultScenario(): ScenarioInput {
  const t = DEFAULT_IDS.tenant;
  const exchangeDelegated = [
    'https://outlook.office.com/IMAP.AccessAsUser.All',
    'https://outlook.office.com/POP.AccessAsUser.All',
    'https://outlook.office.com/SMTP.Send',
  ];
  return {
    tenants: [
      { id: t, displayName: 'Contoso', domains: ['contoso.onmicrosoft.com', 'contoso.com'] },
      { id: CONSUMER_TENANT_ID, displayName: 'Microsoft Accounts', domains: ['outlook.com', 'hotmail.com'], kind: 'consumers' },
    ],
    apps: [
      {
        clientId: DEFAULT_IDS.desktopApp,
        displayName: 'mailbridge desktop',
        objectId: '5a1c9e3b-7d2f-4b6a-8c4e-0f2d6b8a1c37',
        homeTenant: t,
        signInAudience: 'AzureADandPersonalMicrosoftAccount',
        publicClient: true,
        redirectUris: { publicClient: ['http://localhost', 'https://login.microsoftonline.com/common/oauth2/nativeclient'] },
        servicePrincipals: { [t]: '6b2d0f4c-8e3a-4c7b-9d5f-1a3e7c9b2d48' },
      },
      {
        clientId: DEFAULT_IDS.webApp,
        displayName: 'mailbridge web',
        objectId: '7c3e1a5d-9f4b-4d8c-ae6a-2b4f8d0c3e59',
        homeTenant: t,
        signInAudience: 'AzureADMultipleOrgs',
        redirectUris: { web: ['http://localhost/auth/callback', 'https://localhost/auth/callback'] },
        secrets: [{ id: '9e5a3c7f-1b6d-4f0e-8a2c-4d6b0f2e5a71', value: generateSecretValue(), description: 'web', expiresAt: inTwoYears() }],
        certificates: [{ description: 'web certificate', generate: true }],
        servicePrincipals: { [t]: '8d4f2b6e-0a5c-4e9d-bf7b-3c5a9e1d4f6a' },
      },
      {
        clientId: DEFAULT_IDS.serviceApp,
        displayName: 'mailbridge service',
        objectId: '9e5a3c7f-1b6d-4f0e-8a2c-4d6b0f2e5a82',
        homeTenant: t,
        secrets: [{ id: 'af6b4d8a-2c7e-4a1f-9b3d-5e7c1a3f6b93', value: generateSecretValue(), description: 'service', expiresAt: inTwoYears() }],
        certificates: [{ description: 'service certificate', generate: true }],
        appRoles: { exchange: ['IMAP.AccessAsApp', 'POP.AccessAsApp', 'SMTP.SendAsApp'] },
        servicePrincipals: { [t]: 'b07c5e9b-3d8f-4b2a-8c4e-6f8d2b4a7c04' },
      },
    ],
    users: [
      { id: DEFAULT_IDS.alice, tenant: t, userPrincipalName: 'alice@contoso.com', displayName: 'Alice Admin', password: generatePassword(), admin: true },
      { id: DEFAULT_IDS.bob, tenant: t, userPrincipalName: 'bob@contoso.com', displayName: 'Bob Example', password: generatePassword() },
      {
        id: DEFAULT_IDS.carol,
        tenant: CONSUMER_TENANT_ID,
        userPrincipalName: 'carol@outlook.com',
        displayName: 'Carol Personal',
        password: generatePassword(),
      },
    ],
    consents: [
      // An admin granted the web app's mail permissions for the whole organisation.
      { clientId: DEFAULT_IDS.webApp, tenant: t, scopes: exchangeDelegated },
    ],
    exchange: {
      servicePrincipals: [{ tenant: t, appId: DEFAULT_IDS.serviceApp, objectId: 'b07c5e9b-3d8f-4b2a-8c4e-6f8d2b4a7c04' }],
      mailboxes: [
        { address: 'alice@contoso.com', tenant: t },
        { address: 'bob@contoso.com', tenant: t },
        {
          address: 'support@contoso.com',
          tenant: t,
          kind: 'shared',
          displayName: 'Contoso Support',
          permissions: [
            { principal: 'alice@contoso.com', accessRights: ['FullAccess', 'SendAs'] },
            { principal: 'b07c5e9b-3d8f-4b2a-8c4e-6f8d2b4a7c04', accessRights: ['FullAccess'] },
          ],
        },
        { address: 'carol@outlook.com', tenant: CONSUMER_TENANT_ID },
      ],
    },
  };
}
