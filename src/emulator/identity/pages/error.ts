// Error pages: what login.microsoftonline.com shows when it will not redirect back to the app
// (the redirect target cannot be trusted), and the /error?code= lookup page.
import { html, layout, type RenderedPage } from './layout.ts';

export interface ErrorPageOptions {
  /** `AADSTS<code>: <description>`. */
  message: string;
  title?: string;
  traceId: string;
  correlationId: string;
  timestamp: string;
  /** The app the request was for, when known. */
  appName?: string;
}

export function errorPage(o: ErrorPageOptions): RenderedPage {
  return layout({
    title: 'Sign in to your account',
    body: html`<h1>${o.title ?? 'Sign in'}</h1>
      <p>Sorry, but we're having trouble signing you in.</p>
      <p class="error" id="errorMessage" role="alert">${o.message}</p>
      <div class="details" id="troubleshooting">
        Troubleshooting details ${o.appName ? html`App name: ${o.appName} ` : ''}Request Id: ${o.traceId} Correlation Id: ${o.correlationId} Timestamp:
        ${o.timestamp} Message: ${o.message}
      </div>`,
  });
}

export function errorLookupPage(o: { code?: string; message?: string; found: boolean }): RenderedPage {
  return layout({
    title: 'Error lookup',
    body: html`<h1>Error lookup</h1>
      ${
        o.code !== undefined && o.found
          ? html`<p>Error Code: <span id="errorCode">${o.code}</span></p>
              <p>Message: <span id="errorMessage">${o.message ?? ''}</span></p>`
          : ''
      }
      ${o.code !== undefined && !o.found ? html`<p class="error" id="errorMessage">Error code ${o.code} was not found.</p>` : ''}
      <form method="get" action="/error">
        <label for="code">Error code</label>
        <input type="text" name="code" id="code" value="${o.code ?? ''}" inputmode="numeric" />
        <div class="buttons"><button type="submit" class="primary" id="idSubmit">Search</button></div>
      </form>`,
  });
}

export function signedOutPage(): RenderedPage {
  return layout({
    title: 'Sign out',
    body: html`<h1>You signed out of your account</h1>
      <p id="message">It's a good idea to close all browser windows.</p>`,
  });
}
