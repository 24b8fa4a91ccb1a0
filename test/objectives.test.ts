// The objectives' semantics, on the float64 interpreter unless stated: the self-perceptual loss's gradient flows
// through the frozen network to the online parameters, never into the frozen ones or the real branch; it vanishes
// at t' = t; the classic stop-gradient bug is caught; MSE, min-SNR and condition dropout behave as specified.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad, gradName, valueAndGrad } from '../transforms/grad.ts';
import { checkGrads } from '../transforms/check/checkGrads.ts';
import { evaluate } from '../core/interpret.ts';
import { graphInputs } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { compileStep } from '../train/compileStep.ts';
import type { Optimizer } from '../dsl/optim.ts';
import { bindInputs, flattenParams, initNormal, mapParams, paramSpec, type Params, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace, type Spec } from '../dsl/trace.ts';
import { createDenoiser, type Denoiser, type DenoiserOptions } from '../models/index.ts';
import { cosineSchedule, rescaleZeroTerminalSnr } from '../models/schedule.ts';
import {
  featureDistance,
  mseObjective,
  selfPerceptualFeatures,
  selfPerceptualObjective,
  weightedSum,
  type Objective,
  type ObjectiveArgs,
} from '../objectives/index.ts';
import * as op from '../dsl/ops.ts';
import { flatten, unflatten } from '../dsl/tree.ts';
import { isTensor } from '../dsl/trace.ts';
import { backendsUnderTest, nodeBackends } from './support/backends.ts';

// a listed backend missing here fails under CI=true and is a reported skip elsewhere (test/support/backends.ts)
const backends = await backendsUnderTest('objectives', nodeBackends);

const tinyMlp: DenoiserOptions = { kind: 'mlp', dim: 2, hidden: 8, depth: 3, timeDim: 4, classDim: 3, numClasses: 3 };
const tinyUnet: DenoiserOptions = {
  kind: 'unet',
  imageSize: 8,
  baseChannels: 4,
  channelMults: [1, 2],
  groups: 2,
  embDim: 8,
  numClasses: 2,
};
const schedule = rescaleZeroTerminalSnr(cosineSchedule(50));

/** Stage-1-like weights: the init plus noise, so zero-initialised output layers do not hide terms. */
const weights = (m: Denoiser, seed: number): Params =>
  mapParams(m.init(seed), (a, p) => ({
    shape: a.shape,
    data: a.data.map((v, i) => v + 0.1 * initNormal(a.shape, 1, seed + p.length).data[i]),
  }));

const setup = (opts: DenoiserOptions, B: number) => {
  const model = createDenoiser(opts);
  const stage1 = weights(model, 1);
  const online = weights(model, 2); // the online model has moved away from the frozen copy
  const x0 = initNormal([B, ...model.dataShape], 1, 3);
  const c: NDArray = { shape: [B], data: Float64Array.from({ length: B }, (_, i) => i % (opts.numClasses ?? 1)) };
  const step: NDArray = { shape: [], data: Float64Array.of(7) };
  return { model, stage1, online, x0, c, step };
};

const lossGraph = (objective: Objective, model: Denoiser, online: Params, B: number) =>
  trace((a) => objective(a as unknown as ObjectiveArgs), {
    params: paramSpec(online),
    x0: [B, ...model.dataShape],
    c: [B],
    step: [],
  } as Record<string, Spec>);

const inputsOf = (s: ReturnType<typeof setup>) => ({ ...bindInputs({ params: s.online }), x0: s.x0, c: s.c, step: s.step });

