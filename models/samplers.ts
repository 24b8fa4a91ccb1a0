// Ancestral DDPM and DDIM(eta) sampling with classifier-free guidance and guidance rescale. One sampler step is
// a traced graph compiled once by the project's compiler and run per timestep; per-step scalars (alpha, sigma and
// the update coefficients) are graph inputs computed on the host in float64, so one plan serves every step.
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import type { BackendRequest } from '../compiler/index.ts';
import { compile, release, type DeviceBuffer, type Executable } from '../compiler/index.ts';
import { variance } from '../dsl/composites.ts';
import * as op from '../dsl/ops.ts';
import { flattenParams, paramSpec, type Params, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace, type Spec } from '../dsl/trace.ts';
import { fromPrediction, predictionTarget, type Prediction } from './parameterization.ts';
import type { Schedule } from './schedule.ts';

/** The model as sampling sees it: xt [B, ...], t [B] integer-valued timesteps, c [B] class ids (or undefined). */
export type PredictFn = (xt: Tensor, t: Tensor, ctx: { c?: Tensor; params?: ParamTensors<Params> }) => Tensor;

/** Adapts a Denoiser (models/denoiser.ts) structurally; its null class is the id numClasses. */
export const denoiserPredict =
  (model: { apply(p: ParamTensors<Params>, x: Tensor, t: Tensor, c?: Tensor): Tensor }): PredictFn =>
  (xt, t, { c, params }) =>
    model.apply(params ?? ({} as ParamTensors<Params>), xt, t, c);

/** Options of `createSampler` and `sample`: the model, shape, schedule, sampler, steps, guidance, seed and backend. */
export interface SamplerOptions {
  predict: PredictFn;
  /** [B, ...dataShape] */
  shape: readonly number[];
  schedule: Schedule;
  prediction: Prediction;
  sampler: 'ddpm' | 'ddim';
  /** number of denoising steps, trailing spacing (t = T is always the first); default T for ddpm, 50 for ddim */
  steps?: number;
  /** DDIM stochasticity: 0 deterministic (ODE), 1 the DDPM posterior variance; ddim only */
  eta?: number;
  /** w in eps_u + w (eps_c - eps_u); 1 = no guidance (one model call per step) */
  cfgScale?: number;
  /** phi of Lin et al. 2023 sec 3.4, in [0, 1]; 0 = plain CFG */
  guidanceRescale?: number;
  /** clamp x0_hat to [-c, c] before the update (images in [-1, 1]); eps_hat is recomputed from the clamped x0 */
  clipX0?: number;
  seed: number;
  /** a compiler backend, or 'interpret' for the float64 reference interpreter */
  backend?: BackendRequest | 'interpret';
  /** model parameters: graph inputs `params.*`, converted to f32 once and passed to every step (on GL gpu.js uploads them per call) */
  params?: Params;
  /** the id the model was trained to read as "no condition" (Denoiser: numClasses) */
  nullClass?: number;
  /** false when the model was trained without a null class: guidance is then refused */
  hasNullClass?: boolean;
}

/** A batch of samples as a float64 host array, with the backend that ran the steps and the timesteps visited. */
export interface SampleResult extends NDArray {
  /** which backend ran the steps */
  readonly backend: string;
  /** why that backend: requested, or auto's choice (createSamplerAuto: timed on a hardware WebGPU adapter) */
  readonly backendReason: string;
  /** the timesteps visited, in order */
  readonly timesteps: readonly number[];
}

/** Trailing spacing (Lin et al. 2023 table 2): t_i = round(T - i T / steps), i = 0..steps-1, so t = T is visited. */
export const timestepSubsequence = (T: number, steps: number): number[] => {
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new Error(`sampler: steps must be an integer in 1..${T}, got ${steps}`);
  return Array.from({ length: steps }, (_, i) => Math.round(T - (i * T) / steps));
};

