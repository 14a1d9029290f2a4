/**
 * The consoles of bench/console-load.ts, in their own process at the lowest CPU priority: browsers
 * normally run on other machines, so their own parsing and rendering must not compete with the API for
 * this machine's cores; what the bench measures is the API's cost of serving them. Args: the API URL
 * and the job ids, one console per id. It runs until killed.
 */
import os from 'node:os';
import { MlqClient } from '../packages/sdk/src/index.ts';

os.setPriority(19);
const [url, ...ids] = process.argv.slice(2);
const client = new MlqClient({ baseUrl: url! });

/** One console: the job list's stream, and one job's page (stream, job, history, logs per epoch). */
async function openConsole(jobId: string): Promise<void> {
  void (async () => {
    for await (const _e of client.allEvents());
  })();
  await client.getJob(jobId);
  await client.jobHistory(jobId);
  await client.jobLogs(jobId);
  for await (const e of client.events(jobId)) {
    if (e.type === 'progress' && (e.progress as { batch?: number }).batch === undefined)
      await client.jobLogs(jobId);
  }
}

/** A page whose connection drops (a keep-alive socket the server closed) opens again, as a browser's would. */
async function keepOpen(jobId: string): Promise<void> {
  for (;;) {
    await openConsole(jobId).catch((e: Error) =>
      console.error(`console on ${jobId}: ${e.message}; reopening`),
    );
    await new Promise((r) => setTimeout(r, 200));
  }
}

for (const id of ids) void keepOpen(id);
process.send?.('open');
