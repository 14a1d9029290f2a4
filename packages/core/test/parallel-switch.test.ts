import { describe, expect, it } from 'vitest';
import type { DataParallelTrainer } from '@mlq/engine';
import { ParallelSwitch } from '../src/ml/parallel-switch.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A switch over steps that take `singleMs` on one thread and `splitMs` split (slept, not computed:
 * the decision rule is what is tested here; parallel.test.ts splits real steps). Returns the log
 * and how many steps of each kind ran before the decision was logged.
 */
async function probe(singleMs: number, splitMs: number | ((k: number) => number), steps = 40) {
  const lines: string[] = [];
  const counts = { single: 0, split: 0 };
  /** The steps run when the decision was logged (the deciding one included). */
  let before = { ...counts };
  const trainer = { threads: 2, dispose: () => Promise.resolve() } as unknown as DataParallelTrainer;
  const sw = new ParallelSwitch(
    Promise.resolve(trainer),
    (l) => {
      lines.push(l);
      before = { ...counts };
      return Promise.resolve();
    },
    0,
  );
  await sleep(0); // the trainer is up: probing starts with the first step
  for (let i = 0; i < steps; i++) {
    await sw.step(
      128,
      async () => (counts.single++, await sleep(singleMs), [1, 0]),
      async () => {
        const ms = typeof splitMs === 'number' ? splitMs : splitMs(counts.split);
        counts.split++;
        await sleep(ms);
        return [1, 0];
      },
    );
  }
  await sw.dispose();
  return { lines, before, counts };
}

describe('ParallelSwitch', () => {
  it('ends the probe after 3 timed pairs when every split step is far faster, and keeps splitting', async () => {
    const { lines, before, counts } = await probe(80, 10);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^data-parallel training on 2 threads: \d+ samples\/s against \d+ on one \(\d+\.\d\dx, at least the 1\.11x it takes\); keeping it$/,
    );
    // The first split step warms the helpers up and is not timed: 4 split and 3 or 4 single steps.
    expect(before.split).toBe(4);
    expect(before.single).toBeLessThanOrEqual(4);
    expect(counts.split).toBe(40 - counts.single);
    expect(counts.single).toBe(before.single);
  });

  it('ends early the other way when every split step is slower, and trains on one thread', async () => {
    const { lines, before, counts } = await probe(10, 60);
    expect(lines[0]).toMatch(/ \(\d+\.\d\dx, under the 1\.11x it takes\); back to one thread$/);
    expect(before.split).toBe(4);
    expect(counts.split).toBe(before.split);
  });

  it('goes on pairing when the two ways are close (no early decision on a small gap)', async () => {
    const { lines, before } = await probe(50, 40);
    expect(lines).toHaveLength(1);
    expect(before.split).toBeGreaterThanOrEqual(9); // PROBE_PAIRS timed pairs plus the warm-up step
  });

  it('judges by the mean time per row: bimodal split steps that are faster on the whole are kept', async () => {
    // Every other split step slowed down (another process on the shared cores), as measured in a
    // worker job: their median equals the single step's, their mean is 3/4 of it.
    const { lines } = await probe(80, (k) => (k % 2 === 1 ? 80 : 40));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/; keeping it$/);
  });
});
