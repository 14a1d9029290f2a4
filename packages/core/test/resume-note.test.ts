/**
 * resumeNote reads what a job's earlier runs left in a real (file) artifact store: a fine-tune's
 * checkpoint at an epoch's end or mid-epoch, a batch-predict's recorded rows, or nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resumeNote } from '../src/jobs/resume-note.ts';
import type { ArtifactStore } from '../src/storage/artifact-store.ts';
import { openArtifactStore } from '../src/storage/file-store.ts';
import { runPrefix } from '../src/storage/layout.ts';

describe('resumeNote', () => {
  let dir: string;
  let store: ArtifactStore;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-resume-note-'));
    store = openArtifactStore(pathToFileURL(dir).href);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names the checkpoint a fine-tune resumes from, or says it starts over', async () => {
    expect(await resumeNote('fine-tune', 'ft', store)).toBe('starts over, as no checkpoint was saved');
    await store.put(`${runPrefix('ft')}/checkpoint.json`, JSON.stringify({ epoch: 2, history: [] }));
    expect(await resumeNote('fine-tune', 'ft', store)).toBe(
      'resumes from the checkpoint at the end of epoch 2',
    );
    await store.put(
      `${runPrefix('ft')}/checkpoint.json`,
      JSON.stringify({ epoch: 2, partial: { epoch: 3, batches: 40 }, history: [] }),
    );
    expect(await resumeNote('fine-tune', 'ft', store)).toBe(
      'resumes from the checkpoint at epoch 3, batch 40',
    );
  });

  it('names the rows a batch-predict recorded; evaluate and tune run again', async () => {
    expect(await resumeNote('batch-predict', 'bp', store)).toBe('starts over, as no rows were recorded');
    await store.put(
      `${runPrefix('bp')}/batch-predict.json`,
      JSON.stringify({ fingerprint: 'f', rows: 5000, bytes: 123 }),
    );
    expect(await resumeNote('batch-predict', 'bp', store)).toMatch(
      /^continues after the 5000 rows its last run recorded/,
    );
    expect(await resumeNote('evaluate', 'ev', store)).toBe('starts over');
    expect(await resumeNote('tune', 'tu', store)).toBe(
      'runs again: trials already added are not added twice',
    );
  });
});
