/**
 * What the API can know at submit, it says at submit: a 400 naming the field, never a 202 for a job
 * that cannot succeed. Real Redis, the real API over HTTP; no worker (a job that got through would
 * wait, so every case here is decided by the answer to the POST). Also what uploads refuse or warn
 * about so that jobs on them do not fail later: labels too large for a class index, one class only.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startStack, type Stack } from '../../../test/support/stack.ts';
import { makeZip, png } from '../../../packages/core/test/fixtures/archives.ts';
import { keras3Model, writeModelFiles } from '../../../test/support/model-files.ts';

interface Refusal {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}

describe('submit-time checks', () => {
  let stack: Stack;
  const file = (name: string) => path.join(stack.dataDir, name);
  const uri = (name: string) => pathToFileURL(file(name)).href;
  /** POSTs a job and expects a 400 whose details name exactly `fields`; returns the details' messages. */
  const refused = async (type: string, body: unknown, fields: string[]): Promise<string[]> => {
    const r = await http<Refusal>(`${stack.url}/v1/jobs/${type}`, 'POST', body);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error.details?.map((d) => d.field)).toEqual(fields);
    return r.body.error.details!.map((d) => d.message);
  };
  const upload = async (name: string, body: string | Buffer, type: string) => {
    const res = await fetch(`${stack.url}/v1/datasets/${name}`, {
      method: 'POST',
      headers: { 'content-type': type },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & Refusal };
  };
  const csv = 'a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n';

  beforeAll(async () => {
    stack = await startStack('submit-checks', { workers: 0 });
    await writeFile(file('t.csv'), csv);
    await mkdir(file('dir.csv'));
    await mkdir(file('dir.jsonl'));
    await writeFile(file('notes.txt'), 'not a model\n');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const fineTune = (over: Record<string, unknown>) => ({
    model: 'm',
    architecture: 'mlp',
    dataset: { format: 'csv', uri: uri('t.csv') },
    epochs: 1,
    ...over,
  });

  it('a file:// base or model outside DATA_ROOTS, missing, a directory or not a model.json: 400 naming it', async () => {
    const [outside] = await refused('fine-tune', fineTune({ base: 'file:///etc/passwd' }), ['base']);
    expect(outside).toMatch(/outside the allowed data roots/);
    const [missing] = await refused('fine-tune', fineTune({ base: uri('none/model.json') }), ['base']);
    expect(missing).toMatch(/not found/);
    const [dir] = await refused('fine-tune', fineTune({ base: uri('') }), ['base']);
    expect(dir).toMatch(/is a directory; a model is the URI of its model\.json/);
    const [text] = await refused('fine-tune', fineTune({ base: uri('notes.txt') }), ['base']);
    expect(text).toMatch(/notes\.txt is not JSON/);
    await refused(
      'evaluate',
      { model: 'file:///etc/passwd', dataset: { format: 'csv', uri: uri('t.csv') } },
      ['model'],
    );
    // A real model.json inside DATA_ROOTS gets through (the job waits: no worker here).
    await writeModelFiles(file('good'), keras3Model({ features: 2, hidden: 3, classes: 2 }));
    const ok = await http(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      fineTune({ base: uri('good/model.json') }),
    );
    expect(ok.status, JSON.stringify(ok.body)).toBe(202);
  });

  it('a file:// csv or jsonl dataset that is a directory: 400 naming dataset.uri', async () => {
    const [c] = await refused('fine-tune', fineTune({ dataset: { format: 'csv', uri: uri('dir.csv') } }), [
      'dataset.uri',
    ]);
    expect(c).toBe(`${uri('dir.csv')} is a directory; a csv dataset is one file`);
    // (No model "m" is registered: that is said too, each field on its own.)
    const [, j] = await refused(
      'batch-predict',
      { model: 'm', input: { format: 'jsonl', uri: uri('dir.jsonl') } },
      ['model', 'input.uri'],
    );
    expect(j).toBe(`${uri('dir.jsonl')} is a directory; a jsonl dataset is one file`);
  });

  it('reuseBaseHead without base: 400 naming reuseBaseHead', async () => {
    const [m] = await refused('fine-tune', fineTune({ reuseBaseHead: true }), ['reuseBaseHead']);
    expect(m).toMatch(/needs "base"/);
  });

  it('features that include the label column: 400 naming dataset.features (given, default, upload)', async () => {
    // The label given in the spec: the schema sees it, whatever the URI.
    const [given] = await refused(
      'fine-tune',
      fineTune({ dataset: { format: 'csv', uri: uri('t.csv'), label: 'b', features: ['a', 'b'] } }),
      ['dataset.features'],
    );
    expect(given).toMatch(/"b" is the label column/);
    // The default label (a column named "label"): the API reads a file:// CSV's header...
    const [header] = await refused(
      'fine-tune',
      fineTune({ dataset: { format: 'csv', uri: uri('t.csv'), features: ['a', 'label'] } }),
      ['dataset.features'],
    );
    expect(header).toMatch(/"label" is the label column/);
    // ...and knows an upload's columns.
    expect((await upload('cols', csv, 'text/csv')).status).toBe(201);
    await refused(
      'fine-tune',
      fineTune({ dataset: { format: 'csv', uri: 'dataset://cols', features: ['label', 'a'] } }),
      ['dataset.features'],
    );
    // A file:// CSV's header is checked as an upload's is: a column it lacks, no label for training.
    await refused('fine-tune', fineTune({ dataset: { format: 'csv', uri: uri('t.csv'), features: ['z'] } }), [
      'dataset.features',
    ]);
    await writeFile(file('nolabel.csv'), 'a,b\n1,2\n');
    await refused('fine-tune', fineTune({ dataset: { format: 'csv', uri: uri('nolabel.csv') } }), [
      'dataset.label',
    ]);
  });

  it('an integer label beyond a class index is refused at upload, naming the line (csv and jsonl)', async () => {
    const j = await upload('big', '{"x":[1],"y":0}\n{"x":[2],"y":1000000}\n', 'application/x-ndjson');
    expect(j.status, JSON.stringify(j.body)).toBe(400);
    expect(j.body.error.message).toMatch(/line 2: label 1000000 is too large for a class index \(0-9999\)/);
    const c = await upload('big', 'a,label\n1,0\n2,12000\n', 'text/csv');
    expect(c.status, JSON.stringify(c.body)).toBe(400);
    expect(c.body.error.message).toMatch(/line 3: label 12000 is too large for a class index \(0-9999\)/);
    // Among names, a large number is a name like any other.
    const named = await upload('big', 'a,label\n1,cat\n2,12000\n', 'text/csv');
    expect(named.status).toBe(201);
    expect(named.body.classes).toEqual({ 12000: 1, cat: 1 });
  });

  it('jsonl labels that are negative or decimal are class names, as in csv', async () => {
    const j = await upload(
      'signs',
      '{"x":[1],"y":-1}\n{"x":[2],"y":0.5}\n{"x":[3],"y":1}\n',
      'application/x-ndjson',
    );
    expect(j.status, JSON.stringify(j.body)).toBe(201);
    expect(j.body.classes).toEqual({ '-1': 1, '0.5': 1, '1': 1 });
    const bad = await upload('signs', '{"x":[1],"y":true}\n', 'application/x-ndjson');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/line 1: "y" must be a number or a class name/);
  });

  it('a one-class upload warns, and a fine-tune or tune on it is a 400', async () => {
    const one = await upload('one', 'a,label\n1,x\n2,x\n3,x\n', 'text/csv');
    expect(one.status).toBe(201);
    expect(one.body.warnings).toEqual(['only one class ("x", 3 rows): a classifier needs at least two']);
    const zip = makeZip([
      { name: 'cat/1.png', data: png(1) },
      { name: 'cat/2.png', data: png(2) },
    ]);
    const z = await upload('onepic', zip, 'application/zip');
    expect(z.status).toBe(201);
    expect(z.body.warnings).toEqual(['only one class ("cat", 2 images): a classifier needs at least two']);
    const [m] = await refused('fine-tune', fineTune({ dataset: { format: 'csv', uri: 'dataset://one' } }), [
      'dataset.uri',
    ]);
    expect(m).toBe(
      'dataset://one@1 has one class only ("x", 3 rows): training needs rows of at least two classes',
    );
    await refused(
      'tune',
      {
        ...fineTune({ dataset: { format: 'image-folder', uri: 'dataset://onepic', imageSize: [8, 8] } }),
        search: { space: { learningRate: [0.01, 0.1] } },
      },
      ['dataset.uri'],
    );
    // Evaluating on one class is fine: the job is taken.
    const ev = await http(`${stack.url}/v1/jobs/evaluate`, 'POST', {
      model: 'm',
      dataset: { format: 'csv', uri: 'dataset://one' },
    });
    expect([202, 400]).toContain(ev.status);
    if (ev.status === 400) expect((ev.body as Refusal).error.details?.map((d) => d.field)).toEqual(['model']);
  });
});
