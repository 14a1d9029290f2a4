/**
 * Online predict: resolve the URL's model through the registry, check the body against the model's
 * input, batch it with concurrent requests for the same version, run it on a predict thread, and
 * answer in TF Serving's REST format (`predict`) or the Open Inference Protocol's (`infer`). Both
 * share the batcher (with its bounded queues) and the threads.
 */
import type { ModelVersion } from '@mlq/contract';
import { checkImagePixels } from '@mlq/core/data';
import { DataError } from '@mlq/core/errors';
import type { ModelRegistry } from '@mlq/core/registry';
import type { RedisClient } from '@mlq/queues';
import { ApiError, toApiError as httpError } from '../errors.ts';
import { Batcher } from './batcher.ts';
import { imageShape, type ImageInstance } from './image-input.ts';
import { ModelResolver, type ModelTarget } from './model-resolver.ts';
import { SizedLru } from './model-lru.ts';
import { inferResponse, parseInferRequest } from './open-inference.ts';
import type { ModelInfo } from './protocol.ts';
import { checkFinite, fromServing } from './serving-errors.ts';
import { ServingEvents, type RequestEvent } from './serving-events.ts';
import { formatPredictions, packPredictText } from './tensor-input.ts';
import type { VersionState } from './tf-serving.ts';
import { ServingUnavailableError, ThreadPool, ThreadReportedError } from './thread-pool.ts';

export interface ServingOptions {
  threads: number;
  batching: boolean;
  maxBatch: number;
  maxWaitMs: number;
  maxInstances: number;
  /** Bounds of each model version's queue (requests waiting for a thread); past them, 503. */
  maxQueuedRows: number;
  maxQueuedRequests: number;
  cacheModels: number;
  cacheBytes: number;
  storeUri: string;
  dataRoots: string[];
  /** tfjs backend of the predict threads: `wasm` (default), `cpu`, `tensorflow` or `auto` (TFJS_BACKEND). */
  backend?: string;
  /**
   * Most pixels (width × height) an image instance may have (IMAGE_MAX_PIXELS): read from its header
   * on the event loop, a larger one is a 400 naming it and never reaches a predict thread.
   */
  imageMaxPixels: number;
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

export interface InferResult {
  version: ModelVersion;
  body: ReturnType<typeof inferResponse>;
}

const keyOf = (v: ModelVersion) => `${v.name}@${v.version}`;
const outputSize = (info: ModelInfo) => info.outputShape.reduce((a, b) => a * Math.max(b, 1), 1);

/** The serving facade the routes call; owns the resolver, the batcher and the thread pool. */
export class PredictService {
  readonly pool: ThreadPool;
  readonly batcher: Batcher;
  /** Batches, refusals and requests as they happen (see serving-events.ts), for metrics. */
  readonly events = new ServingEvents();
  private readonly resolver: ModelResolver;
  /** What each served version looks like (input name, shapes); versions never change. */
  private readonly infos = new SizedLru<Promise<ModelInfo>>(1000, Infinity);
  /** Why the last load of a version failed, for its status (cleared when a load succeeds). */
  private readonly loadErrors = new SizedLru<string>(1000, Infinity);

  private readonly opts: ServingOptions;
  constructor(registry: ModelRegistry, redis: RedisClient, opts: ServingOptions) {
    this.opts = opts;
    this.pool = new ThreadPool(
      opts.threads,
      {
        storeUri: opts.storeUri,
        dataRoots: opts.dataRoots,
        cacheModels: opts.cacheModels,
        cacheBytes: opts.cacheBytes,
        backend: opts.backend ?? 'wasm',
        imageMaxPixels: opts.imageMaxPixels,
      },
      () => this.batcher.pump(),
    );
    this.batcher = new Batcher(
      this.pool,
      {
        enabled: opts.batching,
        maxBatch: opts.maxBatch,
        maxWaitMs: opts.maxWaitMs,
        maxQueuedRows: opts.maxQueuedRows,
        maxQueuedRequests: opts.maxQueuedRequests,
      },
      this.events,
    );
    const { observer } = opts;
    if (observer) this.events.on('batch', (e) => observer.batched(e.rows));
    this.resolver = new ModelResolver(registry, redis, (name, _label, version) => {
      // A served label moved: load its new version now rather than on the next request.
      if (version !== null)
        void this.resolver.resolve({ name, version }).then(
          (v) => this.describe(v),
          () => undefined,
        );
    });
  }

  /** The registry version a URL names; NotFoundError (404) for an unknown model, version or label. */
  resolve(target: ModelTarget): Promise<ModelVersion> {
    return this.resolver.resolve(target);
  }

  /** Loads a version on a thread (once) and describes its input and output; ApiError when it cannot. */
  async describe(v: ModelVersion): Promise<ModelInfo> {
    const key = keyOf(v);
    let p = this.infos.get(key);
    if (!p) {
      p = this.pool.describe(key, v.uri);
      this.infos.set(key, p, 0);
      // A failed load is not remembered: the next request tries again.
      p.then(
        () => this.loadErrors.delete(key),
        (e: unknown) => {
          if (this.infos.get(key) === p) this.infos.delete(key);
          const api = fromServing(e);
          if (api instanceof ApiError && api.status !== 503) this.loadErrors.set(key, api.message, 0);
        },
      );
    }
    return p.catch((e: unknown) => {
      throw fromServing(e);
    });
  }

