/**
 * The jobs' routes (routes/jobs.routes.ts, routes/events.routes.ts, routes/artifacts.routes.ts): one
 * submit operation per job type of the contract's catalog, so a new job type appears by itself, with
 * its payload, result and progress schemas.
 */
import { z } from 'zod';
import {
  anyJobViewSchema,
  artifactListSchema,
  batchPointSchema,
  csvDatasetSchema,
  datasetSchema,
  epochProgressSchema,
  evaluationMetricsSchema,
  fieldIssueSchema,
  imageFolderDatasetSchema,
  jobStateSchema,
  jsonlDatasetSchema,
  mnistDatasetSchema,
  modelVersionRefSchema,
  rowsProgressSchema,
  trainingMetricsSchema,
  tuneTrialSchema,
  cancelResultSchema,
  jobCatalog,
  jobLogsSchema,
  jobNames,
  jobPageSchema,
  jobType,
  jobViewSchemaOf,
  runHistorySchema,
  type JobName,
} from '@mlq/contract';
import { artifactContentTypes } from '../artifacts.ts';
import { listQuerySchema } from '../routes/jobs.routes.ts';
import { json, type ApiDoc } from './builder.ts';

/** `fine-tune` → `FineTune`. */
export const pascal = (name: string) => name.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase());

const idParam = z.object({ id: z.string().meta({ description: 'the job id (a UUID)' }) });

/** A `text/event-stream` answer: `event: <name>` and `data: <JSON>` lines, a blank line after each message. */
const sse = (description: string) => ({
  description,
  content: {
    'text/event-stream': {
      schema: {
        type: 'string' as const,
        description: 'server-sent events: `event:` and `data:` (JSON) lines, a blank line after each message',
        example: 'event: state\ndata: {"id":"…","type":"fine-tune","state":"active"}\n\n',
      },
    },
  },
});

