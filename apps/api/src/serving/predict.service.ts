/**
 * Online predict: resolve the URL's model through the registry, check the body against the model's
 * input, batch it with concurrent requests for the same version, run it on a predict thread, and
 * answer in TF Serving's REST format.
 */
import type { ModelVersion } from '@mlq/contract';
import type { ModelRegistry } from '@mlq/core/registry';
import type { RedisClient } from '@mlq/queues';
import { ApiError } from '../errors.ts';
import { Batcher } from './batcher.ts';
import { ModelResolver, type ModelTarget } from './model-resolver.ts';
import { SizedLru } from './model-lru.ts';
import type { ModelInfo } from './protocol.ts';
import { formatPredictions, packPredictText } from './tensor-input.ts';
import { ServingUnavailableError, ThreadPool, ThreadReportedError } from './thread-pool.ts';

export interface ServingOptions {
  threads: number;
  batching: boolean;
  maxBatch: number;
  maxWaitMs: number;
  maxInstances: number;
  cacheModels: number;
  cacheBytes: number;
  storeUri: string;
  dataRoots: string[];
  /** tfjs backend of the predict threads: `wasm` (default), `cpu`, `tensorflow` or `auto` (TFJS_BACKEND). */
  backend?: string;
  /** Told of each successful prediction and each batch (metrics.ts). */
  observer?: ServingObserver;
}

export interface ServingObserver {
  /** A successful prediction for `model` (a name) took `seconds`, from resolving the model to its outputs. */
  predicted(model: string, seconds: number): void;
  /** A batch of `rows` instances went to a predict thread. */
  batched(rows: number): void;
}

export interface PredictResult {
  version: ModelVersion;
  body: ReturnType<typeof formatPredictions>;
}

const keyOf = (v: ModelVersion) => `${v.name}@${v.version}`;

/** The serving facade the routes call; owns the resolver, the batcher and the thread pool. */
export class PredictService {
  readonly pool: ThreadPool;
  readonly batcher: Batcher;
  private readonly resolver: ModelResolver;
  /** What each served version looks like (input name, shapes); versions never change. */
  private readonly infos = new SizedLru<Promise<ModelInfo>>(1000, Infinity);

  constructor(
    registry: ModelRegistry,
    redis: RedisClient,
    private readonly opts: ServingOptions,
  ) {
    this.pool = new ThreadPool(
      opts.threads,
      {
        storeUri: opts.storeUri,
        dataRoots: opts.dataRoots,
        cacheModels: opts.cacheModels,
        cacheBytes: opts.cacheBytes,
        backend: opts.backend ?? 'wasm',
      },
      () => this.batcher.pump(),
    );
    this.batcher = new Batcher(this.pool, {
      enabled: opts.batching,
      maxBatch: opts.maxBatch,
      maxWaitMs: opts.maxWaitMs,
      ...(opts.observer ? { onBatch: (rows: number) => opts.observer!.batched(rows) } : {}),
    });
    this.resolver = new ModelResolver(registry, redis, (name, _label, version) => {
      // A served label moved: load its new version now rather than on the next request.
      if (version !== null)
        void this.resolver.resolve({ name, version }).then(
          (v) => this.info(v),
          () => undefined,
        );
    });
  }

  private info(v: ModelVersion): Promise<ModelInfo> {
    const key = keyOf(v);
    let p = this.infos.get(key);
    if (!p) {
      p = this.pool.describe(key, v.uri);
      this.infos.set(key, p, 0);
      // A failed load is not remembered: the next request tries again.
      p.catch(() => {
        if (this.infos.get(key) === p) this.infos.delete(key);
      });
    }
    return p;
  }

  /** Predicts for a request body (its text, JSON) with the model `target` names. */
  async predict(target: ModelTarget, body: string | undefined): Promise<PredictResult> {
    const t0 = performance.now();
    try {
      const version = await this.resolver.resolve(target);
      const info = await this.info(version);
      if (info.inputShape.some((d) => d < 0)) {
        throw new ApiError(
          501,
          'not_implemented',
          `the input of ${keyOf(version)} has a variable dimension; online predict needs a fixed shape`,
        );
      }
      const input = packPredictText(body, info, this.opts.maxInstances);
      const outSize = info.outputShape.reduce((a, b) => a * Math.max(b, 1), 1);
      const out = await this.batcher.submit(keyOf(version), version.uri, input.rows, input.data, outSize);
      checkFinite(out, outSize, input.format === 'row' ? 'instances' : 'inputs');
      const answer = formatPredictions(input.format, out, input.rows, info.outputShape);
      this.opts.observer?.predicted(version.name, (performance.now() - t0) / 1000);
      return { version, body: answer };
    } catch (e) {
      throw toApiError(e);
    }
  }

  async close(): Promise<void> {
    this.batcher.drain(new ServingUnavailableError('the server is shutting down'));
    await Promise.all([this.resolver.close(), this.pool.close()]);
  }
}

/**
 * A prediction is never answered with NaN or Infinity (JSON would carry them as null): a model with
 * finite weights (predict threads load no other) gives them only for an instance whose values are too
 * large for it. 422, naming the first such instance.
 */
function checkFinite(out: Float32Array, outSize: number, field: string): void {
  for (let i = 0; i < out.length; i++) {
    const v = out[i]!;
    if (v - v === 0) continue;
    const where = `${field}[${Math.floor(i / outSize)}]`;
    const message = `the model's output for this instance is ${v}, not a score: its values are too large for this model`;
    throw new ApiError(422, 'non_finite_prediction', `${where}: ${message}`, [{ field: where, message }]);
  }
}

/** Errors from a thread keep their meaning: a missing artifact is a 404, a thread failure a 503. */
function toApiError(e: unknown): unknown {
  if (e instanceof ServingUnavailableError) return new ApiError(503, 'unavailable', e.message);
  if (!(e instanceof ThreadReportedError)) return e;
  if (e.remote.name === 'NotFoundError') return new ApiError(404, 'not_found', e.message);
  if (e.remote.name === 'InputError' || e.remote.name === 'ModelFormatError')
    return new ApiError(422, 'unservable_model', e.message);
  return new ApiError(500, 'predict_failed', e.message);
}
