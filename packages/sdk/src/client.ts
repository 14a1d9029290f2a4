/** `MlqClient`: one typed method per route of the public API (docs/api.md). */
import type { DatasetVersionList, JobLogs, LabelBody, ModelList, WorkerList } from '@mlq/contract';
import { parseRef, predictPath } from './refs.ts';
import { seg, Transport, type CallOptions, type FetchLike } from './transport.ts';
import type {
  AnyJob,
  CancelResult,
  Health,
  InferRequest,
  InferResponse,
  Job,
  JobEvent,
  JobInputOf,
  JobName,
  JobPage,
  LabelResult,
  ListJobsQuery,
  ModelDetail,
  ModelMetadata,
  ModelRef,
  ModelSummary,
  ModelVersion,
  PredictColumnarResponse,
  PredictInstance,
  PredictResponse,
  Readiness,
  RunHistory,
  JobsEvent,
  TensorLike,
  WorkerInfo,
} from './types.ts';
import {
  listArtifacts,
  listDatasets,
  uploadDataset,
  type ArtifactView,
  type DatasetSummary,
  type DatasetUpload,
  type DatasetVersion,
  type UploadData,
  type UploadOptions,
} from './upload.ts';
import { allJobEvents, jobEvents, waitForJob, type WaitOptions } from './wait.ts';

/** How to reach the API. */
export interface MlqClientOptions {
  /** The API's root, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string | undefined;
  /** A fetch to use instead of the global one. */
  fetch?: FetchLike | undefined;
}

/** Options of a job submission. */
export interface SubmitOptions extends CallOptions {
  /** Repeating a submission with the same key returns the first job instead of a new one. */
  idempotencyKey?: string | undefined;
}

/**
 * A typed client of the mlq HTTP API. It uses only `fetch` and web streams, so it runs in Node 18+
 * and in browsers. Every method throws `MlqApiError` for an error answer.
 *
 * @example
 * const mlq = new MlqClient({ baseUrl: 'http://127.0.0.1:3000' });
 * const job = await mlq.fineTune({ model: 'digits', architecture: 'mlp', dataset: { format: 'mnist' }, epochs: 2 });
 * const done = await mlq.waitForJob(job, { onProgress: (p) => console.log(p.epoch, p.acc) });
 */
export class MlqClient {
  /** The HTTP layer; exposed for routes the client does not wrap yet. */
  readonly transport: Transport;

  constructor(opts: MlqClientOptions) {
    this.transport = new Transport(opts.baseUrl, opts.apiKey, opts.fetch);
  }

  /** The API root this client talks to. */
  get baseUrl(): string {
    return this.transport.baseUrl;
  }

  // ---- jobs ----

  /** `POST /v1/jobs/{type}`: queues a job; the payload is typed by the job type. */
  submitJob<N extends JobName>(type: N, payload: JobInputOf<N>, opts: SubmitOptions = {}): Promise<Job<N>> {
    const headers = {
      ...opts.headers,
      ...(opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {}),
    };
    return this.transport.json<Job<N>>('POST', `/v1/jobs/${seg(type)}`, {
      body: payload,
      headers,
      signal: opts.signal,
    });
  }

  /** Queues a fine-tune job (train or transfer-learn a model and register it). */
  fineTune(payload: JobInputOf<'fine-tune'>, opts?: SubmitOptions): Promise<Job<'fine-tune'>> {
    return this.submitJob('fine-tune', payload, opts);
  }

  /** Queues an evaluate job (metrics of a model on a dataset). */
  evaluate(payload: JobInputOf<'evaluate'>, opts?: SubmitOptions): Promise<Job<'evaluate'>> {
    return this.submitJob('evaluate', payload, opts);
  }

  /** Queues a batch-predict job (a model over a dataset, written to a file). */
  batchPredict(payload: JobInputOf<'batch-predict'>, opts?: SubmitOptions): Promise<Job<'batch-predict'>> {
    return this.submitJob('batch-predict', payload, opts);
  }

