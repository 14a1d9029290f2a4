/** The error body of every HTTP error the API answers, and its machine-readable codes. */
import { z } from 'zod';
import { fieldIssueSchema } from './issues.ts';

export const errorCodes = [
  'invalid_request',
  'invalid_json',
  'invalid_dataset',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'unsupported_encoding',
  'bad_encoding',
  'rate_limited',
  'too_many_instances',
  'unavailable',
  'queue_full',
  'not_implemented',
  'unservable_model',
  'non_finite_prediction',
  'idempotency_key_reused',
  'predict_failed',
  'bad_request',
  'internal',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/** `{"error": {"code", "message", "details"?}}`; `details` lists the bad fields of a 400. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.enum(errorCodes),
    /** For a person: what went wrong and, where it can, what to send instead. */
    message: z.string(),
    details: z.union([z.array(fieldIssueSchema), z.record(z.string(), z.unknown())]).optional(),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;
