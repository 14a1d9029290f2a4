/**
 * The Open Inference Protocol's REST bodies (KServe's "V2" protocol, also spoken by Triton, Seldon
 * MLServer and OpenVINO Model Server), for models with one input and one output:
 *   - an inference request `{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "data"}],
 *     "outputs"?: [{"name"}]}` checked against the model and packed into one Float32Array;
 *   - the inference response `{"model_name", "model_version", "id"?, "outputs": [{"name", "shape",
 *     "datatype", "data"}]}`, data flat in row-major order as the protocol's own example;
 *   - the model metadata `{"name", "versions", "platform", "inputs", "outputs"}`.
 * Every mismatch is an ApiError (400, 413) whose message says what the model takes; the routes send
 * it as the protocol's `{"error": "<message>"}`.
 */
import { inferDatatypes, type InferModelMetadata, type InferResponse } from '@mlq/contract';
import { ApiError, badRequest } from '../errors.ts';
import type { ModelInfo } from './protocol.ts';

/** The datatypes a request may send; values are converted, exactly, to the model's input dtype. */
const INFER_DATATYPES = inferDatatypes;
type InferDatatype = (typeof INFER_DATATYPES)[number];

/** The platform name of a tfjs LayersModel, in the protocol's `<project>_<format>` form. */
export const PLATFORM = 'tfjs_layers_model';

const F32_MAX = 3.4028234663852886e38;
const prod = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The protocol's datatype name of a tfjs dtype. */
export function inferDatatype(dtype: string): string {
  const names: Record<string, string> = { float32: 'FP32', int32: 'INT32', bool: 'BOOL', string: 'BYTES' };
  return names[dtype] ?? dtype.toUpperCase();
}

/** A checked inference request: `rows` instances packed in `data`. */
export interface InferInput {
  id?: string;
  rows: number;
  data: Float32Array;
}

/** `"image" [-1,28,28,1] FP32`: how a model's input is described in messages. */
function describeInput(info: ModelInfo): string {
  return `"${info.inputName}" [-1,${info.inputShape.join(',')}] ${inferDatatype(info.inputDtype)}`;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Checks one element against the request's datatype and the model's dtype; returns it or a problem. */
function checkValue(v: unknown, datatype: InferDatatype, integerInput: boolean): string | undefined {
  if (typeof v !== 'number') return `is ${JSON.stringify(v)?.slice(0, 40)}, not a number`;
  switch (datatype) {
    case 'FP32':
      if (!(Math.abs(v) <= F32_MAX)) return `is ${v}, out of the FP32 range`;
      break;
    case 'FP64':
      if (!(Math.abs(v) <= F32_MAX)) return `is ${v}, out of the FP32 range the model computes in`;
      break;
    case 'UINT8':
      if (!Number.isInteger(v) || v < 0 || v > 255) return `is ${v}, not a UINT8 (an integer 0..255)`;
      break;
    case 'INT32':
      if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) return `is ${v}, not an INT32`;
      break;
    case 'INT64':
      if (!Number.isSafeInteger(v)) return `is ${v}, not an INT64 exactly representable in JSON`;
      break;
  }
  if (integerInput && !Number.isInteger(v)) return `is ${v}, but the model's input is INT32`;
  return undefined;
}

/** Packs `data` (flat, or nested to `shape`) into `out`, checking every element. */
function packData(
  data: unknown,
  shape: readonly number[],
  datatype: InferDatatype,
  info: ModelInfo,
  out: Float32Array,
): void {
  const integerInput = info.inputDtype.startsWith('int');
  const fail = (where: string, problem: string): never => {
    throw badRequest(`inputs[0].data${where} ${problem}`, [
      { field: `inputs[0].data${where}`, message: problem },
    ]);
  };
  if (!Array.isArray(data)) fail('', 'must be an array (flat, or nested to the shape)');
  const list = data as unknown[];
  if (list.length === out.length && !Array.isArray(list[0])) {
    for (let i = 0; i < list.length; i++) {
      const v = list[i];
      // The common case first: a float32 number needs no further look.
      if (typeof v === 'number' && !integerInput && datatype === 'FP32' && Math.abs(v) <= F32_MAX) {
        out[i] = v;
        continue;
      }
      const problem = checkValue(v, datatype, integerInput);
      if (problem) fail(`[${i}]`, problem);
      out[i] = v as number;
    }
    return;
  }
  let offset = 0;
  const walk = (v: unknown, dim: number, where: string): void => {
    if (dim === shape.length) {
      const problem = checkValue(v, datatype, integerInput);
      if (problem) fail(where, problem);
      out[offset++] = v as number;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) {
      const got = Array.isArray(v) ? `has ${v.length} elements` : `is ${JSON.stringify(v)?.slice(0, 40)}`;
      fail(
        where,
        `${got}: "data" must hold ${out.length} numbers, flat or nested to shape [${shape.join(',')}]`,
      );
    }
    (v as unknown[]).forEach((x, i) => walk(x, dim + 1, `${where}[${i}]`));
  };
  walk(list, 0, '');
}

