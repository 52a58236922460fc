// The user consent prompt ("Permissions requested") and the wall a user meets when a permission
// needs an administrator ("Need admin approval").
import { hidden, html, layout, type RenderedPage } from './layout.ts';

export interface ListedPermission {
  /** What the permission lets the app do, in words. */
  title: string;
  /** The scope itself, e.g. `https://outlook.office.com/IMAP.AccessAsUser.All`. */
  scope: string;
}

export function permissionList(permissions: ListedPermission[]) {
  return html`<ul class="permissions" id="permissions">
    ${permissions.map((p) => html`<li>${p.title}<small>${p.scope}</small></li> `)}
  </ul>`;
}

/** Cancel and Accept, as both consent prompts (the user's and the admin's) end. */
export function consentButtons() {
  return html`<div class="buttons">
    <button type="submit" name="action" value="cancel" id="idBtn_Back">Cancel</button>
    <button type="submit" name="action" value="accept" class="primary" id="idBtn_Accept">Accept</button>
  </div>`;
}

export function consentPage(o: {
  action: string;
  ctx: string;
  appName: string;
  upn: string;
  permissions: ListedPermission[];
  /** Administrators may consent for everyone in the organisation. */
  offerOrgConsent: boolean;
}): RenderedPage {
  return layout({
    title: 'Permissions requested',
    body: html`<form method="post" action="${o.action}" id="consent">
      ${hidden('ctx', o.ctx)}
      <div class="identity" id="displayName">${o.upn}</div>
      <h1>Permissions requested</h1>
      <p><strong id="appName">${o.appName}</strong><br /><small>unverified</small></p>
      <p>This app would like to:</p>
      ${permissionList(o.permissions)}
      ${o.offerOrgConsent ? html`<div class="check"><input type="checkbox" name="orgConsent" id="orgConsent" value="true" /><label for="orgConsent">Consent on behalf of your organization</label></div>` : ''}
      <p>
        <small
          >Accepting these permissions means that you allow this app to use your data as specified in their terms of service and privacy statement. You can
          change these permissions at https://myapps.microsoft.com.</small
        >
      </p>
      ${consentButtons()}
    </form>`,
  });
}

/** "Need admin approval": for a non-admin asked for permissions only an admin can grant. */
export function adminApprovalPage(o: { action: string; ctx: string; appName: string; upn: string; permissions: ListedPermission[] }): RenderedPage {
  return layout({
    title: 'Need admin approval',
    body: html`<form method="post" action="${o.action}" id="adminApproval">
      ${hidden('ctx', o.ctx)}
      <div class="identity" id="displayName">${o.upn}</div>
      <h1>Need admin approval</h1>
      <p><strong id="appName">${o.appName}</strong><br /><small>unverified</small></p>
      <p>
        ${o.appName} needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app
        before you can use it.
      </p>
      ${o.permissions.length > 0 ? permissionList(o.permissions) : ''}
      <p>Have an admin account? Sign in with that account to grant consent for your organization.</p>
      <div class="buttons"><button type="submit" name="action" value="back" id="idBtn_Back">Return to the application without granting consent</button></div>
    </form>`,
  });
}
