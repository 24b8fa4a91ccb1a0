// compileStep: one compiled plan for forward + backward + optimizer update. Parameters and optimizer state stay
// on the device between steps (the plan's outputs become the next step's inputs); only the loss is read back.
import { valueAndGrad, gradName } from '../transforms/grad.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { fmt, size } from '../core/shape.ts';
import type { Optimizer } from '../dsl/optim.ts';
import { paramSpec, type Params, type ParamTensors } from '../dsl/params.ts';
import type { MutableShape, Shape } from '../dsl/shapeTypes.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { call, isNDArray, isTensor, trace, type Spec } from '../dsl/trace.ts';
import { flatten, unflatten } from '../dsl/tree.ts';
import { compile, release, type CompileOptions, type DeviceBuffer, type Executable } from '../compiler/index.ts';
import { emaDecayAt, emaUpdate } from './ema.ts';

/**
 * What the loss function receives: the parameters (the tensors of the tree P), the 1-based step counter (e.g. for
 * noise) and the data, each a tensor of its declared shape (`data: { x: [16, 2] }` gives `x: Tensor<[16, 2]>`).
 */
export type StepArgs<D extends Record<string, Shape>, P = Params> = {
  params: ParamTensors<P>;
  step: Tensor<[]>;
  /** the parameters' EMA before this step's update (with `emaInLoss`; not differentiated) */
  ema?: ParamTensors<P>;
} & {
  -readonly [K in keyof D]: Tensor<MutableShape<D[K]>>;
};

/** Options of `compileStep`: the initial parameters, the optimizer, the data shapes, the EMA, and `compile`'s options. */
export interface StepOptions<D extends Record<string, Shape>, P extends Params = Params> extends CompileOptions {
  /** the initial parameters (their tree and shapes fix the step's) */
  params: P;
  /** `adam(...)` or `sgd(...)`; its update is traced into the step */
  optimizer: Optimizer;
  /** shapes of the per-step data inputs */
  data: D;
  /** the counter of the first step (default 1); a resumed run passes its next step */
  startStep?: number;
  /**
   * keep an exponential moving average of the parameters, updated in the same plan: ema = d_n ema + (1 - d_n) params
   * at step n, where d_n = min(emaDecay, (1 + n) / (10 + n)) with the warm-up (the default), else emaDecay
   */
  emaDecay?: number;
  /** the EMA's warm-up (default true): early averages are not dominated by the initial weights */
  emaWarmup?: boolean;
  /** the loss reads the EMA (`args.ema`), e.g. as the perceptual network of an SP ablation; needs `emaDecay` */
  emaInLoss?: boolean;
  /** optimizer state and EMA to resume from (default: the optimizer's init and a copy of params) */
  initialState?: { state?: Params; ema?: Params };
}

/** A compiled training step (`compileStep`): run it on each batch of data; parameters and state stay on the device. */
export interface TrainStep<P extends Params = Params> {
  /** the compiled plan: `executable.backend` names the backend it runs on, `executable.backendReason` says why */
  readonly executable: Executable;
  /** the next step's counter */
  readonly step: number;
  /** Runs one step on the device and returns the loss (the only readback). */
  run(data: Readonly<Record<string, NDArray | ArrayLike<number>>>): number;
  /**
   * The same step, awaiting kernels: on webasm large kernels then run on gpu.js's worker threads. On webgpu (which
   * has only this) calls may overlap: each step is submitted as soon as the one before it has been (its state as
   * input), and its loss is read with mapAsync while later steps run, so the GPU does not wait for the readback. The
   * state a step replaced is kept until its loss is known finite; a non-finite loss restores the state from before
   * that step, and steps submitted after it reject too (none of their updates is kept).
   */
  runAsync(data: Readonly<Record<string, NDArray | ArrayLike<number>>>): Promise<number>;
  /** Reads the parameters back to the host (on webgpu: use readAsync). */
  params(): P;
  /** Parameters, optimizer state and EMA (empty without `emaDecay`) read back without blocking; the way on webgpu. */
  readAsync(): Promise<{ params: P; state: Params; ema: P }>;
  /** Reads the optimizer state back to the host. */
  state(): Params;
  /** Reads the parameters' EMA back to the host (with `emaDecay`). */
  ema(): P;
  /** Device buffers (parameters, optimizer state) this step holds between runs. */
  liveBuffers(): number;
  /** Frees the device-resident state and the compiled plan; runs and reads afterwards throw. */
  dispose(): void;
}

