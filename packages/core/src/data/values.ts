/**
 * Checks on the values a reader decodes. Features are stored as float32 (what tfjs trains on): a
 * number beyond its range becomes Infinity, and one Infinity turns the loss, then every weight, into
 * NaN. So every reader refuses such a number where it reads it, naming the place.
 */

import { clip } from '../util/text.ts';

/** The largest finite float32, 3.4028234663852886e38 (IEEE 754 binary32: (2 − 2^−23) × 2^127). */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** True when `v` is a finite number once stored as float32 (NaN, ±Infinity and |v| > ~3.4e38 are not). */
export function isFloat32(v: number): boolean {
  return Number.isFinite(Math.fround(v));
}

/**
 * Why `text` (a value read as `v`) cannot be a feature: "is 1e39, beyond the float32 range (±3.4e38)";
 * a long `text` quoted by its first 40 characters and its length.
 */
export function float32Problem(text: string, v: number): string {
  if (Number.isNaN(v)) return `is ${clip(text)}, not a number`;
  return `is ${clip(text)}, beyond the float32 range (±3.4e38)`;
}
