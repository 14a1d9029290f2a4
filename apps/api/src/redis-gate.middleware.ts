/**
 * While Redis is away, routes that need it answer at once `503 unavailable` with `Retry-After`,
 * instead of waiting for a reconnect: the API's request connection is fail-fast
 * (packages/queues/src/connection.ts), and this gate does not even try it.
 */
import type { RequestHandler } from 'express';
import { isReady, type RedisClient } from '@mlq/queues';
import { ApiError } from './errors.ts';

/** The error a request gets while Redis is away (the error handler adds `Retry-After`). */
export const redisUnavailable = (): ApiError =>
  new ApiError(503, 'unavailable', 'Redis (jobs and model registry) is not reachable; retry shortly');

/**
 * Answers 503 for every request that passes it while the connection is not ready, or while `claimed`
 * says the artifact store is not yet claimed for this install (apps/api/src/server.ts).
 */
export function redisGate(redis: RedisClient, claimed: () => boolean = () => true): RequestHandler {
  return (_req, _res, next) => next(isReady(redis) && claimed() ? undefined : redisUnavailable());
}