/** Host float64 scalars of one step t -> s: x_s = cX0 x0_hat + cEps eps_hat + cXt x_t + cNoise z. */
export interface StepCoefficients {
  t: number;
  s: number;
  alpha: number;
  sigma: number;
  cX0: number;
  cEps: number;
  cXt: number;
  cNoise: number;
}

/**
 * t -> s with abar_0 = 1 (the final step lands on clean data). DDPM: the posterior q(x_s | x_t, x0) with
 * beta = 1 - abar_t/abar_s, mean = sqrt(abar_s) beta/(1-abar_t) x0 + sqrt(abar_t/abar_s)(1-abar_s)/(1-abar_t) x_t,
 * variance beta_tilde = (1-abar_s)/(1-abar_t) beta. DDIM (Song et al. eq. 12): x_s = sqrt(abar_s) x0 +
 * sqrt(1 - abar_s - s2) eps + sqrt(s2) z, s2 = eta^2 (1-abar_s)/(1-abar_t) (1 - abar_t/abar_s).
 */
export const stepCoefficients = (sched: Schedule, sampler: 'ddpm' | 'ddim', eta: number, t: number, s: number): StepCoefficients => {
  const at = sched.alphaBar[t - 1],
    as = s === 0 ? 1 : sched.alphaBar[s - 1];
  const beta = 1 - at / as,
    post = ((1 - as) / (1 - at)) * beta;
  const base = { t, s, alpha: sched.alpha[t - 1], sigma: sched.sigma[t - 1] };
  if (sampler === 'ddpm')
    return {
      ...base,
      cX0: (Math.sqrt(as) * beta) / (1 - at),
      cEps: 0,
      cXt: (Math.sqrt(at / as) * (1 - as)) / (1 - at),
      cNoise: Math.sqrt(post),
    };
  const s2 = eta * eta * post;
  return { ...base, cX0: Math.sqrt(as), cEps: Math.sqrt(Math.max(0, 1 - as - s2)), cXt: 0, cNoise: Math.sqrt(s2) };
};

export const samplingPlan = (sched: Schedule, sampler: 'ddpm' | 'ddim', steps: number, eta = 0): StepCoefficients[] => {
  const ts = timestepSubsequence(sched.T, steps);
  return ts.map((t, i) => stepCoefficients(sched, sampler, eta, t, ts[i + 1] ?? 0));
};

// ---- guidance -------------------------------------------------------------------------------------------------

/**
 * CFG on (x0, eps): every parameterisation converts to (x0, eps) affinely with coefficients that sum over
 * (uncond, cond) to 1 - w + w = 1, so guiding x0 and eps equals guiding the raw eps/v/x0 outputs and converting;
 * the guided pair still satisfies x_t = alpha x0 + sigma eps. Guidance rescale (Lin et al. 2023 sec 3.4,
 * Algorithm 2) acts on v, the paper's model output, so it means the same thing for every parameterisation:
 * v_cfg *= phi * std(v_cond)/std(v_cfg) + (1 - phi), std per sample over all non-batch axes (the biased/unbiased
 * choice cancels in the ratio). A sample whose guided v is constant (std 0) keeps factor 1.
 */
export const guide = (
  cond: { x0: Tensor; eps: Tensor },
  uncond: { x0: Tensor; eps: Tensor },
  { scale, rescale = 0, xt, alpha, sigma }: { scale: number; rescale?: number; xt: Tensor; alpha: Tensor; sigma: Tensor },
): { x0: Tensor; eps: Tensor } => {
  const mix = (u: Tensor, c: Tensor) => op.add(u, op.mul(op.sub(c, u), scale));
  const g = { x0: mix(uncond.x0, cond.x0), eps: mix(uncond.eps, cond.eps) };
  if (rescale === 0) return g;
  const axes = xt.shape.slice(1).map((_, i) => i + 1);
  const vCond = predictionTarget('v', cond.x0, cond.eps, alpha, sigma);
  const vCfg = predictionTarget('v', g.x0, g.eps, alpha, sigma);
  const sdCond = op.sqrt(variance(vCond, axes, true)),
    sdCfg = op.sqrt(variance(vCfg, axes, true));
  const ratio = op.where(op.gt(sdCfg, 0), op.div(sdCond, op.maximum(sdCfg, 1e-30)), 1);
  return fromPrediction('v', op.mul(vCfg, op.add(op.mul(ratio, rescale), 1 - rescale)), xt, alpha, sigma);
};