  /** Queues a tune job (a hyper-parameter search of fine-tune trials). */
  tune(payload: JobInputOf<'tune'>, opts?: SubmitOptions): Promise<Job<'tune'>> {
    return this.submitJob('tune', payload, opts);
  }

  /** `GET /v1/jobs/{id}`: a job of any type; narrow it with `job.type`. */
  getJob(id: string, opts: CallOptions = {}): Promise<AnyJob> {
    return this.transport.json<AnyJob>('GET', `/v1/jobs/${seg(id)}`, opts);
  }

  /** `GET /v1/jobs`: a page of jobs, newest first, optionally of one type and state. */
  listJobs<N extends JobName>(
    query: ListJobsQuery<N> & { type: N },
    opts?: CallOptions,
  ): Promise<JobPage<Job<N>>>;
  listJobs(query?: ListJobsQuery, opts?: CallOptions): Promise<JobPage>;
  listJobs(query: ListJobsQuery = {}, opts: CallOptions = {}): Promise<JobPage> {
    return this.transport.json<JobPage>('GET', '/v1/jobs', { ...opts, query: { ...query } });
  }

  /** `GET /v1/jobs/{id}/logs`: the job's log lines. */
  async jobLogs(id: string, opts: CallOptions = {}): Promise<string[]> {
    return (await this.transport.json<JobLogs>('GET', `/v1/jobs/${seg(id)}/logs`, opts)).logs;
  }

  /** `DELETE /v1/jobs/{id}`: removes a waiting job, or asks a running one to stop after its current batch. */
  cancelJob(id: string, opts: CallOptions = {}): Promise<CancelResult> {
    return this.transport.json<CancelResult>('DELETE', `/v1/jobs/${seg(id)}`, opts);
  }

  /** `POST /v1/jobs/{id}/retry`: runs a failed job again. */
  retryJob(id: string, opts: CallOptions = {}): Promise<AnyJob> {
    return this.transport.json<AnyJob>('POST', `/v1/jobs/${seg(id)}/retry`, opts);
  }

  /**
   * `GET /v1/jobs/{id}/events`: the job's progress and state changes as they happen. The first event is
   * a `state` event with the whole job; the iteration ends after the job ends (a final `state` event
   * with the whole job) or when `signal` aborts (without an error).
   */
  events(
    id: string,
    opts: { signal?: AbortSignal | undefined } = {},
  ): AsyncGenerator<JobEvent, void, undefined> {
    return jobEvents(this, id, opts);
  }

  /**
   * `GET /v1/events`: every job's progress and state changes (of one type, if given), for views of
   * many jobs. Ends when `signal` aborts (without an error).
   */
  allEvents(
    opts: { type?: JobName | undefined; signal?: AbortSignal | undefined } = {},
  ): AsyncGenerator<JobsEvent, void, undefined> {
    return allJobEvents(this, opts);
  }

  /** `GET /v1/jobs/{id}/history`: a training job's curves (per epoch and within epochs) so far. */
  jobHistory(id: string, opts: CallOptions = {}): Promise<RunHistory> {
    return this.transport.json<RunHistory>('GET', `/v1/jobs/${seg(id)}/history`, opts);
  }

  /**
   * Resolves with the job once it has completed; rejects with `JobFailedError` if it failed or was
   * cancelled, `WaitTimeoutError` after `timeoutMs`. Follows the events stream and polls if it drops.
   */
  waitForJob<N extends JobName>(job: Job<N>, opts?: WaitOptions<N>): Promise<Job<N>>;
  waitForJob(id: string, opts?: WaitOptions): Promise<AnyJob>;
  waitForJob(job: string | { id: string }, opts: WaitOptions = {}): Promise<AnyJob> {
    return waitForJob(this, typeof job === 'string' ? job : job.id, opts) as Promise<AnyJob>;
  }

  // ---- datasets and artifacts ----

