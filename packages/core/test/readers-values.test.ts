/**
 * What the csv and jsonl readers make of values and lines as people's files have them: numbers beyond
 * float32, CR-only and CRLF line ends (also cut between two read blocks), a byte-order mark, invisible
 * characters in messages, and the rows per class.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll } from '../src/data/dataset.ts';
import { openDataset } from '../src/data/open.ts';
import { datasetSchema, type DatasetSpecInput } from '@mlq/contract';
import { DataError } from '../src/util/errors.ts';
import { showInvisible } from '../src/util/text.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-readers-values-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string | Buffer): Promise<{ uri: string; file: string }> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return { uri: pathToFileURL(file).href, file };
}

const open = (spec: DatasetSpecInput) => openDataset(datasetSchema.parse(spec), { dataRoots: [dir] });

async function failure(spec: DatasetSpecInput): Promise<string> {
  const e: unknown = await open(spec)
    .info()
    .then(
      () => undefined,
      (err: unknown) => err,
    );
  expect(e).toBeInstanceOf(DataError);
  return (e as Error).message;
}

describe('numbers beyond float32', () => {
  it('csv: refused naming the file, line and column, on the fast and the quoted path', async () => {
    const issue = 'a,b,label\n1e39,2.0,x\n1.5,2.5,y\n0.9,2.1,x\n1.6,2.4,y\n1.1,2.0,x\n1.4,2.6,y\n';
    const big = await write('big.csv', issue);
    expect(await failure({ format: 'csv', uri: big.uri })).toBe(
      `${big.file}:2: column "a" is 1e39, beyond the float32 range (±3.4e38)`,
    );
    const quoted = await write('quoted.csv', 'a,b,label\n1,2,x\n3,"-Infinity",y\n');
    expect(await failure({ format: 'csv', uri: quoted.uri })).toBe(
      `${quoted.file}:3: column "b" is -Infinity, beyond the float32 range (±3.4e38)`,
    );
    const long = await write('long.csv', `a,label\n1,x\n${'9'.repeat(40)},y\n`);
    expect(await failure({ format: 'csv', uri: long.uri })).toMatch(
      /long\.csv:3: column "a" is 9{40}, beyond/,
    );
    // A 30 MB number is quoted by its first 40 digits and its length: the message stays short.
    const huge = await write('huge.csv', `x,label\n${'1'.repeat(30 * 2 ** 20)},y\n`);
    const m = await failure({ format: 'csv', uri: huge.uri });
    expect(m).toBe(
      `${huge.file}:2: column "x" is ${'1'.repeat(40)}…(${30 * 2 ** 20} characters), beyond the float32 range (±3.4e38)`,
    );
    const text = await write('text.csv', `x,label\n1,y\n${'ab'.repeat(2 ** 20)},z\n`);
    expect(await failure({ format: 'csv', uri: text.uri })).toBe(
      `${text.file}:3: column "x" is not a number: "${'ab'.repeat(20)}…(${2 ** 21} characters)"`,
    );
    // The largest float32 itself is fine.
    const edge = await write('edge.csv', 'a,label\n3.4028234e38,x\n-3.4e38,y\n');
    const d = await loadAll(open({ format: 'csv', uri: edge.uri }));
    expect(Array.from(d.x)).toEqual([Math.fround(3.4028234e38), Math.fround(-3.4e38)]);
  });

  it('jsonl: refused naming the line and the element of "x", nested arrays included', async () => {
    const big = await write('big.jsonl', '{"x":[[1,2],[3,4]],"y":0}\n{"x":[[1,2],[3,1e39]],"y":1}\n');
    expect(await failure({ format: 'jsonl', uri: big.uri })).toBe(
      `${big.file}:2: "x"[1][1] is 1e+39, beyond the float32 range (±3.4e38)`,
    );
    const first = await write('first.jsonl', '{"x":[-1e300,2],"y":0}\n');
    expect(await failure({ format: 'jsonl', uri: first.uri })).toBe(
      `${first.file}:1: "x"[0] is -1e+300, beyond the float32 range (±3.4e38)`,
    );
    const inf = await write('inf.jsonl', '{"x":[1,2],"y":0}\n{"x":[1e400,2],"y":0}\n');
    expect(await failure({ format: 'jsonl', uri: inf.uri })).toMatch(
      /inf\.jsonl:2: "x"\[0\] is Infinity, beyond/,
    );
  });
});

describe('line ends and byte-order marks', () => {
  it('csv: CR, LF and CRLF all end a line', async () => {
    const rows = (eol: string) => ['a,b,label', '1,2,x', '3,4,y', '5,6,x'].join(eol) + eol;
    for (const [name, eol] of [
      ['cr', '\r'],
      ['lf', '\n'],
      ['crlf', '\r\n'],
    ] as const) {
      const f = await write(`${name}.csv`, rows(eol));
      const d = await loadAll(open({ format: 'csv', uri: f.uri }));
      expect(d.info, name).toMatchObject({ rows: 3, featureShape: [2], classNames: ['x', 'y'] });
      expect(Array.from(d.x), name).toEqual([1, 2, 3, 4, 5, 6]);
    }
    const mixed = await write('mixed.csv', 'a,label\r1,x\r\n2,y\n3,x\r\r4,oops\n');
    expect(await loadAll(open({ format: 'csv', uri: mixed.uri })).then((d) => Array.from(d.x))).toEqual([
      1, 2, 3, 4,
    ]);
    const bad = await write('bad-cr.csv', 'a,label\r1,x\r2,y\rtwo,x\r');
    expect(await failure({ format: 'csv', uri: bad.uri })).toBe(
      `${bad.file}:4: column "a" is not a number: "two"`,
    );
  });

  it('a CRLF cut between two 1 MiB read blocks is one line end: rows and line numbers stay right', async () => {
    // Lines "1,2,x\r\n" (7 bytes) after a padded header, so that byte 2^20 - 1 is a CR and 2^20 its LF.
    const header = 'a,b,label';
    const rowsBefore = Math.floor((2 ** 20 - 1 - header.length) / 7) - 1;
    const pad = 2 ** 20 - 1 - header.length - rowsBefore * 7;
    const text = `${header}${' '.repeat(pad)}\r\n${'1,2,x\r\n'.repeat(rowsBefore)}3,4,y\r\n5,six,y\r\n`;
    expect(text.charCodeAt(2 ** 20 - 1)).toBe(13);
    expect(text.charCodeAt(2 ** 20)).toBe(10);
    const f = await write('boundary.csv', text);
    expect(await failure({ format: 'csv', uri: f.uri })).toBe(
      `${f.file}:${rowsBefore + 3}: column "b" is not a number: "six"`,
    );
    const ok = await write('boundary-ok.csv', text.replace('5,six,y', '5,6,y'));
    const info = await open({ format: 'csv', uri: ok.uri }).info();
    expect(info.rows).toBe(rowsBefore + 2);
    expect(info.classCounts).toEqual([rowsBefore, 2]);
  });

  it('jsonl: a UTF-8 byte-order mark before the first line is skipped, as csv does', async () => {
    const f = await write('bom.jsonl', '\ufeff{"x":[1,2],"y":"a"}\r\n{"x":[3,4],"y":"b"}\r\n');
    const d = await loadAll(open({ format: 'jsonl', uri: f.uri }));
    expect(d.info).toMatchObject({ rows: 2, classNames: ['a', 'b'], classCounts: [1, 1] });
    expect(Array.from(d.x)).toEqual([1, 2, 3, 4]);
    const csv = await write('bom.csv', '\ufeffa,label\n1,x\n2,y\n');
    expect((await open({ format: 'csv', uri: csv.uri }).info()).rows).toBe(2);
  });

  it('error messages show invisible characters escaped', async () => {
    const bom = await write('bom-later.jsonl', '{"x":[1],"y":0}\n\ufeff{"x":[2],"y":1}\n');
    const m = await failure({ format: 'jsonl', uri: bom.uri });
    expect(m).toMatch(/^.*bom-later\.jsonl:2: not JSON: .*\\uFEFF/);
    expect(m).not.toContain('\ufeff');
    const nbsp = await write('nbsp.csv', 'a,label\n1,x\n2\u00a0,y\n');
    expect(await failure({ format: 'csv', uri: nbsp.uri })).toBe(
      `${nbsp.file}:3: column "a" is not a number: "2\\u00A0"`,
    );
    const label = await write('zw.csv', 'a,label\n1,cat\n2,cat\u200b\n');
    const names = (await open({ format: 'csv', uri: label.uri }).info()).classNames!;
    expect(names.map(showInvisible)).toEqual(['cat', 'cat\\u200B']);
    expect(showInvisible('tab\there\r\n\u202e\u00ad ok')).toBe('tab\\there\\r\\n\\u202E\\u00AD ok');
  });
});

describe('rows per class', () => {
  it('counts every class, also one no row uses, whatever the labels are', async () => {
    const one = 'a,b,label\n1.0,2.0,1\n1.5,2.5,1\n0.9,2.1,1\n1.6,2.4,1\n';
    for (const [label, numClasses, counts] of [
      ['1', 2, [0, 4]],
      ['0', 1, [4]],
      ['normal', 1, [4]],
    ] as const) {
      const f = await write(`one-${label}.csv`, one.replaceAll(',1\n', `,${label}\n`));
      const info = await open({ format: 'csv', uri: f.uri }).info();
      expect(info, label).toMatchObject({ numClasses, classCounts: counts });
    }
    const j = await write('counts.jsonl', '{"x":[1],"y":2}\n{"x":[1],"y":0}\n{"x":[1],"y":2}\n');
    expect((await open({ format: 'jsonl', uri: j.uri }).info()).classCounts).toEqual([1, 0, 2]);
    const limited = await write('limit.csv', 'a,label\n1,x\n2,y\n3,y\n4,z\n');
    expect((await open({ format: 'csv', uri: limited.uri, limit: 3 }).info()).classCounts).toEqual([1, 2]);
  });
});
