// Forward tests of every primitive's float64 rule, through trace + evaluate, against independent hand-written
// JS: small concrete inputs, reference loops written here from the definitions (not from compiler/), and a
// few literal expected arrays worked out by hand. Integer-valued inputs keep every sum exact, so most checks
// are exact equality; transcendental functions are compared with the same Math function (also exact).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Graph } from '../core/ir.ts';
import { evaluate } from '../core/interpret.ts';
import type { NDArray } from '../core/ndarray.ts';
import { primitives } from '../core/primitives/index.ts';
import { bits24, randomKey, uniformAt } from '../core/rng.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace, type TensorTree } from '../dsl/trace.ts';

// ---- independent helpers -----------------------------------------------------------------------------------

type Dims = readonly number[];
const numel = (s: Dims): number => s.reduce((a, b) => a * b, 1);
const ravel = (idx: Dims, s: Dims): number => idx.reduce((acc, i, d) => acc * s[d] + i, 0);
const unravel = (flat: number, s: Dims): number[] => {
  const idx = new Array<number>(s.length);
  for (let d = s.length - 1; d >= 0; d--) {
    idx[d] = flat % s[d];
    flat = Math.floor(flat / s[d]);
  }
  return idx;
};
/** Fills a tensor of shape `s` with f(multi-index). */
const tabulate = (s: Dims, f: (idx: number[]) => number): Float64Array =>
  Float64Array.from({ length: numel(s) }, (_, k) => f(unravel(k, s)));
/** Small deterministic integers in [lo, hi] (a plain LCG): exact in every sum and product below. */
const ints = (n: number, seed: number, lo = -5, hi = 5): Float64Array => {
  let s = seed >>> 0;
  return Float64Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  });
};
const nd = (shape: Dims, data: ArrayLike<number>): NDArray => ({ shape, data: Float64Array.from(data) });
const rand = (shape: Dims, seed: number, lo?: number, hi?: number): NDArray => nd(shape, ints(numel(shape), seed, lo, hi));
const at = (x: NDArray, idx: Dims): number => x.data[ravel(idx, x.shape)];

/** Every primitive op that appears in a graph evaluated here: the last test checks the whole table was covered. */
const opsSeen = new Set<string>();

/** Traces `f` on the shapes of `inputs`, evaluates it in float64 and returns every output. */
const run = <const I extends Record<string, NDArray>>(
  f: (args: { [K in keyof I]: Tensor }) => TensorTree,
  inputs: I,
): Record<string, NDArray> => {
  const spec = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, [...v.shape]])) as Record<string, number[]>;
  const g: Graph = trace(f as never, spec);
  for (const n of g.nodes) opsSeen.add(n.op);
  return evaluate(g, inputs);
};
const run1 = <const I extends Record<string, NDArray>>(f: (args: { [K in keyof I]: Tensor }) => Tensor, inputs: I): NDArray =>
  run(f, inputs).out;

const assertArray = (got: NDArray, shape: Dims, want: ArrayLike<number>, msg?: string): void => {
  assert.deepEqual([...got.shape], [...shape], `shape ${msg ?? ''}`);
  assert.deepEqual([...got.data], [...Array.from(want)], msg);
};

// ---- elementwise ---------------------------------------------------------------------------------------------

test('unary ops match Math on positive and negative inputs', () => {
  const x = nd([7], [-3, -0.5, -1e-3, 0, 0.25, 1, 4]);
  const pos = nd([4], [1e-3, 0.5, 1, 9]);
  const want: Record<string, (v: number) => number> = {
    neg: (v) => -v,
    exp: Math.exp,
    sin: Math.sin,
    cos: Math.cos,
    tanh: Math.tanh,
    sigmoid: (v) => 1 / (1 + Math.exp(-v)),
    relu: (v) => Math.max(v, 0),
    abs: Math.abs,
    floor: Math.floor,
  };
  for (const [name, f] of Object.entries(want)) {
    const got = run1(({ x }) => (op as unknown as Record<string, (t: Tensor) => Tensor>)[name](x), { x });
    // sigmoid is computed in a different (overflow-safe) form: 1 ulp-level tolerance; the others exactly.
    const tol = name === 'sigmoid' ? 1e-15 : 0;
    x.data.forEach((v, i) => assert.ok(Math.abs(got.data[i] - f(v)) <= tol, `${name}(${v}) = ${got.data[i]}, want ${f(v)}`));
  }
  const pw: Record<string, (v: number) => number> = { log: Math.log, sqrt: Math.sqrt, rsqrt: (v) => 1 / Math.sqrt(v) };
  for (const [name, f] of Object.entries(pw)) {
    const got = run1(({ x }) => (op as unknown as Record<string, (t: Tensor) => Tensor>)[name](x), { x: pos });
    assertArray(got, [4], pos.data.map(f), name);
  }
  // sigmoid must not overflow to NaN for large |x|
  const big = run1(({ x }) => op.sigmoid(x), { x: nd([2], [-1000, 1000]) });
  assertArray(big, [2], [0, 1], 'sigmoid saturates');
  // NaN propagates through exp
  const nan = run1(({ x }) => op.exp(x), { x: nd([1], [NaN]) });
  assert.ok(Number.isNaN(nan.data[0]));
});

