import { Router } from 'express';
import { z } from 'zod';
import { describeIssues } from '@mlq/contract';
import type { ModelRegistry } from '@mlq/core/registry';
import { badRequest } from '../errors.ts';

const labelBody = z.object({ version: z.number().int().min(1) });
const labelName = /^[a-zA-Z][\w.-]{0,63}$/;

export function modelsRouter(registry: ModelRegistry): Router {
  const r = Router();
  r.get('/v1/models', async (_req, res) => {
    res.json({ models: await registry.list() });
  });
  r.get('/v1/models/:name', async (req, res) => {
    const name = String(req.params.name);
    res.json({ name, labels: await registry.labels(name), versions: await registry.versions(name) });
  });
  r.get('/v1/models/:name/versions/:version', async (req, res) => {
    const v = Number(req.params.version);
    if (!Number.isInteger(v) || v < 1)
      throw badRequest('version must be a positive integer', [
        { field: 'version', message: 'not a positive integer' },
      ]);
    res.json(await registry.get(String(req.params.name), v));
  });
  r.put('/v1/models/:name/labels/:label', async (req, res) => {
    const label = String(req.params.label);
    if (!labelName.test(label)) {
      throw badRequest('a label starts with a letter and has at most 64 letters, digits, "_", "." or "-"', [
        { field: 'label', message: 'invalid label' },
      ]);
    }
    const body = labelBody.safeParse(req.body);
    if (!body.success) throw badRequest('body must be {"version": <n>}', describeIssues(body.error));
    await registry.setLabel(String(req.params.name), label, body.data.version);
    res.json({ name: req.params.name, label, version: body.data.version });
  });
  r.delete('/v1/models/:name/labels/:label', async (req, res) => {
    await registry.deleteLabel(String(req.params.name), String(req.params.label));
    res.status(204).end();
  });
  return r;
}
