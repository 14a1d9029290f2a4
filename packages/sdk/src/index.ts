/**
 * `@mlq/sdk`: a typed client of the mlq HTTP API for Node and browsers (fetch and web streams only;
 * nothing from Node is imported here: the CLI lives in `cli.ts` and is not exported).
 */
export { MlqClient, type MlqClientOptions, type SubmitOptions } from './client.ts';
export { imageInstance, parseRef, predictPath } from './refs.ts';
export { MlqError, MlqApiError, JobFailedError, WaitTimeoutError } from './errors.ts';
export { parseSse, type SseMessage } from './sse.ts';
export { Transport, type CallOptions, type FetchLike } from './transport.ts';
export {
  formatFromName,
  uploadMediaType,
  type ArtifactView,
  type DatasetSummary,
  type DatasetUpload,
  type DatasetVersion,
  type UploadData,
  type UploadFormat,
  type UploadOptions,
} from './upload.ts';
export { waitForJob, jobEvents, allJobEvents, type WaitOptions } from './wait.ts';
export * from './types.ts';
