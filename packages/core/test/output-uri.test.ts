/**
 * The output rule the API applies at submit and the worker again before writing (storage/output-uri.ts),
 * on real files: outside the artifact store (file or S3), not a directory, not below a file, inside
 * DATA_ROOTS; a fresh or existing output file outside the store passes.
 */
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/util/errors.ts';
import { checkOutputUri, FileArtifactStore, S3ArtifactStore } from '../src/storage/index.ts';

describe('checkOutputUri', () => {
  let root: string;
  let store: FileArtifactStore;
  const uri = (...p: string[]) => pathToFileURL(path.join(root, ...p)).href;
  const check = (u: string, s: FileArtifactStore | S3ArtifactStore = store) =>
    checkOutputUri(u, { dataRoots: [root], store: s });

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'mlq-output-uri-'));
    store = new FileArtifactStore(path.join(root, 'artifacts'));
    await mkdir(path.join(root, 'artifacts', 'runs', 'j1', 'model'), { recursive: true });
    await writeFile(path.join(root, 'artifacts', 'runs', 'j1', 'model', 'model.json'), '{}');
    await mkdir(path.join(root, 'out'));
    await writeFile(path.join(root, 'out', 'old.jsonl'), 'previous output\n');
    await writeFile(path.join(root, 'plain.txt'), 'a file');
    await symlink(path.join(root, 'artifacts'), path.join(root, 'alias'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('refuses a file:// output inside a file store, by its URI or through a symlink', async () => {
    for (const u of [
      uri('artifacts', 'runs', 'j1', 'model', 'model.json'),
      uri('artifacts', 'datasets', 'sha256', 'abc'),
      uri('alias', 'runs', 'j1', 'model', 'model.json'),
    ]) {
      const e = await check(u).catch((x: unknown) => x);
      expect(e, u).toBeInstanceOf(InputError);
      expect((e as Error).message).toContain('is inside the artifact store');
    }
  });

  it('refuses an s3:// output inside an S3 store bucket and prefix, and any other non-file URI', async () => {
    const s3 = new S3ArtifactStore('s3://models/mlq');
    await expect(check('s3://models/mlq/runs/j1/model/model.json', s3)).rejects.toThrow(
      /inside the artifact store/,
    );
    await expect(check('s3://models/mlq/x.jsonl?region=eu-west-1', s3)).rejects.toThrow(
      /inside the artifact store/,
    );
    await expect(check('s3://models/other/x.jsonl', s3)).rejects.toThrow(/is not a file:\/\/ URI/);
    await expect(check('s3://models/mlq2/x.jsonl', s3)).rejects.toThrow(/is not a file:\/\/ URI/);
  });

  it('refuses a directory, the data root itself and a path below a file', async () => {
    await expect(check(uri('out'))).rejects.toThrow(/is an existing directory/);
    await expect(check(pathToFileURL(root).href)).rejects.toThrow(
      /is an existing directory|inside the artifact store/,
    );
    await expect(check(uri('plain.txt', 'x.jsonl'))).rejects.toThrow(/plain\.txt is a file, not a directory/);
    await expect(check(uri('plain.txt', 'a', 'x.jsonl'))).rejects.toThrow(
      /plain\.txt is a file, not a directory/,
    );
  });

  it('passes a new file, a new folder and an existing output file outside the store', async () => {
    expect(await check(uri('out', 'new.jsonl'))).toBe(path.join(await realpath(root), 'out', 'new.jsonl'));
    expect(await check(uri('fresh', 'deeper', 'p.csv'))).toBe(
      path.join(await realpath(root), 'fresh', 'deeper', 'p.csv'),
    );
    expect(await check(uri('out', 'old.jsonl'))).toBe(path.join(await realpath(root), 'out', 'old.jsonl'));
  });

  it('still refuses outside DATA_ROOTS', async () => {
    await expect(check(pathToFileURL(path.join(path.dirname(root), 'elsewhere.jsonl')).href)).rejects.toThrow(
      /outside the allowed data roots/,
    );
  });
});
