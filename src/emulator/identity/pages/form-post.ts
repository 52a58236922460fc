// response_mode=form_post: an auto-submitting form that POSTs the response to the redirect URI
// (application/x-www-form-urlencoded), with a button for browsers without scripts.
import { hidden, html, layout, type RenderedPage } from './layout.ts';

const SUBMIT = 'document.forms[0].submit();';

export function formPostPage(o: { action: string; fields: [string, string][] }): RenderedPage {
  return layout({
    title: 'Working...',
    body: html`<form method="post" action="${o.action}" id="response">
      ${o.fields.map(([name, value]) => hidden(name, value))}
      <noscript><p>Script is disabled. Click Submit to continue.</p></noscript>
      <div class="buttons"><button type="submit" class="primary" id="idSubmit">Submit</button></div>
    </form>`,
    scripts: [SUBMIT],
  });
}
