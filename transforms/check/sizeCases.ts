// Large graphs for the "large" size class (arbitraries.ts): each crosses a backend limit of docs/numerics.md, an
// element count past exact float32 index arithmetic or a reduction past GL's loop cut. A case is built lazily
// (`build`), so an arbitrary over cases costs nothing until a run uses one; its data are hashed small integers
// (arbitraries.ts's hashedInts), so the interpreter's float64 answer is exact in float32 too and a wrong index or a
// truncated loop is an O(1) error, never within tolerance.
import fc from 'fast-check';
import type { Graph } from '../../core/ir.ts';
import type { NDArray } from '../../core/ndarray.ts';
import * as op from '../../dsl/ops.ts';
import { trace } from '../../dsl/trace.ts';
import { valueAndGrad } from '../grad.ts';
import { hashedInts, largeShapeArb, longReductionArb } from './arbitraries.ts';

export interface SizeCase {
  readonly name: string;
  /** elements of the largest tensor, or terms of the longest reduction */
  readonly size: number;
  readonly build: () => { readonly graph: Graph; readonly args: Record<string, NDArray> };
}

const nd = (shape: readonly number[], data: Float64Array): NDArray => ({ shape, data });

/** transpose of [r, c]: every output element reads a remapped index. */
export const transposeCase = ([r, c]: readonly [number, number]): SizeCase => ({
  name: `transpose of [${r},${c}]`,
  size: r * c,
  build: () => ({ graph: trace(({ x }) => op.transpose(x), { x: [r, c] }), args: { x: nd([r, c], hashedInts(r * c)) } }),
});

/** [1, c] + [r, 1]: both operands broadcast to [r, c], indexed by quotient and remainder. */
export const broadcastAddCase = ([r, c]: readonly [number, number]): SizeCase => ({
  name: `[1,${c}] + [${r},1]`,
  size: r * c,
  build: () => ({
    graph: trace(({ a, b }) => op.add(a, b), { a: [1, c], b: [r, 1] }),
    args: {
      a: nd([1, c], hashedInts(c, 1)),
      b: nd(
        [r, 1],
        hashedInts(r, 2).map((v) => v * 4096),
      ),
    },
  }),
});

/** 2x + 1 on [r, c]: the plainest elementwise kernel, at a large element count. */
export const affineCase = ([r, c]: readonly [number, number]): SizeCase => ({
  name: `2x+1 on [${r},${c}]`,
  size: r * c,
  build: () => ({ graph: trace(({ x }) => op.add(op.mul(x, 2), 1), { x: [r, c] }), args: { x: nd([r, c], hashedInts(r * c)) } }),
});

/** sum of n terms (ones, or small integers): exact in float32 up to 2^24 / 3 terms. */
export const sumCase = (n: number, ones = false): SizeCase => ({
  name: `sum of ${n} ${ones ? 'ones' : 'small integers'}`,
  size: n,
  build: () => ({
    graph: trace(({ x }) => op.sum(x), { x: [n] }),
    args: { x: nd([n], ones ? new Float64Array(n).fill(1) : hashedInts(n, 3, 4)) },
  }),
});

/** max of n terms, its largest element near the end (a cut loop misses it). */
export const maxCase = (n: number): SizeCase => ({
  name: `max of ${n} terms`,
  size: n,
  build: () => {
    const x = hashedInts(n, 4).map((v) => v - 4096);
    x[n - 2] = 7;
    return { graph: trace(({ x }) => op.max(x), { x: [n] }), args: { x: nd([n], x) } };
  },
});

/** [2, k] x [k, 3]: a contraction of k terms per output element. */
export const matmulCase = (k: number): SizeCase => ({
  name: `matmul [2,${k}] x [${k},3]`,
  size: k,
  build: () => ({
    graph: trace(({ a, b }) => op.matmul(a, b), { a: [2, k], b: [k, 3] }),
    args: {
      a: nd([2, k], hashedInts(2 * k, 5, 3)),
      b: nd(
        [k, 3],
        hashedInts(3 * k, 6, 3).map((v) => v - 1),
      ),
    },
  }),
});

/** The gradient of sum(broadcast(x, [r, c]) * w) with respect to a scalar x: a reduction of r*c terms. */
export const broadcastGradCase = ([r, c]: readonly [number, number]): SizeCase => ({
  name: `gradient of a broadcast over [${r},${c}]`,
  size: r * c,
  build: () => ({
    graph: valueAndGrad(
      trace(({ x, w }) => op.sum(op.mul(op.broadcastTo(x, [r, c]), w)), { x: [], w: [r, c] }),
      ['x'],
    ),
    args: { x: nd([], Float64Array.of(1.5)), w: nd([r, c], hashedInts(r * c, 7, 4)) },
  }),
});

/** A large-element case: transpose, broadcast add or 2x+1 on one of arbitraries.ts's largeShapes. */
export const largeElementCaseArb: fc.Arbitrary<SizeCase> = fc
  .tuple(largeShapeArb, fc.constantFrom(transposeCase, broadcastAddCase, affineCase))
  .map(([s, f]) => f(s));

/** A long-reduction case: sum, max, matmul or a broadcast's gradient over 10^5..10^6 terms. */
export const longReductionCaseArb: fc.Arbitrary<SizeCase> = fc
  .tuple(
    longReductionArb,
    fc.constantFrom<(n: number) => SizeCase>(sumCase, maxCase, matmulCase, (n) => broadcastGradCase([Math.ceil(n / 500), 500])),
  )
  .map(([n, f]) => f(n));

/** Either kind. */
export const largeCaseArb: fc.Arbitrary<SizeCase> = fc.oneof(largeElementCaseArb, longReductionCaseArb);
