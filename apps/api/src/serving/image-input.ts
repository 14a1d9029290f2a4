/**
 * Image instances: TF Serving's binary form `{"b64": "<base64>"}` carrying a PNG or JPEG file, for
 * models whose input is an image `[height, width, 1 | 3]`. The bytes are decoded on a predict thread
 * by the image-folder dataset's own function (`imageToFeatures` in packages/core/src/data/image-decode.ts,
 * via predict.worker.ts), so a file sent here gives the pixels that training and batch-predict give the
 * same file: turned upright (EXIF orientation), resized (bilinear, half-pixel centres) to the input's
 * height and width, 1 channel (BT.601 luminance) or 3 (RGB), scaled to 0..1.
 */
import { badRequest } from '../errors.ts';
import type { ModelInfo } from './protocol.ts';

/** An image found in a request: its bytes, where its pixels go and the field that held it. */
export interface ImageInstance {
  row: number;
  bytes: Uint8Array;
  field: string;
}

/** The `[height, width, channels]` of a float image input (pixels 0..1), or undefined when the input is no such image. */
export function imageShape(info: ModelInfo): { height: number; width: number; channels: 1 | 3 } | undefined {
  if (info.inputDtype !== 'float32') return undefined;
  const [height, width, channels, ...rest] = info.inputShape;
  if (rest.length || height === undefined || width === undefined) return undefined;
  if (height < 1 || width < 1 || (channels !== 1 && channels !== 3)) return undefined;
  return { height, width, channels };
}

/** True for `{"b64": ...}` (TF Serving's encoding of binary values in JSON). */
export function isB64(v: unknown): v is { b64: unknown } {
  return (
    v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && 'b64' in v
  );
}

/** Standard or URL-safe base64, with or without padding; line breaks are ignored. */
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * The bytes of `{"b64": s}` at `field`, checked: the model takes images, `s` is non-empty base64.
 * Each answer has an ArrayBuffer of its own (it is transferred to a thread).
 */
export function b64Bytes(v: { b64: unknown }, field: string, info: ModelInfo): Uint8Array {
  const where = `${field}.b64`;
  if (!imageShape(info)) {
    throw badRequest(
      `${field} is {"b64": ...}, an encoded image, but the model's input [${info.inputShape.join(',')}] ` +
        `(${info.inputDtype}) is not an image [height, width, 1 or 3] of float32`,
      [{ field: where, message: 'images are only accepted by image models' }],
    );
  }
  const text = typeof v.b64 === 'string' ? v.b64.replace(/\s+/g, '') : undefined;
  if (!text || !BASE64.test(text) || text.length % 4 === 1) {
    throw badRequest(`${where} must be a non-empty base64 string holding a PNG or JPEG file`, [
      { field: where, message: 'not base64' },
    ]);
  }
  return new Uint8Array(Buffer.from(text, 'base64'));
}
