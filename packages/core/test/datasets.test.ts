/**
 * The csv, jsonl and image-folder readers over real files this test writes (PNG and JPEG images drawn
 * with pngjs and jpeg-js), including every way bad data must fail: with the file and line or image named.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetSchema, type DatasetSpecInput } from '@mlq/contract';
import { loadAll, type Chunk } from '../src/data/dataset.ts';
import { openDataset } from '../src/data/open.ts';
import { DataError } from '../src/util/errors.ts';

let dir: string;
const uri = (name: string) => pathToFileURL(path.join(dir, name)).href;
const file = (name: string) => path.join(dir, name);

async function write(name: string, text: string): Promise<string> {
  await mkdir(path.dirname(file(name)), { recursive: true });
  await writeFile(file(name), text);
  return uri(name);
}

function open(spec: DatasetSpecInput, classNames?: string[]) {
  return openDataset(datasetSchema.parse(spec), { dataRoots: [dir], classNames });
}

async function chunks(spec: DatasetSpecInput, chunkSize: number, start?: number): Promise<Chunk[]> {
  const out: Chunk[] = [];
  for await (const c of open(spec).chunks({ chunkSize, start }))
    out.push({ ...c, x: c.x.slice(), ...(c.y ? { y: c.y.slice() } : {}) });
  return out;
}

/** The DataError a source's first pass throws. */
async function failure(spec: DatasetSpecInput, classNames?: string[]): Promise<DataError> {
  const e: unknown = await open(spec, classNames)
    .info()
    .then(
      () => undefined,
      (err: unknown) => err,
    );
  expect(e).toBeInstanceOf(DataError);
  return e as DataError;
}

