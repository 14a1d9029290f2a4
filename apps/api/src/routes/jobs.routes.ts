import { stat } from 'node:fs/promises';
import { Router, type Request } from 'express';
import { z } from 'zod';
import {
  describeIssues,
  isJobName,
  isUri,
  joinIssues,
  jobNames,
  jobType,
  parsePayload,
  valueAt,
  jobStates,
  type CancelResult,
  type EpochProgress,
  type DatasetSpec,
  type FieldIssue,
  type JobName,
  type JobState,
  type RunHistory,
} from '@mlq/contract';
import { csvColumns } from '@mlq/core/data';
import { DataError, InputError, ModelFormatError, NotFoundError } from '@mlq/core/errors';
import type { DatasetRegistry } from '@mlq/core/datasets';
import { checkModelFileUri } from '@mlq/core/model-files';
import type { ModelRegistry } from '@mlq/core/registry';
import { EgressRefusedError, type EgressPolicy } from '@mlq/core/remote';
// Not @mlq/core/jobs: that loads the processors and tfjs, which the API's main thread never runs.
import { loadRunHistory } from '@mlq/core/run-history';
import { checkOutputUri, parseS3Uri, resolveDataPath, type ArtifactStore } from '@mlq/core/storage';
import type { QueueEvents } from '@mlq/queues';
import { columnIssues, pinDatasets } from '../dataset-refs.ts';
import { jsonObjectOf } from '../json-body.ts';
import { pinModels } from '../model-refs.ts';
import { badRequest, notFound } from '../errors.ts';
import { principalOf } from '../auth/authenticate.ts';
import { bodySha256, type JobsService } from '../jobs.service.ts';

export interface JobsRouteDeps {
  jobs: JobsService;
  registry: ModelRegistry;
  datasets: DatasetRegistry;
  events: Record<JobName, QueueEvents>;
  dataRoots: readonly string[];
  store: ArtifactStore;
  /** The egress policy (FETCH_ALLOW_HOSTS): http(s):// URIs are checked at submit, as workers check them again. */
  egress: EgressPolicy;
}

/**
 * Why a worker would refuse to fetch `uri` (the egress policy: scheme, literal address, DNS), or why
 * an `s3://` URI is malformed; undefined for any other scheme, which is checked elsewhere.
 */