for (const [name, opts, B] of [
  ['MLP', tinyMlp, 4],
  ['UNet', tinyUnet, 1],
] as const) {
  for (const prediction of ['v', 'eps'] as const) {
    test(
      `${name}, ${prediction}-prediction: SP gradient reaches the online parameters, ` +
        `matches finite differences, and never the frozen copy`,
      () => {
        const s = setup(opts, B);
        const sp = selfPerceptualObjective({ model: s.model, frozenParams: s.stage1, schedule, prediction });
        const g = lossGraph(sp, s.model, s.online, B);
        // the frozen copy is made of constants: no input, hence no gradient entry, carries its weights
        assert.deepEqual(
          graphInputs(g)
            .map((n) => n.attrs.name)
            .filter((n) => !n.startsWith('params.'))
            .sort(),
          ['c', 'step', 'x0'],
        );
        const out = evaluate(valueAndGrad(g, ['params']), inputsOf(s));
        const grads = Object.entries(out).filter(([k]) => k.startsWith('grad.'));
        assert.ok(grads.length > 0 && grads.every(([k]) => k.startsWith('grad.params.')));
        const norm = Math.sqrt(grads.reduce((a, [, v]) => a + v.data.reduce((b, x) => b + x * x, 0), 0));
        assert.ok(norm > 1e-6, `d loss / d theta must not vanish (norm ${norm})`);
        const report = checkGrads(
          ({ params, x0, c, step }) => sp({ params: params as ParamTensors<Params>, x0, c, step }),
          { params: s.online, x0: s.x0, c: s.c, step: s.step },
          { wrt: ['params'] },
        );
        assert.ok(report.ok, JSON.stringify(report));
      },
    );
  }

  test(`${name}: at t' = t the SP loss and its gradient vanish (to f64 round-off)`, () => {
    const s = setup(opts, B);
    const sp = selfPerceptualObjective({ model: s.model, frozenParams: s.stage1, schedule, prediction: 'v', tPrime: 'same' });
    const out = evaluate(valueAndGrad(lossGraph(sp, s.model, s.online, B), ['params']), inputsOf(s));
    // both branches feed (alpha^2 + sigma^2) x_t = x_t to f*: only rounding (~1e-16 relative) separates them
    assert.ok(Math.abs(out.out.data[0]) < 1e-24, `loss ${out.out.data[0]}`);
    const worst = Math.max(
      ...Object.entries(out)
        .filter(([k]) => k.startsWith('grad.'))
        .flatMap(([, v]) => [...v.data].map(Math.abs)),
    );
    assert.ok(worst < 1e-12, `largest gradient entry ${worst}`);
  });

  test(`${name}: the classic bug (stop-gradient around the whole frozen call) is caught`, () => {
    const s = setup(opts, B);
    const bad = selfPerceptualObjective({
      model: s.model,
      frozenParams: s.stage1,
      schedule,
      prediction: 'v',
      stopGradientThroughFrozen: true,
    });
    const out = evaluate(grad(lossGraph(bad, s.model, s.online, B), ['params']), inputsOf(s));
    assert.ok(
      Object.values(out).every((v) => v.data.every((x) => x === 0)),
      'the buggy variant has a zero gradient',
    );
    const report = checkGrads(
      ({ params, x0, c, step }) => bad({ params: params as ParamTensors<Params>, x0, c, step }),
      { params: s.online, x0: s.x0, c: s.c, step: s.step },
      { wrt: ['params'] },
    );
    assert.equal(report.ok, false, 'finite differences see the dependence the buggy gradient drops');
  });
}

test('the real branch is a constant target: the gradient equals that of the loss with the target precomputed', () => {
  const s = setup(tinyMlp, 4);
  const o = { model: s.model, frozenParams: s.stage1, schedule, prediction: 'v' as const };
  const spec = { params: paramSpec(s.online), x0: [4, 2], c: [4], step: [] } as Record<string, Spec>;
  const features = selfPerceptualFeatures(o);
  // 1. the real branch's features, computed once and brought back to the host
  const real = evaluate(
    trace((a) => features(a as unknown as ObjectiveArgs).real[0], spec),
    inputsOf(s),
  ).out;
  // 2. the same loss with that target as a graph constant
  const precomputed = trace(
    (a) => featureDistance(features(a as unknown as ObjectiveArgs).predicted[0], op.constant(real.data, real.shape), 'mse'),
    spec,
  );
  const g1 = evaluate(grad(lossGraph(selfPerceptualObjective(o), s.model, s.online, 4), ['params']), inputsOf(s));
  const g2 = evaluate(grad(precomputed, ['params']), inputsOf(s));
  for (const k of Object.keys(g1))
    g1[k].data.forEach((v, i) =>
      assert.ok(Math.abs(v - g2[k].data[i]) <= 1e-12 * (1 + Math.abs(v)), `${k}[${i}]: ${v} vs ${g2[k].data[i]}`),
    );
});

test('errors: a frozen copy of another model signature, an unknown feature layer', () => {
  const s = setup(tinyMlp, 2);
  const other = createDenoiser({ ...tinyMlp, hidden: 6 } as DenoiserOptions);
  assert.throws(
    () => selfPerceptualObjective({ model: s.model, frozenParams: other.init(0), schedule, prediction: 'v' }),
    /param hidden.hidden0.w: \[9,8\] \(online\) vs \[9,6\] \(frozen\)/,
  );
  assert.throws(
    () => selfPerceptualObjective({ model: s.model, frozenParams: s.stage1, schedule, prediction: 'v', layer: 'middle' }),
    /no layer 'middle'; its layers are: hidden0, hidden1, mid, hidden2, out, or 'all'/,
  );
});