/** The DataError that reading every row of `spec` fails with. */
async function readFailure(spec: DatasetSpecInput): Promise<DataError> {
  const e: unknown = await loadAll(open(spec)).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DataError);
  return e as DataError;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-datasets-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('csv', () => {
  it('reads numeric features and integer labels as class indices, in chunks and from a start row', async () => {
    const u = await write('num.csv', 'a,b,label\n1,2,0\n3.5,-4e-1,2\n\n5,6,1\r\n7, 8 ,2\n');
    const info = await open({ format: 'csv', uri: u, label: 'label' }).info();
    expect(info).toMatchObject({ featureShape: [2], numClasses: 3, rows: 4 });
    expect(info.classNames).toBeUndefined();
    const all = await chunks({ format: 'csv', uri: u, label: 'label' }, 3);
    expect(all.map((c) => [c.start, c.count])).toEqual([
      [0, 3],
      [3, 1],
    ]);
    expect(Array.from(all[0]!.x)).toEqual([1, 2, 3.5, Math.fround(-0.4), 5, 6]);
    expect(Array.from(all[0]!.y!)).toEqual([0, 2, 1]);
    const tail = await chunks({ format: 'csv', uri: u, label: 'label' }, 10, 2);
    expect(tail).toHaveLength(1);
    expect(tail[0]).toMatchObject({ start: 2, count: 2 });
    expect(Array.from(tail[0]!.x)).toEqual([5, 6, 7, 8]);
  });

  it("maps class names to indices by sorted name, or by the model's class names when given", async () => {
    const u = await write(
      'names.csv',
      '\ufeffx,"species, common",y\n1,dog,2\n2,cat,3\n3,"emu, large",4\n4,dog,5\n',
    );
    const spec = { format: 'csv', uri: u, label: 'species, common' } as const;
    const info = await open(spec).info();
    expect(info).toMatchObject({
      featureShape: [2],
      numClasses: 3,
      classNames: ['cat', 'dog', 'emu, large'],
    });
    const d = await loadAll(open(spec));
    expect(Array.from(d.y)).toEqual([1, 0, 2, 1]);
    expect(Array.from(d.x)).toEqual([1, 2, 2, 3, 3, 4, 4, 5]);
    const model = await loadAll(open(spec, ['emu, large', 'dog', 'cat', 'owl']));
    expect(model.info.classNames).toEqual(['emu, large', 'dog', 'cat', 'owl']);
    expect(Array.from(model.y)).toEqual([1, 2, 0, 1]);
  });

  it('uses a column named "label" as the label by default, `features` to pick columns, and no label at all', async () => {
    const u = await write('pick.csv', 'id,f1,f2,label\n10,1,2,a\n11,3,4,b\n');
    expect(await open({ format: 'csv', uri: u, features: ['f2', 'f1'] }).info()).toMatchObject({
      featureShape: [2],
      classNames: ['a', 'b'],
    });
    expect(Array.from((await loadAll(open({ format: 'csv', uri: u, features: ['f2', 'f1'] }))).x)).toEqual([
      2, 1, 4, 3,
    ]);
    const plain = await write('plain.csv', 'f1,f2\n1,2\n3,4\n5,6\n');
    const c = await chunks({ format: 'csv', uri: plain, limit: 2 }, 8);
    expect(c).toHaveLength(1);
    expect(c[0]!.y).toBeUndefined();
    expect(Array.from(c[0]!.x)).toEqual([1, 2, 3, 4]);
    expect(await open({ format: 'csv', uri: plain }).info()).toMatchObject({ rows: 3, numClasses: 0 });
  });

  it('streams a file of many blocks: every row once, lines counted across blocks', async () => {
    // ~3 MB: lines cross the reader's 1 MiB block boundaries; no newline after the last line.
    const n = 150_000;
    const lines = Array.from({ length: n }, (_, i) => `${i},${i * 0.5},${i % 3}`);
    const u = await write('big.csv', `i,half,label\n${lines.join('\n')}`);
    const src = open({ format: 'csv', uri: u });
    expect(await src.info()).toMatchObject({ rows: n, numClasses: 3 });
    let seen = 0;
    for await (const c of src.chunks({ chunkSize: 4096, start: 1000 })) {
      for (let r = 0; r < c.count; r++) {
        const i = c.start + r;
        if (c.x[r * 2] !== i || c.x[r * 2 + 1] !== i * 0.5 || c.y![r] !== i % 3)
          throw new Error(`row ${i} is wrong`);
      }
      seen += c.count;
    }
    expect(seen).toBe(n - 1000);
    lines[120_000] = '1,2';
    await write('big-ragged.csv', `i,half,label\n${lines.join('\n')}\n`);
    expect((await failure({ format: 'csv', uri: uri('big-ragged.csv') })).message).toMatch(
      /big-ragged\.csv:120002: ragged row/,
    );
  });

  it('reads the file again for a second pass, and fails if it changed meanwhile', async () => {
    const u = await write('twice.csv', 'a,label\n1,x\n2,y\n3,x\n');
    const src = open({ format: 'csv', uri: u });
    const pass = async () => {
      const rows: number[] = [];
      for await (const c of src.chunks({ chunkSize: 2 })) rows.push(...c.x, ...c.y!);
      return rows;
    };
    expect(await pass()).toEqual([1, 2, 0, 1, 3, 0]);
    expect(await pass()).toEqual([1, 2, 0, 1, 3, 0]);
    await write('twice.csv', 'a,label\n1,x\n2,y\n4,x\n');
    await expect(pass()).rejects.toThrow(/the data changed since it was first read/);
  });

  it('gives the same hash for the same rows and a different one for changed data', async () => {
    const a = await open({ format: 'csv', uri: await write('h1.csv', 'a,label\n1,0\n2,1\n') }).info();
    const b = await open({ format: 'csv', uri: await write('h2.csv', 'a,label\n1,0\n2,1\n') }).info();
    const c = await open({ format: 'csv', uri: await write('h3.csv', 'a,label\n1,0\n3,1\n') }).info();
    expect(a.hash).toBe(b.hash);
    expect(a.hash).not.toBe(c.hash);
  });

  it('reads a 100,000-column file in time linear in its columns (the header is not searched per feature)', async () => {
    const cols = 100_000;
    const names = Array.from({ length: cols }, (_, i) => `c${i}`);
    const row = (v: number) => `${Array.from({ length: cols }, () => v).join(',')},${v}\n`;
    const u = await write('wide.csv', `${names.join(',')},label\n${row(0)}${row(1)}${row(0)}`);
    // Every column a feature by default, and named one by one (in another order than the header's).
    for (const features of [undefined, names.slice().reverse()]) {
      const t0 = performance.now();
      const info = await open({ format: 'csv', uri: u, ...(features ? { features } : {}) }).info();
      const seconds = (performance.now() - t0) / 1000;
      expect(info).toMatchObject({ featureShape: [cols], rows: 3, numClasses: 2 });
      // Linear: well under a second; searching the header for each feature took ~35 s here.
      expect(seconds).toBeLessThan(2);
    }
  });

  it('fails on a missing file, naming it', async () => {
    const e = await failure({ format: 'csv', uri: uri('nope.csv') });
    expect(e.message).toContain(file('nope.csv'));
    expect(e.message).toMatch(/not found/);
  });

  it('fails on a directory, saying so (not EISDIR), whether rows or the fingerprint are read first', async () => {
    await mkdir(file('folder.csv'), { recursive: true });
    for (const format of ['csv', 'jsonl'] as const) {
      const spec = { format, uri: uri('folder.csv') };
      const said = `${file('folder.csv')} is a directory; a ${format} dataset is one file`;
      expect((await failure(spec)).message).toBe(said);
      const fp: unknown = await open(spec).fingerprint!().catch((e: unknown) => e);
      expect(fp).toBeInstanceOf(DataError);
      expect((fp as Error).message).toBe(said);
    }
  });

  it('fails on a ragged row, naming the file and line', async () => {
    const u = await write('ragged.csv', 'a,b,label\n1,2,0\n3,4,1\n5,1\n');
    expect((await failure({ format: 'csv', uri: u })).message).toBe(
      `${file('ragged.csv')}:4: ragged row: 2 columns, the header has 3`,
    );
    const long = await write('long.csv', 'a,b\n1,2\n3,4,5\n');
    expect((await failure({ format: 'csv', uri: long })).message).toMatch(
      new RegExp(`long\\.csv:3: ragged row: more than the header's 2 columns`),
    );
  });

  it('fails on a non-numeric or empty feature, naming the file, line and column', async () => {
    const u = await write('text.csv', 'a,b,label\n1,2,0\n3,abc,1\n');
    expect((await failure({ format: 'csv', uri: u })).message).toBe(
      `${file('text.csv')}:3: column "b" is not a number: "abc"`,
    );
    const empty = await write('empty-field.csv', 'a,b\n1,2\n,4\n');
    expect((await failure({ format: 'csv', uri: empty })).message).toBe(
      `${file('empty-field.csv')}:3: column "a" is empty`,
    );
    const half = await write('half.csv', 'a,b\n1,2.5x\n');
    expect((await failure({ format: 'csv', uri: half })).message).toMatch(
      /half\.csv:2: column "b" is not a number: "2\.5x"/,
    );
  });

  it('fails on a label the model does not know, naming the file and line', async () => {
    const u = await write('unknown.csv', 'a,label\n1,cat\n2,dog\n3,yak\n');
    const e = await failure({ format: 'csv', uri: u }, ['cat', 'dog']);
    expect(e.message).toBe(`${file('unknown.csv')}:4: unknown label "yak"; the model's classes are cat, dog`);
  });

  it('fails on a header without the label or feature columns asked for', async () => {
    const u = await write('cols.csv', 'a,b\n1,2\n');
    expect((await failure({ format: 'csv', uri: u, label: 'class' })).message).toMatch(
      /cols\.csv:1: no label column "class" in the header \(a, b\)/,
    );
    expect((await failure({ format: 'csv', uri: u, features: ['a', 'z'] })).message).toMatch(
      /cols\.csv:1: no feature column "z"/,
    );
    // A label given in the spec among the features: the schema refuses it (the API's 400)...
    expect(datasetSchema.safeParse({ format: 'csv', uri: u, label: 'a', features: ['a', 'b'] }).success).toBe(
      false,
    );
    // ...and the default label (a column named "label") the reader, as for a payload from elsewhere.
    const dflt = await write('cols-label.csv', 'a,label\n1,2\n');
    expect((await failure({ format: 'csv', uri: dflt, features: ['a', 'label'] })).message).toMatch(
      /cols-label\.csv:1: "features" must name distinct columns other than the label/,
    );
    expect((await failure({ format: 'csv', uri: await write('void.csv', '') })).message).toMatch(
      /void\.csv: the file is empty/,
    );
  });
});

