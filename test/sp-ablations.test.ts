// The self-perceptual objective's ablation knobs (docs/method.md): t' at a fixed offset, the re-noising of the two
// branches, and an EMA of the online model as the perceptual network. Each is pinned by an identity that holds
// exactly in float64 and fails when the knob is wired wrong, plus finite differences for the gradient.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { valueAndGrad } from '../transforms/grad.ts';
import { checkGrads } from '../transforms/check/checkGrads.ts';
import { evaluate } from '../core/interpret.ts';
import type { NDArray } from '../core/ndarray.ts';
import { compileStep } from '../train/compileStep.ts';
import { sgd } from '../dsl/optim.ts';
import { bindInputs, initNormal, mapParams, paramSpec, type Params, type ParamTensors } from '../dsl/params.ts';
import { trace, type Spec } from '../dsl/trace.ts';
import { createDenoiser, type Denoiser } from '../models/index.ts';
import { cosineSchedule, rescaleZeroTerminalSnr } from '../models/schedule.ts';
import { selfPerceptualObjective, type ObjectiveArgs, type SelfPerceptualOptions } from '../objectives/index.ts';
import { decodeConfig, defaultConfig } from '../runs/config.ts';

const T = 50;
const schedule = rescaleZeroTerminalSnr(cosineSchedule(T)); // alpha_T = 0, sigma_T = 1 exactly
const model = createDenoiser({ kind: 'mlp', dim: 2, hidden: 8, depth: 3, timeDim: 4, classDim: 3, numClasses: 3 });
const B = 6;

/** Trained-looking weights: the init plus noise, so zero-initialised output layers do not hide terms. */
const weights = (m: Denoiser, seed: number): Params =>
  mapParams(m.init(seed), (a, p) => ({
    shape: a.shape,
    data: a.data.map((v, i) => v + 0.1 * initNormal(a.shape, 1, seed + p.length).data[i]),
  }));
const stage1 = weights(model, 1);
const online = weights(model, 2);
const x0 = initNormal([B, 2], 1, 3);
const c: NDArray = { shape: [B], data: Float64Array.from({ length: B }, (_, i) => i % 3) };
const step: NDArray = { shape: [], data: Float64Array.of(7) };

type Knobs = Pick<SelfPerceptualOptions, 'tPrime' | 'tPrimeOffset' | 'renoise' | 'perceptual'>;
const sp = (k: Knobs) => selfPerceptualObjective({ model, frozenParams: stage1, schedule, prediction: 'v', seed: 5, ...k });

/** Loss and gradient on the float64 interpreter; `ema` adds the EMA input the 'ema' perceptual network reads. */
const run = (k: Knobs, ema?: Params) => {
  const spec = { params: paramSpec(online), ...(ema ? { ema: paramSpec(ema) } : {}), x0: [B, 2], c: [B], step: [] };
  const g = trace((a) => sp(k)(a as unknown as ObjectiveArgs), spec as Record<string, Spec>);
  const out = evaluate(valueAndGrad(g, ['params']), { ...bindInputs({ params: online, ...(ema ? { ema } : {}) }), x0, c, step });
  const grads = Object.entries(out).filter(([n]) => n.startsWith('grad.'));
  return { loss: out.out.data[0], grads: Object.fromEntries(grads.map(([n, v]) => [n, [...v.data]])) };
};

test("t' offset 0 is t' = t: the loss is the 'same' control's, bit for bit", () => {
  assert.equal(run({ tPrime: 'offset', tPrimeOffset: 0 }).loss, run({ tPrime: 'same' }).loss);
  assert.ok(run({ tPrime: 'offset', tPrimeOffset: 7 }).loss > 1e-8, 'a non-zero offset gives a non-zero loss');
});

test("t' offset is clamped to T, where zero terminal SNR leaves only the noise: 'true' and 'fresh' give exactly 0", () => {
  // at t' = T: alpha = 0, sigma = 1, so each branch is f*(its noise, T); equal noises give identical features
  for (const offset of [T, 10 * T]) {
    assert.equal(run({ tPrime: 'offset', tPrimeOffset: offset, renoise: 'true' }).loss, 0);
    assert.equal(run({ tPrime: 'offset', tPrimeOffset: offset, renoise: 'fresh' }).loss, 0);
    // the paper's re-noising keeps eps_hat in the predicted branch: it differs from eps there
    assert.ok(run({ tPrime: 'offset', tPrimeOffset: offset, renoise: 'predicted' }).loss > 1e-8);
  }
  // clamped below at 1: an offset of -10T is t' = 1 for every sample, the same as offset 1 - T
  assert.equal(run({ tPrime: 'offset', tPrimeOffset: -10 * T }).loss, run({ tPrime: 'offset', tPrimeOffset: 1 - T }).loss);
});

