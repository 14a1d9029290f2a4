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
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

class Scanner {
  i = 0;
  values = new Float32Array(1024);
  n = 0;
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

  push(v: number): void {
    if (this.n === this.values.length) {
      const grown = new Float32Array(this.n * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.n++] = v;
  }

  /** A JSON number; NaN when there is none here. Plain integers skip the string slice. */
  number(): number {
    const s = this.s;
    const start = this.i;
    if (s.charCodeAt(this.i) === 0x2d) this.i++; // -
    const first = this.i;
    let int = 0;
    while (isDigit(s.charCodeAt(this.i))) int = int * 10 + s.charCodeAt(this.i++) - 0x30;
    const digits = this.i - first;
    if (digits === 0 || (digits > 1 && s.charCodeAt(first) === 0x30)) return NaN; // JSON: no leading zeros
    let simple = digits < 10;
    if (s.charCodeAt(this.i) === 0x2e) {
      this.i++;
      if (!isDigit(s.charCodeAt(this.i))) return NaN;
      while (isDigit(s.charCodeAt(this.i))) this.i++;
      simple = false;
    }
    const e = s.charCodeAt(this.i);
    if (e === 0x65 || e === 0x45) {
      this.i++;
      const sign = s.charCodeAt(this.i);
      if (sign === 0x2b || sign === 0x2d) this.i++;
      if (!isDigit(s.charCodeAt(this.i))) return NaN;
      while (isDigit(s.charCodeAt(this.i))) this.i++;
      simple = false;
    }
    if (simple) return start === first ? int : -int;
    return Number(s.slice(start, this.i)); // exact, like JSON.parse
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
  for (;;) {
    // At the start of an element of the array open at `depth` (or at its "]").
    sc.space();
    const c = text.charCodeAt(sc.i);
    if (c === 0x5d && counts[depth] === 0) {
      // "]" of an empty array: only valid as the outermost one, the empty body the general path rejects.
      return undefined;
    }
    if (c === 0x5b) {
      if (leafDepth >= 0 && depth + 1 > leafDepth) return undefined;
      sc.i++;
      depth++;
      counts[depth] = 0;
      continue;
    }
    if (leafDepth < 0) leafDepth = depth;
    else if (leafDepth !== depth) return undefined;
    const v = sc.number();
    if (!(Math.abs(v) <= F32_MAX)) return undefined; // not a number, or not a float32

    sc.push(v);
    counts[depth]!++;
    // After an element: "," or the "]"s that close arrays.
    for (;;) {
      if (sc.eat(0x2c)) break; // ,
      if (!sc.eat(0x5d)) return undefined; // ]
      const len = counts[depth]!;
      if (dims[depth] === undefined) dims[depth] = len;
      else if (dims[depth] !== len) return undefined; // ragged
      if (depth === 0) {
        if (signatureName === undefined && sc.eat(0x2c)) {
          signatureName = sc.signatureName();
          if (signatureName === undefined) return undefined;
        }
        if (!sc.eat(0x7d)) return undefined; // }
        sc.space();
        if (sc.i !== text.length) return undefined;
        const values = sc.values.subarray(0, sc.n);
        return { key, dims, values, ...(signatureName !== undefined ? { signatureName } : {}) };
      }
      depth--;
      counts[depth]!++;
    }
  }
}
