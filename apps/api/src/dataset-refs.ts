/**
 * The `dataset://` URIs of a submission (in the fields its job type declares as datasets). Each must
 * name an uploaded version whose format is the one the spec gives; `dataset://name` is pinned to its
 * latest version (the payload is rewritten to `dataset://name@<n>`), so every attempt, resume and tune
 * trial reads the same bytes. For a CSV upload, `label` and `features` must name columns of its header,
 * and no feature may be the label column (`columnIssues`, which the API applies to a `file://` CSV's header too).
 * A job that trains (`refs.trained`) needs an upload of at least two classes, when its class counts are known.
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
      // A CSV upload's columns are known: a label or feature the header lacks cannot be read, and
      // a job that trains or evaluates cannot run on rows without labels.
      const missing = v.columns
        ? columnIssues(ds, v.columns, v.uri, field, jobType(type).refs.labelled.includes(field))
        : [];
      if (missing.length > 0) {
        issues.push(...missing);
        continue;
      }
      const one = jobType(type).refs.trained.includes(field) ? oneClassIssue(ds, v, field) : undefined;
      if (one) {
        issues.push(one);
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

/**
 * What is wrong with a CSV spec `ds` (at payload path `field`) given its file's header `columns`, for
 * the file shown as `shown` (`dataset://t@1`, or a `file://` URI): a `label` or `features` entry
 * naming a column the header lacks, a feature that is the label column (given, or the default: a
 * column named `label`), and, where the job needs labels, no label at all. The reader refuses each
 * (data/csv.ts' layoutOf); here they are a 400 naming the field.
 */
export function columnIssues(
  ds: DatasetSpec,
  columns: readonly string[],
  shown: string,
  field: string,
  labelled: boolean,
): FieldIssue[] {
  if (ds.format !== 'csv') return [];
  const have = new Set(columns);
  const cols = columns.join(', ');
  const out: FieldIssue[] = [];
  if (labelled && ds.label === undefined && !have.has('label'))
    out.push({
      field: `${field}.label`,
      message: `${shown} has no column named "label" (the default label) and this job needs labels: set ${field}.label to the column that holds them; its columns are ${cols}`,
    });
  if (ds.label !== undefined && !have.has(ds.label))
    out.push({
      field: `${field}.label`,
      message: `${shown} has no column "${ds.label}"; its columns are ${cols}`,
    });
  const absent = (ds.features ?? []).filter((f) => !have.has(f));
  if (absent.length > 0)
    out.push({
      field: `${field}.features`,
      message: `${shown} has no column${absent.length > 1 ? 's' : ''} ${absent.map((f) => `"${f}"`).join(', ')}; its columns are ${cols}`,
    });
  // A label given in the spec is checked by the schema; the default one only the header can tell.
  if (ds.label === undefined && have.has('label') && ds.features?.includes('label'))
    out.push({
      field: `${field}.features`,
      message: `"label" is the label column of ${shown} (a column named "label" is the label unless ${field}.label names another): features must be other columns`,
    });
  return out;
}

/**
 * A training job on an upload whose labels (as counted at upload) are of one class: it would fail, so
 * it is a 400 naming `<field>.uri`. A CSV's counts apply only when the spec's label column is the one
 * counted (`v.label`); a `limit` keeps fewer rows, which cannot add a class.
 */
function oneClassIssue(ds: DatasetSpec, v: DatasetVersion, field: string): FieldIssue | undefined {
  const names = Object.keys(v.classes ?? {});
  if (names.length !== 1) return undefined;
  if (ds.format === 'csv') {
    const label = ds.label ?? (v.columns?.includes('label') ? 'label' : undefined);
    if (label === undefined || label !== v.label) return undefined;
  }
  const n = v.classes![names[0]!]!;
  const unit = v.format === 'image-folder' ? 'image' : 'row';
  return {
    field: `${field}.uri`,
    message: `${v.uri} has one class only (${JSON.stringify(names[0])}, ${n} ${unit}${n === 1 ? '' : 's'}): training needs rows of at least two classes`,
  };
}
