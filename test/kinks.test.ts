// The conventions at kinks and ties (docs/numerics.md, "Kinks and ties"), pinned on the float64 interpreter and then on
// every backend. The property suites keep their random inputs away from these points (transforms/check/arbitraries.ts,
// awayFromKinks), since finite differences cannot judge a kink; here they are met head on, with hand-computed answers:
//  - maximum(x, y) and minimum(x, y) at x = y give each operand half the cotangent (so maximum(x, x) has derivative 1);
//  - the max reduction shares the cotangent equally among the elements equal to the maximum (1/k each for a k-way tie);
//  - relu and abs have derivative 0 at 0 (and at -0).
// Tolerances: the interpreter must give the expected values to 1e-15 relative (each is one or two f64 operations on
// exact inputs: a 0/1 mask, a product with 0.5, a division by a tie count). A backend computes in f32: the masks, the
// halves and the products with exact values are exact there too, so an expected 0, 0.5 or 1 must come back exactly;
// values such as 1/3 or 0.1 x 0.5 are f32 roundings of the f64 answer, within 1e-6 relative (a few ulp; GL's division
// is allowed 2.5 ulp). A wrong convention is off by 0.5 or more.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { compile, shutdownBackends } from '../compiler/index.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { gradName, valueAndGrad } from '../transforms/grad.ts';
import { backendsUnderTest, nodeBackendsWithWebGPU } from './support/backends.ts';

const backends = await backendsUnderTest('kinks', nodeBackendsWithWebGPU);
after(shutdownBackends);

interface KinkCase {
  readonly name: string;
  readonly fn: (a: Record<string, Tensor>) => Tensor;
  readonly args: Record<string, NDArray>;
  /** the expected value of fn */
  readonly value: number;
  /** the expected gradient of each argument */
  readonly grads: Record<string, readonly number[]>;
}

const arr = (data: readonly number[], shape: readonly number[] = [data.length]): NDArray => ({ shape, data: Float64Array.from(data) });
const w4 = arr([1, 2, 3, 4]);

