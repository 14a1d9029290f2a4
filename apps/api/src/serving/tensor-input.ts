/**
 * TF Serving's REST bodies, checked against the model's input and packed into one Float32Array:
 * `{"instances": [...]}` (row format) and `{"inputs": ...}` (columnar). An instance is a nested array
 * of the input's shape, a flat array of as many numbers, or, the model having one input, an object
 * `{"<input name>": <that>}`; for an image model also `{"b64": "<PNG or JPEG, base64>"}` (image-input.ts).
 * `signature_name`, if given, must be `serving_default`, the only signature a model here has.
 * Every mismatch is an ApiError (400/413) that names the expected shape.
 */
import type { FieldIssue, PredictResponse } from '@mlq/contract';
import { ApiError, badRequest } from '../errors.ts';
import { b64Bytes, isB64, type ImageInstance } from './image-input.ts';
import { scanNumericBody, type ScannedTensor } from './json-scan.ts';
import type { ModelInfo } from './protocol.ts';

export type PredictFormat = 'row' | 'columnar';

export interface PackedInput {
  format: PredictFormat;
  rows: number;
  /** `rows` instances, each `prod(inputShape)` numbers, one after the other. */
  data: Float32Array;
  /** Image instances, whose rows of `data` are left to fill once they are decoded. */
  images?: ImageInstance[];
}

/** The one signature every model served here has, as a Keras model exported to TF Serving. */
export const SIGNATURE_NAME = 'serving_default';

/** 400 unless `name` is absent or `serving_default`. */
export function checkSignatureName(name: unknown): void {
  if (name === undefined || name === SIGNATURE_NAME) return;
  throw badRequest(
    `signature_name ${JSON.stringify(name)} is unknown: the model has one signature, "${SIGNATURE_NAME}"`,
    [{ field: 'signature_name', message: `must be "${SIGNATURE_NAME}"` }],
  );
}

const prod = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const F32_MAX = 3.4028234663852886e38;

/** "expected instances of shape [28,28,1] (or 784 numbers)", the phrase every shape error ends with. */
export function expectedShape(info: ModelInfo): string {
  const n = prod(info.inputShape);
  const flat = info.inputShape.length > 1 ? ` (or ${n} numbers)` : '';
  return `expected instances of shape [${info.inputShape.join(',')}]${flat}`;
}

function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** Where a bad value sits, e.g. `instances[3][0][5]`; built only on the error path. */
const at = (field: string, path: readonly number[]) => field + path.map((i) => `[${i}]`).join('');

class Packer {
  readonly size: number;
  private readonly integer: boolean;
  private readonly path: number[] = [];
  offset = 0;
  readonly images: ImageInstance[] = [];

  private readonly info: ModelInfo;
  private readonly out: Float32Array;
  private readonly field: string;
  constructor(info: ModelInfo, out: Float32Array, field: string) {
    this.info = info;
    this.out = out;
    this.field = field;
    this.size = prod(info.inputShape);
    this.integer = info.inputDtype.startsWith('int');
  }

  private fail(where: string, problem: string, status = 400): never {
    const issue: FieldIssue = { field: where, message: problem };
    if (status !== 400) throw new ApiError(status, 'invalid_request', `${where} ${problem}`, [issue]);
    throw badRequest(`${where} ${problem}: ${expectedShape(this.info)}`, [issue]);
  }

  private number(v: unknown): number {
    if (typeof v !== 'number') this.fail(at(this.field, this.path), `is ${show(v)}, not a number`);
    if (!Number.isFinite(Math.fround(v)))
      this.fail(at(this.field, this.path), `is ${v}, out of the float32 range`);
    if (this.integer && !Number.isInteger(v))
      this.fail(at(this.field, this.path), `is ${v}, but the model input is ${this.info.inputDtype}`);
    return v;
  }

  /** Packs a nested array whose dimensions from `dim` on must be `inputShape[dim..]`. */
  private nested(v: unknown, dim: number): void {
    const shape = this.info.inputShape;
    if (dim === shape.length) {
      this.out[this.offset++] = this.number(v);
      return;
    }
    const want = shape[dim]!;
    if (!Array.isArray(v))
      return this.fail(at(this.field, this.path), `is ${show(v)}, where an array of ${want} is expected`);
    if (v.length !== want)
      return this.fail(at(this.field, this.path), `has ${v.length} elements, where ${want} are expected`);
    for (let i = 0; i < want; i++) {
      this.path.push(i);
      this.nested(v[i], dim + 1);
      this.path.pop();
    }
  }

  /** True when `x` packs as is: a number, in the float32 range, an integer if the input is one. */
  private ok(x: unknown): x is number {
    return typeof x === 'number' && Math.abs(x) <= F32_MAX && (!this.integer || Number.isInteger(x));
  }

  /** The fast path: packs a well-formed nested array, or returns false (no message: the slow path makes it). */
  private fast(v: unknown, dim: number): boolean {
    const shape = this.info.inputShape;
    if (dim === shape.length) {
      if (!this.ok(v)) return false;
      this.out[this.offset++] = v;
      return true;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) return false;
    for (let i = 0; i < v.length; i++) if (!this.fast(v[i], dim + 1)) return false;
    return true;
  }

