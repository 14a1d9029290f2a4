/**
 * The API for bench/console-load.ts, in its own process: it measures its own event-loop delay
 * (perf_hooks.monitorEventLoopDelay) and answers the bench over IPC: `reset` starts a window,
 * `report` sends that window's percentiles (ms) and the CPU time the process used (ms per second).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { apiEnvSchema, startApi } from '../apps/api/src/index.ts';

const api = await startApi(apiEnvSchema.parse({ ...process.env, PORT: '0', HOST: '127.0.0.1' }));
const h = monitorEventLoopDelay({ resolution: 10 });
h.enable();
const ms = (ns: number) => ns / 1e6;
let cpu = process.cpuUsage();
let since = performance.now();
process.on('message', (m: string) => {
  if (m === 'reset') {
    h.reset();
    cpu = process.cpuUsage();
    since = performance.now();
  }
  if (m === 'report') {
    const used = process.cpuUsage(cpu);
    process.send!({
      cpuMsPerSec: (used.user + used.system) / 1000 / ((performance.now() - since) / 1000),
      p50: ms(h.percentile(50)),
      p99: ms(h.percentile(99)),
      max: ms(h.max),
      mean: ms(h.mean),
      hubSubscribers: api.hub.size,
    });
  }
  if (m === 'stop') void api.stop().then(() => process.exit(0));
});
process.send!({ url: api.url });
