// Composite ops: forward values against independent plain-JS float64 code, gradients against central differences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grad } from '../transforms/grad.ts';
import type { Graph } from '../core/ir.ts';
import { evaluate } from '../core/interpret.ts';
import type { NDArray } from '../core/ndarray.ts';
import * as fd from '../index.ts';
import type { Tensor } from '../dsl/tensor.ts';

// ---- local helpers ----------------------------------------------------------------------------------------

/** mulberry32: a tiny seeded PRNG independent of the library's own RNG. */
const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const randn = (shape: readonly number[], seed: number, scale = 1): NDArray => {
  const r = rng(seed);
  return { shape, data: Float64Array.from({ length: size(shape) }, () => scale * (r() * 2 - 1) * 1.7) };
};

/** Traces a one-input function and evaluates it on x. */
const run1 = (f: (x: Tensor) => Tensor, x: NDArray): NDArray =>
  evaluate(
    fd.trace(({ x: t }) => f(t), { x: x.shape }),
    { x },
  ).out;

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = '') => {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    assert.ok(
      actual[i] === expected[i] || Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])),
      `${what}[${i}]: ${actual[i]} vs ${expected[i]} (tol ${tol})`,
    );
};

/**
 * Central finite differences on the f64 interpreter: h = 1e-6, so truncation (~h^2) and rounding (~1e-16/h) errors
 * are both ~1e-10; the check is |analytic - fd| <= 1e-6 * max(1, |fd|).
 */
const H = 1e-6;
const FD_TOL = 1e-6;
const checkGrad = (g: Graph, inputs: Record<string, NDArray>, wrt: readonly string[]) => {
  const analytic = evaluate(grad(g, wrt), inputs);
  const f = (ins: Record<string, NDArray>) => evaluate(g, ins).out.data[0];
  for (const name of wrt) {
    const x = inputs[name];
    const a = analytic[fd.gradName(name)];
    assert.deepEqual([...a.shape], [...x.shape], `grad shape of ${name}`);
    for (let i = 0; i < x.data.length; i++) {
      const bumped = (d: number) => {
        const data = x.data.slice();
        data[i] += d;
        return f({ ...inputs, [name]: { shape: x.shape, data } });
      };
      const num = (bumped(H) - bumped(-H)) / (2 * H);
      assert.ok(Math.abs(a.data[i] - num) <= FD_TOL * Math.max(1, Math.abs(num)), `d/d${name}[${i}]: analytic ${a.data[i]} vs fd ${num}`);
    }
  }
};

/**
 * Gradient check of a tensor-valued f through the scalar sum(f(x) * r) with fixed random weights r (a plain sum
 * would hide errors, e.g. softmax's sum is constant).
 */
const checkComposite = (f: (x: Tensor) => Tensor, x: NDArray, seed = 99) => {
  const probe = fd.trace(({ x: t }) => f(t), { x: x.shape });
  const outShape = probe.nodes[probe.outputs[0].id].shape;
  const r = randn(outShape, seed);
  const g = fd.trace(({ x: t }) => fd.sum(fd.mul(f(t), fd.constant(r.data, r.shape))), { x: x.shape });
  checkGrad(g, { x }, ['x']);
};

/** Plain-JS reference: apply `rowFn` to every contiguous row of length n. */
const rows = (data: Float64Array, n: number, rowFn: (row: number[]) => number[]): number[] => {
  const out: number[] = [];
  for (let i = 0; i < data.length; i += n) out.push(...rowFn([...data.subarray(i, i + n)]));
  return out;
};
const jsMean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const jsVar = (v: number[]) => {
  const m = jsMean(v);
  return jsMean(v.map((e) => (e - m) ** 2));
};

// ---- reductions -------------------------------------------------------------------------------------------

