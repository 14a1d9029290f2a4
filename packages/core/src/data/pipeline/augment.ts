/**
 * Random augmentation of training images, with the semantics of Keras' preprocessing layers stacked
 * in this order (keras.io/api/layers/preprocessing_layers/image_augmentation/):
 *
 * - `flip`: RandomFlip(mode): each image is flipped left-right ("horizontal") and/or upside down
 *   ("vertical") with probability 1/2 per direction.
 * - `rotate`: RandomRotation(factor): an angle drawn uniformly from [-factor * 2π, factor * 2π],
 *   about the image centre.
 * - `zoom`: RandomZoom(factor): a scale z drawn uniformly from [1 - factor, 1 + factor] for both axes
 *   (aspect kept); z > 1 zooms out, z < 1 zooms in, about the centre.
 * - `translate`: RandomTranslation(factor, factor): shifts drawn uniformly from [-factor, factor] of
 *   the height and, independently, of the width.
 * - `contrast`: RandomContrast(factor): per image a factor c from [1 - factor, 1 + factor]; each
 *   channel becomes (x - mean) * c + mean (its mean over the image), clipped to 0..1.
 *
 * As in Keras, points outside the image are filled by reflection (`fill_mode="reflect"`: d c b a | a b
 * c d) and sampled bilinearly. Rotation, zoom and translation are composed into one transform and the
 * image is resampled once (Keras resamples once per layer: the same geometry, a little less blur).
 * Each image's draws come from a PRNG seeded by (seed, epoch, its position in the epoch's order), so
 * a resumed job augments its batches exactly as the uninterrupted job would have.
 */
import { mulberry32, type AugmentSpec } from '@mlq/contract';
import type { BatchTransform } from './batch-stream.ts';
import { mixSeed } from './shuffle-plan.ts';

/** Index `i` folded into `0..n-1` by reflection about the edge pixels (period 2n). */
function reflect(i: number, n: number): number {
  const p = 2 * n;
  const m = ((i % p) + p) % p;
  return m < n ? m : p - 1 - m;
}

/** Where output pixel (x, y) samples the input: `sx = a x + b y + c`, `sy = d x + e y + f`. */
type Affine = [number, number, number, number, number, number];

/** Resamples `img` (h x w x ch) through `t` into `out`, bilinear, reflecting at the borders. */
function warp(img: Float32Array, h: number, w: number, ch: number, t: Affine, out: Float32Array): void {
  const [a, b, c, d, e, f] = t;
  let o = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = a * x + b * y + c;
      const sy = d * x + e * y + f;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const xa = reflect(x0, w) * ch;
      const xb = reflect(x0 + 1, w) * ch;
      const ya = reflect(y0, h) * w * ch;
      const yb = reflect(y0 + 1, h) * w * ch;
      for (let k = 0; k < ch; k++) {
        const top = img[ya + xa + k]! * (1 - fx) + img[ya + xb + k]! * fx;
        const bottom = img[yb + xa + k]! * (1 - fx) + img[yb + xb + k]! * fx;
        out[o++] = top * (1 - fy) + bottom * fy;
      }
    }
  }
}

/** Flips without resampling: output (x, y) takes input (flipX ? w-1-x : x, flipY ? h-1-y : y). */
function flipInto(
  img: Float32Array,
  h: number,
  w: number,
  ch: number,
  fx: boolean,
  fy: boolean,
  out: Float32Array,
) {
  let o = 0;
  for (let y = 0; y < h; y++) {
    const row = (fy ? h - 1 - y : y) * w;
    for (let x = 0; x < w; x++) {
      const at = (row + (fx ? w - 1 - x : x)) * ch;
      for (let k = 0; k < ch; k++) out[o++] = img[at + k]!;
    }
  }
}

/** RandomContrast with factor `c`, in place. */
function contrast(img: Float32Array, ch: number, c: number): void {
  const pixels = img.length / ch;
  for (let k = 0; k < ch; k++) {
    let sum = 0;
    for (let i = k; i < img.length; i += ch) sum += img[i]!;
    const mean = sum / pixels;
    for (let i = k; i < img.length; i += ch) img[i] = Math.min(1, Math.max(0, (img[i]! - mean) * c + mean));
  }
}

/** Draws one image's parameters (always all of them, in a fixed order) and applies them in place. */
function augmentImage(
  img: Float32Array,
  [h, w, ch]: [number, number, number],
  spec: AugmentSpec,
  rand: () => number,
  tmp: Float32Array,
): void {
  const uniform = (f: number) => (2 * rand() - 1) * f;
  const flipX = rand() < 0.5 && (spec.flip === 'horizontal' || spec.flip === 'horizontal_and_vertical');
  const flipY = rand() < 0.5 && (spec.flip === 'vertical' || spec.flip === 'horizontal_and_vertical');
  const angle = uniform((spec.rotate ?? 0) * 2 * Math.PI);
  const zoom = 1 + uniform(spec.zoom ?? 0);
  const ty = uniform(spec.translate ?? 0) * h;
  const tx = uniform(spec.translate ?? 0) * w;
  const c = 1 + uniform(spec.contrast ?? 0);
  if (spec.rotate || spec.zoom || spec.translate) {
    // Output p -> translation (p - t) -> zoom about the centre -> rotation about the centre -> flip.
    const [cx, cy] = [(w - 1) / 2, (h - 1) / 2];
    const [cos, sin] = [Math.cos(angle) * zoom, Math.sin(angle) * zoom];
    // s = R Z (p - t - c) + c
    let t: Affine = [
      cos,
      -sin,
      cx - cos * (tx + cx) + sin * (ty + cy),
      sin,
      cos,
      cy - sin * (tx + cx) - cos * (ty + cy),
    ];
    if (flipX) t = [-t[0], -t[1], w - 1 - t[2], t[3], t[4], t[5]];
    if (flipY) t = [t[0], t[1], t[2], -t[3], -t[4], h - 1 - t[5]];
    warp(img, h, w, ch, t, tmp);
    img.set(tmp);
  } else if (flipX || flipY) {
    flipInto(img, h, w, ch, flipX, flipY, tmp);
    img.set(tmp);
  }
  if (spec.contrast) contrast(img, ch, c);
}

/**
 * The augmentation of training batches of images of `shape` ([h, w, channels]) as a BatchTransform
 * for the batch stream; `seed` is the job's.
 */
export function augmenter(spec: AugmentSpec, shape: number[], seed: number): BatchTransform {
  if (shape.length !== 3) throw new Error(`augmentation needs images [h, w, c], got [${shape.join(', ')}]`);
  const dims = shape as [number, number, number];
  const width = dims[0] * dims[1] * dims[2];
  const tmp = new Float32Array(width);
  return (b, epoch, first) => {
    for (let i = 0; i < b.rows; i++) {
      const rand = mulberry32(mixSeed(seed, epoch, first + i, 7));
      augmentImage(b.x.subarray(i * width, (i + 1) * width), dims, spec, rand, tmp);
    }
  };
}
