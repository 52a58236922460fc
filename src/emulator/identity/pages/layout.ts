// The frame every sign-in page shares: a plain white box with the Microsoft logo, as the real
// login.microsoftonline.com pages look, without a single external resource. Every value put into
// a page goes through escapeHtml (or attr); page modules never concatenate raw input.
import { createHash } from 'node:crypto';

export function escapeHtml(value: string | number): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A trusted HTML fragment (already escaped). */
export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

type Interpolated = string | number | Html | undefined | null | false | readonly Interpolated[];

function render(value: Interpolated): string {
  if (value === undefined || value === null || value === false) return '';
  if (value instanceof Html) return value.text;
  // Array.isArray narrows a readonly array to any[]: restore its element type.
  if (Array.isArray(value)) return (value as readonly Interpolated[]).map((v) => render(v)).join('');
  return escapeHtml(value as string | number);
}

/** Tagged template: interpolations are escaped unless they are Html (or arrays of Html). */
export function html(strings: TemplateStringsArray, ...values: Interpolated[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

export function hidden(name: string, value: string): Html {
  return html`<input type="hidden" name="${name}" value="${value}" />`;
}

const LOGO = new Html(
  '<svg class="logo" width="108" height="24" viewBox="0 0 108 24" role="img" aria-label="Microsoft">' +
    '<rect x="0" y="1" width="10.5" height="10.5" fill="#f25022"/><rect x="11.5" y="1" width="10.5" height="10.5" fill="#7fba00"/>' +
    '<rect x="0" y="12.5" width="10.5" height="10.5" fill="#00a4ef"/><rect x="11.5" y="12.5" width="10.5" height="10.5" fill="#ffb900"/>' +
    '<text x="28" y="18" font-family="Segoe UI, Helvetica, Arial, sans-serif" font-size="17" font-weight="600" fill="#737373">Microsoft</text></svg>',
);

const STYLE = `
*{box-sizing:border-box}
body{margin:0;background:#f2f2f2;font-family:"Segoe UI","Helvetica Neue",Helvetica,Arial,sans-serif;color:#1b1b1b;font-size:15px}
main{max-width:440px;margin:8vh auto 0;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-size:24px;font-weight:600;margin:16px 0 12px}
p{margin:0 0 12px;line-height:1.4}
label{display:block;font-size:13px;margin:12px 0 4px;color:#505050}
input[type=text],input[type=email],input[type=password]{width:100%;padding:6px 0;border:0;border-bottom:1px solid #666;font-size:15px;outline:none}
input[type=text]:focus,input[type=email]:focus,input[type=password]:focus{border-bottom-color:#0067b8}
.buttons{display:flex;justify-content:flex-end;gap:8px;margin-top:24px}
button{min-width:108px;padding:6px 12px;font-size:15px;border:0;cursor:pointer;background:#ccc;color:#000}
button.primary{background:#0067b8;color:#fff}
button.tile{display:block;width:100%;text-align:left;background:#fff;border:0;border-bottom:1px solid #e6e6e6;padding:12px 4px}
button.tile:hover{background:#e6e6e6}
.tile small{display:block;color:#505050}
.error{color:#e81123;margin:8px 0}
.identity{font-size:14px;color:#505050;margin-bottom:4px}
.details{margin-top:24px;font-size:12px;color:#505050;white-space:pre-wrap;word-break:break-word}
ul.permissions{padding-left:20px}
ul.permissions li{margin:6px 0}
ul.permissions small{display:block;color:#505050}
.check{display:flex;gap:8px;align-items:flex-start;margin-top:16px;font-size:14px}
.check label{margin:0;color:#1b1b1b;font-size:14px}
`;

export interface LayoutOptions {
  title: string;
  body: Html;
  /** Inline scripts, allowed by hash in the page's Content-Security-Policy. */
  scripts?: string[];
}

export interface RenderedPage {
  html: string;
  /** `sha256-...` sources of the inline scripts. */
  scriptHashes: string[];
}

export function scriptHash(script: string): string {
  return `sha256-${createHash('sha256').update(script).digest('base64')}`;
}

export function layout(options: LayoutOptions): RenderedPage {
  const scripts = options.scripts ?? [];
  const page = html`<!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="robots" content="none" />
        <title>${options.title}</title>
        <style>
          ${new Html(STYLE)}
        </style>
      </head>
      <body>
        <main>${LOGO} ${options.body}</main>
        ${scripts.map((s) => new Html(`<script>${s}</script>`))}
      </body>
    </html> `;
  return { html: page.text, scriptHashes: scripts.map(scriptHash) };
}
