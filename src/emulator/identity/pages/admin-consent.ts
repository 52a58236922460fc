// Admin consent (the /adminconsent endpoint): an administrator grants an app its permissions for
// the whole organisation.
import { hidden, html, layout, type RenderedPage } from './layout.ts';
import { consentButtons, permissionList, type ListedPermission } from './consent.ts';

export function adminConsentPage(o: { action: string; ctx: string; appName: string; upn: string; permissions: ListedPermission[] }): RenderedPage {
  return layout({
    title: 'Permissions requested',
    body: html`<form method="post" action="${o.action}" id="adminConsent">
      ${hidden('ctx', o.ctx)}
      <div class="identity" id="displayName">${o.upn}</div>
      <h1>Permissions requested</h1>
      <p>Accept for your organization</p>
      <p><strong id="appName">${o.appName}</strong><br /><small>unverified</small></p>
      <p>This app would like to:</p>
      ${permissionList(o.permissions)}
      <p>
        <small
          >If you accept, this app will get access to the specified resources for all users in your organization. No one else will be prompted to review these
          permissions.</small
        >
      </p>
      ${consentButtons()}
    </form>`,
  });
}