  /**
   * `POST /v1/datasets/{name}`: uploads a CSV, JSONL or image-folder archive (zip, tar.gz) as the next
   * version of `name`, streamed. Returns the version: its `uri` (`dataset://name@3`) is what a job's
   * dataset `uri` takes, and `warnings` (e.g. a CSV without a label column, JSONL lines without `y`).
   * In Node, `fs.openAsBlob(path)` gives a file as a Blob without reading it.
   */
  uploadDataset(name: string, data: UploadData, opts?: UploadOptions): Promise<DatasetUpload> {
    return uploadDataset(this.transport, name, data, opts);
  }

  /** `GET /v1/datasets`: every dataset with its versions. */
  listDatasets(opts?: CallOptions): Promise<DatasetSummary[]> {
    return listDatasets(this.transport, opts);
  }

  /** `GET /v1/datasets/{name}`: a dataset's versions, oldest first. */
  async getDataset(name: string, opts: CallOptions = {}): Promise<DatasetVersion[]> {
    const path = `/v1/datasets/${seg(name)}`;
    return (await this.transport.json<DatasetVersionList>('GET', path, opts)).versions;
  }

  /** `DELETE /v1/datasets/{name}/versions/{v}`; a 409 while a waiting or running job uses it. */
  async deleteDatasetVersion(name: string, version: number, opts: CallOptions = {}): Promise<void> {
    await this.transport.send('DELETE', `/v1/datasets/${seg(name)}/versions/${seg(version)}`, opts);
  }

  /** `GET /v1/jobs/{id}/artifacts`: a completed job's outputs (model zip, predictions file). */
  listArtifacts(jobId: string, opts?: CallOptions): Promise<ArtifactView[]> {
    return listArtifacts(this.transport, jobId, opts);
  }

  /**
   * `GET /v1/jobs/{id}/artifacts/{name}`: the response, whose `body` streams the file (no store
   * credentials needed). E.g. in Node: `await pipeline(Readable.fromWeb(res.body), createWriteStream(p))`.
   */
  downloadArtifact(jobId: string, name: string, opts: CallOptions = {}): Promise<Response> {
    const path = `/v1/jobs/${seg(jobId)}/artifacts/${seg(name)}`;
    return this.transport.send('GET', path, { ...opts, accept: '*/*' });
  }

  // ---- models ----

  /** `GET /v1/models`: every model with its latest version and labels. */
  async listModels(opts: CallOptions = {}): Promise<ModelSummary[]> {
    return (await this.transport.json<ModelList>('GET', '/v1/models', opts)).models;
  }

  /** `GET /v1/models/{name}`: the model's versions (metrics, params, lineage) and labels. */
  getModel(name: string, opts: CallOptions = {}): Promise<ModelDetail> {
    return this.transport.json<ModelDetail>('GET', `/v1/models/${seg(name)}`, opts);
  }

  /** `GET /v1/models/{name}/versions/{version}`: one version. */
  getModelVersion(name: string, version: number, opts: CallOptions = {}): Promise<ModelVersion> {
    return this.transport.json<ModelVersion>('GET', `/v1/models/${seg(name)}/versions/${seg(version)}`, opts);
  }

  /** `GET /v1/models/{name}/versions/{version}/history`: the training curves kept on a version. */
  getModelVersionHistory(name: string, version: number, opts: CallOptions = {}): Promise<RunHistory> {
    return this.transport.json<RunHistory>(
      'GET',
      `/v1/models/${seg(name)}/versions/${seg(version)}/history`,
      opts,
    );
  }

  /** `PUT /v1/models/{name}/labels/{label}`: points a label (e.g. `production`) at a version. */
  setLabel(name: string, label: string, version: number, opts: CallOptions = {}): Promise<LabelResult> {
    return this.transport.json<LabelResult>('PUT', `/v1/models/${seg(name)}/labels/${seg(label)}`, {
      ...opts,
      body: { version } satisfies LabelBody,
    });
  }

  /** `DELETE /v1/models/{name}/labels/{label}`: removes a label. */
  async deleteLabel(name: string, label: string, opts: CallOptions = {}): Promise<void> {
    await this.transport.send('DELETE', `/v1/models/${seg(name)}/labels/${seg(label)}`, opts);
  }