test("re-noising: 'true' at t' = t compares alpha x0_hat + sigma eps with x_t; the three modes give three losses", () => {
  const same = run({ tPrime: 'same', renoise: 'true' }).loss;
  assert.ok(same > 1e-8, `with the true eps the branches differ by alpha (x0_hat - x0) even at t' = t (loss ${same})`);
  const losses = (['predicted', 'true', 'fresh'] as const).map((renoise) => run({ renoise }).loss);
  assert.equal(new Set(losses).size, 3, `three different losses expected, got ${losses}`);
});

test('every knob: the gradient reaches the online parameters and matches finite differences', () => {
  for (const k of [
    { tPrime: 'offset', tPrimeOffset: 5 },
    { renoise: 'true' },
    { renoise: 'fresh' },
    { tPrime: 'same', renoise: 'fresh' },
  ] as Knobs[]) {
    const f = sp(k);
    const r = checkGrads(
      ({ params, x0, c, step }) => f({ params: params as ParamTensors<Params>, x0, c, step }),
      { params: online, x0, c, step },
      { wrt: ['params'] },
    );
    assert.ok(r.ok, `${JSON.stringify(k)}: ${JSON.stringify(r)}`);
  }
});

test("perceptual 'ema': the EMA input plays the frozen copy exactly, and is not differentiated", () => {
  const frozen = run({});
  const ema = run({ perceptual: 'ema' }, stage1); // an EMA that holds the stage-1 weights
  assert.equal(ema.loss, frozen.loss);
  assert.deepEqual(Object.keys(ema.grads).sort(), Object.keys(frozen.grads).sort(), 'gradients for the parameters only, none for ema.*');
  for (const [n, g] of Object.entries(frozen.grads)) assert.deepEqual(ema.grads[n], g, n);
  // and it is the EMA that is read: another EMA gives another loss
  assert.notEqual(run({ perceptual: 'ema' }, online).loss, frozen.loss);
  assert.throws(
    () => run({ perceptual: 'ema' }),
    /perceptual 'ema' reads the step's EMA: compile the step with \{ emaDecay, emaInLoss: true \}/,
  );
});

test("perceptual 'ema' in a compiled step: step 1 reads the initial EMA, later steps the EMA that followed the online model", () => {
  const f = sp({ perceptual: 'ema' });
  const st = compileStep(({ params, step, x0, c, ema }) => f({ params, x0, c, step, ema }), {
    params: online,
    optimizer: sgd({ lr: 0.5 }),
    data: { x0: [B, 2], c: [B] },
    backend: 'cpu',
    initialState: { ema: stage1 }, // the EMA starts as the frozen copy
    emaDecay: 0.5,
    emaWarmup: false,
    emaInLoss: true,
  });
  const frozenStep = compileStep(({ params, step, x0, c }) => sp({})({ params, x0, c, step }), {
    params: online,
    optimizer: sgd({ lr: 0.5 }),
    data: { x0: [B, 2], c: [B] },
    backend: 'cpu',
  });
  const l1 = [st.run({ x0, c }), frozenStep.run({ x0, c })];
  // cpu kernels store f32: the two plans compute the same thing, so they agree to f32 rounding of the loss
  assert.ok(Math.abs(l1[0] - l1[1]) <= 1e-5 * Math.abs(l1[1]), `step 1: ${l1}`);
  const l2 = [st.run({ x0, c }), frozenStep.run({ x0, c })];
  // step 2's EMA is halfway to the online weights: far from the frozen copy, so the losses part
  assert.ok(Math.abs(l2[0] - l2[1]) > 1e-2 * Math.abs(l2[1]), `step 2 must differ once the EMA has moved: ${l2}`);
  st.dispose();
  frozenStep.dispose();
  assert.throws(
    () =>
      compileStep(({ params, step, x0 }) => sp({})({ params, x0, step }), {
        params: stage1,
        optimizer: sgd({ lr: 1 }),
        data: { x0: [B, 2] },
        emaInLoss: true,
      }),
    /emaInLoss needs emaDecay/,
  );
});

test('run configs: the knobs are validated, and a config from before them decodes as the behaviour it had (the paper)', () => {
  const old = defaultConfig('mnist16') as unknown as { objective: Record<string, unknown> };
  const { tPrimeOffset: _a, renoise: _b, perceptual: _c, ...before } = old.objective;
  const decoded = decodeConfig({ ...old, objective: before });
  assert.equal(decoded.objective.renoise, 'predicted');
  assert.equal(decoded.objective.perceptual, 'frozen');
  assert.equal(decoded.objective.tPrimeOffset, 0);
  assert.throws(() => decodeConfig({ ...old, objective: { ...old.objective, renoise: 'eps' } }), /renoise/);
  assert.throws(() => decodeConfig({ ...old, objective: { ...old.objective, tPrimeOffset: 2.5 } }), /tPrimeOffset/);
});
