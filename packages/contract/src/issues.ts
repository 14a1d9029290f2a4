/** Field-level validation issues: the `details` of every 400 the API answers. */
import type { z } from 'zod';

/** One bad field: where it is (a dotted path) and what is wrong with it. */
export interface FieldIssue {
  field: string;
  message: string;
}

/** Flattens zod issues into `{field, message}` pairs a person can read. */
export function describeIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((i) => ({
    field: i.path.length ? i.path.map(String).join('.') : '(body)',
    message: i.message,
  }));
}

/** `a: why; b: why` — issues on one line, for a job's failure reason or an error message. */
export function joinIssues(issues: readonly FieldIssue[]): string {
  return issues.map((i) => `${i.field}: ${i.message}`).join('; ');
}