// ---- the compiled step ----------------------------------------------------------------------------------------

const STREAM_INIT = 0x5a_0001; // x_T
const STREAM_STEP = 0x5a_0002; // the ancestral / DDIM noise z of each step
const SCALARS = ['alpha', 'sigma', 'cX0', 'cEps', 'cXt', 'cNoise', 'counter'] as const;

const validate = (o: SamplerOptions, plan: StepCoefficients[]): void => {
  const w = o.cfgScale ?? 1,
    phi = o.guidanceRescale ?? 0;
  if (o.shape.length < 1 || !o.shape.every((d) => Number.isInteger(d) && d > 0))
    throw new Error(`sampler: shape must be [B, ...] of positive integers, got [${o.shape.join(',')}]`);
  if (o.eta !== undefined && o.sampler !== 'ddim')
    throw new Error(`sampler: eta is a DDIM option; ddpm always uses the posterior variance`);
  if ((o.eta ?? 0) < 0) throw new Error(`sampler: eta must be >= 0, got ${o.eta}`);
  if (!(phi >= 0 && phi <= 1)) throw new Error(`sampler: guidanceRescale must be in [0, 1], got ${phi}`);
  if (w !== 1) {
    if (o.hasNullClass === false)
      throw new Error(
        `sampler: cfgScale ${w} needs an unconditional branch, but the model was trained without a null class; ` +
          `train with condition dropout, or sample with cfgScale 1`,
      );
    if (o.nullClass === undefined)
      throw new Error(
        `sampler: cfgScale ${w} needs a conditional/unconditional pair: ` +
          `give nullClass (the id the model reads as "no condition") and classes at sample time`,
      );
  }
  if (o.prediction === 'eps' && plan[0].alpha === 0)
    throw new Error(
      `sampler: eps-prediction cannot start at t=${plan[0].t} of ${o.schedule.name}: ` +
        `alpha = 0 there (zero terminal SNR), so x0 = (x_t - sigma eps)/alpha is undefined; use v-prediction`,
    );
};

/** The graph of one denoising step (x, t, the step's scalars, c when conditional, params.*) -> { x, x0 }. */
export const samplerStepGraph = (o: SamplerOptions, conditional: boolean): Graph => {
  const [B] = o.shape;
  const w = o.cfgScale ?? 1; // > 1 implies conditional (checked by sample)
  const spec: Record<string, Spec> = { x: [...o.shape], t: [B], ...Object.fromEntries(SCALARS.map((k) => [k, []])) };
  if (conditional) spec.c = [B];
  if (o.params) spec.params = paramSpec(o.params) as Spec;
  return trace((a) => {
    const { x, t, c, alpha, sigma } = a as Record<string, Tensor>;
    const params = (a as { params?: ParamTensors<Params> }).params;
    const convert = (pred: Tensor, xt: Tensor) => fromPrediction(o.prediction, pred, xt, alpha, sigma);
    let est: { x0: Tensor; eps: Tensor };
    if (w === 1) est = convert(o.predict(x, t, { c, params }), x);
    else {
      // both branches in one batched call: [x; x] with [c; null]
      const both = o.predict(op.concat([x, x], 0), op.concat([t, t], 0), { c: op.concat([c, op.full([B], o.nullClass!)], 0), params });
      const half = (i: number) => convert(op.slice(both, [[i * B, (i + 1) * B]]), x);
      est = guide(half(0), half(1), { scale: w, rescale: o.guidanceRescale, xt: x, alpha, sigma });
    }
    if (o.clipX0 !== undefined) {
      const x0 = op.minimum(op.maximum(est.x0, -o.clipX0), o.clipX0);
      est = { x0, eps: op.div(op.sub(x, op.mul(alpha, x0)), sigma) };
    }
    const z = op.normal([...o.shape], { seed: o.seed, stream: STREAM_STEP, counter: a.counter as Tensor<[]> });
    const terms = [
      op.mul(est.x0, a.cX0 as Tensor),
      op.mul(est.eps, a.cEps as Tensor),
      op.mul(x, a.cXt as Tensor),
      op.mul(z, a.cNoise as Tensor),
    ];
    return { x: terms.reduce((s, v) => op.add(s, v)), x0: est.x0 };
  }, spec);
};

