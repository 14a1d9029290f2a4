/**
 * Authentication and authorization for every route: finds the key a request presents, resolves it to
 * a principal (keys.ts), checks the scope the route needs (policy.ts), and leaves the principal on
 * `res.locals.principal` for what follows (rate limit, idempotency, logs, Bull Board).
 *
 * A browser presents its key through a session cookie instead (session.ts): it counts only without a
 * Bearer header, and an unsafe request made with it must come from this site (else 403). A browser
 * asking for a page without either is sent to the login page.
 *
 * 401 (`WWW-Authenticate: Bearer`): no key or an unknown one. 403 (`WWW-Authenticate: Bearer
 * error="insufficient_scope", scope="<scope>"`, RFC 6750 §3): a known key without the scope.
 */
import type { Request, RequestHandler, Response } from 'express';
import { sendError } from '../errors.ts';
import type { KeyRing, Principal, Scope } from './keys.ts';
import { requirementOf } from './policy.ts';
import type { Session } from './session.ts';

/**
 * The key a request presents: `Authorization: Bearer <key>`, the scheme name in any case (RFC 9110
 * §11.1). Undefined when there is none. Other ways to present a key (a browser session) go here.
 */
export function presentedKey(req: Request): string | undefined {
  const m = /^bearer +(\S+) *$/i.exec(req.get('authorization') ?? '');
  return m?.[1];
}

/** The principal `authenticate` found for this request (anonymous on public routes with auth on). */
export function principalOf(res: Response): Principal | undefined {
  return (res.locals as { principal?: Principal }).principal;
}

export function hasScope(principal: Principal | undefined, scope: Scope): boolean {
  return principal?.scopes.includes(scope) ?? false;
}

export function authenticate(keys: KeyRing, session?: Session): RequestHandler {
  return async (req, res, next) => {
    const need = requirementOf(req.method, req.path);
    const bearer = presentedKey(req);
    let principal = keys.resolve(bearer);
    // A session's revocation is in Redis: while Redis is away a cookie is not trusted (the error, a
    // 503, goes to the error handler), except on public routes, which need no principal.
    const fromCookie =
      !principal && bearer === undefined
        ? await session?.principalOf(req).catch((e: unknown) => {
            if (need === 'public') return undefined;
            throw e;
          })
        : undefined;
    if (fromCookie) {
      const why = session!.crossSite(req);
      if (why)
        return sendError(
          res,
          403,
          'forbidden',
          `refused a cross-site request made with a session cookie: ${why}`,
        );
      principal = fromCookie;
    }
    if (principal) res.locals.principal = principal;
    if (need === 'public') return next();
    if (!principal) {
      if (session?.redirectToLogin(req, res)) return;
      res.set('WWW-Authenticate', 'Bearer');
      return sendError(
        res,
        401,
        'unauthorized',
        'a valid "Authorization: Bearer <key>" header (or, from a browser, a session from /login) is required',
      );
    }
    if (!principal.scopes.includes(need)) {
      res.set('WWW-Authenticate', `Bearer error="insufficient_scope", scope="${need}"`);
      return sendError(
        res,
        403,
        'forbidden',
        `this key has the scopes ${principal.scopes.join(', ')}; ${req.method} ${req.path} needs "${need}"`,
      );
    }
    next();
  };
}
