// "Pick an account": the users signed in in this browser, plus "Use another account".
import { hidden, html, layout, type RenderedPage } from './layout.ts';

export interface PickerAccount {
  upn: string;
  displayName: string;
}

export function accountPickerPage(o: { action: string; ctx: string; appName: string; accounts: PickerAccount[] }): RenderedPage {
  return layout({
    title: 'Sign in to your account',
    body: html`<form method="post" action="${o.action}" id="picker">
      ${hidden('ctx', o.ctx)}
      <h1>Pick an account</h1>
      <p>to continue to <span id="appName">${o.appName}</span></p>
      ${o.accounts.map(
        (a, i) =>
          html`<button type="submit" class="tile" name="account" value="${a.upn}" id="tile${i}">
            ${a.displayName}<small>${a.upn}</small><small>Signed in</small>
          </button> `,
      )}<button type="submit" class="tile" name="account" value="other" id="otherTile">Use another account</button>
    </form>`,
  });
}