test('mean and variance match plain JS over all axes, one axis, several axes, with keepDims', () => {
  const x = randn([2, 3, 4], 1);
  const all = run1((t) => fd.mean(t), x);
  assert.deepEqual([...all.shape], []);
  close(all.data, [jsMean([...x.data])], 1e-12, 'mean all');
  const last = run1((t) => fd.mean(t, -1), x);
  assert.deepEqual([...last.shape], [2, 3]);
  close(
    last.data,
    rows(x.data, 4, (r) => [jsMean(r)]),
    1e-12,
    'mean last',
  );
  const v = run1((t) => fd.variance(t, 2, true), x);
  assert.deepEqual([...v.shape], [2, 3, 1]);
  close(
    v.data,
    rows(x.data, 4, (r) => [jsVar(r)]),
    1e-12,
    'var last',
  );
  // axes [0, 2]: per middle index j, the 8 values x[i, j, k]
  const m02 = run1((t) => fd.mean(t, [0, 2]), x);
  const v02 = run1((t) => fd.variance(t, [0, 2]), x);
  const col = (j: number) => [0, 1].flatMap((i) => [0, 1, 2, 3].map((k) => x.data[i * 12 + j * 4 + k]));
  close(
    m02.data,
    [0, 1, 2].map((j) => jsMean(col(j))),
    1e-12,
    'mean [0,2]',
  );
  close(
    v02.data,
    [0, 1, 2].map((j) => jsVar(col(j))),
    1e-12,
    'var [0,2]',
  );
  assert.throws(() => run1((t) => fd.mean(t, 3), x), /unknown axis 3/);
});

test('mean/variance gradients match finite differences', () => {
  const x = randn([2, 3, 4], 2);
  checkComposite((t) => fd.mean(t, [0, 2], true), x);
  checkComposite((t) => fd.variance(t, -1), x);
  checkComposite((t) => fd.variance(t), x);
});

// ---- softmax family ---------------------------------------------------------------------------------------

