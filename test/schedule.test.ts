// Noise schedules, their in-graph lookups, and the eps / v / x0 conversions (models/schedule.ts,
// models/parameterization.ts), as fast-check properties on the float64 interpreter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { evaluate } from '../core/interpret.ts';
import { compile } from '../compiler/index.ts';
import type { NDArray } from '../core/ndarray.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { fromPrediction, perSample, predictions, predictionTarget, type Prediction } from '../models/parameterization.ts';
import {
  alphaSigmaAt,
  cosineSchedule,
  linearSchedule,
  rescaleZeroTerminalSnr,
  sampleTimesteps,
  scaledLinearSchedule,
  snr,
  type Schedule,
} from '../models/schedule.ts';
import { backendsUnderTest, nodeBackends } from './support/backends.ts';

// a listed backend missing here fails under CI=true and is a reported skip elsewhere (test/support/backends.ts)
const backends = await backendsUnderTest('schedule', nodeBackends);

const arr = (shape: number[], data: ArrayLike<number>): NDArray => ({ shape, data: Float64Array.from(data) });

/** Any of the three constructors over a range of T and parameters, optionally zero-terminal rescaled. */
const scheduleArb: fc.Arbitrary<Schedule> = fc
  .tuple(
    fc.integer({ min: 2, max: 2000 }),
    fc.oneof(
      fc
        .tuple(fc.double({ min: 1e-5, max: 5e-3, noNaN: true }), fc.double({ min: 1.5, max: 40, noNaN: true }))
        .map(([b0, k]) => ['linear', b0, b0 * k] as const),
      fc
        .tuple(fc.double({ min: 1e-4, max: 2e-3, noNaN: true }), fc.double({ min: 1.5, max: 30, noNaN: true }))
        .map(([b0, k]) => ['scaled', b0, b0 * k] as const),
      fc.double({ min: 1e-3, max: 0.05, noNaN: true }).map((s) => ['cosine', s, 0] as const),
    ),
    fc.boolean(),
  )
  .map(([T, [kind, a, b], zero]) => {
    const s = kind === 'linear' ? linearSchedule(T, a, b) : kind === 'scaled' ? scaledLinearSchedule(T, a, b) : cosineSchedule(T, a);
    return zero ? rescaleZeroTerminalSnr(s) : s;
  });

test('schedules: alpha^2 + sigma^2 = 1, abar in [0, 1], SNR strictly decreasing', () => {
  fc.assert(
    fc.property(scheduleArb, (s) => {
      const r = snr(s);
      for (let i = 0; i < s.T; i++) {
        // abar and 1 - abar are each one rounding from the square roots: the sum is 1 within a few ulps
        assert.ok(Math.abs(s.alpha[i] ** 2 + s.sigma[i] ** 2 - 1) <= 1e-12, `${s.name} t=${i + 1}`);
        assert.ok(s.alphaBar[i] >= 0 && s.alphaBar[i] <= 1);
        if (i > 0) assert.ok(r[i] < r[i - 1], `${s.name}: SNR at t=${i + 1} (${r[i]}) is not below t=${i} (${r[i - 1]})`);
      }
    }),
    { numRuns: 200 },
  );
});

test('zero-terminal rescale: abar_T = 0 exactly, abar_1 unchanged, sqrt(abar) an affine map of the original', () => {
  fc.assert(
    fc.property(scheduleArb, (s0) => {
      const s = rescaleZeroTerminalSnr(s0);
      assert.equal(s.alphaBar[s.T - 1], 0);
      assert.equal(s.sigma[s.T - 1], 1);
      assert.equal(snr(s)[s.T - 1], 0);
      assert.equal(s.alphaBar[0], s0.alpha[0] ** 2);
      // (a - aT) * a0 / (a0 - aT): the middle values follow the same line (relative round-off, a few ulps)
      const a0 = s0.alpha[0],
        aT = s0.alpha[s0.T - 1];
      for (const i of [1, Math.floor(s.T / 2), s.T - 2].filter((i) => i > 0 && i < s.T - 1))
        assert.ok(Math.abs(s.alpha[i] - ((s0.alpha[i] - aT) * a0) / (a0 - aT)) <= 1e-14);
    }),
    { numRuns: 200 },
  );
});