export function registerJobs(doc: ApiDoc): void {
  // Schemas that several job types share, named once.
  doc.named('JobState', jobStateSchema);
  doc.named('FieldIssue', fieldIssueSchema);
  doc.named('DatasetSpec', datasetSchema);
  doc.named('MnistDataset', mnistDatasetSchema);
  doc.named('CsvDataset', csvDatasetSchema);
  doc.named('JsonlDataset', jsonlDatasetSchema);
  doc.named('ImageFolderDataset', imageFolderDatasetSchema);
  doc.named('EpochProgress', epochProgressSchema);
  doc.named('BatchPoint', batchPointSchema);
  doc.named('RowsProgress', rowsProgressSchema);
  doc.named('TrainingMetrics', trainingMetricsSchema);
  doc.named('EvaluationMetrics', evaluationMetricsSchema);
  doc.named('ModelVersionRef', modelVersionRefSchema);
  doc.named('TuneTrial', tuneTrialSchema);
  for (const name of jobNames) {
    const Name = pascal(name);
    const def = jobType(name);
    doc.named(`${Name}Payload`, def.payload);
    doc.named(`${Name}Result`, def.result);
    doc.named(`${Name}Progress`, def.progress);
    doc.named(`${Name}Job`, jobViewSchemaOf(name));
  }
  doc.named('Job', anyJobViewSchema);
  doc.named('RunHistory', runHistorySchema);

  const location = {
    Location: { description: 'the job: `/v1/jobs/{id}`', schema: { type: 'string' as const } },
  };
  for (const name of jobNames) {
    doc.route({
      method: 'post',
      path: `/v1/jobs/${name}`,
      tag: 'jobs',
      summary: `Submit a ${name} job`,
      description: `${jobCatalog[name].summary}. The body is checked against the schema and the references in it (registry models exist, a file:// model is a layers-model model.json inside DATA_ROOTS with its weights, file:// URIs are inside DATA_ROOTS, uploaded datasets exist) before the job is queued.`,
      headers: z.object({
        'Idempotency-Key': z
          .string()
          .regex(/^[\w.:-]{1,200}$/)
          .optional()
          .meta({
            description:
              'Makes a retried submit safe: the same key (per API key) with the same body answers the first job (200); with another body or job type, 422. Kept 24 h.',
          }),
      }),
      body: { required: true, ...json(jobViewSchemaOf(name).shape.params) },
      ok: {
        202: { description: 'queued', headers: location, ...json(jobViewSchemaOf(name)) },
        200: {
          description: 'the job an earlier request with this Idempotency-Key created',
          headers: location,
          ...json(jobViewSchemaOf(name)),
        },
      },
      errors: {
        400: 'the body is not a valid job of this type, names a model, file or dataset that is not there (or a file:// model that is not a layers-model model.json), or an output that may not be written (outside DATA_ROOTS, inside the artifact store, a directory); `details` lists each bad field',
        413: '',
        422: {
          meaning: 'the Idempotency-Key was used for another body or job type (`idempotency_key_reused`)',
          code: 'idempotency_key_reused',
        },
      },
    });
  }

  doc.route({
    method: 'get',
    path: '/v1/jobs',
    tag: 'jobs',
    summary: 'A page of jobs, newest first',
    query: listQuerySchema,
    ok: { 200: { description: 'the page', ...json(jobPageSchema) } },
    errors: { 400: 'a bad type, state, limit or offset' },
  });
  doc.route({
    method: 'get',
    path: '/v1/jobs/{id}',
    tag: 'jobs',
    summary: 'A job: state, progress, params, result or error',
    params: idParam,
    ok: { 200: { description: 'the job', ...json(anyJobViewSchema) } },
    errors: { 404: 'no such job' },
  });
  doc.route({
    method: 'delete',
    path: '/v1/jobs/{id}',
    tag: 'jobs',
    summary: 'Cancel a job: remove a waiting one, stop a running one after its current batch',
    params: idParam,
    ok: { 202: { description: 'removed, or asked to stop', ...json(cancelResultSchema) } },
    errors: { 404: 'no such job', 409: 'the job has ended (completed, failed or cancelled)' },
  });
  doc.route({
    method: 'post',
    path: '/v1/jobs/{id}/retry',
    tag: 'jobs',
    summary: 'Retry a failed (or cancelled) job',
    description:
      'Queues the job again as a new run: `attempts` counts from 0, so the run gets all its `attemptsAllowed`. ' +
      "The earlier runs' failed attempts stay in its log. A tune retries its failed or cancelled trials with it, " +
      'adds back those removed while waiting, and keeps the completed ones.',
    params: idParam,
    ok: { 202: { description: 'queued again', ...json(anyJobViewSchema) } },
    errors: { 404: 'no such job', 409: 'the job has not failed' },
  });
  doc.route({
    method: 'get',
    path: '/v1/jobs/{id}/logs',
    tag: 'jobs',
    summary: "The job's log lines",
    params: idParam,
    ok: { 200: { description: 'the lines, oldest first', ...json(jobLogsSchema) } },
    errors: { 404: 'no such job' },
  });
  doc.route({
    method: 'get',
    path: '/v1/jobs/{id}/history',
    tag: 'jobs',
    summary: "A training job's curves: per epoch and within epochs (kept after the job record is gone)",
    params: idParam,
    ok: {
      200: { description: 'the curves (empty for a job that trains nothing)', ...json(runHistorySchema) },
    },
    errors: { 404: 'no such job, and no saved history' },
  });
  doc.route({
    method: 'get',
    path: '/v1/jobs/{id}/events',
    tag: 'jobs',
    summary: 'Server-sent events of one job until it ends',
    params: idParam,
    ok: {
      200: sse(
        'Server-sent events: first `event: state` with the job (as GET /v1/jobs/{id} answers it); then `event: progress` with each progress report (the job type\'s progress schema), `event: state` with `{"state"}` on each change, and a last `event: state` with the whole job when it ends, after which the stream closes. `: ping` comments every 15 s.',
      ),
    },
    errors: { 404: 'no such job' },
  });
  doc.route({
    method: 'get',
    path: '/v1/events',
    tag: 'jobs',
    summary: "Server-sent events of every job's state changes and progress",
    query: z.object({
      type: z
        .enum(jobNames as [JobName, ...JobName[]])
        .optional()
        .meta({ description: 'only jobs of this type' }),
    }),
    ok: {
      200: sse(
        'Server-sent events until the client goes away: `event: progress` with `{"id", "type", "progress"}` and `event: state` with `{"id", "type", "state"}` (a job state, or `removed`). A client that does not read skips progress events (the next one supersedes them), never state events. `: ping` comments every 15 s.',
      ),
    },
    errors: { 400: 'unknown job type' },
  });
  doc.route({
    method: 'get',
    path: '/v1/jobs/{id}/artifacts',
    tag: 'jobs',
    summary: "A job's outputs: its model (as a .zip) or its predictions file",
    params: idParam,
    ok: { 200: { description: 'the outputs (none unless the job completed)', ...json(artifactListSchema) } },
    errors: { 404: 'no such job' },
  });
  doc.route({
    method: 'get',
    path: '/v1/jobs/{id}/artifacts/{name}',
    tag: 'jobs',
    summary: 'Download an output: the model as a .zip of model.json and its shards, or the predictions',
    params: idParam.extend({
      name: z.string().meta({ description: 'the artifact name: `model.zip`, `predictions.jsonl`...' }),
    }),
    ok: {
      200: {
        description: "the file, with the artifact's `contentType` and `Content-Disposition: attachment`",
        content: Object.fromEntries(
          artifactContentTypes.map((t) => [
            t,
            { schema: t === 'application/json' ? {} : { type: 'string' as const, format: 'binary' } },
          ]),
        ),
      },
    },
    errors: {
      404: 'no such job or output',
      409: 'the stored model cannot be packed: its model.json is not readable JSON',
    },
  });
}
