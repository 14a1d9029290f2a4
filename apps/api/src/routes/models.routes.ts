/**
 * The registry's routes. `GET /v1/models/{name}[/versions/{v}|/labels/{label}]` answer the registry's
 * JSON with TF Serving's `model_version_status` added (serving/tf-serving.ts), so one URL serves both
 * the SDK and TF Serving clients; the metadata and predict routes are in serving/predict.routes.ts.
 */
import { Router } from 'express';
import type { z } from 'zod';
import {
  describeIssues,
  labelBodySchema,
  labelNameIssue,
  type labelResultSchema,
  type modelDetailSchema,
  type modelListSchema,
  type ModelVersion,
  type modelVersionStatusViewSchema,
} from '@mlq/contract';
import { NotFoundError } from '@mlq/core/errors';
// Not @mlq/core/jobs: that loads the processors and tfjs, which the API's main thread never runs.
import { loadRunHistory } from '@mlq/core/run-history';
import type { ModelRegistry } from '@mlq/core/registry';
import type { ArtifactStore } from '@mlq/core/storage';
import { badRequest } from '../errors.ts';
import { jsonObjectOf } from '../json-body.ts';
import { modelVersionStatus, type VersionState } from '../serving/tf-serving.ts';

function versionParam(raw: unknown): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1)
    throw badRequest('version must be a positive integer', [
      { field: 'version', message: 'not a positive integer' },
    ]);
  return v;
}

/** How a version stands for serving; every version is AVAILABLE when nothing serves here. */
export type StateOf = (v: ModelVersion) => VersionState;

export function modelsRouter(
  registry: ModelRegistry,
  store: ArtifactStore,
  stateOf: StateOf = () => ({ state: 'AVAILABLE' }),
): Router {
  const r = Router();
  const status = (versions: ModelVersion[]) =>
    modelVersionStatus(versions.map((v) => ({ version: v.version, state: stateOf(v) })));
  r.get('/v1/models', async (_req, res) => {
    res.json({ models: await registry.list() } satisfies z.infer<typeof modelListSchema>);
  });
  r.get('/v1/models/:name', async (req, res) => {
    const name = String(req.params.name);
    const versions = await registry.versions(name);
    res.json({
      name,
      labels: await registry.labels(name),
      versions,
      ...status(versions),
    } satisfies z.infer<typeof modelDetailSchema>);
  });
  r.get('/v1/models/:name/versions/:version', async (req, res) => {
    const version = await registry.get(String(req.params.name), versionParam(req.params.version));
    res.json({ ...version, ...status([version]) } satisfies z.infer<typeof modelVersionStatusViewSchema>);
  });
  // Its training curves: kept on the version; versions registered before that, from the job's run folder.
  r.get('/v1/models/:name/versions/:version/history', async (req, res) => {
    const name = String(req.params.name);
    const v = versionParam(req.params.version);
    const version = await registry.get(name, v);
    const history =
      (await registry.history(name, v)) ??
      (await loadRunHistory(store, version.jobId).catch(() => undefined));
    res.json(history ?? { epochs: [], points: [] });
  });
  r.get('/v1/models/:name/labels/:label', async (req, res) => {
    const name = String(req.params.name);
    const label = String(req.params.label);
    const v = (await registry.labels(name))[label];
    if (v === undefined) {
      await registry.versions(name); // an unknown model is reported as such first
      throw new NotFoundError(`model "${name}" has no label "${label}"`);
    }
    const version = await registry.get(name, v);
    res.json({ ...version, ...status([version]) } satisfies z.infer<typeof modelVersionStatusViewSchema>);
  });
  r.put('/v1/models/:name/labels/:label', async (req, res) => {
    const label = String(req.params.label);
    const issue = labelNameIssue(label);
    if (issue) throw badRequest(`invalid label "${label}": ${issue}`, [{ field: 'label', message: issue }]);
    const body = labelBodySchema.safeParse(jsonObjectOf(req));
    if (!body.success) throw badRequest('body must be {"version": <n>}', describeIssues(body.error));
    await registry.setLabel(String(req.params.name), label, body.data.version);
    res.json({
      name: String(req.params.name),
      label,
      version: body.data.version,
    } satisfies z.infer<typeof labelResultSchema>);
  });
  r.delete('/v1/models/:name/labels/:label', async (req, res) => {
    await registry.deleteLabel(String(req.params.name), String(req.params.label));
    res.status(204).end();
  });
  return r;
}