test('reference values: DDPM linear and SD scaled-linear abar_T, cosine close to its closed form', () => {
  // computed independently: prod(1 - linspace(1e-4, 0.02, 1000)) ~ 4.04e-5 (DDPM); SD scaled_linear gives
  // sqrt(abar_T) = 0.068265, the value Lin et al. 2023 quote
  assert.ok(Math.abs(linearSchedule().alphaBar[999] / 4.0358e-5 - 1) < 1e-3, `${linearSchedule().alphaBar[999]}`);
  assert.ok(Math.abs(scaledLinearSchedule().alpha[999] - 0.068265) < 1e-6, `${scaledLinearSchedule().alpha[999]}`);
  const c = cosineSchedule(1000);
  const f = (t: number) => Math.cos(((t / 1000 + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  for (const t of [1, 100, 500, 900]) assert.ok(Math.abs(c.alphaBar[t - 1] - f(t) / f(0)) < 1e-12, `t=${t}`); // no clipping before the end
  assert.ok(c.alphaBar[999] > 0 && c.alphaBar[999] < 1e-6); // the 0.999 clip leaves a tiny abar_T
});

test('alphaSigmaAt in the graph equals the host table (interpreter)', () => {
  fc.assert(
    fc.property(scheduleArb, fc.array(fc.nat(), { minLength: 1, maxLength: 16 }), (s, raw) => {
      const ts = raw.map((r) => 1 + (r % s.T));
      const g = trace(({ t }) => alphaSigmaAt(s, t), { t: [ts.length] });
      const out = evaluate(g, { t: arr([ts.length], ts) });
      ts.forEach((t, i) => {
        // a one-hot row times the table: exactly one non-zero product, so the lookup is exact
        assert.equal(out.alpha.data[i], s.alpha[t - 1]);
        assert.equal(out.sigma.data[i], s.sigma[t - 1]);
      });
    }),
    { numRuns: 100 },
  );
});

test('alphaSigmaAt compiled on every available backend gives the f32-rounded table entry', () => {
  const s = rescaleZeroTerminalSnr(cosineSchedule(1000));
  const ts = [1, 2, 31, 32, 33, 500, 999, 1000];
  const g = trace(({ t }) => alphaSigmaAt(s, t), { t: [ts.length] });
  for (const backend of backends) {
    const out = compile(g, { backend }).run({ t: arr([ts.length], ts) });
    // constants are stored in f32 and the select adds exact zeros, so the result is fround(table) exactly
    ts.forEach((t, i) => {
      assert.equal(out.alpha.data[i], Math.fround(s.alpha[t - 1]), `${backend} alpha t=${t}`);
      assert.equal(out.sigma.data[i], Math.fround(s.sigma[t - 1]), `${backend} sigma t=${t}`);
    });
  }
});

test('sampleTimesteps: integers in 1..T, roughly uniform, deterministic in (seed, stream, counter)', () => {
  const T = 1000,
    B = 20000;
  const draw = (seed: number, counter: number) =>
    evaluate(
      trace(() => sampleTimesteps(T, B, { seed, stream: 3, counter }), {}),
      {},
    ).out.data;
  const a = draw(1, 0);
  assert.ok(a.every((t) => Number.isInteger(t) && t >= 1 && t <= T));
  assert.deepEqual(a, draw(1, 0));
  assert.notDeepEqual(a, draw(1, 1));
  // mean of U{1..T} = (T+1)/2, sd = sqrt((T^2-1)/12) ~ 288.7; standard error over B draws ~ 2.04: allow 5 SE
  const mean = a.reduce((s, v) => s + v, 0) / B;
  assert.ok(Math.abs(mean - (T + 1) / 2) < 5 * Math.sqrt((T * T - 1) / 12 / B), `mean ${mean}`);
  // the extremes are reachable: with 20000 draws P(no 1) = (1 - 1/T)^B ~ 2e-9
  assert.ok(a.includes(1) && a.includes(T));
});

// ---- parameterisations -------------------------------------------------------------------------------------

const roundTrip = (kind: Prediction, x0: number[], eps: number[], alpha: number[], sigma: number[]) => {
  const B = alpha.length,
    D = x0.length / B;
  const g = trace(
    ({ x0, eps, alpha, sigma }) => {
      const [a, s] = [perSample(alpha, 2), perSample(sigma, 2)];
      const xt = op.add(op.mul(a, x0), op.mul(s, eps));
      const target = predictionTarget(kind, x0, eps, a, s);
      const back = fromPrediction(kind, target, xt, a, s);
      return { x0: back.x0, eps: back.eps, target };
    },
    { x0: [B, D], eps: [B, D], alpha: [B], sigma: [B] },
  );
  return evaluate(g, { x0: arr([B, D], x0), eps: arr([B, D], eps), alpha: arr([B], alpha), sigma: arr([B], sigma) });
};

const close = (got: Float64Array, want: ArrayLike<number>, tol: number, what: string) =>
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: ${g} vs ${want[i]}`));

const caseArb = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 })).chain(([B, D]) =>
  fc.record({
    x0: fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: B * D, maxLength: B * D }),
    eps: fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: B * D, maxLength: B * D }),
    alpha: fc.array(fc.double({ min: 0.05, max: 0.999, noNaN: true }), { minLength: B, maxLength: B }),
  }),
);

test('parameterisations: target -> fromPrediction recovers x0 and eps for eps, v and x0', () => {
  fc.assert(
    fc.property(fc.constantFrom(...predictions), caseArb, (kind, { x0, eps, alpha }) => {
      const sigma = alpha.map((a) => Math.sqrt(1 - a * a));
      const out = roundTrip(kind, x0, eps, alpha, sigma);
      // worst conditioning: divide by alpha or sigma >= 0.0447 with |x| <= 6: error ~ 1e-16 * 6 / 0.0447, far below 1e-12
      close(out.x0.data, x0, 1e-12, `${kind} x0`);
      close(out.eps.data, eps, 1e-12, `${kind} eps`);
    }),
    { numRuns: 300 },
  );
});

test('v conversions hold at the singular ends: alpha = 0 (zero terminal SNR) and sigma = 0', () => {
  fc.assert(
    fc.property(caseArb, ({ x0, eps, alpha }) => {
      const B = alpha.length;
      for (const [a, s] of [
        [0, 1],
        [1, 0],
      ]) {
        const out = roundTrip('v', x0, eps, new Array(B).fill(a), new Array(B).fill(s));
        // alpha = 0: x_t = eps carries no x0 information, v = -x0 does; sigma = 0: x_t = x0, v = eps.
        close(out.x0.data, x0, 1e-15, `v x0 at alpha=${a}`);
        close(out.eps.data, eps, 1e-15, `v eps at alpha=${a}`);
        close(out.target.data, a === 0 ? x0.map((v) => -v) : eps, 0, 'v target');
      }
    }),
    { numRuns: 100 },
  );
  // and eps-prediction really is singular there: x0 = (x_t - sigma eps) / 0
  const out = roundTrip('eps', [1], [0.5], [0], [1]);
  assert.ok(!Number.isFinite(out.x0.data[0]));
});

test('perSample reshapes [B] to [B, 1, ..., 1]', () => {
  const g = trace(({ v }) => ({ r2: perSample(v, 2), r4: perSample(v, 4) }), { v: [3] });
  const out = evaluate(g, { v: arr([3], [1, 2, 3]) });
  assert.deepEqual(out.r2.shape, [3, 1]);
  assert.deepEqual(out.r4.shape, [3, 1, 1, 1]);
  assert.throws(() => trace(({ v }) => perSample(v as Tensor, 2), { v: [3, 2] }), /expects \[B\]/);
});
