// Every optimizer of dsl/optim.ts against an independent float64 implementation of its published update, written
// here as plain loops (none of the DSL, none of the step's graph): over a fixed sequence of gradients for several
// steps, the parameters and the optimizer state after every step.
//  - SGD: g' = g + weightDecay p (L2 decay added to the gradient); with momentum mu, v = mu v + g', p -= lr v (heavy
//    ball, PyTorch's torch.optim.SGD with dampening 0); without, p -= lr g'.
//  - Adam (Kingma & Ba 2015, Algorithm 1): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, m^ = m / (1 - b1^t),
//    v^ = v / (1 - b2^t), p -= lr m^ / (sqrt(v^) + eps), t counting from 1.
//  - AdamW (Loshchilov & Hutter 2019, Algorithm 2, decoupled decay): as Adam, and p -= lr weightDecay p_(t-1) beside
//    the Adam step (their schedule multiplier eta_t = lr, alpha = 1: PyTorch's torch.optim.AdamW parameterisation).
// On the interpreter (the update traced as a graph and evaluated in float64) every value must agree to 1e-12 (relative
// to max(1, |value|)): the two sides are the same formula in float64, differing in operation order only (~1e-16).
// Compiled (compileStep, the loss <params, g> whose gradient is the drawn g exactly) on every backend: see `tolerance`.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { evaluate } from '../core/interpret.ts';
import type { NDArray } from '../core/ndarray.ts';
import { shutdownBackends } from '../compiler/index.ts';
import { adam, sgd, type Optimizer } from '../dsl/optim.ts';
import * as op from '../dsl/ops.ts';
import { flattenParams, paramSpec, type Params, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace, type Spec } from '../dsl/trace.ts';
import { compileStep } from '../train/compileStep.ts';
import { backendsUnderTest, nodeBackendsWithWebGPU } from './support/backends.ts';

const backends = await backendsUnderTest('optim', nodeBackendsWithWebGPU);
after(shutdownBackends);

// ---- the published updates, as plain loops over flat float64 arrays ------------------------------------------------

interface SgdConfig {
  readonly kind: 'sgd';
  readonly lr: number;
  readonly momentum?: number;
  readonly weightDecay?: number;
}
interface AdamConfig {
  readonly kind: 'adam';
  readonly lr: number;
  readonly b1?: number;
  readonly b2?: number;
  readonly eps?: number;
  readonly weightDecay?: number;
}
type Config = SgdConfig | AdamConfig;

/** The state of one parameter array: SGD's velocity, Adam's first and second moments. */
type RefState = Record<string, Float64Array>;

const referenceInit = (c: Config, n: number): RefState =>
  c.kind === 'adam' ? { m: new Float64Array(n), v: new Float64Array(n) } : c.momentum ? { velocity: new Float64Array(n) } : {};

/** One step t (from 1) of the update on p in place, state in place. */
const referenceStep = (c: Config, p: Float64Array, g: Float64Array, s: RefState, t: number): void => {
  if (c.kind === 'sgd') {
    const mu = c.momentum ?? 0;
    const wd = c.weightDecay ?? 0;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] + wd * p[i];
      let d = gi;
      if (mu) {
        s.velocity[i] = mu * s.velocity[i] + gi;
        d = s.velocity[i];
      }
      p[i] = p[i] - c.lr * d;
    }
    return;
  }
  const { lr, b1 = 0.9, b2 = 0.999, eps = 1e-8, weightDecay: wd = 0 } = c;
  for (let i = 0; i < p.length; i++) {
    s.m[i] = b1 * s.m[i] + (1 - b1) * g[i];
    s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i];
    const mHat = s.m[i] / (1 - Math.pow(b1, t));
    const vHat = s.v[i] / (1 - Math.pow(b2, t));
    p[i] = p[i] - lr * wd * p[i] - (lr * mHat) / (Math.sqrt(vHat) + eps);
  }
};

const optimizerOf = (c: Config): Optimizer => (c.kind === 'sgd' ? sgd(c) : adam(c));

const configs: { label: string; config: Config }[] = [
  { label: 'sgd', config: { kind: 'sgd', lr: 0.1 } },
  { label: 'sgd, momentum 0.9', config: { kind: 'sgd', lr: 0.1, momentum: 0.9 } },
  { label: 'sgd, weight decay 0.05', config: { kind: 'sgd', lr: 0.1, weightDecay: 0.05 } },
  { label: 'sgd, momentum 0.8 and weight decay 0.2', config: { kind: 'sgd', lr: 0.05, momentum: 0.8, weightDecay: 0.2 } },
  { label: 'adam, defaults', config: { kind: 'adam', lr: 1e-2 } },
  { label: 'adam, b1 0.8, b2 0.99, eps 1e-6', config: { kind: 'adam', lr: 3e-2, b1: 0.8, b2: 0.99, eps: 1e-6 } },
  { label: 'adamw, weight decay 0.1', config: { kind: 'adam', lr: 1e-2, weightDecay: 0.1 } },
  { label: 'adamw, b1 0.5, b2 0.9, weight decay 0.5', config: { kind: 'adam', lr: 2e-2, b1: 0.5, b2: 0.9, weightDecay: 0.5 } },
];