const jsSoftmax = (r: number[]) => {
  const m = Math.max(...r);
  const e = r.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

test('softmax rows sum to 1 and match exp/sum, along any axis, stable for large inputs', () => {
  const x = randn([3, 5], 3, 3);
  const y = run1((t) => fd.softmax(t), x);
  close(y.data, rows(x.data, 5, jsSoftmax), 1e-12, 'softmax');
  close(
    rows(y.data, 5, (r) => [r.reduce((a, b) => a + b, 0)]),
    [1, 1, 1],
    1e-12,
    'row sums',
  );
  // axis 0: compare with the transposed computation
  const y0 = run1((t) => fd.softmax(t, 0), x);
  for (let j = 0; j < 5; j++)
    close(
      [0, 1, 2].map((i) => y0.data[i * 5 + j]),
      jsSoftmax([0, 1, 2].map((i) => x.data[i * 5 + j])),
      1e-12,
      `axis0 col ${j}`,
    );
  // large logits would overflow exp without the shift
  const big: NDArray = { shape: [1, 3], data: Float64Array.of(1000, 1001, 999) };
  close(run1((t) => fd.softmax(t), big).data, jsSoftmax([1000, 1001, 999]), 1e-12, 'large');
});

test('logSoftmax and logsumexp match plain JS and stay finite where a naive form overflows', () => {
  const x = randn([4, 6], 4, 3);
  close(
    run1((t) => fd.logSoftmax(t), x).data,
    rows(x.data, 6, (r) => jsSoftmax(r).map(Math.log)),
    1e-12,
    'logSoftmax',
  );
  const jsLse = (r: number[]) => {
    const m = Math.max(...r);
    return [m + Math.log(r.reduce((a, v) => a + Math.exp(v - m), 0))];
  };
  const lse = run1((t) => fd.logsumexp(t, -1), x);
  assert.deepEqual([...lse.shape], [4]);
  close(lse.data, rows(x.data, 6, jsLse), 1e-12, 'logsumexp');
  const lseAll = run1((t) => fd.logsumexp(t, [0, 1], true), x);
  assert.deepEqual([...lseAll.shape], [1, 1]);
  close(lseAll.data, jsLse([...x.data]), 1e-12, 'logsumexp all');
  const big: NDArray = { shape: [2, 2], data: Float64Array.of(1000, 1000, -1000, -Infinity) };
  close(run1((t) => fd.logsumexp(t, -1), big).data, [1000 + Math.log(2), -1000], 1e-12, 'large');
  close(run1((t) => fd.logSoftmax(t), big).data, [-Math.log(2), -Math.log(2), 0, -Infinity], 1e-12, 'large logSoftmax');
  const allNegInf: NDArray = { shape: [1, 2], data: Float64Array.of(-Infinity, -Infinity) };
  assert.equal(run1((t) => fd.logsumexp(t, -1), allNegInf).data[0], -Infinity);
});

test('softmax / logSoftmax / logsumexp gradients match finite differences (stopped max shift is exact)', () => {
  const x = randn([3, 4], 5, 2);
  checkComposite((t) => fd.softmax(t), x);
  checkComposite((t) => fd.softmax(t, 0), x);
  checkComposite((t) => fd.logSoftmax(t), x);
  checkComposite((t) => fd.logsumexp(t, -1), x);
  checkComposite((t) => fd.logsumexp(t, [0, 1]), x);
  // ties at the max: the shift is stopped, so no tie mask enters and the gradient is still exact
  const tied: NDArray = { shape: [2, 3], data: Float64Array.of(1, 1, 0.5, -2, 3, 3) };
  checkComposite((t) => fd.softmax(t), tied);
  checkComposite((t) => fd.logsumexp(t, -1), tied);
});

// ---- normalisation ----------------------------------------------------------------------------------------

test('layerNorm: each row has mean 0 and variance 1 (eps 0); affine and eps match the formula', () => {
  const x = randn([3, 8], 6, 2);
  const y = run1((t) => fd.layerNorm(t, undefined, undefined, 0), x);
  for (let i = 0; i < 3; i++) {
    const r = [...y.data.subarray(i * 8, i * 8 + 8)];
    assert.ok(Math.abs(jsMean(r)) < 1e-9 && Math.abs(jsVar(r) - 1) < 1e-9, `row ${i}`);
  }
  const gamma = randn([8], 7),
    beta = randn([8], 8);
  const g = fd.trace(({ x: t, g: gm, b }) => fd.layerNorm(t, gm, b, 1e-5), { x: [3, 8], g: [8], b: [8] });
  const out = evaluate(g, { x, g: gamma, b: beta }).out;
  const expect = rows(x.data, 8, (r) => {
    const m = jsMean(r),
      s = Math.sqrt(jsVar(r) + 1e-5);
    return r.map((v, k) => ((v - m) / s) * gamma.data[k] + beta.data[k]);
  });
  close(out.data, expect, 1e-12, 'layerNorm affine');
  assert.throws(() => fd.trace(({ x: t, g: gm }) => fd.layerNorm(t, gm), { x: [3, 8], g: [7] }), /layerNorm: gamma/);
});

const jsGroupNorm = (x: NDArray, G: number, eps: number, gamma?: Float64Array, beta?: Float64Array): number[] => {
  const [N, C] = x.shape;
  const S = size(x.shape.slice(2));
  const per = (C / G) * S;
  const out = new Array<number>(x.data.length);
  for (let n = 0; n < N; n++)
    for (let g = 0; g < G; g++) {
      const off = n * C * S + g * per;
      const v = [...x.data.subarray(off, off + per)];
      const m = jsMean(v),
        s = Math.sqrt(jsVar(v) + eps);
      v.forEach((e, k) => {
        const c = g * (C / G) + Math.floor(k / S);
        out[off + k] = ((e - m) / s) * (gamma?.[c] ?? 1) + (beta?.[c] ?? 0);
      });
    }
  return out;
};

test('groupNorm on NCHW: each (sample, group) has mean 0 and variance 1 within 1e-9 (eps 0); affine matches plain JS', () => {
  const x = randn([2, 6, 3, 2], 9, 3);
  const y = run1((t) => fd.groupNorm(t, 3, undefined, undefined, 0), x);
  assert.deepEqual([...y.shape], [2, 6, 3, 2]);
  for (let n = 0; n < 2; n++)
    for (let g = 0; g < 3; g++) {
      const off = n * 36 + g * 12;
      const v = [...y.data.subarray(off, off + 12)];
      assert.ok(Math.abs(jsMean(v)) < 1e-9, `mean n${n} g${g}: ${jsMean(v)}`);
      assert.ok(Math.abs(jsVar(v) - 1) < 1e-9, `var n${n} g${g}: ${jsVar(v)}`);
    }
  const gamma = randn([6], 10),
    beta = randn([6], 11);
  const g = fd.trace(({ x: t, g: gm, b }) => fd.groupNorm(t, 2, gm, b), { x: [2, 6, 3, 2], g: [6], b: [6] });
  close(evaluate(g, { x, g: gamma, b: beta }).out.data, jsGroupNorm(x, 2, 1e-5, gamma.data, beta.data), 1e-12, 'groupNorm affine');
});

test('groupNorm on [N, C] and its errors', () => {
  const x = randn([3, 4], 12);
  close(run1((t) => fd.groupNorm(t, 2), x).data, jsGroupNorm(x, 2, 1e-5), 1e-12, 'groupNorm [N,C]');
  assert.throws(() => run1((t) => fd.groupNorm(t, 3), x), /groupNorm: 4 channels .* do not split into 3 groups/);
});

test('layerNorm / groupNorm gradients (input, gamma, beta) match finite differences', () => {
  checkComposite((t) => fd.layerNorm(t), randn([2, 5], 13));
  checkComposite((t) => fd.groupNorm(t, 2), randn([2, 4, 2, 3], 14));
  checkComposite((t) => fd.groupNorm(t, 4), randn([2, 4], 15));
  const r = randn([2, 4, 2, 2], 16);
  const g = fd.trace(({ x, g: gm, b }) => fd.sum(fd.mul(fd.groupNorm(x, 2, gm, b), fd.constant(r.data, r.shape))), {
    x: [2, 4, 2, 2],
    g: [4],
    b: [4],
  });
  checkGrad(g, { x: randn([2, 4, 2, 2], 17), g: randn([4], 18), b: randn([4], 19) }, ['x', 'g', 'b']);
  const r2 = randn([3, 5], 20);
  const l = fd.trace(({ x, g: gm, b }) => fd.sum(fd.mul(fd.layerNorm(x, gm, b), fd.constant(r2.data, r2.shape))), {
    x: [3, 5],
    g: [5],
    b: [5],
  });
  checkGrad(l, { x: randn([3, 5], 21), g: randn([5], 22), b: randn([5], 23) }, ['x', 'g', 'b']);
});

// ---- activations ------------------------------------------------------------------------------------------

test('silu and gelu (tanh approximation) match their formulas, and their gradients match finite differences', () => {
  const x = randn([2, 7], 24, 3);
  close(
    run1((t) => fd.silu(t), x).data,
    [...x.data].map((v) => v / (1 + Math.exp(-v))),
    1e-12,
    'silu',
  );
  const jsGelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  close(run1((t) => fd.gelu(t), x).data, [...x.data].map(jsGelu), 1e-12, 'gelu');
  checkComposite((t) => fd.silu(t), x);
  checkComposite((t) => fd.gelu(t), x);
});

// ---- resampling -------------------------------------------------------------------------------------------

test('avgPool2d averages k x k blocks exactly; upsampleNearest2d repeats pixels exactly; pool(upsample(x)) = x', () => {
  const x: NDArray = { shape: [2, 3, 4, 6], data: Float64Array.from({ length: 144 }, (_, i) => i % 7) };
  const p = run1((t) => fd.avgPool2d(t, 2), x);
  assert.deepEqual([...p.shape], [2, 3, 2, 3]);
  const expect: number[] = [];
  for (let nc = 0; nc < 6; nc++)
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) {
        let s = 0;
        for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) s += x.data[nc * 24 + (2 * i + a) * 6 + 2 * j + b];
        expect.push(s / 4);
      }
  assert.deepEqual([...p.data], expect);
  const u = run1((t) => fd.upsampleNearest2d(t, 3), x);
  assert.deepEqual([...u.shape], [2, 3, 12, 18]);
  for (let nc = 0; nc < 6; nc++)
    for (let i = 0; i < 12; i++)
      for (let j = 0; j < 18; j++) assert.equal(u.data[nc * 216 + i * 18 + j], x.data[nc * 24 + Math.floor(i / 3) * 6 + Math.floor(j / 3)]);
  assert.deepEqual([...run1((t) => fd.avgPool2d(fd.upsampleNearest2d(t, 2), 2), x).data], [...x.data]);
  assert.throws(() => run1((t) => fd.avgPool2d(t, 4), x), /avgPool2d: kernel 4 does not tile/);
  assert.throws(() => run1((t) => fd.avgPool2d(t, 2), randn([4, 4], 1)), /expects NCHW/);
});

