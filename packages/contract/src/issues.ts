/** Field-level validation issues: the `details` of every 400 the API answers. */
import { z } from 'zod';

/** One bad field: where it is (a dotted path) and what is wrong with it. */
export const fieldIssueSchema = z.object({
  /** A dotted path into the body (`dataset.digits`), a query or path parameter, or a header name. */
  field: z.string(),
  message: z.string(),
});
export type FieldIssue = z.infer<typeof fieldIssueSchema>;

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