  /** Packs instance number `row` (already unwrapped from `{"<input name>": ...}`). */
  instance(v: unknown, row: number, where: string): void {
    const start = this.offset;
    if (isB64(v)) {
      this.images.push({ row, bytes: b64Bytes(v, where, this.info), field: where });
      this.offset = start + this.size;
      return;
    }
    const shape = this.info.inputShape;
    // The flat form: prod(shape) numbers. A rank-1 input has only this form, handled as nested.
    const flat = shape.length > 1 && Array.isArray(v) && v.length === this.size && !Array.isArray(v[0]);
    if (flat ? v.every((x) => this.ok(x)) : this.fast(v, 0)) {
      if (flat) this.out.set(v, start);
      this.offset = start + this.size;
      return;
    }
    // Something is wrong: walk again, keeping the path, to say what and where.
    this.offset = start;
    this.path.length = 0;
    this.path.push(row);
    if (!flat) return this.nested(v, 0);
    for (let i = 0; i < v.length; i++) {
      this.path.push(i);
      this.out[this.offset++] = this.number(v[i]);
      this.path.pop();
    }
  }
}

function unwrap(v: unknown, info: ModelInfo, where: string): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || isB64(v)) return v;
  const keys = Object.keys(v);
  if (keys.length !== 1 || keys[0] !== info.inputName) {
    throw badRequest(
      `${where} is an object, so its only key must be the model's input "${info.inputName}"; got {${keys.join(', ')}}`,
      [{ field: where, message: `expected {"${info.inputName}": ...}` }],
    );
  }
  return (v as Record<string, unknown>)[info.inputName];
}

/** Checks and packs a predict body; `maxInstances` bounds one request. */
export function packPredictBody(body: unknown, info: ModelInfo, maxInstances: number): PackedInput {
  const b =
    body !== null && typeof body === 'object' && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : {};
  const has = (k: string) => b[k] !== undefined;
  if (has('instances') === has('inputs')) {
    throw badRequest(
      'the body must be {"instances": [...]} (row format) or {"inputs": ...} (columnar format), exactly one of them',
      [{ field: 'instances', message: 'exactly one of "instances" and "inputs" is required' }],
    );
  }
  checkSignatureName(b.signature_name);
  const format: PredictFormat = has('instances') ? 'row' : 'columnar';
  const field = format === 'row' ? 'instances' : 'inputs';
  const list = format === 'row' ? b.instances : unwrap(b.inputs, info, 'inputs');
  if (!Array.isArray(list)) {
    throw badRequest(`"${field}" must be an array with one entry per instance: ${expectedShape(info)}`, [
      { field, message: `is ${show(list)}, not an array` },
    ]);
  }
  if (list.length === 0) {
    throw badRequest(`"${field}" is empty: send at least one instance (${expectedShape(info)})`, [
      { field, message: 'is empty' },
    ]);
  }
  if (list.length > maxInstances) {
    throw new ApiError(
      413,
      'too_many_instances',
      `"${field}" has ${list.length} instances; at most ${maxInstances} per request`,
      [{ field, message: `more than ${maxInstances} instances` }],
    );
  }
  const data = new Float32Array(list.length * prod(info.inputShape));
  const packer = new Packer(info, data, field);
  list.forEach((v, row) => {
    const where = `${field}[${row}]`;
    packer.instance(format === 'row' ? unwrap(v, info, where) : v, row, where);
  });
  const images = packer.images.length ? { images: packer.images } : {};
  return { format, rows: list.length, data, ...images };
}

/** True when a scanned tensor is a batch of well-formed instances for this model (nested or flat). */
function fits(t: ScannedTensor, info: ModelInfo, maxInstances: number): boolean {
  const [n, ...rest] = t.dims;
  if (n === undefined || n < 1 || n > maxInstances || info.inputDtype.startsWith('int')) return false;
  const shape = info.inputShape;
  if (rest.length === shape.length && rest.every((d, i) => d === shape[i])) return true;
  return shape.length > 1 && rest.length === 1 && rest[0] === prod(shape);
}

/**
 * Checks and packs a predict body given as the request text: the fast scan (json-scan.ts) when it
 * yields a batch that fits the model, else JSON.parse and packPredictBody (which explain what is wrong).
 */
export function packPredictText(
  text: string | undefined,
  info: ModelInfo,
  maxInstances: number,
): PackedInput {
  const scanned = text ? scanNumericBody(text) : undefined;
  if (scanned && fits(scanned, info, maxInstances)) {
    checkSignatureName(scanned.signatureName);
    return {
      format: scanned.key === 'instances' ? 'row' : 'columnar',
      rows: scanned.dims[0]!,
      data: scanned.values,
    };
  }
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch (e) {
    throw new ApiError(400, 'invalid_json', `the body is not valid JSON: ${(e as Error).message}`);
  }
  return packPredictBody(body, info, maxInstances);
}

function nest(flat: Float32Array, shape: readonly number[]): unknown[] {
  if (shape.length <= 1) return Array.from(flat);
  const step = prod(shape.slice(1));
  return Array.from({ length: shape[0]! }, (_, i) =>
    nest(flat.subarray(i * step, (i + 1) * step), shape.slice(1)),
  );
}

/** The response body: one output per instance, shaped like the model's output (a score vector for a classifier). */
export function formatPredictions(
  format: PredictFormat,
  out: Float32Array,
  rows: number,
  outputShape: readonly number[],
): PredictResponse {
  const size = prod(outputShape);
  const perRow = Array.from({ length: rows }, (_, i) =>
    nest(out.subarray(i * size, (i + 1) * size), outputShape),
  );
  return format === 'row' ? { predictions: perRow } : { outputs: perRow };
}