const cases: KinkCase[] = [
  {
    name: 'grad sum(maximum(x, y)) at x = y: 0.5 to each',
    fn: ({ x, y }) => op.sum(op.maximum(x, y)),
    args: { x: arr([1, -2, 0, 3.5]), y: arr([1, -2, 0, 3.5]) },
    value: 2.5,
    grads: { x: [0.5, 0.5, 0.5, 0.5], y: [0.5, 0.5, 0.5, 0.5] },
  },
  {
    name: 'maximum(x, y), weighted: ties share w/2, the larger side takes w',
    fn: ({ x, y, w }) => op.sum(op.mul(w, op.maximum(x, y))),
    args: { x: arr([1, 5, -2, 0]), y: arr([1, 3, 4, 0]), w: w4 },
    value: 1 + 10 + 12 + 0,
    grads: { x: [0.5, 2, 0, 2], y: [0.5, 0, 3, 2], w: [1, 5, 4, 0] },
  },
  {
    name: 'grad sum(minimum(x, y)) at x = y: 0.5 to each',
    fn: ({ x, y }) => op.sum(op.minimum(x, y)),
    args: { x: arr([1, -2, 0, 3.5]), y: arr([1, -2, 0, 3.5]) },
    value: 2.5,
    grads: { x: [0.5, 0.5, 0.5, 0.5], y: [0.5, 0.5, 0.5, 0.5] },
  },
  {
    name: 'minimum(x, y), weighted: ties share w/2, the smaller side takes w',
    fn: ({ x, y, w }) => op.sum(op.mul(w, op.minimum(x, y))),
    args: { x: arr([1, 5, -2, 0]), y: arr([1, 3, 4, 0]), w: w4 },
    value: 1 + 6 - 6 + 0,
    grads: { x: [0.5, 0, 3, 2], y: [0.5, 2, 0, 2], w: [1, 3, -2, 0] },
  },
  {
    name: 'maximum(x, x) and minimum(x, x) have derivative 1 (two halves)',
    fn: ({ x }) => op.add(op.sum(op.maximum(x, x)), op.sum(op.mul(op.minimum(x, x), 3))),
    args: { x: arr([1, -2, 0]) },
    value: 4 * -1,
    grads: { x: [4, 4, 4] },
  },
  {
    name: 'maximum(x, 0) at x = 0 gives 0.5 (unlike relu)',
    fn: ({ x }) => op.sum(op.maximum(x, 0)),
    args: { x: arr([-1, 0, 2]) },
    value: 2,
    grads: { x: [0, 0.5, 1] },
  },
  {
    name: 'maximum of two computed values that tie: 0.5 through each branch',
    fn: ({ x, y }) => op.sum(op.maximum(op.mul(x, 2), op.add(y, 1))),
    args: { x: arr([1, 3]), y: arr([1, 0]) },
    value: 2 + 6,
    grads: { x: [1, 2], y: [0.5, 0] },
  },
  {
    name: 'grad max([3, 1, 3]) = [0.5, 0, 0.5]',
    fn: ({ x }) => op.max(x),
    args: { x: arr([3, 1, 3]) },
    value: 3,
    grads: { x: [0.5, 0, 0.5] },
  },
  {
    name: 'max over rows with 2-, 3- and 1-way ties, weighted',
    fn: ({ x }) => op.sum(op.mul(op.max(x, [1]), op.constant([1, 2, 3], [3]))),
    args: { x: arr([3, 1, 3, 2, 2, 2, -1, 4, 0], [3, 3]) },
    value: 3 + 4 + 12,
    grads: { x: [0.5, 0, 0.5, 2 / 3, 2 / 3, 2 / 3, 0, 3, 0] },
  },
  {
    name: 'max over columns (keepDims), a tie in one column',
    fn: ({ x }) => op.sum(op.max(x, [0], true)),
    args: { x: arr([3, 1, 3, 3, 2, -2], [2, 3]) },
    value: 3 + 2 + 3,
    grads: { x: [0.5, 0, 1, 0.5, 1, 0] },
  },
  {
    name: 'max of a computed value (x * 0.1) whose maxima tie',
    fn: ({ x }) => op.max(op.mul(x, 0.1)),
    args: { x: arr([3, 1, 3, -4]) },
    value: 3 * 0.1,
    grads: { x: [0.1 * 0.5, 0, 0.1 * 0.5, 0] },
  },
  {
    name: "relu'(0) = 0, at 0 and -0",
    fn: ({ x }) => op.sum(op.mul(op.relu(x), op.constant([1, 2, 3, 4], [4]))),
    args: { x: arr([-1, 0, -0, 2]) },
    value: 8,
    grads: { x: [0, 0, 0, 4] },
  },
  {
    name: "relu'(0) = 0 at a computed zero (x - y with x = y)",
    fn: ({ x, y }) => op.sum(op.relu(op.sub(x, y))),
    args: { x: arr([1.5, 2, -1]), y: arr([1.5, 1, -1]) },
    value: 1,
    grads: { x: [0, 1, 0], y: [0, -1, 0] },
  },
  {
    name: "abs'(0) = 0, at 0 and -0; the sign elsewhere",
    fn: ({ x }) => op.sum(op.mul(op.abs(x), op.constant([1, 2, 3, 4], [4]))),
    args: { x: arr([-2, 0, -0, 3]) },
    value: 2 + 12,
    grads: { x: [-1, 0, 0, 4] },
  },
];

const graphOf = (c: KinkCase): Graph =>
  valueAndGrad(
    trace((a) => c.fn(a as Record<string, Tensor>), Object.fromEntries(Object.entries(c.args).map(([k, v]) => [k, v.shape]))),
    Object.keys(c.args),
  );

/** Mismatches of a result (value `out`, gradients `grad.<name>`) with the case's expected numbers. */
const mismatches = (c: KinkCase, out: Record<string, NDArray>, rel: number): string[] => {
  const bad: string[] = [];
  const near = (got: number, want: number) => Math.abs(got - want) <= rel * Math.abs(want);
  if (!near(out.out.data[0], c.value)) bad.push(`value ${out.out.data[0]}, want ${c.value}`);
  for (const [name, want] of Object.entries(c.grads)) {
    const got = [...out[gradName(name)].data];
    if (got.some((g, i) => !near(g, want[i]))) bad.push(`grad ${name} [${got.join(', ')}], want [${want.join(', ')}]`);
  }
  return bad;
};

test('interpreter: the conventions at kinks and ties', () => {
  const failures = cases.flatMap((c) => mismatches(c, evaluate(graphOf(c), c.args), 1e-15).map((m) => `${c.name}: ${m}`));
  assert.deepEqual(failures, []);
});

for (const backend of backends)
  test(`${backend}: the same conventions at kinks and ties, fused and unfused`, async () => {
    const failures: string[] = [];
    for (const c of cases)
      for (const fusion of ['fused', 'unfused'] as const) {
        const exe = compile(graphOf(c), { backend, fusion });
        try {
          failures.push(...mismatches(c, await exe.runAsync(c.args), 1e-6).map((m) => `${c.name} (${fusion}): ${m}`));
        } finally {
          exe.dispose();
        }
      }
    assert.deepEqual(failures, []);
  });