/** Runs a graph on the interpreter or a compiled plan with one interface (device buffers stay on the device). */
interface Runner {
  readonly backend: string;
  readonly backendReason: string;
  readonly executable?: Executable;
  run(inputs: Record<string, NDArray | DeviceBuffer>): DeviceBuffer | NDArray;
  runAsync(inputs: Record<string, NDArray | DeviceBuffer>): Promise<DeviceBuffer | NDArray>;
  read(v: DeviceBuffer | NDArray): NDArray;
  /** the same without blocking (the only read on webgpu) */
  readAsync(v: DeviceBuffer | NDArray): Promise<NDArray>;
  free(v: DeviceBuffer | NDArray): void;
  dispose(): void;
}

/** The step's x output; the other outputs (x0) are released at once. */
const keepX = (out: Record<string, DeviceBuffer>): DeviceBuffer => {
  for (const [k, b] of Object.entries(out)) if (k !== 'x') release(b);
  return out.x;
};

const runnerFor = (graph: () => Graph, backend: SamplerOptions['backend'], shape: readonly number[], compiled?: Executable): Runner => {
  if (backend === 'interpret')
    return {
      backend,
      backendReason: 'requested',
      run: (i) => evaluate(graph(), i as Record<string, NDArray>, ['x']).x,
      runAsync: async (i) => evaluate(graph(), i as Record<string, NDArray>, ['x']).x,
      read: (v) => v as NDArray,
      readAsync: async (v) => v as NDArray,
      free: () => {},
      dispose: () => {},
    };
  const exe = compiled ?? compile(graph(), { backend });
  return {
    backend: exe.backend,
    get backendReason() {
      return exe.backendReason;
    },
    executable: exe,
    run: (i) => keepX(exe.runDevice(i as never)),
    runAsync: async (i) => keepX(await exe.runDeviceAsync(i as never)),
    read: (v) => ({ shape: [...shape], data: Float64Array.from(exe.read(v as DeviceBuffer, shape)) }),
    readAsync: async (v) => ({ shape: [...shape], data: Float64Array.from(await exe.readAsync(v as DeviceBuffer, shape)) }),
    free: (v) => release(v as DeviceBuffer),
    dispose: () => exe.dispose(),
  };
};

/** A compiled sampler (`createSampler`): draw batches with `sample` or `sampleAsync`, then `dispose()` it. */
export interface Sampler {
  readonly plan: readonly StepCoefficients[];
  /** the compiled step (undefined on the interpreter), for inspection */
  readonly executable?: Executable;
  readonly backend: string;
  /**
   * One batch of samples. `draw` selects independent noise under the same seed (counter = draw * (steps + 1) +
   * step, so one compiled plan serves many batches); `classes` [B] are class ids, required with guidance;
   * `params` replaces the options' parameters for this batch (same paths and shapes; e.g. weights still training),
   * without recompiling.
   */
  sample(opts?: SampleCallOptions): SampleResult;
  /** The same batch, awaiting kernels: on webasm large kernels then run on gpu.js's worker threads. */
  sampleAsync(opts?: SampleCallOptions): Promise<SampleResult>;
  /** Frees the compiled plans (their kernels and textures); they refuse to run afterwards. */
  dispose(): void;
}

