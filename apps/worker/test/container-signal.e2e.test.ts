/**
 * The worker image's signals, with the image's own command line: the Dockerfile's `worker` stage
 * ENTRYPOINT + CMD (`/usr/bin/tini -g -- node apps/worker/src/main.ts`), read from the file and spawned
 * as is from the repo root (the image's WORKDIR), with the stage's ENV. SIGTERM to that process (what
 * `docker stop` sends to PID 1) mid-training: the worker writes a checkpoint, hands the job back (it
 * waits in the queue again) and exits 0, leaving no process behind; a second worker started from the
 * same command line resumes the job from that checkpoint and completes it. docker-compose.yml's worker
 * health check runs against it too: healthy while the worker runs, unhealthy once it is gone.
 *
 * Needs tini where the ENTRYPOINT says: /usr/bin/tini, Debian's `tini` (scripts/lib.sh installs it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnCommand, type AppProcess } from '../../../test/support/app-process.ts';
import { healthcheckArgv } from '../../../test/support/compose.ts';
import { imageConfig, type ImageConfig } from '../../../test/support/dockerfile.ts';
import { childrenOf } from '../../../test/support/processes.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';
import { waitFor } from '../../../test/support/wait.ts';

/** An mlp on 8,000 digits: a few seconds per epoch, long enough to stop mid-training. */
const longJob = {
  model: 'container-signal',
  architecture: 'mlp',
  architectureOptions: { units: [256, 128] },
  dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
  epochs: 3,
  batchSize: 16,
  optimizer: 'adam',
};

interface Progress {
  epoch?: number;
  /** Present in reports within an epoch: `epoch` is then the epoch under way. */
  batch?: number;
}

/** Epochs finished (and checkpointed) by the time of a progress report. */
const epochsDone = (p: Progress | undefined): number => (p?.epoch ?? 0) - (p?.batch === undefined ? 0 : 1);

/** Ids of the live processes whose process group is `pgid` (what `tini -g` signals). */
function processGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // Fields after the command (which is in parentheses): state, ppid, pgrp, ...
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') pids.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

describe("the worker image's command line", () => {
  let image: ImageConfig;
  let stack: Stack;
  let env: Record<string, string>;
  const started: AppProcess[] = [];
  const start = () => {
    const p = spawnCommand(image.command, env);
    started.push(p);
    return p;
  };
  /** docker-compose.yml's worker health check, run as compose would inside the container: its exit code. */
  const health = async () => {
    const check = spawnCommand(healthcheckArgv('worker'), env);
    return { code: await check.exited, output: check.output().trim() };
  };

  beforeAll(async () => {
    image = imageConfig('Dockerfile', 'worker');
    const init = image.entrypoint[0];
    if (init && path.isAbsolute(init) && !existsSync(init))
      throw new Error(
        `the worker image's ENTRYPOINT starts ${init}, which this machine lacks: this test runs the image's ` +
          `exact command line. Install Debian's tini (apt-get install -y tini; scripts/test.sh does it).`,
      );
    stack = await startStack('container-signal', { workers: 0 });
    env = {
      ...image.env,
      ...stack.env,
      // Short locks, so nothing here waits on the production 45 s takeover.
      WORKER_LOCK_DURATION_MS: '3000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      WORKER_QUEUES: 'fine-tune',
      WORKER_CACHE_DIR: path.join(stack.dataDir, 'cache'),
    };
  });
  afterAll(async () => {
    for (const p of started) p.proc.kill('SIGKILL');
    await Promise.all(started.map((p) => p.exited));
    await stack?.stop();
  });

  it('runs node under tini -g, with SIGTERM as its stop signal', () => {
    expect(image.command.slice(0, 3)).toEqual(['/usr/bin/tini', '-g', '--']);
    expect(image.cmd).toEqual(['node', 'apps/worker/src/main.ts']);
    expect(image.stopSignal).toBe('SIGTERM');
    expect(image.user).toBe('node');
  });

  it('on SIGTERM mid-training checkpoints the job and hands it back; the next worker resumes it', async () => {
    const a = start();
    await a.waitFor(/worker \S+ serving fine-tune/);
    expect(await health()).toMatchObject({ code: 0, output: expect.stringMatching(/^healthy: worker /) });

    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', longJob);
    await waitFor(
      'a finished epoch',
      async () => {
        const job = (await http<JobBody>(`${stack.url}/v1/jobs/${body.id}`)).body;
        return epochsDone(job.progress as Progress) >= 1 || undefined;
      },
      120_000,
    );
    // tini's child is node (the worker), the leader of the group tini -g signals; its sandbox is in it.
    const [worker] = childrenOf(a.proc.pid!);
    expect(worker).toBeDefined();
    expect(processGroup(worker!).length).toBeGreaterThanOrEqual(2);

    const { ms, code } = await a.stop('SIGTERM');
    console.log(`SIGTERM to tini → worker exited ${code} in ${(ms / 1000).toFixed(1)} s`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(30_000);
    await waitFor(
      'the worker process group to be gone',
      async () => (processGroup(worker!).length === 0 ? true : undefined),
      120_000,
    );

    // Handed back: waiting again (no worker is running), with its mid-training checkpoint in the store.
    const back = (await http<JobBody>(`${stack.url}/v1/jobs/${body.id}`)).body;
    expect(back.state).toBe('waiting');
    const logs = async () =>
      (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${body.id}/logs`)).body.logs;
    expect((await logs()).some((l) => l.includes('shutdown: saved a checkpoint'))).toBe(true);
    const checkpoint = path.join(fileURLToPath(stack.storeUri), 'runs', body.id, 'checkpoint.json');
    expect(existsSync(checkpoint)).toBe(true);
    expect(await health()).toMatchObject({
      code: 1,
      output: expect.stringMatching(/^unhealthy: no heartbeat/),
    });

    const b = start();
    await b.waitFor(/worker \S+ serving fine-tune/);
    const done = await waitForJob(stack.url, body.id, undefined, 180_000);
    expect(done.state).toBe('completed');
    expect((await logs()).some((l) => /resuming from the checkpoint at epoch \d+, batch \d+/.test(l))).toBe(
      true,
    );
    expect((done.result as { history: Progress[] }).history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    // The hand-back cost no attempt.
    expect(done.attempts).toBe(1);
    expect((await b.stop('SIGTERM')).code).toBe(0);
  }, 300_000);

  it('the GPU image runs the same command line, health check and user (uid 1000, as the node image)', () => {
    const gpu = imageConfig('docker/worker-gpu.Dockerfile');
    expect(gpu.command).toEqual(image.command);
    expect(gpu.healthcheck).toEqual(image.healthcheck);
    expect(gpu.stopSignal).toBe(image.stopSignal);
    expect(gpu.user).toBe('node');
    const text = readFileSync(
      fileURLToPath(new URL('../../../docker/worker-gpu.Dockerfile', import.meta.url)),
      'utf8',
    );
    expect(text).toMatch(/groupadd --gid 1000 node && useradd --uid 1000 --gid node /);
  });

  it("the image's HEALTHCHECK is compose's", () => {
    expect(image.healthcheck).toEqual(healthcheckArgv('worker'));
    expect(healthcheckArgv('worker-gpu')).toEqual(healthcheckArgv('worker'));
  });
});
