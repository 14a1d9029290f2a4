/** Model references (`name`, `name@3`, `name@label` or an object) and the paths they name. */
import { MlqError } from './errors.ts';
import { seg } from './transport.ts';
import type { ImageInstance, ModelRef } from './types.ts';

/** A reference as an object; throws `MlqError` (`invalid_ref`) for a string that is no reference. */
export function parseRef(ref: ModelRef): { name: string; version?: number; label?: string } {
  if (typeof ref !== 'string') {
    return {
      name: ref.name,
      ...(ref.version !== undefined ? { version: ref.version } : {}),
      ...(ref.label !== undefined ? { label: ref.label } : {}),
    };
  }
  const m = /^([^@/]+)(?:@([^@/]+))?$/.exec(ref);
  if (!m)
    throw new MlqError('invalid_ref', `"${ref}" is not "<name>", "<name>@<version>" or "<name>@<label>"`);
  // `name@latest` is the newest version, as `name` alone (no label may be named `latest`).
  const tag = m[2]?.toLowerCase() === 'latest' ? undefined : m[2];
  return {
    name: m[1]!,
    ...(tag === undefined ? {} : /^\d+$/.test(tag) ? { version: Number(tag) } : { label: tag }),
  };
}

/** The path of a model's predict route for a reference (`name`, `name@3`, `name@label` or an object). */
export function predictPath(ref: ModelRef): string {
  const r = parseRef(ref);
  const base = `/v1/models/${seg(r.name)}`;
  if (r.version !== undefined) return `${base}/versions/${seg(r.version)}:predict`;
  if (r.label !== undefined) return `${base}/labels/${seg(r.label)}:predict`;
  return `${base}:predict`;
}

/**
 * An image file's bytes (PNG or JPEG) as a predict instance, `{"b64": "..."}`. Uses `btoa`, so it
 * runs in browsers and in Node alike.
 */
export function imageInstance(bytes: Uint8Array): ImageInstance {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return { b64: btoa(binary) };
}
