/**
 * Browser sign-in: `GET /login` shows a form that takes an API key; `POST /login` sets a session
 * cookie so that a browser can open `/ui`, `/docs` and `/admin/queues` (and call the API from them),
 * which it cannot do with a Bearer header.
 *
 * The cookie (`mlq_session`) is HttpOnly, `SameSite=Strict`, `Secure` over HTTPS, signed
 * (HMAC-SHA256 by cookie-parser/cookie-signature) and holds only the key's id (a prefix of its
 * SHA-256, keys.ts), an expiry, the session epoch and a random session id:
 * `v3.<keyId>.<expiry ms>.<epoch>.<sid>`. It is checked against the current API_KEYS on every request,
 * so removing a key ends its sessions, and the session has that key's scopes. `POST /logout` ends the
 * session on the server too: its id is revoked in Redis (`keys.sessionRevoked`) until the cookie would
 * have expired, so a copy of the cookie kept from before is refused.
 * Revocations live in Redis, so a Redis that loses its data (no persistence, a restart without saving,
 * FLUSHALL) would forget them and bring logged-out cookies back. So every cookie also names the session
 * epoch (`keys.sessionEpoch`): a random value kept in Redis, created (SET NX) when missing and read on
 * every request. After Redis lost its data a new epoch is made, and every earlier cookie, revoked or not,
 * is refused until its holder signs in again. Older cookies (`v1.…`, `v2.…`, without an epoch) are not
 * accepted.
 * Unsafe methods sent with the cookie must also come from this origin (`Sec-Fetch-Site: same-origin`,
 * or an `Origin` equal to the request's own), which stops cross-site request forgery even in
 * browsers without SameSite (see the OWASP CSRF Prevention Cheat Sheet, "Fetch Metadata").
 */
import { randomBytes } from 'node:crypto';
import cookieParser from 'cookie-parser';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { KeyRing, Principal } from './keys.ts';
import { loginPage } from './login-page.ts';

export const SESSION_COOKIE = 'mlq_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Paths a person opens in a browser: without a session they are sent to the login page. */
const BROWSER_PATHS = /^\/(ui|docs|admin\/queues)(\/|$)/;

export interface SessionOptions {
  /** The accepted API keys (API_KEYS). */
  keys: KeyRing;
  /** Signs cookies; when empty, a secret derived from the keys (changing the keys ends every session). */
  secret: string;
  /** How long a session lasts, in hours. */
  ttlHours: number;
  /** The session epoch and the ended sessions (Redis, see app.ts). */
  store: SessionStore;
}

/**
 * Server-side session state. Every method rejects when it cannot tell (Redis away): the session is then
 * not trusted.
 */
export interface SessionStore {
  /**
   * The current session epoch (lowercase hex), the same for every API process of the install: created
   * when missing (SET NX, then read back), so a store that lost its data gets a new one.
   */
  epoch(): Promise<string>;
  /** Ends session `sid`: kept for `ttlMs` (the time the cookie had left), then forgotten. */
  revoke(sid: string, ttlMs: number): Promise<void>;
  isRevoked(sid: string): Promise<boolean>;
}

export interface Session {
  /** Parses cookies (cookie-parser) and serves `GET/POST /login` and `POST /logout`. */
  router: Router;
  /**
   * The principal (key) of the request's session cookie, if it has a valid, unexpired, not revoked
   * one of the current epoch. Rejects when the store cannot be read (Redis away).
   */
  principalOf(req: Request): Promise<Principal | undefined>;
  /** Why an unsafe request sent with a cookie looks cross-site (undefined when it is fine). */
  crossSite(req: Request): string | undefined;
  /** Sends a browser that loads a page (Accept: text/html) without a session to the login page; false otherwise. */
  redirectToLogin(req: Request, res: Response): boolean;
}

/** Only paths of this server: no scheme, no `//host`, no backslashes. */
function localPath(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[^\\]*$/.test(next) ? next : '/ui/';
}

