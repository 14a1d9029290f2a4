import { openAsBlob } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type * as contract from '@mlq/contract';
import { loadCliEnv } from '../src/cli/env.ts';
import {
  formatDuration,
  formatFinalLine,
  formatProgressBar,
  formatTable,
  PlainProgressLines,
} from '../src/cli/format.ts';
import { progressFraction } from '../src/types.ts';
import { errorFromResponse } from '../src/errors.ts';
import {
  imageInstance,
  MlqClient,
  MlqError,
  parseRef,
  parseSse,
  type AnyJob,
  type SseMessage,
} from '../src/index.ts';
import type * as sdk from '../src/index.ts';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');

/** A byte stream that delivers `chunks` one by one and records whether the reader cancelled it. */
function byteStream(chunks: (string | Uint8Array)[]): {
  stream: ReadableStream<Uint8Array>;
  cancelled: () => boolean;
} {
  let cancelled = false;
  const queue = chunks.map((c) => (typeof c === 'string' ? new TextEncoder().encode(c) : c));
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      const next = queue.shift();
      if (next) c.enqueue(next);
      else c.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, cancelled: () => cancelled };
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  for await (const m of parseSse(stream)) out.push(m);
  return out;
}

describe('parseSse', () => {
  it('parses events split anywhere across chunks, with every line ending', async () => {
    const euro = new TextEncoder().encode('data: €\n\n'); // € is 3 bytes: split it between chunks
    const { stream } = byteStream([
      'event: sta',
      'te\ndata: {"state":"active"}\r',
      '\n\r\n: ping\n\nevent: progress\rdata: line 1\rdata:line 2\r\r',
      euro.slice(0, 7),
      euro.slice(7),
      'id: 7\ndata: x\n\n',
      'event: lost\ndata: never terminated',
    ]);
    expect(await collect(stream)).toEqual([
      { event: 'state', data: '{"state":"active"}' },
      { event: 'progress', data: 'line 1\nline 2' },
      { event: 'message', data: '€' },
      { event: 'message', data: 'x', id: '7' },
    ]);
  });

  it('cancels the stream when the consumer stops early', async () => {
    const { stream, cancelled } = byteStream(['data: 1\n\n', 'data: 2\n\n', 'data: 3\n\n']);
    for await (const m of parseSse(stream)) {
      expect(m.data).toBe('1');
      break;
    }
    expect(cancelled()).toBe(true);
  });
});

describe('errorFromResponse', () => {
  it('reads the API error shape, and keeps any other body', () => {
    const e = errorFromResponse(
      400,
      'Bad Request',
      JSON.stringify({
        error: {
          code: 'invalid_request',
          message: 'bad',
          details: [{ field: 'epochs', message: 'too small' }],
        },
      }),
    );
    expect(e).toMatchObject({
      status: 400,
      code: 'invalid_request',
      message: 'bad',
      fields: [{ field: 'epochs' }],
    });
    const other = errorFromResponse(
      503,
      'Service Unavailable',
      '{"status":"not ready","redis":"ECONNREFUSED"}',
    );
    expect(other).toMatchObject({ status: 503, code: 'http_503', details: { redis: 'ECONNREFUSED' } });
    expect(errorFromResponse(502, 'Bad Gateway', '<html>nginx</html>').message).toBe(
      'HTTP 502 Bad Gateway: <html>nginx</html>',
    );
  });

  it('reads the Open Inference Protocol error shape, {"error": "<message>"}', () => {
    const e = errorFromResponse(
      400,
      'Bad Request',
      '{"error": "inputs[0].name \\"x\\" is not the model\'s input"}',
    );
    expect(e).toMatchObject({
      status: 400,
      code: 'invalid_request',
      message: 'inputs[0].name "x" is not the model\'s input',
    });
    expect(errorFromResponse(503, 'Service Unavailable', '{"error": "full"}')).toMatchObject({
      code: 'unavailable',
    });
  });
});

describe('model references and image instances', () => {
  it('parses references and encodes images as base64 (in chunks, for large files)', () => {
    expect(parseRef('m@3')).toEqual({ name: 'm', version: 3 });
    expect(parseRef('m@prod')).toEqual({ name: 'm', label: 'prod' });
    expect(parseRef('m@latest')).toEqual({ name: 'm' }); // the newest version, never a label
    expect(parseRef({ name: 'm', label: 'prod' })).toEqual({ name: 'm', label: 'prod' });
    const bytes = Uint8Array.from({ length: 100_003 }, (_, i) => (i * 7919) % 256);
    expect(imageInstance(bytes)).toEqual({ b64: Buffer.from(bytes).toString('base64') });
  });
});

