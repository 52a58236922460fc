// Every Entra error the emulator can produce: the OAuth `error`, the HTTP status and the
// description text of reference section 5.4 (plus the authorize-time codes of section 2).
// `{name}` placeholders are filled from the params given when the error is raised.

export interface AadstsEntry {
  /** The OAuth `error` value. */
  error: string;
  status: number;
  /** Description text after `AADSTS<code>: `. */
  text: string;
  suberror?: string;
  /** Codes sent before this one in `error_codes` (e.g. 70002 ahead of 54005). */
  precededBy?: number;
}

export const AADSTS = {
  // Grants, codes and refresh tokens.
  70008: {
    error: 'invalid_grant',
    status: 400,
    text: 'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
  },
  700082: {
    error: 'invalid_grant',
    status: 400,
    text: 'The refresh token has expired due to inactivity. The token was issued on {issuedOn} and was inactive for 90.00:00:00.',
  },
  700084: {
    error: 'invalid_grant',
    status: 400,
    text: "The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which can't be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on {issuedOn}.",
  },
  50173: {
    error: 'invalid_grant',
    status: 400,
    text: "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{issuedOn}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{validFrom}'.",
  },
  70000: { error: 'invalid_grant', status: 400, text: 'The provided value for the input parameter {parameter} {problem}.' },
  54005: {
    error: 'invalid_grant',
    status: 400,
    text: 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
    precededBy: 70002,
  },
  9002313: { error: 'invalid_grant', status: 400, text: 'Invalid request. Request is malformed or invalid.' },
  501481: { error: 'invalid_grant', status: 400, text: 'The Code_Verifier does not match the code_challenge supplied in the authorization request.' },
  500112: {
    error: 'invalid_grant',
    status: 400,
    text: "The reply address '{given}' does not match the reply address '{expected}' provided when requesting Authorization code.",
  },
  50076: {
    error: 'invalid_grant',
    status: 400,
    suberror: 'basic_action',
    text: "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{resource}'.",
  },
  50079: {
    error: 'invalid_grant',
    status: 400,
    suberror: 'basic_action',
    text: "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '{resource}'.",
  },
  65001: {
    error: 'invalid_grant',
    status: 400,
    suberror: 'consent_required',
    text: "The user or administrator has not consented to use the application with ID '{appId}' named '{appName}'. Send an interactive authorization request for this user and resource.",
  },
  7000012: { error: 'invalid_grant', status: 400, text: 'The grant was obtained for a different tenant.' },
  700005: { error: 'invalid_grant', status: 400, text: 'Provided Authorization Code is intended to use against other tenant, thus rejected.' },
  // Client authentication.
  7000215: {
    error: 'invalid_client',
    status: 401,
    text: "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{appId}'.",
  },
  7000222: {
    error: 'invalid_client',
    status: 401,
    text: "The provided client secret keys for app '{appId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
  },
  7000218: { error: 'invalid_client', status: 401, text: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'." },
  700025: { error: 'invalid_client', status: 400, text: "Client is public so neither 'client_assertion' nor 'client_secret' should be presented." },
  700027: {
    error: 'invalid_client',
    status: 401,
    text: "The certificate with identifier used to sign the client assertion is {problem} on application. [Reason - {reason}, Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{appId}'.]",
  },
  700024: {
    error: 'invalid_client',
    status: 401,
    text: 'Client assertion is not within its valid time range. Current time: {now}, assertion valid from {from}, expiry time of assertion {to}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .',
  },
  700021: {
    error: 'invalid_client',
    status: 401,
    text: "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
  },
  700023: {
    error: 'invalid_client',
    status: 401,
    text: 'Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .',
  },
  50027: { error: 'invalid_request', status: 400, text: 'JWT token is invalid or malformed.' },
  90014: {
    error: 'invalid_request',
    status: 400,
    text: "The required field '{field}' is missing from the credential. Ensure that you have all the necessary parameters for the login request.",
  },
  // Applications, tenants and endpoints.
  700016: {
    error: 'unauthorized_client',
    status: 400,
    text: "Application with identifier '{appId}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
  },
  90002: {
    error: 'invalid_request',
    status: 400,
    text: "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
  },
  9001023: {
    error: 'invalid_request',
    status: 400,
    text: "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
  },
  50194: {
    error: 'invalid_request',
    status: 400,
    text: "Application '{appId}'({appName}) isn't configured as a multitenant application. Usage of the /common endpoint isn't supported for such applications created after '10/15/2018 00:00:00'. Use a tenant-specific endpoint or configure the application to be multitenant.",
  },
  9002326: {
    error: 'invalid_request',
    status: 400,
    text: "Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '{origin}'.",
  },
  // Scopes and resources.
  70011: { error: 'invalid_scope', status: 400, text: "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid." },
  1002012: {
    error: 'invalid_scope',
    status: 400,
    text: 'The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).',
  },
  28000: {
    error: 'invalid_scope',
    status: 400,
    text: 'Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid.',
  },
  28003: {
    error: 'invalid_request',
    status: 400,
    text: 'Provided value for the input parameter scope cannot be empty when requesting an access token using the provided authorization code. Please specify a valid scope.',
  },
  500011: {
    error: 'invalid_resource',
    status: 400,
    text: 'The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.',
  },
  // Users.
  50020: {
    error: 'invalid_grant',
    status: 400,
    text: "User account '{email}' from identity provider '{idp}' does not exist in tenant '{tenant}' and cannot access the application '{appId}'({appName}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.",
  },
  50126: { error: 'invalid_grant', status: 400, text: 'Error validating credentials due to invalid username or password.' },
  50034: {
    error: 'invalid_grant',
    status: 400,
    text: 'The user account {EmailHidden} does not exist in the {tenant} directory. To sign into this application, the account must be added to the directory.',
  },
  50057: { error: 'invalid_grant', status: 400, text: 'The user account is disabled.' },
  50053: {
    error: 'invalid_grant',
    status: 400,
    text: "Your account is locked because you've tried to sign in too many times with an incorrect user ID or password.",
  },
  53003: {
    error: 'invalid_grant',
    status: 400,
    suberror: 'message_only',
    text: 'Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.',
  },
  // Device code flow.
  70016: { error: 'authorization_pending', status: 400, text: 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.' },
  70019: { error: 'expired_token', status: 400, text: 'Verification code expired.' },
  70018: { error: 'bad_verification_code', status: 400, text: 'Invalid verification code due to User typing in wrong user code for device code flow.' },
  90120: { error: 'authorization_declined', status: 400, text: 'The request was already authorized or declined.' },
  // Malformed requests.
  900144: { error: 'invalid_request', status: 400, text: "The request body must contain the following parameter: '{name}'." },
  70003: { error: 'unsupported_grant_type', status: 400, text: "The app requested an unsupported grant type '{grantType}'." },
  900561: { error: 'invalid_request', status: 400, text: 'The endpoint only accepts POST requests. Received a {method} request.' },
  50196: {
    error: 'invalid_grant',
    status: 400,
    text: 'The server terminated an operation because it encountered a client request loop. Please contact your app vendor.',
  },
  90055: {
    error: 'temporarily_unavailable',
    status: 429,
    text: 'TenantThrottlingError - There are too many incoming requests. This indicates that the tenant {tenant} has been throttled.',
  },
  // Authorize-time codes (redirected to the app or shown as a page).
  50011: {
    error: 'invalid_request',
    status: 400,
    text: "The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{appId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
  },
  900971: { error: 'invalid_request', status: 400, text: 'No reply address provided.' },
  500113: { error: 'invalid_request', status: 400, text: 'No reply address is registered for the application.' },
  700054: { error: 'unsupported_response_type', status: 400, text: "response_type 'id_token' is not enabled for the application." },
  50058: { error: 'login_required', status: 400, text: 'A silent sign-in request was sent but no user is signed in.' },
  65004: { error: 'access_denied', status: 400, text: 'User declined to consent to access the app.' },
  90094: { error: 'access_denied', status: 400, text: 'The grant requires admin permission.' },
  50147: { error: 'invalid_request', status: 400, text: 'The code challenge method is invalid. Supported methods: plain, S256.' },
  501491: { error: 'invalid_request', status: 400, text: 'Invalid size of Code_Challenge parameter.' },
  90015: { error: 'invalid_request', status: 400, text: "Requested parameter '{name}' is duplicated." },
  700051: { error: 'unsupported_response_type', status: 400, text: "response_type '{responseType}' is not enabled for the application." },
  90023: { error: 'invalid_request', status: 400, text: "Unsupported 'prompt' value." },
  // [C] Entra refuses select_account with a login_hint; its exact code and text are undocumented.
  90024: { error: 'invalid_request', status: 400, text: "The 'prompt' value 'select_account' can't be used together with 'login_hint'." },
  9002325: { error: 'invalid_request', status: 400, text: 'Proof Key for Code Exchange is required for cross-origin authorization code redemption.' },
  9002327: {
    error: 'invalid_request',
    status: 400,
    text: "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
  },
  9002331: {
    error: 'invalid_request',
    status: 400,
    text: "Application '{appId}'({appName}) is configured for use by Microsoft Account users only. Please use the /consumers endpoint to serve this request.",
  },
} as const satisfies Record<number, AadstsEntry>;

export type AadstsCode = keyof typeof AADSTS;

export function isAadstsCode(code: number): code is AadstsCode {
  return Object.hasOwn(AADSTS, code);
}

const MAX_REFLECTED = 256;

/** A caller-supplied value as it may appear in a description: one line, bounded. */
function reflect(value: string | number): string {
  const oneLine = String(value).replace(/[\u0000-\u001f\u007f]/g, '');
  return oneLine.length > MAX_REFLECTED ? `${oneLine.slice(0, MAX_REFLECTED)}...` : oneLine;
}

/** Fills `{name}` placeholders; unknown names stay visible rather than vanish. */
export function fillTemplate(text: string, params: Record<string, string | number | undefined>): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name];
    return value === undefined ? whole : reflect(value);
  });
}
