/**
 * The registry model references of a submission (the fields its job type declares as models: a
 * fine-tune's or tune's `base`, an evaluate's or batch-predict's `model`). `name`, `name@latest` and
 * `name@<label>` are pinned to the version they name now (the payload is rewritten to `name@<n>`), as
 * `dataset://` URIs are (dataset-refs.ts): a retried or taken-over run, which resumes a checkpoint
 * trained on one version, resolves the same version, and the lineage it records is that version.
 * URIs are left as they are; a reference that does not resolve is left for checkReferences to report.
 */
import { isUri, jobType, type JobName } from '@mlq/contract';
import type { ModelRegistry } from '@mlq/core/registry';
import { NotFoundError } from '@mlq/core/errors';

/** Pins the payload's registry references in place; returns one line per pin (`base bb → bb@1`). */
export async function pinModels(type: JobName, payload: unknown, registry: ModelRegistry): Promise<string[]> {
  const notes: string[] = [];
  if (typeof payload !== 'object' || payload === null) return notes;
  const fields = payload as Record<string, unknown>;
  for (const field of jobType(type).refs.models) {
    const ref = fields[field];
    if (typeof ref !== 'string' || isUri(ref)) continue;
    try {
      const v = await registry.resolve(ref);
      const pinned = `${v.name}@${v.version}`;
      if (pinned === ref) continue;
      fields[field] = pinned;
      notes.push(`${field} ${ref} → ${pinned} (pinned at submit)`);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }
  return notes;
}
