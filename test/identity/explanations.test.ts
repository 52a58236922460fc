// Admin explanations of Entra (AADSTS) errors: every code of reference section 5.4 is explained,
// the grant health is right, the admin's ids are filled in (placeholders otherwise), codes are
// found in error descriptions and `error_codes`, and no text leaks an unfilled value.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { EXPLAINED_CODES, aadstsCodeOf, explainAadsts, type Explanation, type ExplanationContext } from '../../src/identity/explanations.ts';

// Section 5.4 of the reference, kept here too so the test means something if the file moves.
const SECTION_5_4 = [
  70008, 700082, 700084, 50173, 70000, 54005, 9002313, 501481, 500112, 50076, 50079, 65001, 7000215, 7000222, 7000218, 700025, 700016, 90002, 70011, 1002012,
  28000, 28003, 500011, 50020, 50126, 50034, 50057, 53003, 700027, 700024, 7000012, 70016, 70019, 70018, 90014, 900144, 70003, 900561, 50196, 90055,
];

// The reference the code's "reference section N.M" comments cite, in every clone.
const REFERENCE = new URL('../../docs/microsoft-365-behaviour.md', import.meta.url);

/** The codes in the first column of the section 5.4 table (`28000 / 28003` counts as two). */
function section54Codes(markdown: string): number[] {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((line) => /^###\s+5\.4\b/.test(line));
  assert.ok(start >= 0, 'the reference has a section 5.4');
  const codes: number[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,3}\s/.test(line) || /^-{5,}/.test(line)) break;
    const firstCell = /^\|\s*([^|]*?)\s*\|/.exec(line)?.[1];
    if (firstCell === undefined || !/^\d+(\s*\/\s*\d+)*$/.test(firstCell)) continue;
    codes.push(...firstCell.split('/').map((c) => Number(c.trim())));
  }
  return codes;
}

const FULL: ExplanationContext = {
  clientId: '3f2a8c1e-9b4d-4e6f-a1b2-c3d4e5f60718',
  tenant: 'contoso.onmicrosoft.com',
  appName: 'Mailbridge Intake',
  mailbox: 'helpdesk@contoso.com',
  servicePrincipalObjectId: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  cloudPortal: 'https://portal.azure.com',
};

function assertExplained(code: number, e: Explanation): void {
  assert.equal(e.code, code);
  assert.ok(e.title.trim().length > 0, `${code}: title`);
  assert.ok(e.cause.trim().length > 0, `${code}: cause`);
  assert.ok(e.fix.trim().length > 0, `${code}: fix`);
  assert.ok(EXPLAINED_CODES.includes(code), `${code} is in EXPLAINED_CODES`);
  assert.doesNotMatch(e.title, /Entra error AADSTS/, `${code} has a specific, not the generic, explanation`);
}

describe('explainAadsts: coverage', () => {
  it('explains every code of the literal section 5.4 list', () => {
    assert.equal(new Set(SECTION_5_4).size, 40);
    const missing = SECTION_5_4.filter((code) => !EXPLAINED_CODES.includes(code));
    assert.deepEqual(missing, [], 'unexplained codes');
    for (const code of SECTION_5_4) assertExplained(code, explainAadsts(code));
  });

  it('explains every code of the section 5.4 table in the reference file (docs/microsoft-365-behaviour.md)', async () => {
    const markdown = await readFile(REFERENCE, 'utf8');
    const codes = section54Codes(markdown);
    assert.ok(codes.length >= 40, `parsed ${codes.length} codes from section 5.4`);
    assert.ok(codes.includes(28003) && codes.includes(700024) && codes.includes(70018), 'multi-code rows are split');
    const missing = codes.filter((code) => !EXPLAINED_CODES.includes(code));
    assert.deepEqual(missing, [], 'unexplained codes');
    for (const code of codes) assertExplained(code, explainAadsts(code));
    // The literal list must not drift from the file either.
    assert.deepEqual(
      SECTION_5_4.filter((code) => !codes.includes(code)),
      [],
      'codes in the literal list but not in the reference table',
    );
  });

  it('explains the other codes the reference names', () => {
    const others = [
      70043, 9001023, 50194, 700005, 9002326, 50011, 900971, 500113, 700054, 50058, 65004, 90094, 50147, 501491, 90120, 50053, 50027, 700021, 700023, 70002,
      90015, 9002331,
    ];
    for (const code of others) assertExplained(code, explainAadsts(code));
  });

  it('lists each code once', () => {
    assert.equal(new Set(EXPLAINED_CODES).size, EXPLAINED_CODES.length);
  });
});

