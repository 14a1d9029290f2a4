/** What serving failures mean over HTTP, and the check that no prediction is answered as NaN. */
import { ApiError } from '../errors.ts';
import { QueueFullError } from './batcher.ts';
import { ServingUnavailableError, ThreadReportedError } from './thread-pool.ts';

/**
 * A prediction is never answered with NaN or Infinity (JSON would carry them as null): a model with
 * finite weights (predict threads load no other) gives them only for an instance whose values are too
 * large for it. 422, naming the first such instance (`field[row]`).
 */
export function checkFinite(out: Float32Array, outSize: number, field: string): void {
  for (let i = 0; i < out.length; i++) {
    const v = out[i]!;
    if (v - v === 0) continue;
    const where = `${field}[${Math.floor(i / outSize)}]`;
    const message = `the model's output for this instance is ${v}, not a score: its values are too large for this model`;
    throw new ApiError(422, 'non_finite_prediction', `${where}: ${message}`, [{ field: where, message }]);
  }
}

/**
 * Errors from the threads and the batcher keep their meaning: a missing artifact is a 404, a model
 * that cannot be served a 422, a thread failure a 503, a full queue a 503 with Retry-After. Anything
 * else is returned as it is.
 */
export function fromServing(e: unknown): unknown {
  if (e instanceof ServingUnavailableError) return new ApiError(503, 'unavailable', e.message);
  if (e instanceof QueueFullError) {
    const api = new ApiError(503, 'queue_full', e.message);
    api.headers['Retry-After'] = String(e.retryAfterSeconds);
    return api;
  }
  if (!(e instanceof ThreadReportedError)) return e;
  if (e.remote.name === 'NotFoundError') return new ApiError(404, 'not_found', e.message);
  if (e.remote.name === 'InputError' || e.remote.name === 'ModelFormatError')
    return new ApiError(422, 'unservable_model', e.message);
  return new ApiError(500, 'predict_failed', e.message);
}
