// The username and password page. The pending request stays on the server; the form only carries
// its random id (`ctx`), so a page from elsewhere cannot post a sign-in into someone's flow.
import { hidden, html, layout, type RenderedPage } from './layout.ts';

export interface SignInPageOptions {
  action: string;
  ctx: string;
  appName: string;
  /** Prefilled username (login_hint, or what was typed before). */
  login?: string;
  /** What the sign-in box says went wrong, and the AADSTS line under it. */
  error?: { message: string; detail?: string; field: 'login' | 'passwd' };
}

export function signInPage(o: SignInPageOptions): RenderedPage {
  const err = o.error;
  return layout({
    title: 'Sign in to your account',
    body: html`<form method="post" action="${o.action}" id="credentials" autocomplete="on">
      ${hidden('ctx', o.ctx)}
      <h1 id="loginHeader">Sign in</h1>
      <p>to continue to <span id="appName">${o.appName}</span></p>
      ${err && err.field === 'login' ? html`<div class="error" id="usernameError" role="alert">${err.message}</div>` : ''}
      <label for="login">Email, phone, or Skype</label>
      <input
        type="text"
        name="login"
        id="login"
        value="${o.login ?? ''}"
        autocomplete="username"
        inputmode="email"
        spellcheck="false"
        ${o.login ? '' : html`autofocus`}
      />
      ${err && err.field === 'passwd' ? html`<div class="error" id="passwordError" role="alert">${err.message}</div>` : ''}
      <label for="passwd">Password</label>
      <input type="password" name="passwd" id="passwd" autocomplete="current-password" ${o.login ? html`autofocus` : ''} />
      <div class="buttons"><button type="submit" class="primary" id="idSIButton9">Sign in</button></div>
      ${err?.detail ? html`<div class="details" id="errorDetails">${err.detail}</div>` : ''}
    </form>`,
  });
}