describe('explainAadsts: grant health', () => {
  it('classifies representative codes', () => {
    const expect: [number, Explanation['health'], boolean][] = [
      [7000215, 'broken_configuration', false],
      [7000222, 'broken_configuration', false],
      [50011, 'broken_configuration', false],
      [700025, 'broken_configuration', false],
      [500011, 'broken_configuration', false],
      [50173, 'needs_sign_in', false],
      [700082, 'needs_sign_in', false],
      [70043, 'needs_sign_in', false],
      [65001, 'needs_sign_in', false],
      [50076, 'needs_sign_in', false],
      [90055, 'temporary', true],
      [70016, 'temporary', true],
    ];
    for (const [code, health, retryable] of expect) {
      const e = explainAadsts(code);
      assert.equal(e.health, health, `${code} health`);
      assert.equal(e.retryable, retryable, `${code} retryable`);
    }
  });

  it('is retryable exactly when temporary, and never "ok" for an error', () => {
    for (const code of EXPLAINED_CODES) {
      const e = explainAadsts(code);
      assert.equal(e.retryable, e.health === 'temporary', `${code}`);
      assert.notEqual(e.health, 'ok', `${code}`);
    }
  });
});

describe("explainAadsts: the admin's ids", () => {
  it('65001: admin-consent URL and portal path with client id and tenant', () => {
    const e = explainAadsts(65001, FULL);
    assert.ok(e.fix.includes(`https://login.microsoftonline.com/${FULL.tenant}/adminconsent?client_id=${FULL.clientId}`), e.fix);
    assert.ok(e.fix.includes(`API permissions > Grant admin consent for ${FULL.tenant}`), e.fix);
    assert.ok(e.fix.includes(`mailbridge login ${FULL.mailbox}`), e.fix);
    assert.ok(e.fix.includes(FULL.appName!), e.fix);
  });

  it('500011: Exchange PowerShell with the service principal object id and the mailbox', () => {
    const e = explainAadsts(500011, FULL);
    assert.ok(e.fix.includes(`New-ServicePrincipal -AppId ${FULL.clientId} -ObjectId ${FULL.servicePrincipalObjectId}`), e.fix);
    assert.ok(e.fix.includes(`Add-MailboxPermission -Identity ${FULL.mailbox} -User ${FULL.servicePrincipalObjectId} -AccessRights FullAccess`), e.fix);
    assert.match(e.fix, /Enterprise application/);
    assert.ok(e.fix.includes('https://outlook.office365.com/.default'), e.fix);
  });

  it('uses readable placeholders when ids are missing', () => {
    const consent = explainAadsts(65001);
    assert.ok(
      consent.fix.includes('https://login.microsoftonline.com/<your tenant id or domain>/adminconsent?client_id=<your application (client) id>'),
      consent.fix,
    );
    assert.ok(consent.fix.includes('mailbridge login <mailbox address>'), consent.fix);
    const app = explainAadsts(500011);
    assert.ok(app.fix.includes('New-ServicePrincipal -AppId <your application (client) id> -ObjectId <Enterprise application object id>'), app.fix);
    assert.ok(app.fix.includes('Add-MailboxPermission -Identity <mailbox address> -User <Enterprise application object id>'), app.fix);
  });

  it('fills every placeholder it has an id for', () => {
    for (const code of EXPLAINED_CODES) {
      const e = explainAadsts(code, FULL);
      const text = `${e.title} ${e.cause} ${e.fix}`;
      for (const placeholder of [
        '<your application (client) id>',
        '<your tenant id or domain>',
        '<mailbox address>',
        '<Enterprise application object id>',
        '<your app>',
      ]) {
        assert.ok(!text.includes(placeholder), `${code}: ${placeholder} left in "${text}"`);
      }
    }
  });

  it('names the sign-in command, the scopes and the settings admins need', () => {
    for (const code of [50173, 700082, 70008, 70043, 50076, 50079]) {
      assert.ok(explainAadsts(code, FULL).fix.includes(`\`mailbridge login ${FULL.mailbox}\``), `${code}`);
    }
    const scope = explainAadsts(70011);
    assert.ok(scope.fix.includes('https://outlook.office.com/IMAP.AccessAsUser.All'), scope.fix);
    assert.ok(scope.fix.includes('https://outlook.office365.com/.default'), scope.fix);
    assert.ok(explainAadsts(1002012).fix.includes('https://outlook.office365.com/.default'));
    assert.ok(explainAadsts(28000).fix.includes('https://outlook.office.com/IMAP.AccessAsUser.All'));
    assert.match(explainAadsts(7000215).fix, /Secret ID \(a GUID\).*Value column, shown only once/);
    assert.match(explainAadsts(7000222).cause, /24 months/);
    assert.match(explainAadsts(7000222).fix, /New client secret/);
    assert.match(explainAadsts(7000222).fix, /certificate/);
    assert.match(explainAadsts(700025).fix, /Allow public client flows/);
    assert.match(explainAadsts(7000218).fix, /Allow public client flows/);
    assert.match(explainAadsts(50011, { redirectUri: 'http://localhost:8400/callback' }).fix, /http:\/\/localhost:8400\/callback.*Authentication/);
    const common = explainAadsts(9001023, { tenant: 'common' });
    assert.match(common.cause, /'common'/);
    assert.match(common.fix, /tenant id or domain, not common or consumers/);
  });

  it('points national-cloud admins at their own cloud', () => {
    const e = explainAadsts(65001, { ...FULL, cloudPortal: 'https://portal.azure.us' });
    assert.ok(e.fix.includes(`https://login.microsoftonline.us/${FULL.tenant}/adminconsent?client_id=${FULL.clientId}`), e.fix);
    assert.ok(e.fix.includes('https://portal.azure.us > Microsoft Entra ID > App registrations'), e.fix);
    const china = explainAadsts(70011, { cloudPortal: 'https://portal.azure.cn' });
    assert.ok(china.fix.includes('https://partner.outlook.cn/IMAP.AccessAsUser.All'), china.fix);
    assert.ok(!china.fix.includes('outlook.office.com'), china.fix);
  });
});

