/**
 * Every Redis key and pub/sub channel of the platform, in one place (as BullMQ's `QueueKeys` does for
 * its own): nothing else spells a key. All keys start with one root, `<QUEUE_PREFIX>`, or `{<QUEUE_PREFIX>}`
 * on a Redis Cluster, where the braces are the hash tag that puts every key of an install in one slot,
 * as BullMQ requires of its queue prefix there.
 */
export interface RedisKeysOptions {
  /** Wrap the prefix in braces (a Redis Cluster hash tag). */
  hashTag?: boolean;
}

export class RedisKeys {
  /** The install's QUEUE_PREFIX (letters, digits, `_`, `.`, `-`). */
  readonly prefix: string;
  /** The prefix of every key, and BullMQ's `prefix` option: queues live at `<root>:<queue>:*`. */
  readonly root: string;

  constructor(prefix: string, opts: RedisKeysOptions = {}) {
    this.prefix = prefix;
    this.root = opts.hashTag ? `{${prefix}}` : prefix;
  }

  private k(...parts: (string | number)[]): string {
    return [this.root, ...parts].join(':');
  }

  /** SCAN pattern of every key of the install. */
  get all(): string {
    return this.k('*');
  }

  /**
   * String: the install's id (a UUID), the name its artifact store's `install.json` gives its owner
   * (packages/core/src/storage/install-claim.ts).
   */
  get install(): string {
    return this.k('install');
  }

  /** Hash: job id → job type, through which the API finds a job by its id alone. */
  get jobTypes(): string {
    return this.k('job-types');
  }

  /** Set when a cancel is requested for a job that is not running (a tune waiting for its trials). */
  cancelMark(jobId: string): string {
    return this.k('cancel-requested', jobId);
  }

  /**
   * Hash: the worker that last took job `jobId` (`worker`), BullMQ's stalled count of the job when it
   * did (`stalls`) and that worker's lock duration in ms (`lockMs`). Whoever finds the job stalled or
   * takes it over reads it to tell the job's log which worker stopped answering
   * (apps/worker/src/takeover.ts). Expires 30 days after the last take; deleted when the job completes.
   */
  jobHolder(jobId: string): string {
    return this.k('job-holder', jobId);
  }

  /**
   * Set by POST /v1/jobs/{id}/retry of a tune: its next run adds again the trials it lacks (removed
   * while waiting, e.g. by a cancel), then clears the mark (packages/core/src/jobs/tune.job.ts).
   */
  rerunMark(jobId: string): string {
    return this.k('rerun-requested', jobId);
  }

  /**
   * String: the session epoch (random hex), part of every browser session cookie; created with SET NX
   * when missing, never expires. When Redis loses its data (and with it the session revocations) a new
   * one is made, which ends every earlier session (apps/api/src/auth/session.ts).
   */
  get sessionEpoch(): string {
    return this.k('session-epoch');
  }

  /** Set by POST /logout: the browser session `sid` is ended, until its cookie would have expired. */
  sessionRevoked(sid: string): string {
    return this.k('session-revoked', sid);
  }

  /** Channel: `{"id", "reason"}` cancel requests, heard by every worker (the holder aborts the job). */
  get cancelChannel(): string {
    return this.k('cancel');
  }

  /** A worker's heartbeat record (JSON WorkerInfo, with a TTL of three beats). */
  worker(workerId: string): string {
    return this.k('workers', workerId);
  }

  /** SCAN pattern of every worker heartbeat. */
  get workersPattern(): string {
    return this.k('workers', '*');
  }

  /** Hash: worker id → the tfjs backend its sandboxed jobs run on. */
  get workerBackends(): string {
    return this.k('worker-backends');
  }

  /**
   * The job an Idempotency-Key created, per API key (`keyId`: a hash prefix of the key, never the
   * secret; `anonymous` with auth off): JSON `{"type", "id", "bodySha256"}`, for 24 hours.
   */
  idempotency(keyId: string, key: string): string {
    return this.k('idempotency', keyId, key);
  }

  /** Prefix of the API's rate-limit counters: `<this>:<keyId>`, or `<this>:ip:<address>` with auth off. */
  get rateLimit(): string {
    return this.k('ratelimit');
  }

  /** Set of registered model names. */
  get models(): string {
    return this.k('registry', 'models');
  }

  /**
   * A model's registry record: `versions` (hash version → JSON), `labels` (hash label → version),
   * `seq` (the version counter), `by-job` (hash job id → version: a job registers once) and `history`
   * (hash version → JSON RunHistory: the training curves, kept apart so listing versions stays small).
   */
  model(name: string, part: 'versions' | 'labels' | 'seq' | 'by-job' | 'history'): string {
    return this.k('registry', 'model', name, part);
  }

  /** Channel: `{"name", "label", "version"}` when a label moves (serving reloads). */
  get labelChannel(): string {
    return this.k('registry', 'label-moved');
  }

  /** Channel: `{"name", "version"}` when a version is registered. */
  get versionChannel(): string {
    return this.k('registry', 'version-registered');
  }

  /** Set of the names of uploaded datasets that have at least one version. */
  get datasets(): string {
    return this.k('registry', 'datasets');
  }

  /**
   * An uploaded dataset's record: `versions` (hash version → JSON DatasetVersion) and `seq` (the version
   * counter, never reset, so numbers are never reused).
   */
  dataset(name: string, part: 'versions' | 'seq'): string {
    return this.k('registry', 'dataset', name, part);
  }

  /** Set of the ids of the jobs submitted with a dataset version (DELETE refuses while one may run). */
  datasetJobs(name: string, version: number): string {
    return this.k('registry', 'dataset', name, version, 'jobs');
  }

  /** Set of the `name@version`s whose bytes are the blob `sha256` (the blob goes with the last one). */
  datasetBlobRefs(sha256: string): string {
    return this.k('registry', 'dataset-blob', sha256, 'refs');
  }

  /** Held while a dataset blob is being added or removed. */
  datasetBlobLock(sha256: string): string {
    return this.k('registry', 'dataset-blob', sha256, 'lock');
  }
}
