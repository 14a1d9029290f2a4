/**
 * The `dataset://` URIs of a submission (in the fields its job type declares as datasets). Each must
 * name an uploaded version whose format is the one the spec gives; `dataset://name` is pinned to its
 * latest version (the payload is rewritten to `dataset://name@<n>`), so every attempt, resume and tune
 * trial reads the same bytes.
 */
import {
  jobType,
  valueAt,
  type DatasetSpec,
  type DatasetVersion,
  type FieldIssue,
  type JobName,
} from '@mlq/contract';
import type { DatasetRegistry } from '@mlq/core/datasets';
import { InputError, NotFoundError } from '@mlq/core/errors';

export async function pinDatasets(
  type: JobName,
  payload: unknown,
  datasets: DatasetRegistry,
): Promise<{ issues: FieldIssue[]; pinned: DatasetVersion[] }> {
  const issues: FieldIssue[] = [];
  const pinned: DatasetVersion[] = [];
  for (const field of jobType(type).refs.datasets) {
    const ds = valueAt(payload, field) as DatasetSpec | undefined;
    if (!ds || !('uri' in ds) || !ds.uri.startsWith('dataset://')) continue;
    try {
      const v = await datasets.resolve(ds.uri);
      if (v.format !== ds.format) {
        issues.push({
          field: `${field}.uri`,
          message: `${v.uri} is a ${v.format} dataset, not ${ds.format}`,
        });
        continue;
      }
      ds.uri = v.uri;
      pinned.push(v);
    } catch (e) {
      if (!(e instanceof NotFoundError || e instanceof InputError)) throw e;
      issues.push({ field: `${field}.uri`, message: e.message });
    }
  }
  return { issues, pinned };
}
