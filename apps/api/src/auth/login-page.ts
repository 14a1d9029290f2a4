/**
 * The sign-in page: a plain HTML form with its style inline and no script, so helmet's default
 * Content-Security-Policy (style-src 'unsafe-inline', script-src 'self') allows it.
 */

const escape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const css = `
body { font: 15px/1.4 system-ui, sans-serif; background: #f4f5f7; color: #1d2430; margin: 0;
  display: grid; place-items: center; min-height: 100vh; }
form { background: #fff; padding: 28px 32px; border-radius: 10px; box-shadow: 0 2px 12px #0002; width: 340px; }
h1 { font-size: 20px; margin: 0 0 4px; } p { color: #5b6472; margin: 0 0 18px; }
label { display: block; font-weight: 600; margin-bottom: 6px; }
input[type=password] { width: 100%; box-sizing: border-box; padding: 9px 10px; font-size: 15px;
  border: 1px solid #c4cad3; border-radius: 6px; }
button { margin-top: 16px; width: 100%; padding: 10px; font-size: 15px; border: 0; border-radius: 6px;
  background: #2f6fed; color: #fff; cursor: pointer; }
.error { color: #b42318; margin: 12px 0 0; }
`;

export function loginPage(opts: { next: string; error?: string }): string {
  const error = opts.error ? `<p class="error" role="alert">${escape(opts.error)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Sign in · mlq</title><style>${css}</style></head>
<body><form method="post" action="/login">
<h1>mlq</h1><p>Sign in with an API key to open the console, the API docs and Bull Board.</p>
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${escape(opts.next)}">
<button type="submit">Sign in</button>${error}
</form></body></html>`;
}