test('binary ops and broadcasting follow numpy semantics', () => {
  const a = rand([2, 1, 3], 1);
  const b = rand([4, 1], 2, 1, 5); // positive: safe for div and pow
  const s: Dims = [2, 4, 3];
  const bcast = (x: NDArray, idx: Dims) =>
    at(
      x,
      idx.slice(idx.length - x.shape.length).map((i, d) => (x.shape[d] === 1 ? 0 : i)),
    );
  const fns: Record<string, [(x: Tensor, y: Tensor) => Tensor, (u: number, v: number) => number]> = {
    add: [op.add, (u, v) => u + v],
    sub: [op.sub, (u, v) => u - v],
    mul: [op.mul, (u, v) => u * v],
    div: [op.div, (u, v) => u / v],
    pow: [op.pow, (u, v) => u ** v],
    maximum: [op.maximum, Math.max],
    minimum: [op.minimum, Math.min],
  };
  for (const [name, [f, ref]] of Object.entries(fns)) {
    const got = run1(({ a, b }) => f(a, b), { a, b });
    assertArray(
      got,
      s,
      tabulate(s, (idx) => ref(bcast(a, idx), bcast(b, idx))),
      name,
    );
  }
  // scalars on either side
  assertArray(
    run1(({ a }) => op.sub(10, a), { a }),
    [2, 1, 3],
    a.data.map((v) => 10 - v),
    '10 - a',
  );
  assertArray(
    run1(({ a }) => op.div(a, 2), { a }),
    [2, 1, 3],
    a.data.map((v) => v / 2),
    'a / 2',
  );
  // explicit broadcastTo: [3] -> [2,2,3] repeats the row; [2,1] -> [2,3] repeats the column (hand-written)
  assertArray(
    run1(({ r }) => op.broadcastTo(r, [2, 2, 3]), { r: nd([3], [1, 2, 3]) }),
    [2, 2, 3],
    [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3],
  );
  assertArray(
    run1(({ c }) => op.broadcastTo(c, [2, 3]), { c: nd([2, 1], [7, 8]) }),
    [2, 3],
    [7, 7, 7, 8, 8, 8],
  );
  assertArray(
    run1(({ c }) => op.broadcastTo(c, [2, 3]), { c: nd([], [5]) }),
    [2, 3],
    [5, 5, 5, 5, 5, 5],
  );
});

test('comparisons give 1/0 with IEEE semantics (NaN compares false, except ne)', () => {
  const a = nd([6], [1, 2, 3, NaN, -0, Infinity]);
  const b = nd([6], [2, 2, 2, NaN, 0, Infinity]);
  const cmp: Record<string, [(x: Tensor, y: Tensor) => Tensor, number[]]> = {
    lt: [op.lt, [1, 0, 0, 0, 0, 0]],
    le: [op.le, [1, 1, 0, 0, 1, 1]],
    gt: [op.gt, [0, 0, 1, 0, 0, 0]],
    ge: [op.ge, [0, 1, 1, 0, 1, 1]],
    eq: [op.eq, [0, 1, 0, 0, 1, 1]],
    ne: [op.ne, [1, 0, 1, 1, 0, 0]],
  };
  for (const [name, [f, want]] of Object.entries(cmp))
    assertArray(
      run1(({ a, b }) => f(a, b), { a, b }),
      [6],
      want,
      name,
    );
  // with broadcasting against a scalar
  assertArray(
    run1(({ a }) => op.gt(a, 2), { a: nd([4], [1, 2, 3, 4]) }),
    [4],
    [0, 0, 1, 1],
  );
});