test('avgPool2d / upsampleNearest2d gradients match finite differences', () => {
  checkComposite((t) => fd.avgPool2d(t, 2), randn([1, 2, 4, 4], 25));
  checkComposite((t) => fd.upsampleNearest2d(t, 2), randn([1, 2, 2, 3], 26));
});

// ---- embeddings -------------------------------------------------------------------------------------------

test('timestepEmbedding matches the formula: [cos(t f), sin(t f)], f_i = exp(-ln(maxPeriod) i / half); odd dim pads a zero', () => {
  const t: NDArray = { shape: [3], data: Float64Array.of(0, 17, 999) };
  const ref = (dim: number, maxPeriod: number) => {
    const half = Math.floor(dim / 2);
    const out: number[] = [];
    for (const tv of t.data) {
      const f = Array.from({ length: half }, (_, i) => Math.exp((-Math.log(maxPeriod) * i) / half));
      out.push(...f.map((v) => Math.cos(tv * v)), ...f.map((v) => Math.sin(tv * v)), ...(dim % 2 ? [0] : []));
    }
    return out;
  };
  const e = run1((x) => fd.timestepEmbedding(x, 8), t);
  assert.deepEqual([...e.shape], [3, 8]);
  close(e.data, ref(8, 10000), 1e-12, 'dim 8');
  close(e.data.subarray(0, 8), [1, 1, 1, 1, 0, 0, 0, 0], 0, 't = 0');
  const odd = run1((x) => fd.timestepEmbedding(x, 7, 100), t);
  assert.deepEqual([...odd.shape], [3, 7]);
  close(odd.data, ref(7, 100), 1e-12, 'dim 7, maxPeriod 100');
  checkComposite((x) => fd.timestepEmbedding(x, 6), { shape: [3], data: Float64Array.of(0.3, 1.7, 4.2) });
});