/** The `shape` of the request's input: `[n, ...inputShape]` with 1 <= n <= maxInstances. */
function checkShape(shape: unknown, info: ModelInfo, maxInstances: number): number[] {
  const want = `[n,${info.inputShape.join(',')}] for n instances`;
  const ok =
    Array.isArray(shape) &&
    shape.length === info.inputShape.length + 1 &&
    shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) &&
    shape.slice(1).every((d, i) => d === info.inputShape[i]);
  if (!ok) {
    throw badRequest(
      `inputs[0].shape is ${JSON.stringify(shape)}; the model's input ${describeInput(info)} takes ${want}`,
      [{ field: 'inputs[0].shape', message: `must be ${want}` }],
    );
  }
  const n = shape[0] as number;
  if (n === 0)
    throw badRequest('inputs[0].shape has a batch of 0: send at least one instance', [
      { field: 'inputs[0].shape', message: 'empty batch' },
    ]);
  if (n > maxInstances) {
    throw new ApiError(
      413,
      'too_many_instances',
      `inputs[0].shape has ${n} instances; at most ${maxInstances} per request`,
      [{ field: 'inputs[0].shape', message: `more than ${maxInstances} instances` }],
    );
  }
  return shape as number[];
}

/** Checks the request's optional `id`, `parameters` and `outputs` (only the model's output may be asked for). */
function checkExtras(b: Record<string, unknown>, info: ModelInfo): void {
  if (b.id !== undefined && typeof b.id !== 'string')
    throw badRequest('"id" must be a string', [{ field: 'id', message: 'not a string' }]);
  if (b.parameters !== undefined && !isObject(b.parameters))
    throw badRequest('"parameters" must be an object', [{ field: 'parameters', message: 'not an object' }]);
  if (b.outputs === undefined) return;
  if (!Array.isArray(b.outputs))
    throw badRequest('"outputs" must be an array of {"name"}', [
      { field: 'outputs', message: 'not an array' },
    ]);
  b.outputs.forEach((o, i) => {
    const name = isObject(o) ? o.name : undefined;
    if (name !== info.outputName) {
      throw badRequest(
        `outputs[${i}].name ${JSON.stringify(name)} is not an output of the model; its output is "${info.outputName}"`,
        [{ field: `outputs[${i}].name`, message: `must be "${info.outputName}"` }],
      );
    }
  });
}

/**
 * Parses and checks an inference request's text for a model with one input and one output.
 * @throws ApiError 400 (the message names the field and what the model takes), 413 over `maxInstances`.
 */
export function parseInferRequest(
  text: string | undefined,
  info: ModelInfo,
  maxInstances: number,
): InferInput {
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch (e) {
    throw new ApiError(400, 'invalid_json', `the body is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(body) || !Array.isArray(body.inputs) || body.inputs.length === 0) {
    throw badRequest(
      `the body must be {"inputs": [{"name", "shape", "datatype", "data"}]}; the model takes ${describeInput(info)}`,
      [{ field: 'inputs', message: 'a non-empty array is required' }],
    );
  }
  checkExtras(body, info);
  const inputs = body.inputs as unknown[];
  const names = inputs.map((x) => (isObject(x) ? String(x.name) : '?'));
  if (inputs.length !== 1) {
    throw badRequest(
      `the model has one input, ${describeInput(info)}; the request has ${inputs.length} (${names.join(', ')})`,
      [{ field: 'inputs', message: 'exactly one input is expected' }],
    );
  }
  const input = inputs[0];
  if (!isObject(input) || input.name !== info.inputName) {
    throw badRequest(
      `inputs[0].name ${JSON.stringify(isObject(input) ? input.name : input)} is not the model's input; it takes ${describeInput(info)}`,
      [{ field: 'inputs[0].name', message: `must be "${info.inputName}"` }],
    );
  }
  const datatype = input.datatype;
  if (!(INFER_DATATYPES as readonly unknown[]).includes(datatype)) {
    throw badRequest(
      `inputs[0].datatype ${JSON.stringify(datatype)} is not supported: use ${INFER_DATATYPES.join(', ')} (the model takes ${inferDatatype(info.inputDtype)})`,
      [{ field: 'inputs[0].datatype', message: `one of ${INFER_DATATYPES.join(', ')}` }],
    );
  }
  if (isObject(input.parameters) && input.parameters.binary_data_size !== undefined) {
    throw badRequest('binary tensor data is not supported: send "data" as a JSON array', [
      { field: 'inputs[0].parameters.binary_data_size', message: 'not supported' },
    ]);
  }
  const shape = checkShape(input.shape, info, maxInstances);
  const data = new Float32Array(prod(shape));
  packData(input.data, shape, datatype as InferDatatype, info, data);
  return { ...(typeof body.id === 'string' ? { id: body.id } : {}), rows: shape[0]!, data };
}

/** The inference response: the model's one output, `data` flat in row-major order. */
export function inferResponse(
  name: string,
  version: number,
  info: ModelInfo,
  input: InferInput,
  out: Float32Array,
): InferResponse {
  return {
    model_name: name,
    model_version: String(version),
    ...(input.id !== undefined ? { id: input.id } : {}),
    outputs: [
      {
        name: info.outputName,
        datatype: inferDatatype(info.outputDtype),
        shape: [input.rows, ...info.outputShape],
        data: Array.from(out),
      },
    ],
  };
}

/** The model metadata: its versions, platform, and input and output tensors (batch dimension -1). */
export function modelMetadata(
  name: string,
  versions: readonly number[],
  info: ModelInfo,
): InferModelMetadata {
  const tensor = (n: string, dtype: string, shape: readonly number[]) => ({
    name: n,
    datatype: inferDatatype(dtype),
    shape: [-1, ...shape],
  });
  return {
    name,
    versions: versions.map(String),
    platform: PLATFORM,
    inputs: [tensor(info.inputName, info.inputDtype, info.inputShape)],
    outputs: [tensor(info.outputName, info.outputDtype, info.outputShape)],
  };
}
