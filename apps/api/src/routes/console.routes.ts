/**
 * The pages a browser opens: the web console (apps/console, built by Vite) at `/ui`, with every
 * client-side route (`/ui/jobs/{id}`...) answered by its index.html so a reload or a pasted link
 * works, and a missing file (`/ui/assets/x.js`, `/ui/favicon.ico`: isFilePath) a 404; and the API reference at `/docs`: Swagger UI from the swagger-ui-dist package, served from
 * this server (no CDN) and reading `/openapi.json`. No inline scripts anywhere, so a strict
 * Content-Security-Policy (`script-src 'self'`) allows both. The console's page carries
 * `<meta name="mlq-auth" content="on|off">`: with auth off it has no session to end, so it offers no
 * sign-out.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import express, { Router } from 'express';
import { sendError } from '../errors.ts';

const docsPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>mlq API reference</title><link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/docs-init.js"></script></body></html>`;

// validatorUrl: null: no badge from the public validator (a request to another host).
const docsInit = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null });\n`;

/** The files of swagger-ui-dist the docs page uses (not its demo index.html). */
const SWAGGER_FILES = /^\/(swagger-ui(-bundle)?\.(js|css)(\.map)?|favicon-(16x16|32x32)\.png)$/;

function swaggerDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('swagger-ui-dist/package.json'));
}

/**
 * `GET /`: a browser (a page load: `text/html` in Accept) is sent to the console with a 302 to `/ui/`,
 * before auth (the console's own route sends a browser without a session on to `/login`). Any other
 * client goes on as if this did not exist: the 404 `no route GET /` (or 401 with auth on and no key).
 */
export const rootPage: express.RequestHandler = (req, res, next) => {
  if (!/\btext\/html\b/.test(req.get('accept') ?? '')) return next();
  res.redirect(302, '/ui/');
};

/**
 * Paths that name a file of the console's build, never a client-side route: anything under
 * `/ui/assets/` (Vite's hashed files), and `/ui/<name>.<ext>` at the top (`favicon.ico`, `robots.txt`).
 * Deeper paths are routes even with a dot: `/ui/models/{name}`, and a model's name may have one
 * (`digits.v2`).
 */
export function isFilePath(p: string): boolean {
  return /^\/ui\/assets(\/|$)/.test(p) || /^\/ui\/[^/]*\.[^/]*$/.test(p);
}

export interface ConsoleOptions {
  /** API_KEYS is set: the console's users signed in, and it offers to sign out. */
  auth: boolean;
}

export function consoleRouter(consoleDir: string, opts: ConsoleOptions): Router {
  const r = Router();
  const index = path.join(consoleDir, 'index.html');
  const authMeta = `<meta name="mlq-auth" content="${opts.auth ? 'on' : 'off'}">`;

  // Hashed asset names never change content: cache them for a year. index.html: always revalidate.
  r.use('/ui/assets', express.static(path.join(consoleDir, 'assets'), { immutable: true, maxAge: '365d' }));
  const app: express.RequestHandler = async (req, res) => {
    // A file the build does not have is a 404, not the app page (a browser would run HTML as a script).
    if (isFilePath(req.path) && req.path !== '/ui/index.html')
      return sendError(res, 404, 'not_found', `no file ${req.path} in the console`);
    if (!existsSync(index)) {
      return sendError(
        res,
        503,
        'unavailable',
        `the console is not built (${index} is missing): run "pnpm --filter @mlq/console build"`,
      );
    }
    const html = (await readFile(index, 'utf8')).replace('</head>', `${authMeta}\n</head>`);
    res.set('Cache-Control', 'no-cache').type('html').send(html);
  };
  // Before the static files: index.html by its own name gets the meta too.
  r.get('/ui/index.html', app);
  r.use('/ui', express.static(consoleDir, { index: false }));
  r.get('/ui', app);
  r.get('/ui/{*rest}', app);

  const swagger = swaggerDir();
  r.get('/docs', (_req, res) => void res.type('html').send(docsPage));
  r.get('/docs/docs-init.js', (_req, res) => void res.type('js').send(docsInit));
  const files = express.static(swagger, { index: false, maxAge: '1d' });
  r.use('/docs', (req, res, next) => (SWAGGER_FILES.test(req.path) ? files(req, res, next) : next()));
  return r;
}