test('non-finite values: NaN propagates through every elementwise op as IEEE says, infinities behave as in IEEE', () => {
  // one column per case; every unary op of NaN is NaN (relu too), and the values at +-Infinity and -0 are the limits
  const x = nd([4], [NaN, Infinity, -Infinity, -0]);
  const unary: Record<string, [(t: Tensor) => Tensor, number[]]> = {
    neg: [op.neg, [NaN, -Infinity, Infinity, 0]],
    exp: [op.exp, [NaN, Infinity, 0, 1]],
    log: [op.log, [NaN, Infinity, NaN, -Infinity]],
    sqrt: [op.sqrt, [NaN, Infinity, NaN, -0]],
    rsqrt: [op.rsqrt, [NaN, 0, NaN, -Infinity]],
    sin: [op.sin, [NaN, NaN, NaN, -0]],
    cos: [op.cos, [NaN, NaN, NaN, 1]],
    tanh: [op.tanh, [NaN, 1, -1, -0]],
    sigmoid: [op.sigmoid, [NaN, 1, 0, 0.5]],
    relu: [op.relu, [NaN, Infinity, 0, 0]],
    abs: [op.abs, [NaN, Infinity, Infinity, 0]],
    floor: [op.floor, [NaN, Infinity, -Infinity, -0]],
  };
  const same = (a: number, b: number) => Object.is(a, b) || (a === 0 && b === 0);
  for (const [name, [f, want]] of Object.entries(unary)) {
    const got = run1(({ x }) => f(x), { x });
    want.forEach((w, i) => assert.ok(same(got.data[i], w), `${name}(${x.data[i]}) = ${got.data[i]}, want ${w}`));
  }
  // binary ops with a NaN on either side are NaN, max and min included; pow(NaN, 0) = 1 is IEEE's one exception
  const a = nd([3], [NaN, 0, 2]);
  const b = nd([3], [0, NaN, NaN]);
  for (const [name, f] of Object.entries({
    add: op.add,
    sub: op.sub,
    mul: op.mul,
    div: op.div,
    maximum: op.maximum,
    minimum: op.minimum,
  })) {
    const got = run1(({ a, b }) => f(a, b), { a, b });
    assert.ok(got.data.every(Number.isNaN), `${name} with a NaN operand: ${[...got.data]}`);
  }
  assertArray(
    run1(({ a, b }) => op.pow(a, b), { a, b }),
    [3],
    [1, NaN, NaN],
    'pow(NaN, 0) = 1, pow(x, NaN) = NaN',
  );
  // infinities: Inf - Inf and 0 * Inf are NaN, Inf == Inf, max(-Inf, NaN) is NaN
  const inf = nd([1], [Infinity]);
  assert.ok(Number.isNaN(run1(({ x }) => op.sub(op.add(x, Infinity), Infinity), { x: nd([1], [1]) }).data[0]), '(x + Inf) - Inf');
  assert.ok(Number.isNaN(run1(({ x }) => op.mul(x, 0), { x: inf }).data[0]), 'Inf * 0');
  assert.ok(Number.isNaN(run1(({ x }) => op.mul(x, 0), { x: nd([1], [NaN]) }).data[0]), 'NaN * 0');
  assertArray(
    run1(({ x }) => op.eq(x, Infinity), { x: inf }),
    [1],
    [1],
    'eq(Inf, Inf)',
  );
  assert.ok(Number.isNaN(run1(({ x }) => op.maximum(x, -Infinity), { x: nd([1], [NaN]) }).data[0]), 'max(NaN, -Inf)');
  // reductions: a NaN anywhere makes the max and the sum NaN, wherever it sits; Inf + -Inf is NaN
  for (const pos of [0, 2, 4]) {
    const v = nd(
      [5],
      [1, 7, 3, -Infinity, 2].map((e, i) => (i === pos ? NaN : e)),
    );
    assert.ok(Number.isNaN(run1(({ v }) => op.max(v), { v }).data[0]), `max with NaN at ${pos}`);
    assert.ok(Number.isNaN(run1(({ v }) => op.sum(v), { v }).data[0]), `sum with NaN at ${pos}`);
  }
  assertArray(
    run1(({ v }) => op.max(v), { v: nd([3], [-Infinity, -Infinity, -Infinity]) }),
    [],
    [-Infinity],
    'max of -Infs',
  );
  assert.ok(Number.isNaN(run1(({ v }) => op.sum(v), { v: nd([2], [Infinity, -Infinity]) }).data[0]), 'Inf + -Inf');
  // where(NaN, a, b) takes a: NaN is not 0
  assertArray(
    run1(({ c }) => op.where(c, 1, 2), { c: nd([2], [NaN, 0]) }),
    [2],
    [1, 2],
    'where(NaN, 1, 2)',
  );
});

test('where selects by a non-zero condition, broadcasting all three operands', () => {
  const c = nd([2, 1], [0, 2]); // 2 is "true": any non-zero counts
  const a = nd([3], [1, 2, 3]);
  const got = run1(({ c, a }) => op.where(c, a, -1), { c, a });
  assertArray(got, [2, 3], [-1, -1, -1, 1, 2, 3]);
  const m = nd([2, 2], [1, 0, 0, 1]);
  assertArray(
    run1(({ m, x, y }) => op.where(m, x, y), { m, x: nd([2, 2], [1, 2, 3, 4]), y: nd([2, 2], [5, 6, 7, 8]) }),
    [2, 2],
    [1, 6, 7, 4],
  );
  // NaN in the condition is non-zero, hence true (C semantics of `c !== 0`)
  assertArray(
    run1(({ m }) => op.where(m, 1, 0), { m: nd([1], [NaN]) }),
    [1],
    [1],
  );
});

test('stopGradient and constants are identities forward', () => {
  const x = rand([2, 3], 3);
  assertArray(
    run1(({ x }) => op.stopGradient(x), { x }),
    [2, 3],
    x.data,
  );
  assertArray(
    run1(({ x }) => op.add(x, op.constant([1, 2, 3, 4, 5, 6], [2, 3])), { x }),
    [2, 3],
    x.data.map((v, i) => v + i + 1),
  );
});

