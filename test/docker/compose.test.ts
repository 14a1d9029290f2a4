/**
 * What docker-compose.yml promises (issue 12): every pulled image pinned to a release, every long-running
 * service restarted unless stopped by hand and health-checked, Redis with AOF on, `minio-init` given
 * every credential its command reads, and workers given the time to hand their job back on SIGTERM.
 * (No Docker engine runs here: the container-signal tests run the images' command lines instead.)
 */
import { describe, expect, it } from 'vitest';
import { workerEnvSchema } from '../../apps/worker/src/env.ts';
import { composeServices } from '../support/compose.ts';

const services = composeServices();
/** Services that run once and exit: restarting them unless stopped would run them forever. */
const oneShot = new Set(['minio-init']);

const seconds = (d: string | undefined): number => {
  const m = /^(\d+)(s|m)$/.exec(d ?? '');
  if (!m) throw new Error(`not a duration in seconds or minutes: ${d}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
};

describe('docker-compose.yml', () => {
  it('pins every pulled image to a release (no latest, no bare name)', () => {
    const images = Object.entries(services).filter(([, s]) => s.image);
    expect(images.length).toBeGreaterThan(0);
    for (const [name, s] of images) {
      const tag = /:([^/:]+)$/.exec(s.image!)?.[1];
      expect(tag, `${name}: ${s.image}`).toBeDefined();
      expect(tag, `${name}: ${s.image}`).not.toBe('latest');
    }
  });

  it('restarts and health-checks every long-running service', () => {
    for (const [name, s] of Object.entries(services)) {
      if (oneShot.has(name)) {
        expect(s.restart, name).toBe('on-failure');
        continue;
      }
      expect(s.restart, name).toBe('unless-stopped');
      expect(s.healthcheck?.test[0], name).toBe('CMD');
    }
    expect(services.api!.healthcheck!.test.join(' ')).toContain('/readyz');
    expect(services.worker!.healthcheck!.test).toEqual(['CMD', 'node', 'apps/worker/src/healthcheck.ts']);
  });

  it('runs Redis with AOF persistence and no eviction', () => {
    const cmd = services.redis!.command!.join(' ');
    expect(cmd).toContain('--appendonly yes');
    expect(cmd).toContain('--maxmemory-policy noeviction');
  });

  it('gives minio-init every variable its command reads, and waits for a healthy MinIO', () => {
    const init = services['minio-init']!;
    const script = init.entrypoint!.join(' ');
    // `$$VAR` in compose is `$VAR` for the container's shell.
    const used = [...script.matchAll(/\$\$\{?([A-Z_]+)/g)].map((m) => m[1]!);
    expect(used.length).toBeGreaterThan(0);
    for (const v of used) expect(Object.keys(init.environment ?? {}), v).toContain(v);
    expect(init.environment).toEqual(services.minio!.environment);
    expect(init.depends_on).toEqual({ minio: { condition: 'service_healthy' } });
  });

  it('lets workers checkpoint and hand their job back before the SIGKILL', () => {
    // The worker exits at most 5 s after WORKER_SHUTDOWN_TIMEOUT_MS (apps/worker/src/main.ts).
    const shutdownMs = workerEnvSchema.parse({}).WORKER_SHUTDOWN_TIMEOUT_MS;
    for (const name of ['worker', 'worker-gpu'])
      expect(seconds(services[name]!.stop_grace_period) * 1000, name).toBeGreaterThan(shutdownMs + 5000);
  });
});