test('oneHot and crossEntropy match plain JS; crossEntropy gradient matches finite differences', () => {
  const ids: NDArray = { shape: [2, 2], data: Float64Array.of(0, 3, 2, 5) };
  const oh = run1((t) => fd.oneHot(t, 4), ids);
  assert.deepEqual([...oh.shape], [2, 2, 4]);
  assert.deepEqual([...oh.data], [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0]); // id 5 is out of range: zero row
  const logits = randn([3, 4], 27, 2);
  const labels: NDArray = { shape: [3], data: Float64Array.of(2, 0, 3) };
  const g = fd.trace(({ z, y }) => fd.crossEntropy(z, y), { z: [3, 4], y: [3] });
  const expect = jsMean([0, 1, 2].map((i) => -Math.log(jsSoftmax([...logits.data.subarray(i * 4, i * 4 + 4)])[labels.data[i]])));
  close(evaluate(g, { z: logits, y: labels }).out.data, [expect], 1e-12, 'crossEntropy');
  checkGrad(g, { z: logits, y: labels }, ['z']);
});

// ---- losses -----------------------------------------------------------------------------------------------

test('mse and mae are means over all elements, broadcasting on { broadcast: true }; their gradients match finite differences', () => {
  const a = randn([2, 3], 28),
    b = randn([3], 29);
  const g = fd.trace(({ a: x, b: y }) => fd.mse(x, y, { broadcast: true }), { a: [2, 3], b: [3] });
  const diffs = [...a.data].map((v, i) => v - b.data[i % 3]);
  close(evaluate(g, { a, b }).out.data, [jsMean(diffs.map((d) => d * d))], 1e-12, 'mse');
  const h = fd.trace(({ a: x, b: y }) => fd.mae(x, y, { broadcast: true }), { a: [2, 3], b: [3] });
  close(evaluate(h, { a, b }).out.data, [jsMean(diffs.map(Math.abs))], 1e-12, 'mae');
  checkGrad(g, { a, b }, ['a', 'b']);
  checkGrad(h, { a, b }, ['a', 'b']);
});