  /** `POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict` with `{"instances"}` (TF Serving's row format). */
  predict(ref: ModelRef, instances: PredictInstance[], opts: CallOptions = {}): Promise<PredictResponse> {
    return this.transport.json<PredictResponse>('POST', predictPath(ref), { ...opts, body: { instances } });
  }

  /** The same route with `{"inputs"}` (TF Serving's columnar format) → `{"outputs"}`. */
  predictColumnar(
    ref: ModelRef,
    inputs: TensorLike | Record<string, TensorLike>,
    opts: CallOptions = {},
  ): Promise<PredictColumnarResponse> {
    return this.transport.json<PredictColumnarResponse>('POST', predictPath(ref), {
      ...opts,
      body: { inputs },
    });
  }

  /**
   * The Open Inference Protocol path of a model (`/v2/models/{name}[/versions/{v}]` + `suffix`). The
   * protocol has no labels: a label is resolved to its version first (one more request).
   */
  private async v2Path(ref: ModelRef, suffix: string, opts: CallOptions): Promise<string> {
    const r = parseRef(ref);
    let version = r.version;
    if (r.label !== undefined) {
      const path = `/v1/models/${seg(r.name)}/labels/${seg(r.label)}`;
      version = (await this.transport.json<ModelVersion>('GET', path, opts)).version;
    }
    const base = `/v2/models/${seg(r.name)}`;
    return `${version === undefined ? base : `${base}/versions/${seg(version)}`}${suffix}`;
  }

  /**
   * `GET /v2/models/{name}[/versions/{v}]`: the model's input and output tensors (name, datatype,
   * shape with -1 for the batch) and versions, as the Open Inference Protocol describes a model.
   */
  async metadata(ref: ModelRef, opts: CallOptions = {}): Promise<ModelMetadata> {
    return this.transport.json<ModelMetadata>('GET', await this.v2Path(ref, '', opts), opts);
  }

  /**
   * `POST /v2/models/{name}[/versions/{v}]/infer`: an Open Inference Protocol inference. Typed-array
   * `data` is sent as a JSON array. A full queue is a `MlqApiError` with status 503.
   * @example
   * const { inputs: [input] } = await mlq.metadata('digits');
   * const r = await mlq.infer('digits', { inputs: [{ name: input.name, shape: [1, 28, 28, 1], datatype: 'FP32', data: pixels }] });
   * r.outputs[0].data; // the scores, flat
   */
  async infer(ref: ModelRef, request: InferRequest, opts: CallOptions = {}): Promise<InferResponse> {
    const body = {
      ...request,
      inputs: request.inputs.map((i) => ({
        ...i,
        data: Array.isArray(i.data) ? i.data : Array.from(i.data),
      })),
    };
    return this.transport.json<InferResponse>('POST', await this.v2Path(ref, '/infer', opts), {
      ...opts,
      body,
    });
  }

  // ---- operations ----

  /** `GET /v1/workers`: the live worker processes. */
  async workers(opts: CallOptions = {}): Promise<WorkerInfo[]> {
    return (await this.transport.json<WorkerList>('GET', '/v1/workers', opts)).workers;
  }

  /** `GET /healthz`: the API process is up (no key needed). */
  health(opts: CallOptions = {}): Promise<Health> {
    return this.transport.json<Health>('GET', '/healthz', opts);
  }

  /** `GET /readyz`: Redis is reachable; a 503 rejects with `MlqApiError` (status 503). */
  ready(opts: CallOptions = {}): Promise<Readiness> {
    return this.transport.json<Readiness>('GET', '/readyz', opts);
  }

  /** `GET /metrics`: Prometheus text. */
  async metrics(opts: CallOptions = {}): Promise<string> {
    return (await this.transport.send('GET', '/metrics', { ...opts, accept: 'text/plain' })).text();
  }

  /** `GET /openapi.json`: the API's OpenAPI document. */
  openapi(opts: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.transport.json<Record<string, unknown>>('GET', '/openapi.json', opts);
  }
}