describe('CLI formatting', () => {
  const p = {
    epoch: 3,
    epochs: 10,
    loss: 0.12345,
    acc: 0.9,
    valAcc: 0.85,
    samplesPerSec: 1234.5,
    etaSeconds: 3725,
  };

  it('formats durations', () => {
    expect([formatDuration(0), formatDuration(42), formatDuration(61), formatDuration(3725)]).toEqual([
      '0:00',
      '0:42',
      '1:01',
      '1:02:05',
    ]);
  });

  it('draws a progress bar that fits the terminal', () => {
    const bar = formatProgressBar(p, 120);
    expect(bar.replace(/\[█+░+\]/, '[bar]')).toBe(
      'epoch 3/10 [bar]  30%  loss 0.1235  acc 0.9000  val acc 0.8500  1235 samples/s  ETA 1:02:05',
    );
    expect(bar.match(/█/g)).toHaveLength(Math.round(0.3 * (bar.match(/[█░]/g) ?? []).length));
    for (const cols of [40, 80]) expect(formatProgressBar(p, cols).length).toBeLessThan(cols);
  });

  it('moves the bar within an epoch, and over rows and trials', () => {
    const within = {
      epoch: 3,
      epochs: 10,
      batch: 10,
      batches: 40,
      loss: 0.2,
      acc: 0.9,
      samplesPerSec: 500,
      etaSeconds: 60,
    };
    const bar = formatProgressBar(within, 120);
    expect(bar).toMatch(/^epoch 3\/10 batch 10\/40 \[█+░+\] {2}23% {2}loss 0.2000/);
    expect(progressFraction(within)).toBeCloseTo(0.225, 10);
    expect(formatProgressBar({ rows: 3000, total: 10000 }, 80)).toMatch(/^rows 3000\/10000 \[█+░+\] {2}30%$/);
    expect(
      formatProgressBar({ trialsDone: 1, trials: 4, failed: 0, objective: 'valAcc', best: null }, 80),
    ).toMatch(/^trials 1\/4 \[█+░+\] {2}25%$/);
    expect(progressFraction(0)).toBeUndefined();
  });

  it('says what a job produced, or why it failed', () => {
    const base = { id: 'j1', startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:00:02.500Z' };
    const done = {
      ...base,
      type: 'fine-tune',
      state: 'completed',
      result: {
        model: { name: 'm', version: 2, uri: 'file:///x' },
        metrics: { loss: 0.1, acc: 0.95 },
        epochs: 3,
        backend: 'wasm',
      },
    } as AnyJob;
    expect(formatFinalLine(done)).toBe(
      'completed fine-tune j1 in 2.5 s: model m@2  loss 0.1000  acc 0.9500  (3 epochs)',
    );
    const failed = { ...base, type: 'evaluate', state: 'failed', error: 'model "x" not found' } as AnyJob;
    expect(formatFinalLine(failed)).toBe('failed evaluate j1 in 2.5 s: model "x" not found');
  });

  it('prints a pipe one line per epoch, and rows or trials by tenths, every 5 s at most apart', () => {
    let now = 0;
    const plain = new PlainProgressLines(5000, () => now);
    // A batch-predict of 7,996 one-row chunks, 1 ms apart: a dozen lines, the last one 100%.
    const printed: string[] = [];
    for (let i = 1; i <= 7996; i++, now++) {
      const line = plain.line({ rows: i, total: 7996 });
      if (line !== undefined) printed.push(line);
    }
    expect(printed.length).toBeLessThanOrEqual(12);
    expect(printed[0]).toBe('rows 1/7996');
    expect(printed.at(-1)).toBe('rows 7996/7996');
    // Slow rows: one line per 5 s although the tenth has not moved.
    const slow = new PlainProgressLines(5000, () => now);
    expect(slow.line({ rows: 1, total: 1000 })).toBe('rows 1/1000');
    now += 4000;
    expect(slow.line({ rows: 2, total: 1000 })).toBeUndefined();
    now += 1000;
    expect(slow.line({ rows: 3, total: 1000 })).toBe('rows 3/1000');
    // Epochs: every epoch's end, nothing from within an epoch.
    const epochs = new PlainProgressLines(5000, () => now);
    const epoch = { epoch: 1, epochs: 2, loss: 1, acc: 0.5, samplesPerSec: 10, etaSeconds: 1 };
    expect(epochs.line({ ...epoch, batch: 3, batches: 10 })).toBeUndefined();
    expect(epochs.line(epoch)).toMatch(/^epoch 1\/2 {2}loss/);
    expect(epochs.line({ ...epoch, epoch: 2 })).toMatch(/^epoch 2\/2 {2}loss/);
  });

  it('aligns table columns', () => {
    expect(
      formatTable(
        ['A', 'LONG'],
        [
          ['xyz', '1'],
          ['q', ''],
        ],
      ),
    ).toBe('A    LONG\nxyz  1\nq');
  });
});

describe('loadCliEnv', () => {
  it('defaults the URL and resolves files from the process directory', () => {
    expect(loadCliEnv({}, '/home/u/work')).toEqual({
      url: 'http://127.0.0.1:3000',
      apiKey: undefined,
      cwd: '/home/u/work',
    });
  });

  it("under `pnpm mlq` (the root script) takes the caller's directory from INIT_CWD", () => {
    const env = { npm_lifecycle_event: 'mlq', INIT_CWD: '/home/u/work', MLQ_URL: 'http://api:3000' };
    expect(loadCliEnv(env, '/repo')).toMatchObject({ url: 'http://api:3000', cwd: '/home/u/work' });
    // Another package script that happens to start the CLI keeps its own directory.
    expect(loadCliEnv({ ...env, npm_lifecycle_event: 'test' }, '/repo').cwd).toBe('/repo');
  });
});

describe('browser safety', () => {
  it('imports nothing from node and only types from @mlq/core outside the CLI', async () => {
    const files = (await readdir(src)).filter((f) => f.endsWith('.ts') && f !== 'cli.ts');
    expect(files).toContain('client.ts');
    for (const f of files) {
      const text = await readFile(path.join(src, f), 'utf8');
      expect(text, f).not.toMatch(/from ['"]node:|require\(|\bprocess\./);
      for (const m of text.matchAll(/^import (.*) from ['"]@mlq\/core[^'"]*['"]/gm))
        expect(m[1], f).toMatch(/^type /);
      for (const m of text.matchAll(/from ['"](\.\/cli(?:\/|\.ts)[^'"]*)['"]/g))
        expect.fail(`${f} imports the CLI (${m[1]})`);
    }
  });
});

describe("the SDK's request and response bodies", () => {
  it("are the contract's types (packages/contract/src/http.ts), under the SDK's names", () => {
    // Checked by the type checker (pnpm typecheck covers the tests): a copy that drifts fails it.
    expectTypeOf<sdk.CancelResult>().toEqualTypeOf<contract.CancelResult>();
    expectTypeOf<sdk.ModelDetail>().toEqualTypeOf<contract.ModelDetail>();
    expectTypeOf<sdk.LabelResult>().toEqualTypeOf<contract.LabelResult>();
    expectTypeOf<sdk.ModelVersionStatus>().toEqualTypeOf<contract.ModelVersionStatus>();
    expectTypeOf<sdk.Health>().toEqualTypeOf<contract.Health>();
    expectTypeOf<sdk.Readiness>().toEqualTypeOf<contract.Readiness>();
    expectTypeOf<sdk.ModelMetadata>().toEqualTypeOf<contract.InferModelMetadata>();
    expectTypeOf<sdk.InferResponse>().toEqualTypeOf<contract.InferResponse>();
    expectTypeOf<
      sdk.PredictResponse | sdk.PredictColumnarResponse
    >().toEqualTypeOf<contract.PredictResponse>();
    expectTypeOf<sdk.JobPage['limit']>().toEqualTypeOf<contract.JobPage['limit']>();
    expectTypeOf<sdk.InferDatatype>().toEqualTypeOf<(typeof contract.inferDatatypes)[number]>();
    // What the SDK adds to a request: typed arrays as an infer input's data (sent as JSON arrays).
    expectTypeOf<contract.InferRequest>().toExtend<sdk.InferRequest>();
    expectTypeOf<{
      name: 'x';
      shape: [1];
      datatype: 'FP32';
      data: Float32Array;
    }>().toExtend<sdk.InferInputTensor>();
    // The Readiness answer is the contract's: one of its two states, not any string.
    expectTypeOf<'starting'>().not.toExtend<sdk.Readiness['status']>();
  });
});

describe('uploadDataset', () => {
  const points = fileURLToPath(new URL('../../../examples/points.csv', import.meta.url));
  /** A client whose fetch records the upload's media type and answers a version. */
  function recording() {
    const sent: string[] = [];
    const fetch = async (_url: string | URL | Request, init?: RequestInit) => {
      sent.push(new Headers(init?.headers).get('content-type') ?? '');
      await new Response(init?.body).arrayBuffer();
      return Response.json({ uri: 'dataset://points@1' }, { status: 201 });
    };
    return { sent, mlq: new MlqClient({ baseUrl: 'http://127.0.0.1:9', fetch }) };
  }

  it("takes the format from a File's name, and asks for it with a nameless Blob (fs.openAsBlob)", async () => {
    const { sent, mlq } = recording();
    const blob = await openAsBlob(points);
    const err = await mlq.uploadDataset('points', blob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlqError);
    expect((err as MlqError).message).toMatch(/give the upload format: .*fs\.openAsBlob\(path\) has neither/);
    expect(sent).toEqual([]);
    // The README's line (README.md, "6. Your own data").
    const progress: number[] = [];
    await mlq.uploadDataset('points', blob, { format: 'csv', onProgress: (n) => progress.push(n) });
    await mlq.uploadDataset('points', new File([blob], 'points.csv'));
    await mlq.uploadDataset('points', await openAsBlob(points, { type: 'text/csv' }));
    expect(sent).toEqual(['text/csv', 'text/csv', 'text/csv']);
    expect(progress.at(-1)).toBe(blob.size);
  });
});