// ---- reductions ----------------------------------------------------------------------------------------------

test('sum and max over axes, with and without keepDims', () => {
  const x = rand([2, 3, 4], 4);
  const s: Dims = x.shape;
  const reduceRef = (axes: number[], init: number, f: (a: number, b: number) => number) => {
    const outShape = s.map((d, i) => (axes.includes(i) ? 1 : d));
    return {
      outShape,
      data: tabulate(outShape, (o) => {
        let acc = init;
        for (let k = 0; k < numel(s); k++) {
          const idx = unravel(k, s);
          if (idx.every((v, d) => axes.includes(d) || v === o[d])) acc = f(acc, x.data[k]);
        }
        return acc;
      }),
    };
  };
  for (const axes of [[0], [1], [2], [0, 2], [1, 2], [0, 1, 2]]) {
    for (const [name, f, init, ref] of [
      ['sum', op.sum, 0, (a: number, b: number) => a + b],
      ['max', op.max, -Infinity, Math.max],
    ] as const) {
      const want = reduceRef(axes, init, ref);
      const kept = run1(({ x }) => f(x, axes, true), { x });
      assertArray(kept, want.outShape, want.data, `${name} keepDims over [${axes}]`);
      const dropped = run1(({ x }) => f(x, axes), { x });
      assertArray(
        dropped,
        want.outShape.filter((_, i) => !axes.includes(i)),
        want.data,
        `${name} over [${axes}]`,
      );
    }
  }
  // negative axes and the full reduction (hand-checked on a tiny input)
  const y = nd([2, 2], [1, -2, 3, 4]);
  assertArray(
    run1(({ y }) => op.sum(y, -1), { y }),
    [2],
    [-1, 7],
  );
  assertArray(
    run1(({ y }) => op.sum(y), { y }),
    [],
    [6],
  );
  assertArray(
    run1(({ y }) => op.max(y), { y }),
    [],
    [4],
  );
  assertArray(
    run1(({ y }) => op.max(y, 0, true), { y }),
    [1, 2],
    [3, 4],
  );
  // max propagates NaN, and handles all -Infinity
  assertArray(
    run1(({ y }) => op.max(y, 1), { y: nd([2, 2], [-Infinity, -Infinity, 1, 2]) }),
    [2],
    [-Infinity, 2],
  );
  assert.ok(Number.isNaN(run1(({ y }) => op.max(y), { y: nd([3], [1, NaN, 2]) }).data[0]), 'max with a NaN is NaN');
});

// ---- layout --------------------------------------------------------------------------------------------------

test('reshape keeps row-major order', () => {
  const x = rand([2, 3, 4], 5);
  assertArray(
    run1(({ x }) => op.reshape(x, [4, 6]), { x }),
    [4, 6],
    x.data,
  );
  assertArray(
    run1(({ x }) => op.reshape(x, [-1, 2]), { x }),
    [12, 2],
    x.data,
  );
});

test('permute: out[i0,i1,i2] = x[i_perm^-1...] for every permutation of a 3-D tensor', () => {
  const x = rand([2, 3, 4], 6);
  for (const perm of [
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
  ]) {
    const outShape = perm.map((p) => x.shape[p]);
    const want = tabulate(outShape, (o) => {
      const src = new Array<number>(3);
      perm.forEach((p, d) => (src[p] = o[d])); // output axis d is input axis perm[d]
      return at(x, src);
    });
    assertArray(
      run1(({ x }) => op.permute(x, perm), { x }),
      outShape,
      want,
      `perm [${perm}]`,
    );
  }
  // hand-written: transpose of [[1,2,3],[4,5,6]]
  assertArray(
    run1(({ m }) => op.transpose(m), { m: nd([2, 3], [1, 2, 3, 4, 5, 6]) }),
    [3, 2],
    [1, 4, 2, 5, 3, 6],
  );
});