test('MSE objective: gradient check with min-SNR weighting and condition dropout; weightedSum combines objectives', () => {
  const s = setup(tinyMlp, 4);
  const mse = mseObjective({ model: s.model, schedule, prediction: 'v', minSnrGamma: 5, condDropout: 0.5 });
  const sp = selfPerceptualObjective({ model: s.model, frozenParams: s.stage1, schedule, prediction: 'v' });
  const both = weightedSum([1, mse], [0.5, sp]);
  for (const f of [mse, both]) {
    const r = checkGrads(
      ({ params, x0, c, step }) => f({ params: params as ParamTensors<Params>, x0, c, step }),
      { params: s.online, x0: s.x0, c: s.c, step: s.step },
      { wrt: ['params'] },
    );
    assert.ok(r.ok, JSON.stringify(r));
  }
  const inputs = inputsOf(s);
  const lm = evaluate(lossGraph(mse, s.model, s.online, 4), inputs).out.data[0];
  const ls = evaluate(lossGraph(sp, s.model, s.online, 4), inputs).out.data[0];
  const lb = evaluate(lossGraph(both, s.model, s.online, 4), inputs).out.data[0];
  assert.ok(Math.abs(lb - (lm + 0.5 * ls)) < 1e-12 * (1 + Math.abs(lb)));
});

/**
 * Plain SGD that also keeps this step's gradient as its state, so that one compiled step shows all three: the loss it
 * returns, the gradients it computed (state.grad) and the parameters it wrote (p - lr g).
 */
const sgdKeepingGradients = (lr: number): Optimizer => ({
  name: `sgd(lr=${lr}) keeping gradients`,
  init: (params) => ({ grad: mapParams(params, (a) => ({ shape: a.shape, data: new Float64Array(a.data.length) })) }),
  update: (params, grads) => {
    const g = new Map(flatten(grads as never, isTensor) as [string, Tensor][]);
    const next = (flatten(params as never, isTensor) as [string, Tensor][]).map(([p, v]) => [p, op.sub(v, op.mul(g.get(p)!, lr))] as const);
    return { params: unflatten(next) as ParamTensors<Params>, state: { grad: grads } as unknown as ParamTensors<Params> };
  },
});

/** The f64 loss and gradients of the SP step below, computed once for every backend's test. */
let spReference: Record<string, NDArray> | undefined;

for (const backend of backends) {
  test(`${backend}: a compiled SP training step matches the interpreter: loss, gradients and updated parameters`, () => {
    const s = setup(tinyUnet, 2);
    const sp = selfPerceptualObjective({ model: s.model, frozenParams: s.stage1, schedule, prediction: 'v' });
    const lr = 0.5;
    const ref = (spReference ??= evaluate(valueAndGrad(lossGraph(sp, s.model, s.online, 2), ['params']), {
      ...inputsOf(s),
      step: { shape: [], data: Float64Array.of(1) },
    }));
    const st = compileStep(({ params, step, x0, c }) => sp({ params, x0, c, step }), {
      params: s.online,
      optimizer: sgdKeepingGradients(lr),
      data: { x0: [2, 1, 8, 8], c: [2] },
      backend,
    });
    const got = st.run({ x0: s.x0, c: s.c });
    const loss = ref.out.data[0];
    // f32 kernels vs f64: the UNet chains ~100 ops with group norms; 1e-3 relative on a loss of order 1e-2..1
    assert.ok(Math.abs(got - loss) <= 1e-3 * Math.abs(loss) + 1e-7, `loss ${got} vs ${loss}`);
    // gradients: the same chain backwards in f32, with cancellation in the sums of the weight gradients, so the error
    // is judged against each tensor's largest entry: within 1e-4 of it (observed up to 1.4e-5 on headless-gl, 2e-6 on
    // cpu, which keeps f64 inside a kernel); a wrong rule or index is O(1) of it
    const grads = flattenParams((st.state() as { grad: Params }).grad);
    const params = new Map(flattenParams(st.params()));
    const bad: string[] = [];
    let checked = 0;
    for (const [path, g] of grads) {
      const want = ref[`grad.params.${path}`].data;
      const scale = Math.max(...want.map(Math.abs));
      const p0 = (flattenParams(s.online).find(([q]) => q === path)![1] as NDArray).data;
      g.data.forEach((v, i) => {
        checked++;
        if (!(Math.abs(v - want[i]) <= 1e-4 * scale + 1e-9))
          bad.push(`grad ${path}[${i}]: ${v}, interpreter ${want[i]} (largest ${scale})`);
        // the update p - lr g: the gradient's error times lr, and the f32 rounding of p
        const p1 = params.get(path)!.data[i];
        const p1Want = p0[i] - lr * want[i];
        if (!(Math.abs(p1 - p1Want) <= lr * (1e-4 * scale + 1e-9) + 1e-6 * (1 + Math.abs(p1Want))))
          bad.push(`params ${path}[${i}]: ${p1}, interpreter ${p1Want}`);
      });
    }
    assert.ok(checked > 1000, `${checked} parameters compared`);
    assert.deepEqual(bad.slice(0, 20), [], `${bad.length} mismatches`);
    st.dispose();
  });
}