describe('aadstsCodeOf', () => {
  it('reads the code of an error_description', () => {
    assert.equal(aadstsCodeOf('AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333'), 7000215);
    assert.equal(aadstsCodeOf('AADSTS65001: The user or administrator has not consented'), 65001);
    assert.equal(aadstsCodeOf('AADSTS70002: Error validating credentials. AADSTS54005: OAuth2 Authorization code was already redeemed'), 54005);
    assert.equal(aadstsCodeOf('AADSTS70002: Error validating credentials.'), 70002);
    assert.equal(aadstsCodeOf('no code here'), undefined);
    assert.equal(aadstsCodeOf(''), undefined);
    assert.equal(aadstsCodeOf(undefined), undefined);
  });

  it('takes the last, specific entry of error_codes', () => {
    assert.equal(aadstsCodeOf([70002, 54005]), 54005);
    assert.equal(aadstsCodeOf([70002, 70008]), 70008);
    assert.equal(aadstsCodeOf([7000215]), 7000215);
    assert.equal(aadstsCodeOf([70002]), 70002);
    assert.equal(aadstsCodeOf([12345]), 12345);
    assert.equal(aadstsCodeOf([]), undefined);
  });
});

describe('explainAadsts: unknown codes', () => {
  it('still explains a code it does not know, naming it and the lookup URL', () => {
    const e = explainAadsts(12345);
    assert.equal(e.code, 12345);
    assert.ok(`${e.title} ${e.cause}`.includes('AADSTS12345'));
    assert.ok(e.fix.includes('https://login.microsoftonline.com/error?code=12345'), e.fix);
    assert.ok(e.title && e.cause && e.fix);
    assert.equal(e.retryable, false);
    assert.ok(!EXPLAINED_CODES.includes(12345));
  });
});

describe('explainAadsts: clean text', () => {
  it("contains no 'undefined', 'null' or '{' with or without ids", () => {
    const contexts: ExplanationContext[] = [{}, FULL, { tenant: 'common' }, { cloudPortal: 'https://portal.azure.us' }, { clientId: '   ' }];
    for (const ctx of contexts) {
      for (const code of [...EXPLAINED_CODES, 12345]) {
        const e = explainAadsts(code, ctx);
        for (const [field, text] of [
          ['title', e.title],
          ['cause', e.cause],
          ['fix', e.fix],
        ] as const) {
          assert.ok(!/undefined|null|\{/i.test(text), `${code} ${field} (${JSON.stringify(ctx)}): ${text}`);
        }
      }
    }
  });
});
