// simplify's rule for a slice of a matmul (compiler/passes/rewrites.ts): a matmul read only through one slice (the
// backward of a concat slices the input gradient of a first layer) becomes the matmul of the sliced operands, rows
// of A and columns of B (and batches of both), so only the kept outputs are computed. Each kept output is the same
// dot product in the same order, so the simplified graph on the interpreter equals the unsimplified one bit for bit,
// and, with inputs that are multiples of 1/4 (sums exact in float32), the plan on wasm does too. Where the matmul is
// read elsewhere as well the slice stays, and so do the values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import { compile, createBackend } from '../compiler/index.ts';
import { simplify } from '../compiler/passes/simplify.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { grad } from '../transforms/grad.ts';
import { quarters } from './support/quarters.ts';

const matmuls = (g: Graph) => {
  const live = new Set<number>();
  const visit = (id: number) => {
    if (live.has(id)) return;
    live.add(id);
    g.nodes[id].inputs.forEach(visit);
  };
  g.outputs.forEach((o) => visit(o.id));
  return g.nodes.filter((n) => live.has(n.id) && n.op === 'matmul').map((n) => n.shape.join('x'));
};

/** a random [batch?, m, n] slice (start, stop, step per axis) */
const sliceArb = fc
  .record({
    batch: fc.constantFrom(0, 2),
    m: fc.integer({ min: 1, max: 9 }),
    k: fc.integer({ min: 1, max: 6 }),
    n: fc.integer({ min: 1, max: 9 }),
  })
  .chain(({ batch, m, k, n }) => {
    const dims = batch ? [batch, m, n] : [m, n];
    const axis = (d: number) =>
      fc
        .tuple(fc.integer({ min: 0, max: d - 1 }), fc.integer({ min: 1, max: d }), fc.integer({ min: 1, max: 3 }))
        .map(([a, b, step]) => ({ start: Math.min(a, b - 1), stop: Math.max(a + 1, b), step }));
    return fc.record({
      dims: fc.constant(dims),
      k: fc.constant(k),
      axes: fc.tuple(...dims.map(axis)),
    });
  });

test('a slice of a matmul read nowhere else: a smaller matmul after simplify, the same bits on the interpreter and on wasm', () => {
  fc.assert(
    fc.property(sliceArb, fc.boolean(), ({ dims, k, axes }, alsoWhole) => {
      const batch = dims.slice(0, -2);
      const [m, n] = dims.slice(-2);
      const spec = { a: [...batch, m, k], b: [...batch, k, n] };
      const g = trace(({ a, b }) => {
        const mm = op.matmul(a, b);
        const part = op.slice(
          mm,
          axes.map((x) => [x.start, x.stop, x.step] as const),
        );
        // read elsewhere too: the rule must not apply (it would compute the kept outputs twice)
        const out: Record<string, Tensor> = { part };
        if (alsoWhole) out.whole = op.mul(mm, 2);
        return out;
      }, spec);
      const args = { a: quarters(spec.a, 1), b: quarters(spec.b, 2) };
      const after = simplify(g);
      const kept = axes.map((x) => Math.ceil((x.stop - x.start) / x.step)).join('x');
      const full = dims.join('x');
      if (alsoWhole) assert.deepEqual(matmuls(after), [full]);
      else assert.deepEqual(matmuls(after), [kept === full ? full : kept]);
      const want = evaluate(g, args);
      assert.deepEqual(evaluate(after, args), want);
      const exe = compile(g, { backend: createBackend('wasm', { threads: 1 }) });
      try {
        const got = exe.run(args);
        for (const name of Object.keys(want)) assert.deepEqual(got[name].data, want[name].data, name);
      } finally {
        exe.dispose();
      }
    }),
    { numRuns: 80 },
  );
});

test('the input gradient of a layer on a concat, only one part of which needs it, is a matmul of that part', () => {
  // [x (2), e (16)] -> 8: the gradient reaches the parameter e only, 16 of 18 columns of the input gradient
  const g = grad(
    trace(({ x, e, w }) => op.sum(op.mul(op.matmul(op.concat([x, e], 1), w), op.matmul(op.concat([x, e], 1), w))), {
      x: [4, 2],
      e: [4, 16],
      w: [18, 8],
    }),
    ['e'],
  );
  const after = simplify(g);
  assert.ok(matmuls(after).includes('4x16'), matmuls(after).join(', '));
  assert.ok(!matmuls(after).includes('4x18'), matmuls(after).join(', '));
  const args = { x: quarters([4, 2], 1), e: quarters([4, 16], 2), w: quarters([18, 8], 3) };
  assert.deepEqual(evaluate(after, args), evaluate(g, args));
});