export function createSession(opts: SessionOptions): Session {
  const secret = opts.secret || opts.keys.fingerprint;
  const ttlMs = opts.ttlHours * 3600_000;

  /** The signed cookie's parts, when it is a well-formed, unexpired session of a current key. */
  const cookieOf = (
    req: Request,
  ): { who: Principal; sid: string; epoch: string; expires: number } | undefined => {
    const raw = (req.signedCookies as Record<string, unknown> | undefined)?.[SESSION_COOKIE];
    if (typeof raw !== 'string') return undefined;
    const m = /^v3\.([0-9a-f]{12})\.(\d+)\.([0-9a-f]{1,64})\.([0-9a-f]{32})$/.exec(raw);
    if (!m || Number(m[2]) < Date.now()) return undefined;
    const who = opts.keys.byKeyId(m[1]!);
    return who ? { who, epoch: m[3]!, sid: m[4]!, expires: Number(m[2]) } : undefined;
  };

  const principalOf = async (req: Request): Promise<Principal | undefined> => {
    const c = cookieOf(req);
    if (!c) return undefined;
    // Sent together: one round trip. Not cached, so an epoch renewed by a data loss counts at once.
    const [epoch, revoked] = await Promise.all([opts.store.epoch(), opts.store.isRevoked(c.sid)]);
    return epoch !== c.epoch || revoked ? undefined : c.who;
  };

  const crossSite = (req: Request): string | undefined => {
    if (SAFE_METHODS.has(req.method)) return undefined;
    const site = req.get('sec-fetch-site');
    if (site !== undefined)
      return site === 'same-origin' ? undefined : `Sec-Fetch-Site is "${site}", not "same-origin"`;
    const origin = req.get('origin');
    const own = `${req.protocol}://${req.get('host')}`;
    if (origin === undefined) return 'neither Sec-Fetch-Site nor Origin was sent';
    return origin === own ? undefined : `Origin ${origin} is not ${own}`;
  };

  const setCookie = (req: Request, res: Response, who: Principal, epoch: string) =>
    res.cookie(
      SESSION_COOKIE,
      `v3.${who.keyId}.${Date.now() + ttlMs}.${epoch}.${randomBytes(16).toString('hex')}`,
      {
        signed: true,
        httpOnly: true,
        sameSite: 'strict',
        secure: req.secure,
        path: '/',
        maxAge: ttlMs,
      },
    );

  const router = Router();
  router.use(cookieParser(secret) as RequestHandler);
  router.get('/login', async (req, res) => {
    const next = localPath(req.query.next);
    // Redis away: show the form rather than an error (POST /login then answers 503 until it is back).
    const signedIn = await principalOf(req).catch(() => undefined);
    if (!opts.keys.enabled || signedIn) return res.redirect(303, next);
    res.type('html').send(loginPage({ next }));
  });
  router.post('/login', express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = localPath(body.next);
    const why = crossSite(req);
    if (why)
      return void res
        .status(403)
        .type('html')
        .send(loginPage({ next, error: `refused: ${why}` }));
    const who = opts.keys.enabled
      ? opts.keys.resolve(typeof body.key === 'string' ? body.key.trim() : '')
      : undefined;
    if (!who) {
      return void res
        .status(401)
        .type('html')
        .send(loginPage({ next, error: 'that key is not accepted' }));
    }
    // The cookie is bound to the current epoch: signing in needs Redis (503 while it is away).
    setCookie(req, res, who, await opts.store.epoch());
    res.redirect(303, next);
  });
  router.post('/logout', async (req, res) => {
    if (crossSite(req)) return void res.status(403).end();
    // Revoked until the cookie would have expired; a failure (Redis away) is the request's error: the
    // person must not believe a session ended that did not.
    const c = cookieOf(req);
    if (c) await opts.store.revoke(c.sid, Math.max(1, c.expires - Date.now()));
    res.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict', secure: req.secure });
    res.redirect(303, '/login');
  });

  return {
    router,
    principalOf,
    crossSite,
    redirectToLogin(req, res) {
      // A page load names text/html in Accept; fetch() and API clients (Accept */* or JSON) get the 401.
      const page = /\btext\/html\b/.test(req.get('accept') ?? '');
      if (req.method !== 'GET' || !BROWSER_PATHS.test(req.path) || !page) return false;
      res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
      return true;
    },
  };
}
