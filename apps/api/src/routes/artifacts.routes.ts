/**
 * Results without store credentials: `GET /v1/jobs/{id}/artifacts` lists a job's outputs and
 * `GET /v1/jobs/{id}/artifacts/{name}` streams one (see artifacts.ts). Scope: `read` (auth/policy.ts).
 */
import { Router } from 'express';
import { pipeline } from 'node:stream/promises';
import { listArtifacts, openArtifact, type ArtifactSources } from '../artifacts.ts';
import type { JobsService } from '../jobs.service.ts';

export function artifactsRouter(jobs: JobsService, src: ArtifactSources): Router {
  const r = Router();
  r.get('/v1/jobs/:id/artifacts', async (req, res) => {
    const view = await jobs.view(await jobs.get(String(req.params.id)));
    res.json({ id: view.id, state: view.state, artifacts: await listArtifacts(view, src) });
  });
  r.get('/v1/jobs/:id/artifacts/:name', async (req, res) => {
    const view = await jobs.view(await jobs.get(String(req.params.id)));
    const { artifact, body, bytes } = await openArtifact(view, String(req.params.name), src);
    res.status(200);
    res.set('Content-Type', artifact.contentType);
    res.set('Content-Disposition', `attachment; filename="${artifact.name.replace(/["\\]/g, '_')}"`);
    if (bytes !== undefined) res.set('Content-Length', String(bytes));
    // Headers are sent: a failure from here on can only cut the stream, which the client sees as short.
    await pipeline(body, res).catch((e: Error) => {
      console.error(`artifact ${view.id}/${artifact.name}: ${e.message}`);
      res.destroy(e);
    });
  });
  return r;
}
