// The wasm plan's waves (compiler/wasm/schedule.ts) on random kernel graphs: a wave may hold only kernels that do not
// read each other's outputs, every producer must run in an earlier wave than its readers, and every kernel's outermost
// loop must be covered exactly once (whole, or split into ranges of whole steps over the threads). A schedule that
// broke any of these would race or skip rows on two threads while one thread still passed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { scheduleWaves, type KernelTask } from '../compiler/wasm/schedule.ts';

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
    fc.property(tasksArb, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), (tasks, threads, maxKernels) => {
      const waves = scheduleWaves(tasks, threads, maxKernels);
      const waveOf = new Map<number, number>();
      const covered = tasks.map((t) => new Array<number>(t.extent).fill(0));
      waves.forEach((wave, w) => {
        assert.equal(wave.length, threads, 'one item list per thread');
        const kernels = new Set(wave.flatMap((items) => items.map(([k]) => k)));
        assert.ok(kernels.size <= maxKernels, `wave ${w} holds ${kernels.size} kernels`);
        const written = new Set([...kernels].flatMap((k) => tasks[k].writes));
        for (const k of kernels) {
          assert.ok(!waveOf.has(k) || waveOf.get(k) === w, `kernel ${k} in two waves`);
          waveOf.set(k, w);
          for (const b of tasks[k].reads)
            assert.ok(!written.has(b) || tasks[k].writes.includes(b), `kernel ${k} reads ${b} in its own wave`);
        }
        for (const items of wave)
          for (const [k, lo, hi] of items) {
            assert.ok(lo < hi && lo >= 0 && hi <= tasks[k].extent, `range [${lo}, ${hi}) of kernel ${k}`);
            assert.ok(lo % tasks[k].step === 0, `kernel ${k}'s range starts off a step`);
            for (let r = lo; r < hi; r++) covered[k][r]++;
          }
      });
      tasks.forEach((t, k) => {
        assert.ok(
          covered[k].every((n) => n === 1),
          `kernel ${k}: rows covered ${covered[k].join(',')}`,
        );
        for (const b of t.reads)
          if (b >= 1000) assert.ok(waveOf.get(b - 1000)! < waveOf.get(k)!, `kernel ${k} runs before its producer ${b - 1000}`);
        if (!t.split || threads === 1)
          assert.equal(waves[waveOf.get(k)!].flat().filter(([j]) => j === k).length, 1, `kernel ${k} was split`);
      });
    }),
    { numRuns: 500 },
  );
});

test('waves: a chain is one kernel per wave; independent kernels share one wave, balanced over the threads', () => {
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
  assert.deepEqual(
    wave.map((items) => items.length),
    [2, 2, 2],
  );
});
