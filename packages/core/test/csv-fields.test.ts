/**
 * Upload validation and the reader jobs train from split CSV fields with one splitter (data/csv-fields.ts):
 * the same bytes, validated as an upload streams them (in 7-byte chunks, so lines straddle chunks) and
 * read from a real file by the csv reader, give the same columns and labels, or fail with the same
 * message naming the line and the field.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetSchema, type DatasetSpecInput } from '@mlq/contract';
import { loadAll } from '../src/data/dataset.ts';
import { openDataset } from '../src/data/open.ts';
import { csvLineValidator, type LinesSummary } from '../src/datasets/validate-lines.ts';
import { DataError } from '../src/util/errors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-csv-fields-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What upload validation makes of `text`, fed in 7-byte chunks as a request body may come. */
function validate(text: string): LinesSummary {
  const v = csvLineValidator();
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += 7) v.write(bytes.subarray(i, i + 7));
  return v.finish();
}

/** Writes `text` to a real file and reads every row of it with the csv reader. */
async function read(name: string, text: string, spec: Partial<DatasetSpecInput> = {}) {
  const file = path.join(dir, name);
  await writeFile(file, text);
  const d = await loadAll(
    openDataset(datasetSchema.parse({ format: 'csv', uri: pathToFileURL(file).href, ...spec }), {
      dataRoots: [dir],
    }),
  );
  return {
    file,
    columns: d.info.columns,
    classNames: d.info.classNames,
    x: Array.from(d.x),
    y: Array.from(d.y),
  };
}

/** The DataError message `fn` fails with. */
async function failure(fn: () => unknown): Promise<string> {
  const e = await (async () => fn())().then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DataError);
  return (e as Error).message;
}

describe('validation and the reader agree', () => {
  it('drops spaces and tabs around quoted fields, in the header and the rows', async () => {
    const text = 'a, "b" ,label\n1, "2" , "x, y" \n3,"4",\t"z"\t\n5 , 6,z\n';
    expect(validate(text)).toEqual({
      format: 'csv',
      rows: 3,
      columns: ['a', 'b', 'label'],
      label: 'label',
      classes: { 'x, y': 1, z: 2 },
      warnings: [],
    });
    const r = await read('spaces.csv', text);
    expect(r.columns).toEqual(['a', 'b', 'label']);
    expect(r.classNames).toEqual(['x, y', 'z']);
    expect(r.x).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.y).toEqual([0, 1, 1]);
  });

  it('reads a doubled quote inside a quoted field as one quote', async () => {
    const text = '"the ""a""",label\n1,"say ""hi"""\n2,""""\n3,"x,""y"",z"\n4,"say ""hi"""\n';
    expect(validate(text)).toEqual({
      format: 'csv',
      rows: 4,
      columns: ['the "a"', 'label'],
      label: 'label',
      classes: { '"': 1, 'say "hi"': 2, 'x,"y",z': 1 },
      warnings: [],
    });
    const r = await read('doubled.csv', text);
    expect(r.columns).toEqual(['the "a"', 'label']);
    expect(r.classNames).toEqual(['"', 'say "hi"', 'x,"y",z']);
    expect(r.x).toEqual([1, 2, 3, 4]);
    expect(r.y).toEqual([1, 0, 2, 1]);
  });

  it('keeps a quote inside an unquoted field as text, also before a quoted field on the same row', async () => {
    const text = 'name,label,a\no"k,"c,d",1\n5",e,2\n';
    expect(validate(text)).toMatchObject({ rows: 2, classes: { 'c,d': 1, e: 1 } });
    const r = await read('inner-quote.csv', text, { features: ['a'] });
    expect(r.classNames).toEqual(['c,d', 'e']);
    expect(r.x).toEqual([1, 2]);
    expect(r.y).toEqual([0, 1]);
  });

  it('reads quoted numbers with spaces around them as numbers', async () => {
    const text = 'a,b,label\n "1.5" ,"-2",x\n3, "4e1" ,y\n';
    expect(validate(text)).toMatchObject({ rows: 2, classes: { x: 1, y: 1 } });
    expect((await read('numbers.csv', text)).x).toEqual([1.5, -2, 3, 40]);
  });

  it('refuses text after a closing quote with the same message, naming the line and the field', async () => {
    const text = 'a,label\n1,x\n2,"x" y\n';
    const tail =
      'field 2 ("label"): text after the closing quote: "x" y (a quote inside a quoted field is written twice: "")';
    expect(await failure(() => validate(text))).toBe(`line 3: ${tail}`);
    const file = path.join(dir, 'after-quote.csv');
    expect(await failure(() => read('after-quote.csv', text))).toBe(`${file}:3: ${tail}`);
    // In the header, where no column has a name yet.
    const header = '"a"b,label\n1,x\n';
    expect(await failure(() => validate(header))).toBe(
      'line 1: field 1: text after the closing quote: "a"b (a quote inside a quoted field is written twice: "")',
    );
    expect(await failure(() => read('after-quote-header.csv', header))).toBe(
      `${path.join(dir, 'after-quote-header.csv')}:1: field 1: text after the closing quote: "a"b (a quote inside a quoted field is written twice: "")`,
    );
  });

  it('refuses a quoted field left open at the end of its line with the same message', async () => {
    const text = 'a,b,label\n1,"2,x\n3,4,y\n';
    const tail = 'field 2 ("b"): a quoted field is not closed (fields cannot span lines)';
    expect(await failure(() => validate(text))).toBe(`line 2: ${tail}`);
    expect(await failure(() => read('open-quote.csv', text))).toBe(
      `${path.join(dir, 'open-quote.csv')}:2: ${tail}`,
    );
    // A doubled quote right at the end is a quote inside the field, not its close.
    expect(await failure(() => validate('a,label\n1,"x""\n'))).toBe(
      'line 2: field 2 ("label"): a quoted field is not closed (fields cannot span lines)',
    );
  });

  it('counts the fields of a row with quoted fields the same way: ragged rows are refused by both', async () => {
    const text = 'a,b,label\n1, "2" ,"x,z"\n4, "5" ,"6,7",y\n';
    expect(await failure(() => validate(text))).toBe('line 3: ragged row: 4 columns, the header has 3');
    expect(await failure(() => read('ragged-quoted.csv', text))).toBe(
      `${path.join(dir, 'ragged-quoted.csv')}:3: ragged row: more than the header's 3 columns`,
    );
  });
});
