/**
 * A job's outputs, for users without store credentials: what `GET /v1/jobs/{id}/artifacts` lists and
 * how each is streamed. A model goes out as a `.zip` of its model.json and weight shards (yazl, built
 * while it is sent, one shard read from the store at a time); a batch-predict output as the file it is.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import yazl from 'yazl';
import type { ArtifactView, JobView } from '@mlq/contract';
import { DataError, InputError, NotFoundError } from '@mlq/core/errors';
import { resolveDataPath, type ArtifactStore } from '@mlq/core/storage';
import { conflict } from './errors.ts';

export interface ArtifactSources {
  store: ArtifactStore;
  /** The API's DATA_ROOTS: a file:// output inside them can be sent too (one host, or shared disks). */
  dataRoots: readonly string[];
}

const contentTypes: Record<string, string> = {
  '.jsonl': 'application/x-ndjson',
  '.csv': 'text/csv',
  '.json': 'application/json',
};
const MODEL_ZIP = 'application/zip';
const OTHER = 'application/octet-stream';

/** Every Content-Type a download may have (for the OpenAPI document). */
export const artifactContentTypes = [MODEL_ZIP, ...Object.values(contentTypes), OTHER];

/** A local path for a file:// URI inside the roots, or undefined when the API cannot read it. */
async function localFile(uri: string, dataRoots: readonly string[]): Promise<string | undefined> {
  if (!uri.startsWith('file://')) return undefined;
  try {
    const p = await resolveDataPath(uri, dataRoots);
    return (await stat(p)).isFile() ? p : undefined;
  } catch (e) {
    if (e instanceof DataError || e instanceof InputError) return undefined;
    throw e;
  }
}

function modelArtifact(id: string, m: { name: string; version: number; uri: string }): ArtifactView {
  return {
    name: 'model.zip',
    kind: 'model',
    contentType: MODEL_ZIP,
    uri: m.uri,
    href: `/v1/jobs/${id}/artifacts/model.zip`,
    model: { name: m.name, version: m.version },
  };
}

/** The outputs of a completed job; none for other states and for evaluate (its result is the output). */
export async function listArtifacts(job: JobView, src: ArtifactSources): Promise<ArtifactView[]> {
  if (job.state !== 'completed' || !job.result) return [];
  const r = job.result as Record<string, unknown>;
  switch (job.type) {
    case 'fine-tune':
      return [modelArtifact(job.id, (r as { model: { name: string; version: number; uri: string } }).model)];
    case 'tune':
      return [
        modelArtifact(
          job.id,
          (r as { best: { model: { name: string; version: number; uri: string } } }).best.model,
        ),
      ];
    case 'batch-predict': {
      const uri = String(r.outputUri);
      const name = path.posix.basename(uri);
      const a: ArtifactView = {
        name,
        kind: 'predictions',
        contentType: contentTypes[path.posix.extname(name)] ?? OTHER,
        uri,
      };
      const file = src.store.keyOf(uri) === undefined ? await localFile(uri, src.dataRoots) : undefined;
      if (file) a.bytes = (await stat(file)).size;
      if (src.store.keyOf(uri) !== undefined || file) a.href = `/v1/jobs/${job.id}/artifacts/${name}`;
      return [a];
    }
    default:
      return [];
  }
}

export interface ArtifactBody {
  body: Readable;
  /** Known for plain files; a zip is sent chunked. */
  bytes?: number;
}

/** A zip of a store model: model.json and every weight shard its manifest names, beside it. */
async function modelZip(uri: string, store: ArtifactStore): Promise<ArtifactBody> {
  const key = store.keyOf(uri);
  if (key === undefined) throw new NotFoundError(`the model ${uri} is not in the artifact store`);
  const json = await store.get(key);
  let manifest: { paths: string[] }[] | undefined;
  try {
    manifest = (JSON.parse(json.toString('utf8')) as { weightsManifest?: { paths: string[] }[] })
      .weightsManifest;
  } catch (e) {
    // E.g. overwritten by something else: the stored model cannot be packed, which no retry changes.
    throw conflict(
      `the stored model ${uri} is unreadable: its model.json is not JSON (${(e as Error).message})`,
    );
  }
  if (manifest !== undefined && !Array.isArray(manifest)) {
    throw conflict(`the stored model ${uri} is unreadable: its model.json's weightsManifest is not a list`);
  }
  const dir = path.posix.dirname(key);
  const zip = new yazl.ZipFile();
  zip.addBuffer(json, 'model.json');
  for (const group of manifest ?? []) {
    for (const p of group.paths) {
      const name = path.posix.normalize(p);
      if (name.startsWith('../') || path.posix.isAbsolute(name)) continue;
      // Weights are floats: deflate would cost CPU for little. Read when yazl reaches the entry.
      zip.addReadStreamLazy(name, { compress: false }, (cb) => {
        store.getStream(`${dir}/${name}`).then(
          (s) => cb(null, s.body),
          (e: unknown) => cb(e, undefined as never),
        );
      });
    }
  }
  zip.end();
  return { body: zip.outputStream as Readable };
}

/** Opens one artifact of a job by name; NotFoundError when it has no such artifact or it cannot be read. */
export async function openArtifact(
  job: JobView,
  name: string,
  src: ArtifactSources,
): Promise<{ artifact: ArtifactView } & ArtifactBody> {
  const artifact = (await listArtifacts(job, src)).find((a) => a.name === name);
  if (!artifact?.href) throw new NotFoundError(`job "${job.id}" has no downloadable artifact "${name}"`);
  if (artifact.kind === 'model') return { artifact, ...(await modelZip(artifact.uri, src.store)) };
  const key = src.store.keyOf(artifact.uri);
  if (key !== undefined) return { artifact, ...(await src.store.getStream(key)) };
  const file = (await localFile(artifact.uri, src.dataRoots))!;
  return { artifact, body: createReadStream(file), bytes: (await stat(file)).size };
}
