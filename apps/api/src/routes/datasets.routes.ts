/**
 * Datasets over HTTP: `POST /v1/datasets/{name}` takes the file itself as the body (mounted before
 * express.json, so the body is never parsed or buffered), streams it into the artifact store while it
 * is validated, and registers it as the next version; list, show and delete versions.
 * Scopes (apps/api/src/auth/policy.ts): upload needs `submit`, delete `admin`, the GET routes `read`.
 */
import { Router, type Request, type Response } from 'express';
import { modelNameSchema, type UploadFormat } from '@mlq/contract';
import { ingestDataset, type ArchiveLimits, type DatasetRegistry } from '@mlq/core/datasets';
import { ConflictError, DataError, TooLargeError } from '@mlq/core/errors';
import { datasetBlobKey, type ArtifactStore } from '@mlq/core/storage';
import { ApiError, badRequest, conflict } from '../errors.ts';
import type { JobsService } from '../jobs.service.ts';

export interface DatasetRouteDeps {
  datasets: DatasetRegistry;
  store: ArtifactStore;
  jobs: JobsService;
  /** DATASET_MAX_BYTES. */
  maxBytes: number;
  limits: ArchiveLimits;
  /** IMAGE_MAX_PIXELS: an archive's image over it is a 400 naming the entry. */
  imageMaxPixels: number;
}

/** Media types of each upload format (the first is the one to send). */
export const uploadMediaTypes: Record<UploadFormat, string[]> = {
  csv: ['text/csv', 'application/csv'],
  jsonl: ['application/x-ndjson', 'application/jsonl', 'application/jsonlines'],
  zip: ['application/zip', 'application/x-zip-compressed'],
  'tar.gz': ['application/gzip', 'application/x-gzip', 'application/x-tar+gzip'],
};

/** Job states in which a job may still read its dataset. */
const LIVE_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

function nameParam(req: Request): string {
  const name = String(req.params.name);
  if (!modelNameSchema.safeParse(name).success)
    throw badRequest(`invalid dataset name "${name}"`, [
      { field: 'name', message: 'letters, digits, "_", "." and "-", starting with a letter or digit' },
    ]);
  return name;
}

function versionParam(req: Request): number {
  const v = Number(req.params.version);
  if (!Number.isInteger(v) || v < 1)
    throw badRequest('version must be a positive integer', [
      { field: 'version', message: 'not a positive integer' },
    ]);
  return v;
}

/** `?format=` or the Content-Type, else a 415 listing what is accepted. */
function formatOf(req: Request): UploadFormat {
  const q = req.query.format;
  if (q !== undefined) {
    if (typeof q === 'string' && q in uploadMediaTypes) return q as UploadFormat;
    throw badRequest(`format must be one of ${Object.keys(uploadMediaTypes).join(', ')}`, [
      { field: 'format', message: `unknown format "${String(q)}"` },
    ]);
  }
  const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  for (const [f, types] of Object.entries(uploadMediaTypes))
    if (types.includes(type)) return f as UploadFormat;
  const accepted = Object.values(uploadMediaTypes)
    .map((t) => t[0])
    .join(', ');
  throw new ApiError(
    415,
    'unsupported_media_type',
    `Content-Type "${type || '(none)'}" is not a dataset format: send ${accepted}, or give ?format=csv|jsonl|zip|tar.gz`,
    [{ field: 'Content-Type', message: 'not a dataset format' }],
  );
}

/** After a refusal mid-body: the rest is not read, so the connection cannot carry another request. */
function refuseMidBody(req: Request, res: Response, e: ApiError): never {
  if (!req.complete) {
    res.set('Connection', 'close');
    req.resume();
  }
  throw e;
}

async function upload(req: Request, res: Response, deps: DatasetRouteDeps): Promise<void> {
  const name = nameParam(req);
  const format = formatOf(req);
  const label = typeof req.query.label === 'string' ? req.query.label : undefined;
  const declared = Number(req.get('content-length') ?? Number.NaN);
  if (declared > deps.maxBytes)
    refuseMidBody(
      req,
      res,
      new ApiError(
        413,
        'payload_too_large',
        `the upload is ${declared} bytes; DATASET_MAX_BYTES is ${deps.maxBytes}`,
      ),
    );
  try {
    const v = await ingestDataset(req, {
      name,
      format,
      label,
      store: deps.store,
      registry: deps.datasets,
      maxBytes: deps.maxBytes,
      limits: deps.limits,
      imageMaxPixels: deps.imageMaxPixels,
    });
    res.status(201).location(`/v1/datasets/${name}/versions/${v.version}`).json(v);
  } catch (e) {
    if (e instanceof TooLargeError)
      refuseMidBody(req, res, new ApiError(413, 'payload_too_large', e.message));
    if (e instanceof DataError) {
      const field = /^label: /.test(e.message) ? 'label' : 'body';
      refuseMidBody(
        req,
        res,
        new ApiError(400, 'invalid_dataset', `invalid ${format} dataset: ${e.message}`, [
          { field, message: e.message },
        ]),
      );
    }
    throw e;
  }
}

/** Ids of the jobs (among those submitted with a version) that are still waiting or running. */
function busyJobs(jobs: JobsService) {
  return async (ids: string[]): Promise<string[]> => {
    const busy: string[] = [];
    for (const id of ids) {
      const job = await jobs.get(id).catch(() => undefined);
      if (job && LIVE_STATES.has(await job.getState())) busy.push(id);
    }
    return busy;
  };
}

export function datasetsRouter(deps: DatasetRouteDeps): Router {
  const r = Router();
  r.post('/v1/datasets/:name', (req, res) => upload(req, res, deps));
  r.get('/v1/datasets', async (_req, res) => {
    res.json({ datasets: await deps.datasets.list() });
  });
  r.get('/v1/datasets/:name', async (req, res) => {
    const name = nameParam(req);
    res.json({ name, versions: await deps.datasets.versions(name) });
  });
  r.get('/v1/datasets/:name/versions/:version', async (req, res) => {
    res.json(await deps.datasets.get(nameParam(req), versionParam(req)));
  });
  r.delete('/v1/datasets/:name/versions/:version', async (req, res) => {
    const drop = (sha: string) => deps.store.delete(datasetBlobKey(sha));
    try {
      await deps.datasets.remove(nameParam(req), versionParam(req), busyJobs(deps.jobs), drop);
    } catch (e) {
      if (e instanceof ConflictError) throw conflict(e.message);
      throw e;
    }
    res.status(204).end();
  });
  return r;
}
