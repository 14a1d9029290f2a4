/**
 * The fast path for the usual predict body, `{"instances": <nested arrays of numbers>}` (or "inputs"):
 * read from the request text straight into a Float32Array. JSON.parse would build an array object per
 * row and per pixel, and it and the garbage it leaves were most of the event loop's time per request.
 * Anything else (another key, an object, a string, a ragged array, a syntax error) answers undefined
 * and takes the general path, JSON.parse + packPredictBody, which also writes every error message.
 */

/** A rectangular numeric tensor: `dims` (outermost first) and its values in row-major order. */
export interface ScannedTensor {
  key: 'instances' | 'inputs';
  dims: number[];
  values: Float32Array;
  /** TF Serving's `signature_name`, when the body has one (before or after the tensor). */
  signatureName?: string;
}

const F32_MAX = 3.4028234663852886e38;
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
/** A character that may continue a number after its first digit. */
const isNumberPart = (c: number) => (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45;
/** Integers up to this are exact doubles, and so is every partial sum m × 10 + d below it. */
const MAX_EXACT = 2 ** 53 - 1;
/** 10^0 .. 10^22, each an exact double. */
const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

class Scanner {
  i = 0;
  values = new Float32Array(1024);
  readonly s: string;
  constructor(s: string) {
    this.s = s;
  }

  space(): void {
    while (this.i < this.s.length && isSpace(this.s.charCodeAt(this.i))) this.i++;
  }

  /** Consumes `c` (after blanks) or answers false. */
  eat(c: number): boolean {
    this.space();
    if (this.s.charCodeAt(this.i) !== c) return false;
    this.i++;
    return true;
  }

  /**
   * A JSON number; NaN when there is none here. Exactly what Number() of its text gives: when its
   * digits, read as an integer m, stay below 2^53 and its decimal exponent k is within ±22, m and
   * 10^|k| are exact doubles and one correctly rounded multiply or divide gives the same double
   * (Clinger's fast path); anything else is parsed from its text.
   */
  number(): number {
    const s = this.s;
    const start = this.i;
    let i = start;
    let c = s.charCodeAt(i);
    const negative = c === 0x2d; // -
    if (negative) c = s.charCodeAt(++i);
    const first = i;
    let m = 0;
    while (c >= 0x30 && c <= 0x39) {
      m = m * 10 + (c - 0x30);
      c = s.charCodeAt(++i);
    }
    const digits = i - first;
    if (digits === 0 || (digits > 1 && s.charCodeAt(first) === 0x30)) return NaN; // JSON: no leading zeros
    let scale = 0; // the value is m × 10^scale
    if (c === 0x2e) {
      c = s.charCodeAt(++i);
      if (!(c >= 0x30 && c <= 0x39)) return NaN;
      const from = i;
      while (c >= 0x30 && c <= 0x39) {
        m = m * 10 + (c - 0x30);
        c = s.charCodeAt(++i);
      }
      scale = from - i;
    }
    if (c === 0x65 || c === 0x45) {
      c = s.charCodeAt(++i);
      let minus = false;
      if (c === 0x2b || c === 0x2d) {
        minus = c === 0x2d;
        c = s.charCodeAt(++i);
      }
      if (!(c >= 0x30 && c <= 0x39)) return NaN;
      let e = 0;
      while (c >= 0x30 && c <= 0x39) {
        if (e < 1e6) e = e * 10 + (c - 0x30);
        c = s.charCodeAt(++i);
      }
      scale += minus ? -e : e;
    }
    this.i = i;
    // m was built exactly while every partial value stayed an integer below 2^53.
    if (m <= MAX_EXACT && scale >= -22 && scale <= 22) {
      const v = scale === 0 ? m : scale > 0 ? m * POW10[scale]! : m / POW10[-scale]!;
      return negative ? -v : v;
    }
    return Number(s.slice(start, i)); // exact, like JSON.parse
  }

  /** `"signature_name": "<plain string>"` (no escapes), or undefined (position unchanged). */
  signatureName(): string | undefined {
    const from = this.i;
    this.space();
    if (this.s.startsWith('"signature_name"', this.i)) {
      this.i += 16;
      if (this.eat(0x3a) && this.eat(0x22)) {
        const end = this.s.indexOf('"', this.i);
        const value = end < 0 ? '' : this.s.slice(this.i, end);
        if (end >= 0 && !value.includes('\\')) {
          this.i = end + 1;
          return value;
        }
      }
    }
    this.i = from;
    return undefined;
  }
}

/**
 * Scans `{"instances": T}` or `{"inputs": T}` where T is a rectangular nested array of numbers.
 * @returns undefined for any other body (the caller then parses it the general way).
 */
export function scanNumericBody(text: string): ScannedTensor | undefined {
  const sc = new Scanner(text);
  if (!sc.eat(0x7b)) return undefined; // {
  let signatureName = sc.signatureName();
  if (signatureName !== undefined && !sc.eat(0x2c)) return undefined; // ,
  sc.space();
  let key: ScannedTensor['key'];
  if (text.startsWith('"instances"', sc.i)) key = 'instances';
  else if (text.startsWith('"inputs"', sc.i)) key = 'inputs';
  else return undefined;
  sc.i += key.length + 2;
  if (!sc.eat(0x3a)) return undefined; // :

  const dims: number[] = []; // the length of the arrays at each depth, fixed by the first one seen
  const counts: number[] = []; // elements seen so far in the open array at each depth
  let leafDepth = -1; // the depth whose arrays hold the numbers
  let depth = 0;
  if (!sc.eat(0x5b)) return undefined; // [
  counts.push(0);
  // The hot loop keeps its position and output in locals (sc is synced around the rare calls).
  let i = sc.i;
  let values = sc.values;
  let n = 0;
  const end = text.length;
  for (;;) {
    // At the start of an element of the array open at `depth` (or at its "]").
    let c = text.charCodeAt(i);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++i);
    if (c === 0x5d && counts[depth] === 0) {
      // "]" of an empty array: only valid as the outermost one, the empty body the general path rejects.
      return undefined;
    }
    if (c === 0x5b) {
      if (leafDepth >= 0 && depth + 1 > leafDepth) return undefined;
      i++;
      depth++;
      counts[depth] = 0;
      continue;
    }
    if (leafDepth < 0) leafDepth = depth;
    else if (leafDepth !== depth) return undefined;
    let v: number;
    if (c === 0x30 && !isNumberPart(text.charCodeAt(i + 1))) {
      v = 0; // the commonest pixel
      i++;
    } else {
      sc.i = i;
      v = sc.number();
      i = sc.i;
      if (!(Math.abs(v) <= F32_MAX)) return undefined; // not a number, or not a float32
    }
    if (n === values.length) {
      const grown = new Float32Array(n * 2);
      grown.set(values);
      values = grown;
    }
    values[n++] = v;
    counts[depth]!++;
    // After an element: "," or the "]"s that close arrays.
    for (;;) {
      c = text.charCodeAt(i);
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++i);
      if (c === 0x2c) {
        i++;
        break; // ,
      }
      if (c !== 0x5d) return undefined; // ]
      i++;
      const len = counts[depth]!;
      if (dims[depth] === undefined) dims[depth] = len;
      else if (dims[depth] !== len) return undefined; // ragged
      if (depth === 0) {
        sc.i = i;
        if (signatureName === undefined && sc.eat(0x2c)) {
          signatureName = sc.signatureName();
          if (signatureName === undefined) return undefined;
        }
        if (!sc.eat(0x7d)) return undefined; // }
        sc.space();
        if (sc.i !== end) return undefined;
        return {
          key,
          dims,
          values: values.subarray(0, n),
          ...(signatureName !== undefined ? { signatureName } : {}),
        };
      }
      depth--;
      counts[depth]!++;
    }
  }
}
