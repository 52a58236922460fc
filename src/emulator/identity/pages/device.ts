// The device code verification pages: enter the code shown on the device, and the closing
// message once the device is signed in (or was refused).
import { html, layout, type RenderedPage } from './layout.ts';

export function deviceCodePage(o: { action: string; code?: string; error?: { message: string; detail: string } }): RenderedPage {
  return layout({
    title: 'Enter code',
    body: html`<form method="post" action="${o.action}" id="deviceCode">
      <h1>Enter code</h1>
      <p>Enter the code displayed on your app or device.</p>
      ${o.error ? html`<div class="error" id="otcError" role="alert">${o.error.message}</div>` : ''}
      <label for="otc">Code</label>
      <input type="text" name="otc" id="otc" value="${o.code ?? ''}" autocomplete="off" spellcheck="false" maxlength="64" autofocus />
      <div class="buttons"><button type="submit" class="primary" id="idSIButton9">Next</button></div>
      ${o.error ? html`<div class="details" id="errorDetails">${o.error.detail}</div>` : ''}
    </form>`,
  });
}

export function deviceDonePage(o: { appName: string; upn: string }): RenderedPage {
  return layout({
    title: 'Microsoft',
    body: html`<div class="identity">${o.upn}</div>
      <h1>${o.appName}</h1>
      <p id="message">You have signed in to the ${o.appName} application on your device. You may now close this window.</p>`,
  });
}

export function deviceDeclinedPage(o: { appName: string; detail: string }): RenderedPage {
  return layout({
    title: 'Microsoft',
    body: html`<h1>${o.appName}</h1>
      <p id="message">You did not sign in to the ${o.appName} application on your device. You may now close this window.</p>
      <div class="details" id="errorDetails">${o.detail}</div>`,
  });
}
