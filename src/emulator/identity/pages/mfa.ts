// Multi-factor pages: the push approval ("Approve sign in request") and the registration
// interrupt a user who must enrol first sees ("More information required").
import { hidden, html, layout, type RenderedPage } from './layout.ts';

export function mfaApprovePage(o: { action: string; ctx: string; upn: string }): RenderedPage {
  return layout({
    title: 'Sign in to your account',
    body: html`<form method="post" action="${o.action}" id="mfa">
      ${hidden('ctx', o.ctx)}
      <div class="identity" id="displayName">${o.upn}</div>
      <h1>Approve sign in request</h1>
      <p>Open your Authenticator app, and approve the request to sign in.</p>
      <div class="buttons">
        <button type="submit" name="action" value="deny" id="idDeny">I can't use my Microsoft Authenticator app right now</button>
        <button type="submit" name="action" value="approve" class="primary" id="idApprove">Approve</button>
      </div>
    </form>`,
  });
}

export function mfaEnrollPage(o: { action: string; ctx: string; upn: string; detail: string }): RenderedPage {
  return layout({
    title: 'Sign in to your account',
    body: html`<form method="post" action="${o.action}" id="proofup">
      ${hidden('ctx', o.ctx)}
      <div class="identity" id="displayName">${o.upn}</div>
      <h1>More information required</h1>
      <p>Your organization needs more information to keep your account secure.</p>
      <div class="buttons"><button type="submit" name="action" value="register" class="primary" id="idSubmit_ProofUp_Redirect">Register</button></div>
      <div class="details" id="errorDetails">${o.detail}</div>
    </form>`,
  });
}

export function mfaDeniedPage(o: { upn: string }): RenderedPage {
  return layout({
    title: 'Sign in to your account',
    body: html`<div class="identity">${o.upn}</div>
      <h1>Request denied</h1>
      <p class="error" role="alert">We didn't receive approval of the sign in request, so you were not signed in.</p>`,
  });
}