// ---- the problem: two parameter arrays, a fixed sequence of gradients --------------------------------------------

const STEPS = 6;
const params0: Params = {
  w: { shape: [2, 3], data: Float64Array.from({ length: 6 }, (_, i) => 0.8 * Math.cos(1.7 * i + 0.3) + 0.1) },
  b: { shape: [3], data: Float64Array.of(0.5, -1.25, 2) },
};
/** The gradient of step t (from 1): O(1) values of both signs, none near 0 (Adam divides by sqrt(v)). */
const gradientAt = (t: number, leaf: string, n: number): Float64Array =>
  Float64Array.from({ length: n }, (_, i) => {
    const s = Math.sin(1.3 * t + 0.7 * i + (leaf === 'b' ? 2 : 0));
    return (s < 0 ? -0.3 : 0.3) + s;
  });
const leaves = flattenParams(params0).map(([path, v]) => ({ path, n: v.data.length, shape: v.shape }));

/** The reference trajectory: after each step, every parameter and state array by its input name. */
const referenceRun = (c: Config, round: (x: number) => number): Record<string, Float64Array>[] => {
  const p = Object.fromEntries(leaves.map((l) => [l.path, (params0 as Record<string, NDArray>)[l.path].data.map(round)]));
  const s = Object.fromEntries(leaves.map((l) => [l.path, referenceInit(c, l.n)]));
  const out: Record<string, Float64Array>[] = [];
  for (let t = 1; t <= STEPS; t++) {
    for (const l of leaves) referenceStep(c, p[l.path], gradientAt(t, l.path, l.n).map(round), s[l.path], t);
    const snapshot: Record<string, Float64Array> = {};
    for (const l of leaves) {
      snapshot[`params.${l.path}`] = p[l.path].slice();
      for (const [k, v] of Object.entries(s[l.path])) snapshot[`state.${k}.${l.path}`] = v.slice();
    }
    out.push(snapshot);
  }
  return out;
};

const flatTree = (prefix: string, tree: Params): Record<string, Float64Array> =>
  Object.fromEntries(flattenParams(tree).map(([p, v]) => [`${prefix}.${p}`, v.data]));