  /** How a version stands, without loading it: AVAILABLE (loaded, or loads on first use), or END when its last load failed. */
  state(v: ModelVersion): VersionState {
    const error = this.loadErrors.get(keyOf(v));
    return error === undefined ? { state: 'AVAILABLE' } : { state: 'END', error };
  }

  /** Resolves, loads and checks that the model takes a fixed-shape input (501 otherwise). */
  private async servable(target: ModelTarget): Promise<{ version: ModelVersion; info: ModelInfo }> {
    const version = await this.resolve(target);
    const info = await this.describe(version);
    if (info.inputShape.some((d) => d < 0)) {
      throw new ApiError(
        501,
        'not_implemented',
        `the input of ${keyOf(version)} has a variable dimension; online predict needs a fixed shape`,
      );
    }
    return { version, info };
  }

  /**
   * Decodes the request's images on a thread into their rows of `data`; a bad file is a 400 naming
   * its field. Each image's declared size is checked here first (a few bytes of its header), so an
   * image over IMAGE_MAX_PIXELS is refused at once and never holds up a predict thread.
   */
  private async decodeInto(images: ImageInstance[], info: ModelInfo, data: Float32Array): Promise<void> {
    const { height, width, channels } = imageShape(info)!;
    const size = height * width * channels;
    for (const img of images) {
      try {
        checkImagePixels(img.bytes, img.field, this.opts.imageMaxPixels);
      } catch (e) {
        if (!(e instanceof DataError)) throw e;
        throw new ApiError(400, 'invalid_request', e.message, [
          { field: `${img.field}.b64`, message: e.message },
        ]);
      }
    }
    try {
      const fields = images.map((i) => i.field);
      const pixels = await this.pool.decode(
        images.map((i) => i.bytes),
        fields,
        height,
        width,
        channels,
      );
      images.forEach((img, i) => data.set(pixels.subarray(i * size, (i + 1) * size), img.row * size));
    } catch (e) {
      if (!(e instanceof ThreadReportedError) || e.remote.name !== 'DataError') throw e;
      const field = images.find((i) => e.message.includes(`${i.field}:`))?.field ?? 'instances';
      throw new ApiError(400, 'invalid_request', e.message, [{ field: `${field}.b64`, message: e.message }]);
    }
  }

  /** Runs packed rows through the batcher (503 with Retry-After when the model's queue is full). */
  private run(
    version: ModelVersion,
    info: ModelInfo,
    rows: number,
    data: Float32Array,
  ): Promise<Float32Array> {
    return this.batcher.submit(keyOf(version), version.uri, rows, data, outputSize(info));
  }

  /** Times a request and reports it (serving-events.ts); errors leave as ApiErrors. */
  private async measured<T extends { version: ModelVersion }>(
    protocol: RequestEvent['protocol'],
    target: ModelTarget,
    work: (count: (rows: number) => void) => Promise<T>,
  ): Promise<T> {
    const t0 = performance.now();
    let rows = 0;
    let model = target.name;
    const report = (status: number) =>
      this.events.report('request', {
        protocol,
        model,
        rows,
        seconds: (performance.now() - t0) / 1000,
        status,
      });
    try {
      const r = await work((n) => (rows = n));
      model = keyOf(r.version);
      report(200);
      this.opts.observer?.predicted(r.version.name, (performance.now() - t0) / 1000);
      return r;
    } catch (e) {
      const api = fromServing(e);
      report(httpError(api)?.status ?? 500);
      throw api;
    }
  }

  /** TF Serving predict: a request body (its text, JSON) for the model `target` names. */
  predict(target: ModelTarget, body: string | undefined): Promise<PredictResult> {
    return this.measured('tf-serving', target, async (count) => {
      const { version, info } = await this.servable(target);
      const input = packPredictText(body, info, this.opts.maxInstances);
      count(input.rows);
      if (input.images) await this.decodeInto(input.images, info, input.data);
      const out = await this.run(version, info, input.rows, input.data);
      checkFinite(out, outputSize(info), input.format === 'row' ? 'instances' : 'inputs');
      return { version, body: formatPredictions(input.format, out, input.rows, info.outputShape) };
    });
  }

  /** Open Inference Protocol infer: a request body (its text, JSON) for the model `target` names. */
  infer(target: ModelTarget, body: string | undefined): Promise<InferResult> {
    return this.measured('open-inference', target, async (count) => {
      const { version, info } = await this.servable(target);
      const input = parseInferRequest(body, info, this.opts.maxInstances);
      count(input.rows);
      const out = await this.run(version, info, input.rows, input.data);
      checkFinite(out, outputSize(info), 'instance');
      return { version, body: inferResponse(version.name, version.version, info, input, out) };
    });
  }

  async close(): Promise<void> {
    this.batcher.drain(new ServingUnavailableError('the server is shutting down'));
    await Promise.all([this.resolver.close(), this.pool.close()]);
  }
}
