/**
 * A sandbox child whose worker is killed exits at once, even with log lines still queued for the dead
 * worker's pipe (real processes: test/fixtures/orphan.ts). It used to hang in its exit for good,
 * retrying the write of those lines every 100 ms, and ignored SIGTERM meanwhile.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { allGone, killLeftovers, startTime } from '../../../test/support/processes.ts';

const fixture = fileURLToPath(new URL('./fixtures/orphan.ts', import.meta.url));
const started: { pid: number; started: string | undefined }[] = [];

/** Starts the fixture's parent; resolves with it and its child once the child is set up. */
async function parentAndChild(format: string) {
  const parent = spawn(process.execPath, [fixture, 'parent', format], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => parent.once('exit', r));
  started.push({ pid: parent.pid!, started: startTime(parent.pid!) });
  let out = '';
  parent.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const pid = await new Promise<number>((resolve, reject) => {
    parent.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^child (\d+)$/m.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error(`the fixture exited:\n${out}`)));
  });
  const child = { pid, started: startTime(pid) };
  started.push(child);
  return { parent, exited, child };
}

afterAll(() => {
  // Whatever a failed run left behind.
  killLeftovers(started);
});

describe('a sandbox child whose worker is killed', () => {
  it.each(['json', 'pretty'])('exits within 2 s, with %s log lines queued', async (format) => {
    const { parent, exited, child } = await parentAndChild(format);
    parent.kill('SIGKILL');
    await exited;
    expect(await allGone([child], 2000)).toBe(true);
  });
});
