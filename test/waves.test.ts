// The wasm plan's waves (compiler/wasm/schedule.ts) on random kernel graphs: a wave may hold only kernels that do not
// read each other's outputs, every producer must run in an earlier wave than its readers, and every kernel's outermost
// loop must be covered exactly once (whole, or cut into chunks of whole steps that the threads take in turn), and the
// tasks come largest first. A schedule that broke any of these would race or skip rows on two threads while one
// thread still passed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CHUNKS_PER_THREAD, MIN_CHUNK_WORK, scheduleWaves, type KernelTask } from '../compiler/wasm/schedule.ts';

/** Kernel i writes buffer 1000 + i and reads inputs (buffers 0..9) and earlier kernels' outputs. */
const tasksArb = fc
  .array(
    fc.record({
      readsEarlier: fc.array(fc.nat(), { maxLength: 3 }),
      readsInputs: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 2 }),
      work: fc.integer({ min: 1, max: 1 << 20 }),
      extent: fc.integer({ min: 1, max: 40 }),
      step: fc.constantFrom(1, 2, 4, 8),
      split: fc.boolean(),
    }),
    { minLength: 1, maxLength: 40 },
  )
  .map((raw) =>
    raw.map((r, i): KernelTask => ({
      reads: [...r.readsInputs, ...(i === 0 ? [] : r.readsEarlier.map((x) => 1000 + (x % i)))],
      writes: [1000 + i],
      work: r.work,
      extent: r.extent,
      step: r.step,
      split: r.split,
    })),
  );

test('waves: independent kernels only, producers in earlier waves, every row of every kernel exactly once', () => {
  fc.assert(
    fc.property(tasksArb, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 12 }), (tasks, threads, maxTasks) => {
      const waves = scheduleWaves(tasks, threads, maxTasks);
      // a kernel's chunks may fall in several waves of its level where that level is cut at maxTasks
      const first = new Map<number, number>();
      const last = new Map<number, number>();
      const covered = tasks.map((t) => new Array<number>(t.extent).fill(0));
      const chunks = tasks.map(() => 0);
      waves.forEach((wave, w) => {
        assert.ok(wave.length >= 1 && wave.length <= maxTasks, `wave ${w} holds ${wave.length} tasks`);
        const kernels = new Set(wave.map(([k]) => k));
        const written = new Set([...kernels].flatMap((k) => tasks[k].writes));
        for (const k of kernels) {
          if (!first.has(k)) first.set(k, w);
          last.set(k, w);
          for (const b of tasks[k].reads)
            assert.ok(!written.has(b) || tasks[k].writes.includes(b), `kernel ${k} reads ${b} in its own wave`);
        }
        const work = wave.map(([k, lo, hi]) => (tasks[k].work * (hi - lo)) / tasks[k].extent);
        assert.ok(
          work.every((x, i) => i === 0 || x <= work[i - 1]),
          `wave ${w}: tasks not largest first`,
        );
        for (const [k, lo, hi] of wave) {
          assert.ok(lo < hi && lo >= 0 && hi <= tasks[k].extent, `range [${lo}, ${hi}) of kernel ${k}`);
          assert.ok(lo % tasks[k].step === 0, `kernel ${k}'s range starts off a step`);
          for (let r = lo; r < hi; r++) covered[k][r]++;
          chunks[k]++;
        }
      });
      tasks.forEach((t, k) => {
        assert.ok(
          covered[k].every((n) => n === 1),
          `kernel ${k}: rows covered ${covered[k].join(',')}`,
        );
        for (const b of t.reads)
          if (b >= 1000) assert.ok(last.get(b - 1000)! < first.get(k)!, `kernel ${k} runs before its producer ${b - 1000}`);
        if (!t.split || threads === 1) assert.equal(chunks[k], 1, `kernel ${k} was split`);
        else assert.ok(chunks[k] <= threads * CHUNKS_PER_THREAD, `kernel ${k} in ${chunks[k]} chunks`);
      });
    }),
    { numRuns: 500 },
  );
});

test('waves: a chain is one kernel per wave; independent kernels share one wave; a large kernel is cut finer than the threads', () => {
  const chain = Array.from({ length: 5 }, (_, i): KernelTask => ({
    reads: i ? [1000 + i - 1] : [0],
    writes: [1000 + i],
    work: 10,
    extent: 8,
    step: 1,
    split: false,
  }));
  assert.equal(scheduleWaves(chain, 2, 64).length, 5);
  const fan = Array.from({ length: 6 }, (_, i): KernelTask => ({
    reads: [0],
    writes: [1000 + i],
    work: 10,
    extent: 8,
    step: 1,
    split: false,
  }));
  const [wave, ...rest] = scheduleWaves(fan, 3, 64);
  assert.equal(rest.length, 0);
  assert.equal(wave.length, 6);
  // a thread held up by another process leaves chunks for the others: CHUNKS_PER_THREAD per thread where the work allows
  // and the loop has that many steps (a kernel that packs is cut by panels: 4 panels, 4 chunks)
  const big: KernelTask = { reads: [0], writes: [1000], work: 1 << 24, extent: 512, step: 4, split: true };
  assert.equal(scheduleWaves([big], 2, 64)[0].length, 2 * CHUNKS_PER_THREAD);
  assert.equal(scheduleWaves([{ ...big, extent: 512, step: 128 }], 2, 64)[0].length, 4);
  assert.equal(scheduleWaves([{ ...big, work: 3 * MIN_CHUNK_WORK }], 2, 64)[0].length, 3);
});