/** Thrown by a step whose loss is NaN or infinite; that step's update is not applied (the state stays as before it). */
export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly loss: number,
  ) {
    super(`step ${step}: the loss is ${loss}; rerun with { checkNaN: true } to name the first kernel that produced a non-finite value`);
    this.name = 'NonFiniteLossError';
  }
}

const RESERVED = ['params', 'state', 'ema', 'step'];

/**
 * Compiles a whole training step into one plan: the loss, its gradient in the parameters and the optimizer update
 * (and with `emaDecay` an EMA of the weights). The new parameters and state stay on the device as the next step's
 * inputs; `run(data)` returns the loss, the only readback. The loss gets `StepArgs`: the parameters' tensors, the
 * 1-based step counter (keying in-graph noise, so a resumed run replays exactly) and the data.
 */
export const compileStep = <const D extends Record<string, Shape>, P extends Params = Params>(
  loss: (args: StepArgs<D, P>) => Tensor,
  options: StepOptions<D, P>,
): TrainStep<P> => stepOnGraph(traceStep(loss, options), options);

/** A training step traced but not compiled: its graph and the state it starts from (compileStepAuto keys on the graph). */
export interface TracedStep {
  readonly graph: Graph;
  readonly state0: Params;
  readonly ema0?: Params;
}

/** compileStep's first half: checks the options and traces loss, gradient, optimizer update and EMA into one graph. */
export const traceStep = <const D extends Record<string, Shape>, P extends Params = Params>(
  loss: (args: StepArgs<D, P>) => Tensor,
  options: StepOptions<D, P>,
): TracedStep => {
  const { params, optimizer, data } = options;
  for (const k of Object.keys(data))
    if (RESERVED.includes(k)) throw new Error(`compileStep: data input '${k}' clashes with a reserved name (${RESERVED.join(', ')})`);
  const pSpec = paramSpec(params) as Spec;
  const decay = options.emaDecay;
  if (decay !== undefined && !(decay >= 0 && decay < 1)) throw new Error(`compileStep: emaDecay must be in [0, 1), got ${decay}`);
  const emaInLoss = options.emaInLoss ?? false;
  if (emaInLoss && decay === undefined) throw new Error('compileStep: emaInLoss needs emaDecay (there is no EMA to read)');
  const lossSpec = { params: pSpec, ...(emaInLoss ? { ema: pSpec } : {}), step: [], ...data } as Record<string, Spec>;
  const lossGraph = trace((a) => loss(a as unknown as StepArgs<D, P>), lossSpec);
  // only the parameters are differentiated: the EMA is an input the loss reads, like the data
  const vg = valueAndGrad(lossGraph, ['params']);
  const state0 = options.initialState?.state ?? optimizer.init(params);
  const ema0 = decay === undefined ? undefined : (options.initialState?.ema ?? params);
  const stepGraph = trace(
    (a) => {
      const args = a as unknown as { params: ParamTensors<Params>; state: ParamTensors<Params>; ema?: ParamTensors<Params>; step: Tensor };
      const flatIn = Object.fromEntries(
        flatten(a as never, isTensor).filter(([n]) => !(emaInLoss ? /^state(\.|$)/ : /^(state|ema)(\.|$)/).test(n)),
      );
      const outs = call(vg, flatIn);
      const grads = unflatten(
        flatten(args.params as never, isTensor).map(([p]) => [p, outs[gradName(`params.${p}`)]] as const),
      ) as ParamTensors<Params>;
      const next = optimizer.update(args.params, grads, args.state ?? ({} as ParamTensors<Params>), args.step);
      const result: Record<string, unknown> = { loss: outs[vg.outputs[0].name], params: next.params, state: next.state };
      // the decay is a function of the step input, so a resumed run (fed its next step) continues bit for bit
      if (args.ema && decay !== undefined)
        result.ema = emaUpdate(args.ema, next.params, emaDecayAt(args.step, decay, options.emaWarmup ?? true));
      return result as never;
    },
    { params: pSpec, state: paramSpec(state0) as Spec, ...(ema0 ? { ema: pSpec } : {}), step: [], ...data } as Record<string, Spec>,
  );
  return { graph: stepGraph, state0, ema0 };
};

