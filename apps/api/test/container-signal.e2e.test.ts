/**
 * The API image's signals, with the image's own command line: the Dockerfile's `api` stage ENTRYPOINT +
 * CMD (`/usr/bin/tini -g -- node … apps/api/src/main.ts`), read from the file and spawned as is from the
 * repo root (the image's WORKDIR), with the stage's ENV. SIGTERM to it (what `docker stop` sends to
 * PID 1) ends the API with exit code 0 within 3 s. The image's and docker-compose.yml's health checks
 * (`/readyz`) run against it: healthy while it runs, unhealthy once it is gone.
 *
 * Needs tini where the ENTRYPOINT says: /usr/bin/tini, Debian's `tini` (scripts/lib.sh installs it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { redisTargetOf } from '@mlq/contract/env';
import { closeClient, connect } from '@mlq/queues';
import { spawnCommand } from '../../../test/support/app-process.ts';
import { healthcheckArgv } from '../../../test/support/compose.ts';
import { imageConfig, type ImageConfig } from '../../../test/support/dockerfile.ts';
import { deletePrefix, REDIS_URL, uniquePrefix } from '../../../test/support/stack.ts';

describe("the API image's command line", () => {
  let image: ImageConfig;
  let dir: string;
  const prefix = uniquePrefix('container-api');

  beforeAll(async () => {
    image = imageConfig('Dockerfile', 'api');
    const init = image.entrypoint[0];
    if (init && path.isAbsolute(init) && !existsSync(init))
      throw new Error(
        `the API image's ENTRYPOINT starts ${init}, which this machine lacks: this test runs the image's ` +
          `exact command line. Install Debian's tini (apt-get install -y tini; scripts/test.sh does it).`,
      );
    dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-container-api-'));
  });
  afterAll(async () => {
    const redis = connect(redisTargetOf({ REDIS_URL, REDIS_CLUSTER_NODES: undefined }), {
      name: 'mlq-test-container-api',
    });
    await deletePrefix(redis, prefix);
    await closeClient(redis);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs node under tini -g, and its HEALTHCHECK is compose’s', () => {
    expect(image.command.slice(0, 3)).toEqual(['/usr/bin/tini', '-g', '--']);
    expect(image.cmd[0]).toBe('node');
    expect(image.cmd.at(-1)).toBe('apps/api/src/main.ts');
    expect(image.user).toBe('node');
    expect(image.healthcheck).toEqual(healthcheckArgv('api'));
    expect(image.healthcheck!.join(' ')).toContain('/readyz');
  });

  it('is healthy while it runs, and on SIGTERM exits 0 within 3 s', async () => {
    const env = {
      ...image.env,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      PORT: '0',
      HOST: '127.0.0.1',
      ARTIFACT_STORE: pathToFileURL(path.join(dir, 'artifacts')).href,
      DATA_ROOTS: dir,
      LOG_FORMAT: 'json',
    };
    const api = spawnCommand(image.command, env);
    const [, port] = await api.waitFor(/api listening on http:\/\/[\d.]+:(\d+)/);
    const health = async () => {
      const check = spawnCommand(healthcheckArgv('api'), { ...env, PORT: port! });
      return check.exited;
    };
    expect(await health()).toBe(0);

    const { ms, code } = await api.stop('SIGTERM');
    console.log(`SIGTERM to tini → API exited ${code} in ${ms.toFixed(0)} ms`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(3000);
    expect(await health()).toBe(1);
  });
});