/** Options of one `Sampler.sample` call: class ids, which independent draw, parameters for this batch, progress. */
export interface SampleCallOptions {
  /** [B] class ids (required with guidance) */
  classes?: ArrayLike<number>;
  /** independent noise under the same seed (default 0) */
  draw?: number;
  /** parameters for this batch instead of the options' (same paths and shapes), without recompiling */
  params?: Params;
  /**
   * sampleAsync only: awaited after each of the `total` runs (the initial noise, then every denoising step), so a
   * page can show progress and yield to its event loop between steps.
   */
  onStep?: (done: number, total: number) => void | Promise<void>;
  /** sampleAsync only: checked after each step; once aborted, the device buffers are freed and the call rejects */
  signal?: AbortSignal;
  /**
   * sampleAsync only: read each step's result back before onStep. A GL device otherwise queues the whole chain and
   * the final read waits for all of it at once (10 s for 100 steps on SwiftShader); read step by step, a page that
   * yields in onStep waits for one step at a time.
   */
  syncEachStep?: boolean;
}

/** The coefficients of every step the options ask for, once the options are checked (throws on what cannot sample). */
export const checkedPlan = (o: SamplerOptions): StepCoefficients[] => {
  const steps = o.steps ?? (o.sampler === 'ddpm' ? o.schedule.T : Math.min(50, o.schedule.T));
  const plan = samplingPlan(o.schedule, o.sampler, steps, o.eta ?? 0);
  validate(o, plan);
  return plan;
};

/** Compiles the step once per (unconditional | conditional) use; the seed is a random-primitive attribute, so a new seed is a new plan. */
export const createSampler = (o: SamplerOptions): Sampler => buildSampler(o);

/** A step already compiled for one use (createSamplerAuto's timed choice); the other use and the noise follow its backend. */
export interface CompiledSamplerStep {
  readonly conditional: boolean;
  readonly executable: Executable;
}

