import { describe, expect, it } from 'vitest';
import { scanNumericBody } from '../src/serving/json-scan.ts';
import type { ModelInfo } from '../src/serving/protocol.ts';
import { packPredictBody, packPredictText } from '../src/serving/tensor-input.ts';

const info: ModelInfo = {
  inputName: 'image',
  inputShape: [2, 3, 1],
  inputDtype: 'float32',
  outputName: 'classes',
  outputShape: [2],
  outputDtype: 'float32',
  bytes: 0,
};

/** What the general path (JSON.parse + packPredictBody) makes of a body: packed data, or the error. */
function general(text: string): { data?: number[]; error?: string } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    return { error: `the body is not valid JSON: ${(e as Error).message}` };
  }
  try {
    return { data: Array.from(packPredictBody(body, info, 8).data) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function viaText(text: string): { data?: number[]; error?: string } {
  try {
    return { data: Array.from(packPredictText(text, info, 8).data) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

const image = (k: number) => [
  [[k], [k + 0.5], [-k]],
  [[1e-3], [k * 1e5], [0]],
];

describe(scanNumericBody.name, () => {
  it('reads nested and flat batches into the same numbers JSON.parse gives', () => {
    const bodies = [
      JSON.stringify({ instances: [image(1), image(2)] }),
      JSON.stringify({ inputs: [image(3)] }),
      JSON.stringify({ instances: [image(1).flat(2), image(7).flat(2)] }),
      ' { "instances" :\n [ [ [ 1 ] , [2.5e0], [ -3E-2 ] ], [[0],[-0],[123456789012]] ] } ',
      '{"instances":[[[0.1],[0.2],[0.30000000000000004]],[[1e38],[-1e-45],[9]]]}',
    ];
    for (const b of bodies) {
      expect(scanNumericBody(b), b).toBeDefined();
      expect(viaText(b), b).toEqual(general(b));
    }
  });

  it('reads every number as JSON.parse does, on and off its exact fast path', () => {
    // Seeded: shortest doubles, float32 values, long and short decimals, exponents at and past the
    // fast path's bounds (±22, 2^53), negative zero.
    let seed = 17;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const texts = [
      '0',
      '-0',
      '0.0',
      '-0.0',
      '9007199254740991',
      '9007199254740993',
      '0.5294117647058824',
      '1e22',
      '1e23',
      '1.5e-22',
      '1.5e-23',
      '123456789012345678901234567890',
      '0.1e1',
      '5E+3',
      '0.30000000000000004',
      '3.4028234663852886e38',
      '1.401298464324817e-45',
      '4.9e-324',
      '0.000000000000000000000000001',
      '179769313486231570000000000000000000000e-1',
    ];
    for (let i = 0; i < 3000; i++) {
      const x = (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20);
      texts.push(String(x), String(Math.fround(x)), x.toFixed(Math.floor(rand() * 12)));
      texts.push(x.toExponential(Math.floor(rand() * 17)), x.toPrecision(1 + Math.floor(rand() * 20)));
    }
    const scanned = scanNumericBody(`{"instances": [${texts.join(',')}]}`);
    expect(scanned?.dims).toEqual([texts.length]);
    const want = Float32Array.from(texts, (t) => JSON.parse(t) as number);
    expect(Array.from(scanned!.values)).toEqual(Array.from(want));
  });

  it('leaves every other body to the general path, which gives the same answer or error', () => {
    const bodies = [
      '{"instances": []}',
      '{"instances": [[]]}',
      '{"instances": [[[1],[2]],[[3],[4],[5]]]}', // ragged
      '{"instances": [[[1],[2],[3]],[[4],[5],[6]]], "signature_name": "serving_default"}',
      '{"instances": [[[1],[2],[3]],[[4],[5],"6"]]}',
      '{"instances": [[[1],[2],[3]],[[4],[5],[null]]]}',
      '{"instances": [[[1],[2],[3]],[[4],[5],[01]]]}',
      '{"instances": [[[1],[2],[3]],[[4],[5],[1e39]]]}',
      '{"instances": [[[1],[2],[3]],[[4],[5],[6,]]]}',
      '{"instances": [[[1],[2],[3]],[[4],[5],[6]]]',
      '{"instances": [{"image": [[[1],[2],[3]],[[4],[5],[6]]]}]}',
      '{"inputs": {"image": [[[[1],[2],[3]],[[4],[5],[6]]]]}}',
      '{"instances": [[1, 2, 3, 4, 5]]}',
      '{"instances": [[[1],[2],[3]]]}',
      '{"instances": [[[[1]],[2],[3]],[[4],[5],[6]]]}',
      '[1, 2, 3]',
      '',
    ];
    for (const b of bodies) {
      const scanned = scanNumericBody(b);
      if (scanned) expect(scanned.dims, b).not.toEqual([1, 2, 3, 1]); // scanned, but not a fit: general path
      const ours = viaText(b);
      if (b === '') expect(ours.error).toMatch(/the body must be/);
      else expect(ours, b).toEqual(general(b));
    }
  });
});

describe('signature_name and image instances', () => {
  const rows = '[[[1],[2],[3]],[[4],[5],[6]]]';
  it('reads signature_name before or after the tensor on the fast path, as the general path does', () => {
    for (const b of [
      `{"signature_name": "serving_default", "instances": [${rows}]}`,
      `{"instances": [${rows}], "signature_name": "serving_default"}`,
      `{"signature_name": "predict", "instances": [${rows}]}`,
      `{"inputs": [${rows}] , "signature_name" : "x\\"y"}`,
    ]) {
      expect(viaText(b), b).toEqual(general(b));
    }
    expect(
      scanNumericBody(`{"instances": [${rows}], "signature_name": "serving_default"}`)?.signatureName,
    ).toBe('serving_default');
    expect(viaText(`{"signature_name": "predict", "instances": [${rows}]}`).error).toMatch(
      /signature_name "predict" is unknown.*"serving_default"/,
    );
  });

  it('takes {"b64": ...} only for an image input, and only as base64', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]).toString('base64');
    const packed = packPredictBody({ instances: [{ b64: png }, { image: { b64: png } }] }, info, 8);
    expect(packed.images?.map((i) => [i.row, i.field, i.bytes.length])).toEqual([
      [0, 'instances[0]', 4],
      [1, 'instances[1]', 4],
    ]);
    expect(() => packPredictBody({ instances: [{ b64: '%%%' }] }, info, 8)).toThrow(
      /instances\[0\]\.b64 must be/,
    );
    const table = { ...info, inputShape: [4] };
    expect(() => packPredictBody({ instances: [{ b64: png }] }, table, 8)).toThrow(
      /model's input \[4\] \(float32\) is not an image/,
    );
  });
});