describe('jsonl', () => {
  it('reads nested x as the feature shape and names as classes', async () => {
    const rows = [
      {
        x: [
          [1, 2],
          [3, 4],
        ],
        y: 'b',
      },
      {
        x: [
          [5, 6],
          [7, 8],
        ],
        y: 'a',
      },
      {
        x: [
          [9, 10],
          [11, 12],
        ],
        y: 'b',
      },
    ];
    const u = await write('nested.jsonl', rows.map((r) => JSON.stringify(r)).join('\n') + '\n\n');
    const info = await open({ format: 'jsonl', uri: u }).info();
    expect(info).toMatchObject({ featureShape: [2, 2], numClasses: 2, classNames: ['a', 'b'], rows: 3 });
    const c = await chunks({ format: 'jsonl', uri: u }, 2);
    expect(c.map((k) => k.count)).toEqual([2, 1]);
    expect(Array.from(c[1]!.x)).toEqual([9, 10, 11, 12]);
    expect(Array.from(c[0]!.y!)).toEqual([1, 0]);
  });

  it('reads rows without y as unlabelled, and integer y as indices', async () => {
    const u = await write('nolabel.jsonl', '{"x":[1,2]}\n{"x":[3,4]}\n');
    const c = await chunks({ format: 'jsonl', uri: u }, 10);
    expect(c[0]!.y).toBeUndefined();
    const ints = await write('ints.jsonl', '{"x":[1],"y":0}\n{"x":[2],"y":3}\n');
    expect(await open({ format: 'jsonl', uri: ints }).info()).toMatchObject({
      numClasses: 4,
      featureShape: [1],
    });
  });

  it('fails on an integer label too large for a class index, naming its line; among names it is a name', async () => {
    const j = await write('huge.jsonl', '{"x":[1],"y":0}\n{"x":[2],"y":1000000}\n{"x":[3],"y":20000}\n');
    expect((await failure({ format: 'jsonl', uri: j })).message).toMatch(
      /huge\.jsonl:2: label 1000000 is too large for a class index \(0-9999\)/,
    );
    const c = await write('huge.csv', 'a,label\n1,9999\n2,10000\n');
    expect((await failure({ format: 'csv', uri: c })).message).toMatch(
      /huge\.csv:3: label 10000 is too large for a class index \(0-9999\): .* name the classes instead/,
    );
    const named = await write('huge-named.csv', 'a,label\n1,cat\n2,10000\n');
    expect(await open({ format: 'csv', uri: named }).info()).toMatchObject({ classNames: ['10000', 'cat'] });
  });

  it('reads a negative or decimal y as a class name, as csv reads such a label', async () => {
    const j = await write('signs.jsonl', '{"x":[1],"y":-1}\n{"x":[2],"y":0.5}\n{"x":[3],"y":1}\n');
    const c = await write('signs.csv', 'a,label\n1,-1\n2,0.5\n3,1\n');
    const want = { numClasses: 3, classNames: ['-1', '0.5', '1'], classCounts: [1, 1, 1] };
    expect(await open({ format: 'jsonl', uri: j }).info()).toMatchObject(want);
    expect(await open({ format: 'csv', uri: c }).info()).toMatchObject(want);
    const yes = await write('bool.jsonl', '{"x":[1],"y":true}\n');
    expect((await failure({ format: 'jsonl', uri: yes })).message).toMatch(
      /bool\.jsonl:1: "y" must be a number or a class name \(a string\), got true/,
    );
  });

  it('fails on a ragged row, a non-numeric value, bad JSON and an unknown label, naming the line', async () => {
    const ragged = await write('ragged.jsonl', '{"x":[1,2],"y":0}\n{"x":[1,2,3],"y":1}\n');
    expect((await failure({ format: 'jsonl', uri: ragged })).message).toMatch(
      /ragged\.jsonl:2: "x" has 3 elements, expected 2 \(shape \[2\] like the first row\)/,
    );
    const text = await write('text.jsonl', '{"x":[1,2],"y":0}\n{"x":[1,"two"],"y":1}\n');
    expect((await failure({ format: 'jsonl', uri: text })).message).toMatch(
      /text\.jsonl:2: "x"\[1\] is "two", not a number/,
    );
    const bad = await write('bad.jsonl', '{"x":[1,2],"y":0}\n\n{"x":[1,2],\n');
    expect((await failure({ format: 'jsonl', uri: bad })).message).toMatch(/bad\.jsonl:3: not JSON/);
    const unk = await write('unk.jsonl', '{"x":[1],"y":"cat"}\n{"x":[2],"y":"gnu"}\n');
    expect((await failure({ format: 'jsonl', uri: unk }, ['cat', 'dog'])).message).toMatch(
      /unk\.jsonl:2: unknown label "gnu"/,
    );
    expect((await failure({ format: 'jsonl', uri: uri('missing.jsonl') })).message).toContain(
      file('missing.jsonl'),
    );
  });
});

