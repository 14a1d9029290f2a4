/**
 * Every Redis key and pub/sub channel name of an install, in one place.
 *
 * All of them start with the install's namespace `{<QUEUE_PREFIX>}`. The braces are a Redis Cluster
 * hash tag: only the text inside them is hashed, so every key of one install lives in the same slot
 * (Redis Cluster specification, "Hash tags": https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/).
 * BullMQ requires that on a cluster, because its Lua scripts touch several keys of a queue at once and a
 * flow (a tune and its trials) spans two queues; our own multi-key script (the registry's register)
 * needs it too. On a single Redis the tag is just part of the name, so both layouts are the same.
 */
import type { RegistryKeys } from '@mlq/core';

/** `{mlq}`: the hash-tagged namespace every key of the install starts with, and BullMQ's `prefix`. */
export const namespaceOf = (prefix: string): string => `{${prefix}}`;

/** The registry's keys (packages/core/src/registry/registry.ts reads and writes them). */
function registryKeys(ns: string): RegistryKeys {
  const r = `${ns}:registry`;
  return {
    models: `${r}:models`,
    seq: (name) => `${r}:model:${name}:seq`,
    versions: (name) => `${r}:model:${name}:versions`,
    byJob: (name) => `${r}:model:${name}:by-job`,
    labels: (name) => `${r}:model:${name}:labels`,
    labelChannel: `${r}:label-moved`,
    versionChannel: `${r}:version-registered`,
  };
}

export interface Keys {
  /** The namespace, `{<prefix>}`: BullMQ's `prefix` option, so queue keys are `{mlq}:<queue>:…`. */
  ns: string;
  /** Every key of the install, as a SCAN pattern. */
  all: string;
  /** BullMQ's key of a queue (`Job.queueKey`, a child's `parent.queueKey`). */
  queue(name: string): string;
  /** Hash: job id → job type, through which the API finds a job by its id alone. */
  jobTypes: string;
  /** Set when a cancel is requested for a job that is not running (a tune waiting for its trials). */
  cancelMark(jobId: string): string;
  /** String: `<type>:<jobId>` of the job an Idempotency-Key created (24 h). */
  idempotency(key: string): string;
  /** Counter of one rate-limit window for one client. */
  rateLimit(window: number, who: string): string;
  /** Channel: DELETE /v1/jobs/{id} of a running job, heard by every worker. */
  cancelChannel: string;
  /** String with a TTL: a worker's heartbeat record for GET /v1/workers. */
  worker(id: string): string;
  /** SCAN pattern of every worker heartbeat. */
  workers: string;
  /** Hash: worker id → the tfjs backend its jobs really ran on. */
  workerBackends: string;
  registry: RegistryKeys;
}

/** The keys of the install whose QUEUE_PREFIX is `prefix`. */
export function keysOf(prefix: string): Keys {
  const ns = namespaceOf(prefix);
  return {
    ns,
    all: `${ns}:*`,
    queue: (name) => `${ns}:${name}`,
    jobTypes: `${ns}:job-types`,
    cancelMark: (jobId) => `${ns}:cancel-requested:${jobId}`,
    idempotency: (key) => `${ns}:idempotency:${key}`,
    rateLimit: (window, who) => `${ns}:ratelimit:${window}:${who}`,
    cancelChannel: `${ns}:cancel`,
    worker: (id) => `${ns}:workers:${id}`,
    workers: `${ns}:workers:*`,
    workerBackends: `${ns}:worker-backends`,
    registry: registryKeys(ns),
  };
}