/** compileStep's second half: compiles a traced step (for `options.backend`) and keeps its state on the device. */
export const stepOnGraph = <const D extends Record<string, Shape>, P extends Params = Params>(
  traced: TracedStep,
  options: StepOptions<D, P>,
): TrainStep<P> => {
  const { graph: stepGraph, state0, ema0 } = traced;
  const { params, data } = options;
  // every output but the loss is the next step's input of the same name: on the wasm backend it never leaves the
  // plan's memory (feedback), on GL it stays in its texture
  const stateNames = stepGraph.outputs.map((o) => o.name).filter((n) => n !== 'loss');
  const executable = compile(stepGraph, {
    ...options,
    feedback: Object.fromEntries(stateNames.map((n) => [n, n])),
    // webgpu adopts the new state on the GPU, in the step's own submission, only when the loss is finite
    feedbackGate: 'loss',
  });
  const gated = executable.runGated !== undefined;
  const inPlace = executable.adoptFeedback !== undefined || gated;

  // device-resident state: parameter and optimizer buffers by input name (on wasm: the first run's inputs only)
  const resident = new Map<string, DeviceBuffer>();
  for (const [p, v] of flatten(params, isNDArray)) resident.set(`params.${p}`, Float32Array.from(v.data));
  for (const [p, v] of flatten(state0, isNDArray)) resident.set(`state.${p}`, Float32Array.from(v.data));
  if (ema0) for (const [p, v] of flatten(ema0, isNDArray)) resident.set(`ema.${p}`, Float32Array.from(v.data));
  let step = options.startStep ?? 1;
  const shapes = executable.inputs;

  const readTree = (prefix: string): Params => {
    if (executable.disposed) throw new Error(`step: cannot read ${prefix}: this step was disposed`);
    return unflatten(
      stateNames
        .filter((n) => n.startsWith(`${prefix}.`))
        .map((n) => {
          const shape = shapes.get(n)!;
          const data = resident.has(n) ? executable.read(resident.get(n)!, shape) : executable.readInput!(n);
          return [n.slice(prefix.length + 1), { shape, data: Float64Array.from(data) }] as const;
        }),
    ) as Params;
  };

  const readTreeAsync = async (prefix: string): Promise<Params> => {
    if (executable.disposed) throw new Error(`step: cannot read ${prefix}: this step was disposed`);
    const entries: [string, NDArray][] = [];
    for (const n of stateNames.filter((n) => n.startsWith(`${prefix}.`))) {
      const shape = shapes.get(n)!;
      const data = resident.has(n)
        ? await executable.readAsync(resident.get(n)!, shape)
        : executable.readInputAsync
          ? await executable.readInputAsync(n)
          : executable.readInput!(n);
      entries.push([n.slice(prefix.length + 1), { shape, data: Float64Array.from(data) }]);
    }
    return unflatten(entries) as Params;
  };

  const inputsFor = (batch: Readonly<Record<string, NDArray | ArrayLike<number>>>) => {
    const unknown = Object.keys(batch).filter((k) => !Object.hasOwn(data, k));
    const missing = Object.keys(data).filter((k) => batch[k] === undefined);
    if (missing.length || unknown.length)
      throw new Error(
        `step: ${[
          ...missing.map((k) => `missing data input '${k}' of shape ${fmt(data[k])}`),
          ...(unknown.length ? [`unknown input${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}`] : []),
        ].join('; ')} (the step's data inputs: ${Object.keys(data).join(', ')})`,
      );
    for (const k of Object.keys(data)) {
      const v = batch[k];
      const n = 'data' in (v as NDArray) ? (v as NDArray).data.length : (v as ArrayLike<number>).length;
      if (n !== size(data[k]))
        throw new Error(`step: data input '${k}' has ${n} values, expected shape ${fmt(data[k])} (${size(data[k])})`);
    }
    return { ...Object.fromEntries(resident), ...batch, step: Float32Array.of(step) };
  };

  /** Reads the loss; when finite, adopts the new state (freeing replaced textures) and advances the counter. */
  const commit = (out: Record<string, DeviceBuffer>, loss?: number): number => {
    // wasm: the run wrote the state into the plan's memory, where it stays; the host copies are not needed again
    if (inPlace) resident.clear();
    const value = loss ?? executable.read(out.loss, [])[0];
    if (!Number.isFinite(value)) throw new NonFiniteLossError(step, value); // the update is not applied
    if (inPlace) {
      executable.adoptFeedback!();
      step++;
      return value;
    }
    const kept = new Set(
      Object.entries(out)
        .filter(([n]) => n !== 'loss')
        .map(([, b]) => b),
    );
    for (const [name, buf] of Object.entries(out)) {
      if (name === 'loss') continue;
      const old = resident.get(name);
      resident.set(name, buf);
      if (old && !kept.has(old) && ![...resident.values()].includes(old)) release(old);
    }
    if (!kept.has(out.loss)) release(out.loss);
    step++;
    return value;
  };

  // gpujs-webgpu: submissions in order, one after another; a rollback bumps the epoch, and steps of an older epoch reject
  let submitted: Promise<unknown> = Promise.resolve();
  let epoch = 0;

  // webgpu (WGSL): each step is submitted at once, its state adopted on the GPU when its loss is finite; a non-finite
  // loss leaves the state of the step before it (later steps submitted meanwhile adopt nothing and reject), and the
  // counter goes back to it
  const runGated = async (batch: Readonly<Record<string, NDArray | ArrayLike<number>>>): Promise<number> => {
    const mine = epoch;
    const at = step;
    const given = inputsFor(batch);
    resident.clear(); // the first run wrote the initial state into the plan; it stays there
    step++;
    const loss = await executable.runGated!(given, 'loss');
    if (epoch !== mine) throw new Error('step: discarded, an earlier step of this batch had a non-finite loss');
    if (!Number.isFinite(loss)) {
      epoch++;
      step = at;
      executable.resetGate!();
      throw new NonFiniteLossError(at, loss); // the update is not applied
    }
    return loss;
  };
  const releaseUnless = (buffers: Iterable<DeviceBuffer>, keep: Set<DeviceBuffer>) => {
    for (const b of new Set(buffers)) if (!keep.has(b)) release(b);
  };
  const runOverlapped = async (batch: Readonly<Record<string, NDArray | ArrayLike<number>>>): Promise<number> => {
    const mine = epoch;
    const turn = submitted.then(async () => {
      if (epoch !== mine) throw new Error('step: discarded, an earlier step of this batch had a non-finite loss');
      const before = new Map(resident);
      const at = step;
      const out = await executable.runDeviceAsync(inputsFor(batch));
      for (const [name, buf] of Object.entries(out)) if (name !== 'loss') resident.set(name, buf);
      step++;
      return { out, before, at };
    });
    submitted = turn.catch(() => {});
    const { out, before, at } = await turn;
    const loss = (await executable.readAsync(out.loss, []))[0];
    const state = new Set(resident.values());
    releaseUnless([out.loss], state);
    if (epoch !== mine) {
      // rolled back under it: neither its outputs nor the state it read are anyone's state now
      releaseUnless([...Object.values(out), ...before.values()], state);
      throw new Error('step: discarded, an earlier step of this batch had a non-finite loss');
    }
    if (!Number.isFinite(loss)) {
      epoch++;
      const now = [...resident.values()];
      for (const [name, buf] of before) resident.set(name, buf);
      step = at;
      releaseUnless(now, new Set(before.values()));
      throw new NonFiniteLossError(at, loss); // the update is not applied
    }
    releaseUnless(before.values(), state); // the state this step replaced
    return loss;
  };

  const self: TrainStep<P> = {
    executable,
    get step() {
      return step;
    },
    run(batch) {
      return commit(executable.runDevice(inputsFor(batch)));
    },
    async runAsync(batch) {
      if (gated) return runGated(batch);
      if (executable.backend === 'gpujs-webgpu') return runOverlapped(batch);
      const out = await executable.runDeviceAsync(inputsFor(batch));
      return commit(out, (await executable.readAsync(out.loss, []))[0]);
    },
    params: () => readTree('params') as P,
    readAsync: async () => {
      await submitted; // the state of the last step submitted
      return {
        params: (await readTreeAsync('params')) as P,
        state: await readTreeAsync('state'),
        ema: (ema0 ? await readTreeAsync('ema') : {}) as P,
      };
    },
    liveBuffers: () => (inPlace ? (executable.disposed ? 0 : stateNames.length) : new Set(resident.values()).size),
    state: () => readTree('state'),
    ema: () => {
      if (!ema0) throw new Error('step: no EMA is kept; compile with { emaDecay }');
      return readTree('ema') as P;
    },
    dispose: () => {
      if (executable.disposed) return;
      // the textures before the plan: deleting one asks the kernel that made it
      for (const b of new Set(resident.values())) release(b);
      resident.clear();
      executable.dispose();
    },
  };

  // timing before the first step (compileStepAuto): the state after the timed runs is not kept, since the first real
  // run writes the initial state again (`resident` still holds it): wasm adopts nothing without adoptFeedback, and
  // webgpu's timed runs adopt on the GPU only what that first run overwrites
  timers.set(self as TrainStep, async (batch, runs) => {
    if (!(gated || executable.adoptFeedback) || step !== (options.startStep ?? 1) || resident.size === 0)
      throw new Error('timeSteps: only a wasm or webgpu step that has not run yet can be timed');
    const once = async (given: Readonly<Record<string, NDArray | ArrayLike<number>>>): Promise<number> => {
      if (gated) return executable.runGated!(given, 'loss');
      const out = executable.runDevice(given);
      return executable.read(out.loss, [])[0];
    };
    await once(inputsFor(batch)); // a warm-up that also writes the state into the plan
    // later runs send only the batch and the counter, as a real step does after its first
    const later = { ...batch, step: Float32Array.of(step) };
    const t0 = performance.now();
    // webgpu's runs overlap as trainWhile's do: each submitted before the loss of the one before it is read
    if (gated) await Promise.all(Array.from({ length: runs }, () => once(later)));
    else for (let i = 0; i < runs; i++) await once(later);
    const ms = (performance.now() - t0) / runs;
    executable.resetGate?.();
    return ms;
  });
  return self;
};

const timers = new WeakMap<TrainStep, (batch: Readonly<Record<string, NDArray | ArrayLike<number>>>, runs: number) => Promise<number>>();

/**
 * Milliseconds per step of a compiled step that has not run yet, over `runs` steps on `batch` after one warm-up; the
 * step's state and counter are as before (its first run starts from its initial state). wasm and webgpu only.
 */
export const timeSteps = (s: TrainStep, batch: Readonly<Record<string, NDArray | ArrayLike<number>>>, runs = 3): Promise<number> => {
  const t = timers.get(s);
  if (!t) throw new Error('timeSteps: not a step compiled by compileStep');
  return t(batch, runs);
};