/** An RGBA image of one colour, with its left half black when `split` is set. */
function rgba(w: number, h: number, rgb: [number, number, number], split = false): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      const c = split && x < w / 2 ? [0, 0, 0] : rgb;
      data.set([c[0]!, c[1]!, c[2]!, 255], o);
    }
  }
  return data;
}

function png(w: number, h: number, rgb: [number, number, number], split = false): Buffer {
  const img = new PNG({ width: w, height: h });
  rgba(w, h, rgb, split).copy(img.data);
  return PNG.sync.write(img);
}

function jpg(w: number, h: number, rgb: [number, number, number]): Buffer {
  return jpeg.encode({ width: w, height: h, data: rgba(w, h, rgb) }, 95).data;
}

describe('image-folder', () => {
  let root: string;
  beforeAll(async () => {
    root = path.join(dir, 'images');
    await mkdir(path.join(root, 'red'), { recursive: true });
    await mkdir(path.join(root, 'blue'), { recursive: true });
    for (let i = 0; i < 3; i++) {
      await writeFile(path.join(root, 'red', `r${i}.png`), png(20, 12, [255, 0, 0]));
      await writeFile(path.join(root, 'blue', `b${i}.jpg`), jpg(16, 16, [0, 0, 255]));
    }
    await writeFile(path.join(root, 'red', 'notes.txt'), 'not an image');
  });

  it('reads PNG and JPEG images as [h, w, c] in 0..1 with the sorted folder names as classes', async () => {
    const spec: DatasetSpecInput = {
      format: 'image-folder',
      uri: pathToFileURL(root).href,
      imageSize: [8, 8],
    };
    const info = await open(spec).info();
    expect(info).toMatchObject({
      featureShape: [8, 8, 3],
      numClasses: 2,
      classNames: ['blue', 'red'],
      rows: 6,
    });
    const d = await loadAll(open(spec));
    expect(new Set(d.y)).toEqual(new Set([0, 1]));
    for (let r = 0; r < 6; r++) {
      const px = d.x.subarray(r * 192, r * 192 + 3);
      // JPEG is lossy: close to pure blue, not exact.
      const want = d.y[r] === 1 ? [1, 0, 0] : [0, 0, 1];
      px.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 1));
    }
  });

  it('resizes bilinearly and converts to one channel', async () => {
    const sub = path.join(dir, 'gray', 'only');
    await mkdir(sub, { recursive: true });
    await writeFile(path.join(sub, 'half.png'), png(16, 8, [255, 255, 255], true));
    const d = await loadAll(
      open({
        format: 'image-folder',
        uri: pathToFileURL(path.join(dir, 'gray')).href,
        imageSize: [8, 8],
        channels: 1,
      }),
    );
    expect(d.info.featureShape).toEqual([8, 8, 1]);
    // Each output column covers two input columns: left half black, right half white.
    expect(Array.from(d.x.subarray(0, 8)).map((v) => Math.round(v * 100) / 100)).toEqual([
      0, 0, 0, 0, 1, 1, 1, 1,
    ]);
  });

  it('fails on an unreadable image when its rows are read, naming it (info() decodes nothing)', async () => {
    const bad = path.join(dir, 'broken');
    await mkdir(path.join(bad, 'a'), { recursive: true });
    await mkdir(path.join(bad, 'b'), { recursive: true });
    await writeFile(path.join(bad, 'a', 'ok.png'), png(8, 8, [9, 9, 9]));
    await writeFile(path.join(bad, 'b', 'junk.png'), 'these bytes are no PNG');
    const spec: DatasetSpecInput = {
      format: 'image-folder',
      uri: pathToFileURL(bad).href,
      imageSize: [8, 8],
    };
    expect((await open(spec).info()).rows).toBe(2);
    const e = await readFailure(spec);
    expect(e.message).toBe(`unreadable image ${path.join(bad, 'b', 'junk.png')}: not a PNG or JPEG file`);
    await writeFile(path.join(bad, 'b', 'junk.png'), png(8, 8, [1, 2, 3]));
    await writeFile(path.join(bad, 'b', 'cut.jpg'), jpg(32, 32, [10, 20, 30]).subarray(0, 200));
    const cut = await readFailure(spec);
    expect(cut.message).toMatch(new RegExp(`^unreadable image ${path.join(bad, 'b', 'cut.jpg')}: `));
  });

  it('fails on a class folder the model does not know, and on a missing folder', async () => {
    const e = await failure({ format: 'image-folder', uri: pathToFileURL(root).href, imageSize: [8, 8] }, [
      'red',
      'green',
    ]);
    expect(e.message).toBe(
      `${path.join(root, 'blue')}: unknown label "blue"; the model's classes are red, green`,
    );
    const missing = await failure({
      format: 'image-folder',
      uri: pathToFileURL(path.join(dir, 'nothing')).href,
      imageSize: [8, 8],
    });
    expect(missing.message).toContain(path.join(dir, 'nothing'));
  });
});