/** createSampler, taking `compiled` for its step where given (the sampler owns it then: dispose() frees it). */
export const buildSampler = (o: SamplerOptions, compiled?: CompiledSamplerStep): Sampler => {
  const plan = checkedPlan(o);
  const guided = (o.cfgScale ?? 1) !== 1;
  const [B] = o.shape;
  const vec = (v: ArrayLike<number>): NDArray => ({ shape: [v.length], data: Float64Array.from(v) });
  const scalar = (v: number): NDArray => ({ shape: [], data: Float64Array.of(v) });
  const paramInputs = Object.fromEntries(flattenParams(o.params ?? {}).map(([p, v]) => [`params.${p}`, v]));
  const paramInputsFor = (p: Params): Record<string, NDArray> => {
    const given = Object.fromEntries(flattenParams(p).map(([n, v]) => [`params.${n}`, v]));
    for (const [n, v] of Object.entries(paramInputs))
      if (!given[n] || given[n].shape.join(',') !== v.shape.join(','))
        throw new Error(
          `sampler: params must have the paths and shapes the sampler was created with; ` +
            `'${n}' is [${v.shape.join(',')}] there, ${given[n] ? `[${given[n].shape.join(',')}]` : 'missing'} here`,
        );
    if (Object.keys(given).length !== Object.keys(paramInputs).length)
      throw new Error(
        `sampler: params has ${Object.keys(given).length} arrays, the sampler was created with ${Object.keys(paramInputs).length}`,
      );
    return given;
  };
  // compiled plans read f32: convert the weights once per batch, not in every denoising step
  const forRunner = (inputs: Record<string, NDArray>): Record<string, NDArray | DeviceBuffer> =>
    o.backend === 'interpret' ? inputs : Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, Float32Array.from(v.data)]));
  const deviceParams = forRunner(paramInputs);
  const runners = new Map<boolean, Runner>();
  // the noise and a step of the other use run where the compiled step does: device buffers pass between them
  const backend = compiled ? compiled.executable.backend : o.backend;
  const stepRunner = (conditional: boolean) => {
    let r = runners.get(conditional);
    const given = compiled?.conditional === conditional ? compiled.executable : undefined;
    if (!r) runners.set(conditional, (r = runnerFor(() => samplerStepGraph(o, conditional), backend, o.shape, given)));
    return r;
  };
  let noise: Runner | undefined;
  const noiseRunner = () =>
    (noise ??= runnerFor(
      () =>
        trace((a) => ({ x: op.normal([...o.shape], { seed: o.seed, stream: STREAM_INIT, counter: a.counter as Tensor<[]> }) }), {
          counter: [],
        }),
      backend,
      o.shape,
    ));

  return {
    plan,
    get executable() {
      return stepRunner(guided).executable;
    },
    get backend() {
      return stepRunner(guided).backend;
    },
    sample(opts = {}) {
      const loop = chain(opts);
      let r = loop.next();
      while (!r.done) r = loop.next(r.value.runner.run(r.value.inputs) as DeviceBuffer);
      const { x, runner } = r.value;
      try {
        return { ...runner.read(x), backend: runner.backend, backendReason: runner.backendReason, timesteps: plan.map((k) => k.t) };
      } finally {
        runner.free(x);
      }
    },
    async sampleAsync(opts = {}) {
      const loop = chain(opts);
      const total = plan.length + 1;
      let r = loop.next();
      for (let done = 1; !r.done; done++) {
        const { runner, inputs } = r.value;
        const out = await runner.runAsync(inputs);
        if (opts.syncEachStep) await runner.readAsync(out); // a GL device finishes the step before onStep: nothing stays queued
        await opts.onStep?.(done, total);
        if (opts.signal?.aborted) {
          runner.free(out);
          loop.return(undefined as never); // frees the chain's current x
          opts.signal.throwIfAborted();
        }
        r = loop.next(out);
      }
      const { x, runner } = r.value;
      try {
        return {
          ...(await runner.readAsync(x)),
          backend: runner.backend,
          backendReason: runner.backendReason,
          timesteps: plan.map((k) => k.t),
        };
      } finally {
        runner.free(x);
      }
    },
    dispose() {
      for (const r of [...runners.values(), ...(noise ? [noise] : [])]) r.dispose();
    },
  };

  /**
   * The denoising chain as a generator of step inputs, so one loop serves the sync and the async driver; it returns
   * the final x (still on the device) for the driver to read (webgpu reads only asynchronously) and free.
   */
  function* chain({
    classes,
    draw = 0,
    params,
  }: SampleCallOptions): Generator<
    { runner: Runner; inputs: Record<string, NDArray | DeviceBuffer> },
    { x: DeviceBuffer | NDArray; runner: Runner },
    DeviceBuffer | NDArray
  > {
    const weights = params === undefined ? deviceParams : forRunner(paramInputsFor(params));
    if (guided && !classes) throw new Error(`sampler: cfgScale ${o.cfgScale} needs classes [${B}] for the conditional branch`);
    if (classes && classes.length !== B) throw new Error(`sampler: classes has ${classes.length} ids, the batch is ${B}`);
    const conditional = classes !== undefined;
    const step = stepRunner(conditional);
    const base = draw * (plan.length + 1);
    let x = yield { runner: noiseRunner(), inputs: { counter: scalar(base) } };
    const t = new Float64Array(B);
    let finished = false;
    try {
      for (const [i, k] of plan.entries()) {
        const inputs: Record<string, NDArray | DeviceBuffer> = { ...weights, x, t: vec(t.fill(k.t)), counter: scalar(base + i + 1) };
        for (const name of ['alpha', 'sigma', 'cX0', 'cEps', 'cXt', 'cNoise'] as const) inputs[name] = scalar(k[name]);
        if (conditional) inputs.c = vec(classes);
        const next = yield { runner: step, inputs };
        step.free(x);
        x = next;
      }
      finished = true;
      return { x, runner: step };
    } finally {
      if (!finished) step.free(x); // the driver stopped the chain early (an aborted sampleAsync)
    }
  }
};

/** One batch of samples: createSampler(options).sample(options). */
export const sample = (o: SamplerOptions & { classes?: ArrayLike<number>; draw?: number }): SampleResult => {
  const s = createSampler(o);
  try {
    return s.sample(o);
  } finally {
    s.dispose();
  }
};
