/**
 * Requests per minute per API key, with rate-limiter-flexible: one fixed 60-second window per caller,
 * counted atomically in Redis (a Lua INCRBY + TTL), so the limit holds across API processes. If Redis
 * is not ready, an in-memory limiter with the same limit answers instead (`insuranceLimiter`), so a
 * Redis outage neither blocks nor unlimits requests. Once a caller is over the limit, this process
 * remembers it until the window ends (`inMemoryBlockOnConsumed`) and stops asking Redis.
 *
 * The caller is `res.locals.principal.keyId` (a prefix of the key's SHA-256, see auth/keys.ts), so
 * the Redis key `<prefix>:ratelimit:<keyId>` holds no secret; with auth off it is
 * `<prefix>:ratelimit:ip:<client address>`.
 *
 * Predict (and any route `leased` selects) takes its points from a local lease: one Redis INCRBY
 * takes `lease` points for this process at once, and the next `lease - 1` requests spend them
 * without a round trip. The Redis counter stays exact: points a process leased but did not spend
 * before the window ends are lost, so a caller spread over P processes may be refused up to
 * P × (lease − 1) requests early. `lease` is 1% of the limit (at least 1).
 *
 * Headers (draft-ietf-httpapi-ratelimit-headers-07): `RateLimit-Limit`, `RateLimit-Remaining`,
 * `RateLimit-Reset` (seconds until the window ends), `RateLimit-Policy: <limit>;w=60`; a `429` adds
 * `Retry-After` (seconds).
 */
import type { Request, RequestHandler, Response } from 'express';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RedisClient } from '@mlq/queues';
import { principalOf } from '../auth/authenticate.ts';
import { sendError } from '../errors.ts';

export interface RateLimitOptions {
  redis: RedisClient;
  /** Prefix of the counters (RedisKeys.rateLimit): one key `<keyPrefix>:<caller>` per caller. */
  keyPrefix: string;
  /** Requests per minute per caller; 0 turns the limit off. */
  perMinute: number;
  /** Requests that spend leased points (no Redis round trip): predict. */
  leased(req: Request): boolean;
  /** Requests that are not limited at all (public routes). */
  exempt(req: Request): boolean;
  /** Told of every refused request (metrics). */
  onLimited?(): void;
}

const WINDOW_S = 60;

interface Lease {
  points: number;
  /** What Redis said was left after this lease was taken. */
  remainingAfter: number;
  resetAt: number;
  /** The window is used up: refuse until `resetAt` without asking Redis. */
  exhausted: boolean;
}

/** The caller a request is counted against: a key id, or the client address when auth is off. */
export function rateLimitKey(req: Request, res: Response): string {
  const p = principalOf(res);
  return p && p.keyId !== 'anonymous' ? p.keyId : `ip:${req.ip ?? 'unknown'}`;
}

export function rateLimit(opts: RateLimitOptions): RequestHandler {
  if (opts.perMinute === 0) return (_req, _res, next) => next();
  const points = opts.perMinute;
  const limiter = new RateLimiterRedis({
    storeClient: opts.redis,
    keyPrefix: opts.keyPrefix,
    points,
    duration: WINDOW_S,
    rejectIfRedisNotReady: true,
    inMemoryBlockOnConsumed: points,
    insuranceLimiter: new RateLimiterMemory({ points, duration: WINDOW_S }),
  });
  const leaseSize = Math.max(1, Math.floor(points / 100));
  const leases = new Map<string, Lease>();
  const pending = new Map<string, Promise<void>>();

  const headers = (res: Response, remaining: number, msBeforeNext: number) => {
    res.set('RateLimit-Limit', String(points));
    res.set('RateLimit-Remaining', String(Math.max(0, remaining)));
    res.set('RateLimit-Reset', String(Math.max(0, Math.ceil(msBeforeNext / 1000))));
    res.set('RateLimit-Policy', `${points};w=${WINDOW_S}`);
  };
  const refuse = (res: Response, msBeforeNext: number) => {
    opts.onLimited?.();
    headers(res, 0, msBeforeNext);
    res.set('Retry-After', String(Math.max(1, Math.ceil(msBeforeNext / 1000))));
    sendError(res, 429, 'rate_limited', `more than ${points} requests in a minute`);
  };

  /** Takes a lease for `key`: the points of one INCRBY that fall under the limit are ours. */
  const takeLease = async (key: string): Promise<void> => {
    let r: RateLimiterRes;
    let blocked = false;
    try {
      r = await limiter.consume(key, leaseSize);
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      r = e;
      // Refused from the in-memory block (consumedPoints 0): Redis was not asked, nothing is left.
      blocked = r.consumedPoints === 0;
    }
    const now = Date.now();
    if (leases.size > 10_000) for (const [k, l] of leases) if (l.resetAt <= now) leases.delete(k);
    const ours = blocked ? 0 : Math.max(0, Math.min(leaseSize, points - (r.consumedPoints - leaseSize)));
    leases.set(key, {
      points: ours,
      remainingAfter: Math.max(0, r.remainingPoints),
      resetAt: now + r.msBeforeNext,
      exhausted: blocked || r.consumedPoints >= points,
    });
  };

  /** Spends one leased point, taking a new lease when needed; false (and a 429 sent) when none is left. */
  const spendLeased = async (key: string, res: Response): Promise<boolean> => {
    // Ends: every refill takes points from Redis, until the window is exhausted.
    for (;;) {
      const l = leases.get(key);
      const now = Date.now();
      if (l && now < l.resetAt) {
        if (l.points > 0) {
          l.points--;
          headers(res, l.remainingAfter + l.points, l.resetAt - now);
          return true;
        }
        if (l.exhausted) {
          refuse(res, l.resetAt - now);
          return false;
        }
      }
      // One refill at a time per caller: concurrent requests wait for it, then spend from it.
      let p = pending.get(key);
      if (!p) {
        p = takeLease(key).finally(() => pending.delete(key));
        pending.set(key, p);
      }
      await p;
    }
  };

  return async (req, res, next) => {
    if (opts.exempt(req)) return next();
    const key = rateLimitKey(req, res);
    if (opts.leased(req)) {
      if (await spendLeased(key, res)) next();
      return;
    }
    try {
      const r = await limiter.consume(key, 1);
      headers(res, r.remainingPoints, r.msBeforeNext);
      next();
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      refuse(res, e.msBeforeNext);
    }
  };
}
