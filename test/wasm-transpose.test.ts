// The wasm emitter's transposed tiles (compiler/wasm/emitKernel.ts, transposeAxisOf): a kernel without a reduction
// that gathers along its vector axis a load contiguous along another axis (a training step's W^T for the backward
// matmul) reads that load as 4 x 4 blocks, 4 vector loads and 8 shuffles, instead of 16 single loads. Checked on
// random permutations of random shapes, mixed with a plain load: exact against the float64 interpreter (the values
// are small integers and halves, so f32 sums are exact), the same bits on 1 and 3 threads, and the tile taken where
// it applies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { evaluate } from '../core/interpret.ts';
import { compile, WasmBackend } from '../compiler/index.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';

const caseArb = fc
  .array(fc.constantFrom(1, 2, 3, 4, 5, 8, 12), { minLength: 2, maxLength: 4 })
  .chain((shape) =>
    fc.tuple(fc.constant(shape), fc.shuffledSubarray([...shape.keys()], { minLength: shape.length, maxLength: shape.length })),
  );

const run = (shape: readonly number[], perm: readonly number[], threads: number) => {
  const out = perm.map((p) => shape[p]);
  const g = trace(({ x, y }) => op.add(op.permute(x, perm), op.mul(y, 2)), { x: shape, y: out });
  const n = shape.reduce((a, b) => a * b, 1);
  const x = { shape, data: Float64Array.from({ length: n }, (_, i) => i - 40) };
  const y = { shape: out, data: Float64Array.from({ length: n }, (_, i) => 0.5 * (i % 7)) };
  const exe = compile(g, { backend: new WasmBackend({ threads }) });
  try {
    return { want: evaluate(g, { x, y }).out.data, got: exe.run({ x, y }).out.data, tilings: exe.kernels.map((k) => k.source.source) };
  } finally {
    exe.dispose();
  }
};

test('wasm transposed tiles: random permutations exact against the interpreter, the same bits on 1 and 3 threads', () => {
  fc.assert(
    fc.property(caseArb, ([shape, perm]) => {
      const one = run(shape, perm, 1);
      const three = run(shape, perm, 3);
      const bad = one.want.findIndex((v, i) => v !== one.got[i]);
      assert.equal(bad, -1, `${bad}: ${one.got[bad]} against ${one.want[bad]}`);
      assert.ok(
        one.got.every((v, i) => Object.is(v, three.got[i])),
        '1 and 3 threads differ',
      );
    }),
    { numRuns: 60 },
  );
});

test('wasm transposed tiles: taken for a transpose whose axes are multiples of 4, not for one with a ragged axis', () => {
  const transposed = (s: string) => s.includes('transposed in registers');
  assert.ok(run([8, 12], [1, 0], 1).tilings.some(transposed));
  assert.ok(run([4, 8, 12], [2, 1, 0], 1).tilings.some(transposed));
  assert.ok(!run([5, 12], [1, 0], 1).tilings.some(transposed), 'the row axis must be a multiple of 4');
  // a permutation that keeps the last axis reads contiguous vectors: no gather, no transposed tile
  assert.ok(!run([4, 8, 12], [1, 0, 2], 1).tilings.some(transposed));
});
