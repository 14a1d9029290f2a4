/** Field-level validation issues: the `details` of every 400 the API answers. */
import { z } from 'zod';

/** One bad field: where it is (a dotted path) and what is wrong with it. */
export const fieldIssueSchema = z.object({
  /** A dotted path into the body (`dataset.digits`), a query or path parameter, or a header name. */
  field: z.string(),
  message: z.string(),
});
export type FieldIssue = z.infer<typeof fieldIssueSchema>;

/** The bound of a `too_big` (`maximum`) or `too_small` (`minimum`) issue, as a number. */
function boundOf(i: z.core.$ZodIssue): number | undefined {
  if (i.code === 'too_big') return Number(i.maximum);
  if (i.code === 'too_small') return Number(i.minimum);
  return undefined;
}

/**
 * Flattens zod issues into `{field, message}` pairs a person can read. Bounds that overlap on one
 * field give one pair: `z.number().int().max(1000)` checks both the safe-integer limit and 1000, so
 * `1e308` breaks both, and only the tighter one (`<=1000`, the one the field means) is kept.
 */
export function describeIssues(error: z.ZodError): FieldIssue[] {
  const kept: z.core.$ZodIssue[] = [];
  const fieldOf = (i: z.core.$ZodIssue) => (i.path.length ? i.path.map(String).join('.') : '(body)');
  for (const i of error.issues) {
    const b = boundOf(i);
    const at = b === undefined ? -1 : kept.findIndex((k) => k.code === i.code && fieldOf(k) === fieldOf(i));
    if (at < 0) kept.push(i);
    else if (i.code === 'too_big' ? b! < boundOf(kept[at]!)! : b! > boundOf(kept[at]!)!) kept[at] = i;
  }
  return kept.map((i) => ({ field: fieldOf(i), message: i.message }));
}

/** `a: why; b: why` — issues on one line, for a job's failure reason or an error message. */
export function joinIssues(issues: readonly FieldIssue[]): string {
  return issues.map((i) => `${i.field}: ${i.message}`).join('; ');
}