const compare = (
  label: string,
  step: number,
  got: Record<string, ArrayLike<number>>,
  want: Record<string, Float64Array>,
  tol: (name: string, want: number, i: number) => number,
): string[] => {
  const bad: string[] = [];
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${label}: the arrays of the step`);
  for (const [name, w] of Object.entries(want))
    w.forEach((v, i) => {
      const g = got[name][i];
      if (!(Math.abs(g - v) <= tol(name, v, i))) bad.push(`${label}, step ${step}, ${name}[${i}]: ${g}, reference ${v}`);
    });
  return bad;
};

// ---- the interpreter: the update graph in float64 ------------------------------------------------------------------

for (const { label, config } of configs)
  test(`interpreter: ${label} follows the published update to 1e-12 for ${STEPS} steps`, () => {
    const optimizer = optimizerOf(config);
    const state0 = optimizer.init(params0);
    const graph = trace(
      (a) => {
        const { params, grads, state, step } = a as unknown as {
          params: ParamTensors<Params>;
          grads: ParamTensors<Params>;
          state: ParamTensors<Params>;
          step: Tensor;
        };
        return optimizer.update(params, grads, state, step) as never;
      },
      { params: paramSpec(params0), grads: paramSpec(params0), state: paramSpec(state0), step: [] } as Record<string, Spec>,
    );
    const ref = referenceRun(config, (x) => x);
    let current: Record<string, NDArray> = Object.fromEntries([
      ...flattenParams(params0).map(([p, v]) => [`params.${p}`, v] as const),
      ...flattenParams(state0).map(([p, v]) => [`state.${p}`, v] as const),
    ]);
    const bad: string[] = [];
    for (let t = 1; t <= STEPS; t++) {
      const grads = Object.fromEntries(leaves.map((l) => [`grads.${l.path}`, { shape: l.shape, data: gradientAt(t, l.path, l.n) }]));
      const out = evaluate(graph, { ...current, ...grads, step: { shape: [], data: Float64Array.of(t) } });
      current = out;
      const got = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data]));
      bad.push(...compare(label, t, got, ref[t - 1], (_n, w) => 1e-12 * Math.max(1, Math.abs(w))));
    }
    assert.deepEqual(bad, []);
  });

test('the reference itself: AdamW decays, Adam corrects its bias, SGD momentum accumulates (hand-computed first step)', () => {
  // one element, g = 1, t = 1: m^ = g, v^ = g^2, so Adam moves by lr (g / (|g| + eps)) whatever b1, b2
  const one = (c: Config, p: number, g: number) => {
    const x = Float64Array.of(p);
    referenceStep(c, x, Float64Array.of(g), referenceInit(c, 1), 1);
    return x[0];
  };
  assert.ok(Math.abs(one({ kind: 'adam', lr: 0.1 }, 2, 1) - (2 - 0.1 / (1 + 1e-8))) < 1e-15);
  assert.ok(Math.abs(one({ kind: 'adam', lr: 0.1, weightDecay: 0.5 }, 2, 1) - (2 - 0.1 * 0.5 * 2 - 0.1 / (1 + 1e-8))) < 1e-15);
  assert.equal(one({ kind: 'sgd', lr: 0.1, weightDecay: 0.5 }, 2, 1), 2 - 0.1 * (1 + 0.5 * 2));
  const s = referenceInit({ kind: 'sgd', lr: 0.1, momentum: 0.9 }, 1);
  const x = Float64Array.of(0);
  for (let t = 1; t <= 2; t++) referenceStep({ kind: 'sgd', lr: 0.1, momentum: 0.9 }, x, Float64Array.of(1), s, t);
  assert.ok(Math.abs(x[0] - -0.1 * (1 + 1.9)) < 1e-15);
});

// ---- compiled: the whole training step on each backend -------------------------------------------------------------

/**
 * Compiled tolerance, against the reference run on the f32-rounded initial parameters and gradients (what the device
 * is given), so only the arithmetic differs. The device computes in f32 (unit round-off 2^-24 = 6e-8) with the
 * hyperparameters rounded to f32:
 *  - state (m, v, velocity): a few roundings per step of sums whose terms partly cancel (the gradients change sign),
 *    so an error of a few ulp of the terms, not of the result: 1e-6 of the array's largest value over the run (+1e-12);
 *  - parameters: each step's rounding of p (6e-8 |p|) plus the error of the step itself, which for Adam is dominated
 *    by its bias correction 1 - b2^t near t = 1: b2 = 0.999 rounded to f32 moves 1 - b2 by 1.3e-5 relatively, and the
 *    device's pow(b2, t) (exp(t log b2) on wasm, a few ulp) by up to ~3e-4 of 1 - b2 at t = 1, halved by the sqrt.
 *    So: 1e-6 (1 + |p|) plus 5e-4 (Adam) or 1e-6 (SGD) times the path length sum_t |p_t - p_(t-1)| of that element.
 * The mutations this file exists for move a parameter by at least lr weightDecay |p| (a flipped decay) or change a
 * whole Adam step by a factor (a wrong bias correction): 1e-3 and more, far outside these bounds.
 */
const tolerance = (c: Config, ref: Record<string, Float64Array>[], start: Record<string, Float64Array>) => {
  const path: Record<string, Float64Array> = {};
  const scale: Record<string, number> = {};
  for (const name of Object.keys(ref[0])) {
    const len = new Float64Array(ref[0][name].length);
    let prev = start[name];
    for (const r of ref) {
      if (prev) r[name].forEach((v, i) => (len[i] += Math.abs(v - prev[i])));
      prev = r[name];
      scale[name] = Math.max(scale[name] ?? 0, ...r[name].map(Math.abs));
    }
    path[name] = len;
  }
  const stepError = c.kind === 'adam' ? 5e-4 : 1e-6;
  return (name: string, want: number, i: number) =>
    name.startsWith('params.') ? 1e-6 * (1 + Math.abs(want)) + stepError * path[name][i] : 1e-6 * scale[name] + 1e-12;
};

for (const backend of backends)
  test(`${backend}: every optimizer, compiled into the training step, follows the published update (f32 tolerance)`, async () => {
    const bad: string[] = [];
    for (const { label, config } of configs) {
      const ref = referenceRun(config, Math.fround);
      const start = flatTree(
        'params',
        Object.fromEntries(
          leaves.map((l) => [l.path, { shape: l.shape, data: (params0 as Record<string, NDArray>)[l.path].data.map(Math.fround) }]),
        ),
      );
      const tol = tolerance(config, ref, start);
      const s = compileStep(
        ({ params, gw, gb }) => {
          const p = params as unknown as { w: Tensor; b: Tensor };
          return op.add(op.sum(op.mul(p.w, gw)), op.sum(op.mul(p.b, gb))); // d/dp = g exactly
        },
        { params: params0, optimizer: optimizerOf(config), data: { gw: [2, 3], gb: [3] }, backend },
      );
      try {
        for (let t = 1; t <= STEPS; t++) {
          await s.runAsync({ gw: gradientAt(t, 'w', 6), gb: gradientAt(t, 'b', 3) });
          const { params, state } = await s.readAsync();
          bad.push(...compare(label, t, { ...flatTree('params', params), ...flatTree('state', state) }, ref[t - 1], tol));
        }
      } finally {
        s.dispose();
      }
    }
    assert.deepEqual(bad, []);
  });