test('slice with starts, stops and steps (including steps that do not divide the range)', () => {
  const x = nd([10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertArray(
    run1(({ x }) => op.slice(x, [[1, 8, 3]]), { x }),
    [3],
    [1, 4, 7],
  );
  assertArray(
    run1(({ x }) => op.slice(x, [[0, 10, 4]]), { x }),
    [3],
    [0, 4, 8],
  );
  assertArray(
    run1(({ x }) => op.slice(x, [[-3, 10]]), { x }),
    [3],
    [7, 8, 9],
  );
  assertArray(
    run1(({ x }) => op.slice(x, [[2, -2, 2]]), { x }),
    [3],
    [2, 4, 6],
  );
  const y = rand([4, 5, 6], 7);
  const ranges = [[1, 4, 2], null, [0, 6, 4]] as const;
  const outShape = [2, 5, 2];
  const want = tabulate(outShape, ([i, j, k]) => at(y, [1 + 2 * i, j, 4 * k]));
  assertArray(
    run1(({ y }) => op.slice(y, ranges), { y }),
    outShape,
    want,
  );
});

test('pad with lo, hi and interior zeros (XLA semantics)', () => {
  // hand-written 1-D: lo 2, hi 1, interior 2 of [1,2,3] -> 0 0 1 0 0 2 0 0 3 0
  assertArray(
    run1(({ x }) => op.pad(x, [[2, 1]], [2]), { x: nd([3], [1, 2, 3]) }),
    [10],
    [0, 0, 1, 0, 0, 2, 0, 0, 3, 0],
  );
  // hand-written 2-D: [[1,2],[3,4]], rows lo 1 / interior 1, cols hi 1
  assertArray(
    run1(
      ({ x }) =>
        op.pad(
          x,
          [
            [1, 0],
            [0, 1],
          ],
          [1, 0],
        ),
      { x: nd([2, 2], [1, 2, 3, 4]) },
    ),
    [4, 3],
    [0, 0, 0, 1, 2, 0, 0, 0, 0, 3, 4, 0],
  );
  // general 3-D against the definition: x[i] lands at lo + i * (interior + 1), everything else is 0
  const x = rand([2, 3, 2], 8, 1, 9); // non-zero, so a misplaced value cannot hide among the zeros
  const lo = [1, 0, 2],
    hi = [0, 2, 1],
    interior = [2, 1, 0];
  const outShape = x.shape.map((d, i) => lo[i] + hi[i] + d + (d - 1) * interior[i]);
  const want = tabulate(outShape, (o) => {
    const src = o.map((v, d) => (v - lo[d]) / (interior[d] + 1));
    return src.every((s, d) => Number.isInteger(s) && s >= 0 && s < x.shape[d]) ? at(x, src) : 0;
  });
  assertArray(
    run1(
      ({ x }) =>
        op.pad(
          x,
          lo.map((l, i) => [l, hi[i]] as const),
          interior,
        ),
      { x },
    ),
    outShape,
    want,
  );
});

test('concat along each axis (and a negative axis)', () => {
  const a = rand([2, 3, 2], 9);
  for (let axis = 0; axis < 3; axis++) {
    const bShape = a.shape.map((d, i) => (i === axis ? d + 1 : d));
    const b = rand(bShape, 10 + axis);
    const outShape = a.shape.map((d, i) => (i === axis ? d + bShape[i] : d));
    const want = tabulate(outShape, (o) =>
      o[axis] < a.shape[axis]
        ? at(a, o)
        : at(
            b,
            o.map((v, d) => (d === axis ? v - a.shape[axis] : v)),
          ),
    );
    assertArray(
      run1(({ a, b }) => op.concat([a, b], axis), { a, b }),
      outShape,
      want,
      `axis ${axis}`,
    );
    assertArray(
      run1(({ a, b }) => op.concat([a, b], axis - 3), { a, b }),
      outShape,
      want,
      `axis ${axis - 3}`,
    );
  }
  // three pieces, hand-written
  const got = run1(({ p, q, r }) => op.concat([p, q, r], 1), { p: nd([2, 1], [1, 2]), q: nd([2, 2], [3, 4, 5, 6]), r: nd([2, 1], [7, 8]) });
  assertArray(got, [2, 4], [1, 3, 4, 7, 2, 5, 6, 8]);
});

test('flip reverses the given axes only', () => {
  const x = rand([2, 3, 4], 11);
  for (const axes of [[0], [1], [2], [0, 2], [0, 1, 2], [-1]]) {
    const norm = axes.map((a) => (a < 0 ? a + 3 : a));
    const want = tabulate(x.shape, (o) =>
      at(
        x,
        o.map((v, d) => (norm.includes(d) ? x.shape[d] - 1 - v : v)),
      ),
    );
    assertArray(
      run1(({ x }) => op.flip(x, axes), { x }),
      x.shape,
      want,
      `flip [${axes}]`,
    );
  }
});

// ---- contractions --------------------------------------------------------------------------------------------

test('matmul: 2-D by hand, batched with broadcast batch dims against triple loops', () => {
  assertArray(
    run1(({ a, b }) => op.matmul(a, b), { a: nd([2, 3], [1, 2, 3, 4, 5, 6]), b: nd([3, 2], [7, 8, 9, 10, 11, 12]) }),
    [2, 2],
    [58, 64, 139, 154],
  );
  const a = rand([2, 1, 3, 4], 12);
  const b = rand([5, 4, 2], 13);
  const outShape = [2, 5, 3, 2];
  const want = tabulate(outShape, ([i, j, m, n]) => {
    let acc = 0;
    for (let k = 0; k < 4; k++) acc += at(a, [i, 0, m, k]) * at(b, [j, k, n]);
    return acc;
  });
  assertArray(
    run1(({ a, b }) => op.matmul(a, b), { a, b }),
    outShape,
    want,
  );
});

// Regression: the interpreter once skipped a[i,k] === 0, so 0 * Inf and 0 * NaN vanished from the oracle.
test('matmul propagates NaN/Infinity like the plain sum of products', () => {
  const got = run1(({ a, b }) => op.matmul(a, b), { a: nd([1, 2], [0, 1]), b: nd([2, 2], [Infinity, NaN, 2, 3]) });
  // 0*Inf + 1*2 = NaN, 0*NaN + 1*3 = NaN
  assert.ok(got.data.every(Number.isNaN), `got [${[...got.data]}]`);
});

/** Naive conv: materialise the zero-padded input, then correlate; written independently of the primitive. */
const conv2dRef = (x: NDArray, w: NDArray, [sh, sw]: Dims, [pt, pb, pl, pr]: Dims): NDArray => {
  const [N, C, H, W] = x.shape;
  const [O, , KH, KW] = w.shape;
  const Hp = H + pt + pb,
    Wp = W + pl + pr;
  const padded = tabulate([N, C, Hp, Wp], ([n, c, i, j]) =>
    i < pt || i >= pt + H || j < pl || j >= pl + W ? 0 : at(x, [n, c, i - pt, j - pl]),
  );
  const P: NDArray = { shape: [N, C, Hp, Wp], data: padded };
  const OH = Math.floor((Hp - KH) / sh) + 1,
    OW = Math.floor((Wp - KW) / sw) + 1;
  const shape = [N, O, OH, OW];
  return nd(
    shape,
    tabulate(shape, ([n, o, p, q]) => {
      let acc = 0;
      for (let c = 0; c < C; c++)
        for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) acc += at(P, [n, c, p * sh + i, q * sw + j]) * at(w, [o, c, i, j]);
      return acc;
    }),
  );
};

test('conv2d with strides and asymmetric padding matches a naive loop', () => {
  const cases: { x: Dims; w: Dims; stride: [number, number]; padding: [number, number, number, number] }[] = [
    { x: [1, 1, 3, 3], w: [1, 1, 2, 2], stride: [1, 1], padding: [0, 0, 0, 0] },
    { x: [2, 3, 5, 6], w: [2, 3, 3, 2], stride: [2, 1], padding: [1, 0, 2, 1] },
    { x: [1, 2, 7, 5], w: [3, 2, 3, 3], stride: [2, 3], padding: [0, 2, 1, 0] }, // strides that do not divide evenly
    { x: [1, 1, 2, 2], w: [1, 1, 3, 3], stride: [1, 1], padding: [1, 1, 1, 1] }, // kernel larger than the input
  ];
  cases.forEach(({ x: xs, w: ws, stride, padding }, k) => {
    const x = rand(xs, 20 + k),
      w = rand(ws, 30 + k);
    const want = conv2dRef(x, w, stride, padding);
    assertArray(
      run1(({ x, w }) => op.conv2d(x, w, { stride, padding }), { x, w }),
      want.shape,
      want.data,
      `case ${k}`,
    );
  });
  // hand-written: 3x3 ones input, 2x2 kernel [[1,2],[3,4]] -> every output is 10
  assertArray(
    run1(({ x, w }) => op.conv2d(x, w), { x: nd([1, 1, 3, 3], new Array(9).fill(1)), w: nd([1, 1, 2, 2], [1, 2, 3, 4]) }),
    [1, 1, 2, 2],
    [10, 10, 10, 10],
  );
  // the padding shorthands: 1 = all sides, [v, h] = vertical/horizontal
  const x = rand([1, 1, 4, 4], 40),
    w = rand([1, 1, 3, 3], 41);
  assertArray(
    run1(({ x, w }) => op.conv2d(x, w, { padding: 1, stride: 2 }), { x, w }),
    [1, 1, 2, 2],
    conv2dRef(x, w, [2, 2], [1, 1, 1, 1]).data,
  );
  assertArray(
    run1(({ x, w }) => op.conv2d(x, w, { padding: [2, 0] }), { x, w }),
    [1, 1, 6, 2],
    conv2dRef(x, w, [1, 1], [2, 2, 0, 0]).data,
  );
});

// ---- the counter-based RNG -----------------------------------------------------------------------------------

interface Draw {
  seed: number;
  stream: number;
  counter: number;
}
const draw = (dist: 'normal' | 'uniform', shape: Dims, { seed, stream, counter }: Draw): Float64Array =>
  run(() => ({ r: op[dist](shape, { seed, stream, counter }) }), {}).r.data;

test('random: deterministic for (seed, stream, counter), different when any of them changes', () => {
  for (const dist of ['normal', 'uniform'] as const) {
    const base = { seed: 7, stream: 1, counter: 3 };
    const x = draw(dist, [64], base);
    assert.deepEqual([...draw(dist, [64], base)], [...x], `${dist}: same key, same values`);
    for (const change of [{ seed: 8 }, { stream: 2 }, { counter: 4 }, { seed: 0, stream: 0, counter: 0 }]) {
      const y = draw(dist, [64], { ...base, ...change });
      // independent draws agree on an element with probability ~2^-24 (uniform) each: none of 64 should
      const same = y.filter((v, i) => v === x[i]).length;
      assert.equal(same, 0, `${dist} with ${JSON.stringify(change)}: ${same} of 64 values unchanged`);
    }
    // distinct elements within one draw
    assert.equal(new Set(x).size, 64, `${dist}: 64 distinct values`);
  }
});

test('random: a counter tensor (e.g. the training step) gives the same noise as the same number', () => {
  // (the cast: trace hands out Tensor<readonly []> but RandomOptions.counter asks for Tensor<[]>, a typing
  // problem pinned in shapes.types.test.ts)
  const g = trace(({ step }) => op.uniform([16], { seed: 3, stream: 5, counter: step as Tensor<[]> }), { step: [] });
  const fromTensor = evaluate(g, { step: nd([], [11]) }).out.data;
  assert.deepEqual([...fromTensor], [...draw('uniform', [16], { seed: 3, stream: 5, counter: 11 })]);
  // and a resumed run (same step again) replays exactly, while the next step differs
  assert.deepEqual([...evaluate(g, { step: nd([], [11]) }).out.data], [...fromTensor]);
  assert.notDeepEqual([...evaluate(g, { step: nd([], [12]) }).out.data], [...fromTensor]);
});

test('random: element i does not depend on the tensor shape', () => {
  for (const dist of ['normal', 'uniform'] as const) {
    const key = { seed: 42, stream: 9, counter: 1 };
    const flat = draw(dist, [1000], key);
    assert.deepEqual([...draw(dist, [10, 100], key)], [...flat], `${dist}: [10,100] vs [1000]`);
    assert.deepEqual([...draw(dist, [2, 5, 4, 25], key)], [...flat], `${dist}: [2,5,4,25] vs [1000]`);
    // a shorter draw is a prefix of a longer one
    assert.deepEqual([...draw(dist, [10], key)], [...flat.subarray(0, 10)], `${dist}: prefix`);
  }
});

const N = 100_000;
const mean = (x: ArrayLike<number>) => Array.from(x).reduce((a, b) => a + b, 0) / x.length;
const variance = (x: ArrayLike<number>) => {
  const m = mean(x);
  return Array.from(x).reduce((a, b) => a + (b - m) ** 2, 0) / (x.length - 1);
};
/** Kolmogorov-Smirnov statistic of a sample against a continuous CDF. */
const ksStat = (x: ArrayLike<number>, cdf: (v: number) => number): number => {
  const s = Float64Array.from(x).sort();
  let d = 0;
  s.forEach((v, i) => (d = Math.max(d, Math.abs(cdf(v) - i / s.length), Math.abs(cdf(v) - (i + 1) / s.length))));
  return d;
};
/** Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, far below the KS threshold (~6e-3) it is used with. */
const erf = (z: number): number => {
  const t = 1 / (1 + 0.3275911 * Math.abs(z));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return z >= 0 ? y : -y;
};
const normalCdf = (v: number) => 0.5 * (1 + erf(v / Math.SQRT2));
/** KS critical value at significance 0.001: a correct generator fails this with probability 1e-3 per seed. */
const KS_CRIT = 1.95 / Math.sqrt(N);

// Tolerances below are 5 standard errors of the estimator for N = 100k independent samples (a false alarm
// has probability ~6e-7), so a failure means a biased or correlated generator, not bad luck.
test('random uniform: values in (0,1), mean 1/2 and variance 1/12 within 5 standard errors, KS test', () => {
  const u = draw('uniform', [N], { seed: 1234, stream: 0, counter: 0 });
  assert.ok(
    u.every((v) => v > 0 && v < 1),
    'open interval (0, 1)',
  );
  // SE(mean) = sqrt(1/12 / N) ~ 9.1e-4
  assert.ok(Math.abs(mean(u) - 0.5) < 5 * Math.sqrt(1 / 12 / N), `mean ${mean(u)}`);
  // SE(var) = sqrt((mu4 - sigma^4) / N) with mu4 = 1/80 for U(0,1): ~2.4e-4
  assert.ok(Math.abs(variance(u) - 1 / 12) < 5 * Math.sqrt((1 / 80 - 1 / 144) / N), `variance ${variance(u)}`);
  assert.ok(ksStat(u, (v) => v) < KS_CRIT, `KS ${ksStat(u, (v) => v)} >= ${KS_CRIT}`);
  // neighbours are uncorrelated: lag-1 correlation has SE 1/sqrt(N)
  const c = u.subarray(1).reduce((acc, v, i) => acc + (v - 0.5) * (u[i] - 0.5), 0) / (N - 1) / (1 / 12);
  assert.ok(Math.abs(c) < 5 / Math.sqrt(N), `lag-1 correlation ${c}`);
});

test('random normal: mean 0 and variance 1 within 5 standard errors, KS test, independent streams', () => {
  const z = draw('normal', [N], { seed: 1234, stream: 0, counter: 0 });
  assert.ok(z.every(Number.isFinite), 'finite');
  // SE(mean) = 1/sqrt(N) ~ 3.2e-3; SE(var) = sqrt(2/N) ~ 4.5e-3 for a normal
  assert.ok(Math.abs(mean(z)) < 5 / Math.sqrt(N), `mean ${mean(z)}`);
  assert.ok(Math.abs(variance(z) - 1) < 5 * Math.sqrt(2 / N), `variance ${variance(z)}`);
  assert.ok(ksStat(z, normalCdf) < KS_CRIT, `KS ${ksStat(z, normalCdf)} >= ${KS_CRIT}`);
  // tails: P(|z| > 3) = 0.0027; count SE = sqrt(N p (1-p)) ~ 16.4
  const tail = z.filter((v) => Math.abs(v) > 3).length;
  assert.ok(Math.abs(tail - N * 0.0027) < 5 * Math.sqrt(N * 0.0027 * (1 - 0.0027)), `${tail} samples beyond 3 sigma`);
  // another stream and another counter are uncorrelated with this one: correlation SE 1/sqrt(N)
  for (const other of [
    { seed: 1234, stream: 1, counter: 0 },
    { seed: 1234, stream: 0, counter: 1 },
    { seed: 1235, stream: 0, counter: 0 },
  ]) {
    const w = draw('normal', [N], other);
    const r = z.reduce((acc, v, i) => acc + v * w[i], 0) / N;
    assert.ok(Math.abs(r) < 5 / Math.sqrt(N), `correlation with ${JSON.stringify(other)}: ${r}`);
  }
});

// Regression: uniforms once used 25 significant bits, so f32 devices rounded half of them and the largest
// became exactly 1.0. Now every intermediate is an integer below 2^24 and a uniform is (k + 0.5) / 2^23.
test('random: every uniform is exact in float32 and strictly inside (0, 1); the generator stays in 24 bits', () => {
  const key = randomKey(99, 0, 7);
  let inexact = 0,
    outside = 0,
    wide = 0;
  for (let i = 0; i < 1 << 20; i++) {
    const b = bits24(key, i);
    if (!(Number.isInteger(b) && b >= 0 && b < 1 << 24)) wide++;
    const u = uniformAt(key, i);
    if (Math.fround(u) !== u) inexact++;
    if (!(u > 0 && Math.fround(u) < 1)) outside++;
  }
  assert.equal(wide, 0, `${wide} draws left the 24-bit integer range`);
  assert.equal(inexact, 0, `${inexact} uniforms change when rounded to f32`);
  assert.equal(outside, 0, `${outside} uniforms outside (0, 1) in f32`);
  // the extremes of the formula: k = 0 and k = 2^23 - 1 stay inside (0, 1) in f32
  assert.ok(Math.fround(0.5 / 8388608) > 0 && Math.fround((8388607 + 0.5) / 8388608) < 1);
});

// Regression: element i was once hash(key + i), so two counters whose keys were d apart drew the same
// sequence shifted by d (found among steps 0..1999 at seed 1234). The index now enters through its own hash.
test('random: draws for different counters are not shifted copies of each other', () => {
  const n = 1000,
    steps = 2000;
  const g = trace(({ step }) => op.uniform([n], { seed: 1234, stream: 0, counter: step as Tensor<[]> }), { step: [] });
  // value -> where it was seen; two draws that share >= 10 values at one constant shift are copies (by chance,
  // two draws of 1000 24-bit uniforms share ~0.06 values, so 10 at one shift has probability ~1e-20).
  const seen = new Map<number, [number, number][]>();
  const shifts = new Map<string, number>();
  for (let c = 0; c < steps; c++) {
    const u = evaluate(g, { step: nd([], [c]) }).out.data;
    u.forEach((v, i) => {
      const prev = seen.get(v);
      for (const [c0, i0] of prev ?? []) {
        const k = `${c0}/${c}@${i0 - i}`;
        shifts.set(k, (shifts.get(k) ?? 0) + 1);
      }
      if (prev) prev.push([c, i]);
      else seen.set(v, [[c, i]]);
    });
  }
  const copies = [...shifts].filter(([, count]) => count >= 10).map(([k, count]) => `${k} (${count} values)`);
  assert.deepEqual(copies, [], `counters whose draws are shifted copies (c/c'@shift): ${copies.join(', ')}`);
});

// ---- coverage --------------------------------------------------------------------------------------------------

test('every primitive of the table was evaluated by a test above', () => {
  const missing = Object.keys(primitives).filter((name) => !opsSeen.has(name));
  assert.deepEqual(missing, [], `primitives with no forward test: ${missing.join(', ')}`);
});
