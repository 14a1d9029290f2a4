/**
 * Turns a user-given `file://` URI into a local path, but only inside the allowed data roots
 * (`DATA_ROOTS`): no `..`, and no symlink that escapes a root.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError, InputError } from '../util/errors.ts';

export async function resolveDataPath(
  uri: string,
  roots: readonly string[],
  opts: { mustExist?: boolean } = {},
): Promise<string> {
  if (!uri.startsWith('file://')) throw new InputError(`only file:// URIs can be read here, got "${uri}"`);
  let p: string;
  try {
    p = fileURLToPath(uri);
  } catch {
    throw new InputError(`not a valid file URI: "${uri}"`);
  }
  if (p.split(/[\\/]/).includes('..')) throw new InputError(`"${uri}" must not contain ".."`);
  const realRoots = await Promise.all(roots.map((r) => realpath(r).catch(() => path.resolve(r))));
  // Resolve symlinks of the deepest existing ancestor, so new output files can be checked too.
  let real: string;
  try {
    real = await realpath(p);
  } catch {
    if (opts.mustExist !== false) throw new DataError(`file not found: ${p}`);
    real = path.join(await realpath(path.dirname(p)).catch(() => path.dirname(p)), path.basename(p));
  }
  const inside = realRoots.some((r) => real === r || real.startsWith(r + path.sep));
  if (!inside) throw new InputError(`"${uri}" is outside the allowed data roots (${roots.join(', ')})`);
  return real;
}
