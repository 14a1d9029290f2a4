import { startStack } from './test/support/stack.ts';
import { MlqClient } from './packages/sdk/src/index.ts';
const stack = await startStack('sdk-smoke');
try {
  const c = new MlqClient({ baseUrl: stack.url });
  console.log(await c.health(), await c.ready(), (await c.workers()).length);
  const job = await c.fineTune({ model: 'smoke', architecture: 'mlp', dataset: { format: 'mnist', digits: [0, 1], limit: 200 }, epochs: 3, validationSplit: 0.2 });
  console.log('submitted', job.id, job.state);
  const t0 = Date.now();
  for await (const ev of c.events(job.id)) console.log(Date.now() - t0, JSON.stringify(ev).slice(0, 200));
  const done = await c.waitForJob(job, { onProgress: (p) => console.log('progress', p.epoch) });
  console.log(done.state, done.result?.model);
  console.log(await c.getModel('smoke').then((m) => m.versions.length));
  try { await c.getJob('nope'); } catch (e) { console.log(e); }
} finally { await stack.stop(); }