async function remoteIssue(uri: string, egress: EgressPolicy): Promise<string | undefined> {
  try {
    if (/^https?:\/\//i.test(uri)) await egress.check(uri);
    else if (uri.startsWith('s3://')) {
      const { endpoint } = parseS3Uri(uri);
      // An endpoint in the URI is a host the worker would connect to: the same policy applies.
      if (endpoint) await egress.check(endpoint);
    }
    return undefined;
  } catch (e) {
    if (e instanceof EgressRefusedError) return e.message;
    if (uri.startsWith('s3://')) return (e as Error).message;
    throw e;
  }
}

/**
 * Checks what the schema cannot, for the fields the job type declares as references: registry
 * models exist, a file:// model is a layers-model model.json inside DATA_ROOTS with its weights beside
 * it, file URIs stay inside DATA_ROOTS, http(s) URIs pass the egress policy, outputs stay out of the
 * artifact store and name a file.
 */
async function checkReferences(type: JobName, payload: unknown, deps: JobsRouteDeps): Promise<FieldIssue[]> {
  const issues: FieldIssue[] = [];
  const { refs } = jobType(type);
  for (const field of refs.models) {
    const ref = valueAt(payload, field);
    if (typeof ref !== 'string') continue;
    const storeKey = ref.startsWith('file://') ? deps.store.keyOf(ref) : undefined;
    if (storeKey !== undefined) {
      // A registered model's own URI: read from the artifact store, wherever DATA_ROOTS are.
      if (!(await deps.store.exists(storeKey)))
        issues.push({ field, message: `${ref} is not in the artifact store` });
      continue;
    }
    if (ref.startsWith('file://')) {
      // As the worker will read it: inside DATA_ROOTS, a file, a layers-model model.json with its weights.
      try {
        await checkModelFileUri(ref, deps.dataRoots);
      } catch (e) {
        if (e instanceof InputError || e instanceof DataError || e instanceof ModelFormatError)
          issues.push({ field, message: e.message });
        else throw e;
      }
      continue;
    }
    if (isUri(ref)) {
      const why = await remoteIssue(ref, deps.egress);
      if (why) issues.push({ field, message: why });
      continue;
    }
    try {
      await deps.registry.resolve(ref);
    } catch (e) {
      if (e instanceof NotFoundError) issues.push({ field, message: e.message });
      else throw e;
    }
  }
  for (const field of refs.datasets) {
    const ds = valueAt(payload, field) as DatasetSpec | undefined;
    if (!ds || !('uri' in ds)) continue;
    const why = await remoteIssue(ds.uri, deps.egress);
    if (why) issues.push({ field: `${field}.uri`, message: why });
    if (!ds.uri.startsWith('file://')) continue;
    try {
      const local = await resolveDataPath(ds.uri, deps.dataRoots);
      // A csv or jsonl dataset is read as one file (the worker says the same: data/lines.ts' lineFile).
      if ((ds.format === 'csv' || ds.format === 'jsonl') && (await stat(local)).isDirectory()) {
        issues.push({
          field: `${field}.uri`,
          message: `${ds.uri} is a directory; a ${ds.format} dataset is one file`,
        });
        continue;
      }
      // A CSV's header is one line: read it, and check label and features as for an upload.
      if (ds.format === 'csv')
        issues.push(
          ...columnIssues(ds, await csvColumns(local, ds.uri), ds.uri, field, refs.labelled.includes(field)),
        );
    } catch (e) {
      if (e instanceof InputError || e instanceof DataError)
        issues.push({ field: `${field}.uri`, message: e.message });
      else throw e;
    }
  }
  // Outputs: inside DATA_ROOTS, outside the artifact store, not a directory (the worker checks again).
  for (const field of refs.outputs) {
    const out = valueAt(payload, field);
    if (typeof out !== 'string') continue;
    try {
      await checkOutputUri(out, { dataRoots: deps.dataRoots, store: deps.store });
    } catch (e) {
      if (e instanceof InputError || e instanceof DataError) issues.push({ field, message: e.message });
      else throw e;
    }
  }
  return issues;
}

/** `GET /v1/jobs`'s query (the OpenAPI document describes it with this schema). */
export const listQuerySchema = z.object({
  type: z
    .enum(jobNames as [JobName, ...JobName[]])
    .optional()
    .meta({ description: 'only jobs of this type' }),
  state: z
    .enum(jobStates.filter((s) => s !== 'unknown') as [JobState, ...JobState[]])
    .optional()
    .meta({ description: 'only jobs in this state' }),
  limit: z.coerce.number().int().min(1).max(500).default(50).meta({ description: 'page size' }),
  offset: z.coerce.number().int().min(0).default(0).meta({ description: 'jobs to skip (newest first)' }),
});

function typeParam(req: Request): JobName {
  const t = String(req.params.type);
  if (!isJobName(t)) throw notFound(`unknown job type "${t}"; the types are ${jobNames.join(', ')}`);
  return t;
}

export function jobsRouter(deps: JobsRouteDeps): Router {
  const r = Router();

  r.post('/v1/jobs/:type', async (req, res) => {
    const type = typeParam(req);
    const body = jsonObjectOf(req);
    const parsed = parsePayload(type, body);
    if (!parsed.ok) throw badRequest(`invalid ${type} job: ${joinIssues(parsed.issues)}`, parsed.issues);
    const pins = await pinDatasets(type, parsed.value, deps.datasets);
    const modelPins = await pinModels(type, parsed.value, deps.registry);
    const refIssues = [...(await checkReferences(type, parsed.value, deps)), ...pins.issues];
    if (refIssues.length) throw badRequest(`invalid ${type} job: ${joinIssues(refIssues)}`, refIssues);
    const key = req.get('Idempotency-Key');
    if (key !== undefined && !/^[\w.:-]{1,200}$/.test(key)) {
      throw badRequest('Idempotency-Key must be 1-200 letters, digits, "_", ".", ":" or "-"', [
        { field: 'Idempotency-Key', message: 'invalid characters or length' },
      ]);
    }
    const idempotency =
      key === undefined
        ? undefined
        : { key, keyId: principalOf(res)?.keyId ?? 'anonymous', bodySha256: bodySha256(body) };
    const { view, created } = await deps.jobs.submit(type, parsed.value, idempotency, modelPins);
    // DELETE of a dataset version is refused while this job may still read it.
    for (const v of pins.pinned) await deps.datasets.markUse(v, view.id);
    res
      .status(created ? 202 : 200)
      .location(view.links.self)
      .json(view);
  });

  r.get('/v1/jobs', async (req, res) => {
    const q = listQuerySchema.safeParse(req.query);
    if (!q.success) throw badRequest('invalid query', describeIssues(q.error));
    const jobs = await deps.jobs.list(q.data);
    res.json({ jobs, limit: q.data.limit, offset: q.data.offset });
  });

  r.get('/v1/jobs/:id', async (req, res) => {
    res.json(await deps.jobs.view(await deps.jobs.get(String(req.params.id))));
  });

  r.get('/v1/jobs/:id/logs', async (req, res) => {
    res.json({ id: req.params.id, logs: await deps.jobs.logs(String(req.params.id)) });
  });

  // The run's curves from runs/<id>/history.json: still there after the job record is gone.
  r.get('/v1/jobs/:id/history', async (req, res) => {
    const id = String(req.params.id);
    const saved = await loadRunHistory(deps.store, id).catch(() => undefined);
    if (saved) return void res.json(saved);
    const job = await deps.jobs.get(id);
    const result = job.returnvalue as { history?: EpochProgress[] } | null | undefined;
    res.json({ epochs: result?.history ?? [], points: [] } satisfies RunHistory);
  });

  r.delete('/v1/jobs/:id', async (req, res) => {
    const out = await deps.jobs.cancel(String(req.params.id));
    res.status(202).json({ id: String(req.params.id), ...out } satisfies CancelResult);
  });

  r.post('/v1/jobs/:id/retry', async (req, res) => {
    res.status(202).json(await deps.jobs.retry(String(req.params.id)));
  });

  r.get('/v1/jobs/:id/events', async (req, res) => {
    const job = await deps.jobs.get(String(req.params.id));
    const id = job.id!;
    const events = deps.events[job.name as JobName];
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
    });
    const send = (event: string, data: unknown) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    const onProgress = (a: { jobId: string; data: unknown }) => a.jobId === id && send('progress', a.data);
    const onActive = (a: { jobId: string }) => a.jobId === id && send('state', { state: 'active' });
    const finish = async () => {
      const fresh = await deps.jobs.get(id).catch(() => undefined);
      if (fresh) send('state', await deps.jobs.view(fresh));
      res.end();
    };
    const onDone = (a: { jobId: string }) => a.jobId === id && void finish();
    // A failed attempt that will be retried is "retries-exhausted"-free: only stop on a final state.
    const onFailed = async (a: { jobId: string }) => {
      if (a.jobId !== id) return;
      const s = await (await deps.jobs.get(id)).getState();
      if (s === 'failed') await finish();
      else send('state', { state: s });
    };
    events.on('progress', onProgress);
    events.on('active', onActive);
    events.on('completed', onDone);
    events.on('failed', onFailed);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(ping);
      events.off('progress', onProgress);
      events.off('active', onActive);
      events.off('completed', onDone);
      events.off('failed', onFailed);
    });
    const view = await deps.jobs.view(job);
    send('state', view);
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled') res.end();
  });

  return r;
}
