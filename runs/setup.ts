// From a validated run config to the things a run computes with: the data set and its per-step batches, the
// denoiser, the noise schedule and the objective. Pure construction; nothing here trains.
import type { NDArray } from '../core/ndarray.ts';
import { size } from '../core/shape.ts';
import type { Params, ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace, type Spec } from '../dsl/trace.ts';
import { unflatten } from '../dsl/tree.ts';
import { MAX_PLAN_BYTES, resolveBackend, WasmPlanError, type BackendName } from '../compiler/index.ts';
import { getDataset, type Dataset, type MnistSplit } from '../data/index.ts';
import { batches } from '../data/mnist.ts';
import { createDenoiser, type Denoiser } from '../models/index.ts';
import { cosineSchedule, linearSchedule, rescaleZeroTerminalSnr, scaledLinearSchedule, type Schedule } from '../models/schedule.ts';
import { dropCondition, mseObjective, selfPerceptualObjective, type Objective } from '../objectives/index.ts';
import { ConfigError, type RunConfig } from './config.ts';

export interface RunSetup {
  readonly config: RunConfig;
  readonly dataset: Dataset;
  readonly model: Denoiser;
  readonly schedule: Schedule;
  /** shape of one sample as the data set has it ([1,H,W] or [2]) */
  readonly sampleShape: readonly number[];
  /** number of classes of a conditional model (the null class is this id), undefined when unconditional */
  readonly numClasses: number | undefined;
}

export const buildSchedule = (c: RunConfig['schedule']): Schedule => {
  const base = c.kind === 'cosine' ? cosineSchedule(c.T) : c.kind === 'linear' ? linearSchedule(c.T) : scaledLinearSchedule(c.T);
  return c.zeroTerminalSnr ? rescaleZeroTerminalSnr(base) : base;
};

export const setupRun = (config: RunConfig): RunSetup => ({ ...buildModel(config), config, schedule: buildSchedule(config.schedule) });

/**
 * The data set and the denoiser a run config describes, without weights or schedule: what setupRun builds the
 * model from, and all a checkpoint's tensors are checked against (model.paramShapes(), no allocation).
 */
export const buildModel = (config: RunConfig): Pick<RunSetup, 'dataset' | 'model' | 'sampleShape' | 'numClasses'> => {
  const dataset = getDataset(config.data.name);
  const image = dataset.kind === 'image';
  const numClasses = !config.data.conditional ? undefined : image ? dataset.classes : dataset.mixture.coverageModes;
  const sampleShape = image ? [dataset.channels, dataset.size, dataset.size] : [2];
  const m = config.model;
  let model: Denoiser;
  if (m.kind === 'mlp') {
    // images go through the MLP flattened: [B,1,H,W] <-> [B,H*W] (toModel / toData below)
    model = createDenoiser({
      kind: 'mlp',
      dim: sampleShape.reduce((a, b) => a * b, 1),
      hidden: m.hidden,
      depth: m.depth,
      timeDim: m.timeDim,
      classDim: m.classDim,
      numClasses,
    });
  } else {
    if (!image) throw new ConfigError(`config.model.kind: a unet needs image data, but ${dataset.name} is 2-D points; use "mlp"`);
    const { kind: _k, ...rest } = m;
    model = createDenoiser({ kind: 'unet', channels: dataset.channels, imageSize: dataset.size, ...rest, numClasses });
  }
  return { dataset, model, sampleShape, numClasses };
};

/** Data-set layout [N, ...sampleShape] to the model's [N, ...dataShape] (same values, row-major). */
export const toModel = (s: RunSetup, x: NDArray): NDArray => ({ shape: [x.shape[0], ...s.model.dataShape], data: x.data });
/** The model's layout back to the data set's. */
export const toData = (s: RunSetup, x: NDArray): NDArray => ({ shape: [x.shape[0], ...s.sampleShape], data: x.data });

export interface StepBatch {
  readonly x0: NDArray;
  readonly c?: NDArray;
}

/** The class of each 2-D point: its mixture mode, or the null class when it is off the data. */
export const pointClasses = (s: RunSetup, points: NDArray): Float64Array => {
  if (s.dataset.kind !== 'points' || s.numClasses === undefined) throw new Error('pointClasses: needs a conditional 2-D run');
  const { mixture } = s.dataset;
  return Float64Array.from({ length: points.shape[0] }, (_, i) => {
    const k = mixture.assign(points.data[2 * i], points.data[2 * i + 1]);
    return k < 0 ? s.numClasses! : k;
  });
};

/** The MNIST split of a run (train or held-out test). */
export const mnistSplit = (s: RunSetup, split: 'train' | 'test'): MnistSplit => {
  if (s.dataset.kind !== 'image') throw new Error(`${s.dataset.name} is not an image data set`);
  return s.dataset.load({ split, testFraction: s.config.data.testFraction, seed: s.config.data.splitSeed });
};

/**
 * The batch of every step, a pure function of (seed, step): MNIST walks seeded epoch permutations, 2-D data draws
 * fresh points keyed by the step. This is what makes a resumed run see exactly the batches it would have seen.
 */
export const batchSource = (s: RunSetup): ((step: number) => StepBatch) => {
  const { batchSize: B, seed } = s.config.train;
  const conditional = s.numClasses !== undefined;
  if (s.dataset.kind === 'points') {
    const { mixture } = s.dataset;
    return (step) => {
      const x0 = mixture.sample(B, (seed * 1_000_003 + step) % 2 ** 31);
      return conditional ? { x0, c: { shape: [B], data: pointClasses(s, x0) } } : { x0 };
    };
  }
  const train = mnistSplit(s, 'train');
  const perEpoch = Math.floor(train.images.shape[0] / B);
  if (perEpoch < 1)
    throw new ConfigError(`config.train.batchSize ${B} is larger than the training split (${train.images.shape[0]} images)`);
  let epoch = -1;
  let list: { images: NDArray; labels?: Float64Array }[] = [];
  return (step) => {
    const e = Math.floor((step - 1) / perEpoch);
    if (e !== epoch) [epoch, list] = [e, [...batches(train, B, seed, e)]];
    const b = list[(step - 1) % perEpoch];
    const x0 = toModel(s, b.images);
    return conditional ? { x0, c: { shape: [B], data: b.labels! } } : { x0 };
  };
};

/** The loss of the config's objective; SP needs the frozen copy's weights (the stage-1 model). */
export const buildObjective = (s: RunSetup, frozenParams?: Params): Objective => {
  const o = s.config.objective;
  const { seed } = s.config.train;
  const common = { model: s.model, schedule: s.schedule, prediction: s.config.prediction, seed };
  const dropout = s.numClasses === undefined ? 0 : o.condDropout;
  if (o.kind === 'mse') return mseObjective({ ...common, minSnrGamma: o.minSnrGamma || undefined, condDropout: dropout });
  if (!frozenParams)
    throw new ConfigError('objective "sp" fine-tunes a trained model: give the stage-1 checkpoint (fusediff finetune --from <checkpoint>)');
  const { layer, tPrime, tPrimeOffset, distance, renoise, perceptual } = o;
  const sp = selfPerceptualObjective({ ...common, frozenParams, layer, tPrime, tPrimeOffset, distance, renoise, perceptual });
  // keep the null class trained during fine-tuning, so the SP model can still be guided (the SP+CFG rows)
  if (dropout === 0) return sp;
  return (args) => sp({ ...args, c: args.c && dropCondition(args.c, dropout, s.numClasses!, args.step, seed + 7) });
};

// ---- memory, estimated before anything is allocated -----------------------------------------------------------

/** A run that cannot fit in memory: refused before a weight is made or a kernel compiled, naming the fields that drive it. */
export class MemoryLimitError extends ConfigError {
  override name = 'MemoryLimitError';
}

export interface MemoryEstimate {
  /** the model's parameters (from the config's shapes, no weights made) */
  readonly parameters: number;
  /** values one sample adds to one forward pass (the forward traced on shapes alone) */
  readonly perSample: number;
  /** the batch the plan is compiled for */
  readonly batch: number;
  /** kernel memory: the compiled plan's f32 buffers, a lower bound (see KERNEL_FACTORS) */
  readonly kernelBytes: number;
  /** the part of kernelBytes that grows with the parameters, and the part that grows with the batch */
  readonly parameterBytes: number;
  readonly activationBytes: number;
  /** host memory besides the plan: float64 and float32 copies of weights, optimizer state and EMA, drawn samples */
  readonly hostBytes: number;
}

/**
 * Plan bytes per f32 value: kernel memory >= 4 (perParameter P + perActivation B A), with P the parameters, B the
 * batch and A the values one sample adds to a forward pass. Fitted on the wasm backend's plans of compiled training
 * steps and sampler steps (mlp and unet, the defaults and wider, deeper and larger-image variants; the wasm plan gives
 * every materialised value its own buffer): measured perParameter 10.0 (mlp) and 9.1 (unet) for an mse step
 * (parameters, gradients, Adam's m and v and the EMA, read and written), 9.9-11.2 for sp (plus the frozen copy);
 * perActivation 0.61-0.80 (mse), 1.03-1.36 (sp at one layer), 2.62 (sp at 'all' layers), 0.21-0.30 per sampler step
 * and 0.40-0.58 with guidance (a doubled batch). The factors below are the low ends, so an estimate is a lower bound:
 * 0.81-0.99 of the plan on those models (the 5.61 GB plan of an MNIST mlp of hidden 8192 was estimated at 5.1 GB),
 * down to 0.75 on tiny ones whose constants and alignment it leaves out. A refusal is never a run that would have fitted.
 */
const KERNEL_FACTORS = {
  mse: { perParameter: 9, perActivation: 0.6 },
  sp: { perParameter: 9.8, perActivation: 1 },
  spAll: { perParameter: 9.8, perActivation: 2.5 },
  sample: { perParameter: 1, perActivation: 0.2 },
  sampleGuided: { perParameter: 1, perActivation: 0.4 },
} as const;

const perSampleCache = new Map<string, number>();

/**
 * The values one sample adds to the model's forward pass: the forward traced (shapes only, no weights, no kernels)
 * at batch 2 less batch 1. A few ms for an mlp, ~250 ms for the MNIST unet; kept per model signature, since every
 * row of an experiment samples the same model.
 */
export const activationsPerSample = (model: Denoiser, conditional: boolean): number => {
  const key = `${conditional}|${model.signature}`;
  const known = perSampleCache.get(key);
  if (known !== undefined) return known;
  const params = unflatten(model.paramShapes().map(([p, shape]) => [p, [...shape]] as const)) as Spec;
  const values = (B: number): number => {
    const spec: Record<string, Spec> = { params, x: [B, ...model.dataShape], t: [B] };
    if (conditional) spec.c = [B];
    const g = trace((a) => {
      const { x, t, c } = a as Record<string, Tensor>;
      return model.apply((a as { params: ParamTensors<Params> }).params, x, t, c);
    }, spec);
    return g.nodes.reduce((n, node) => (node.op === 'input' || node.op === 'constant' ? n : n + size(node.shape)), 0);
  };
  const perSample = values(2) - values(1);
  if (perSampleCache.size >= 64) perSampleCache.clear();
  perSampleCache.set(key, perSample);
  return perSample;
};

const parameterCount = (model: Denoiser): number => model.paramShapes().reduce((n, [, shape]) => n + size(shape), 0);

/** The memory of a training step of this run: its compiled plan and the host copies of its state. */
export const estimateTrainMemory = (s: RunSetup): MemoryEstimate => {
  const o = s.config.objective;
  const k = o.kind === 'mse' ? KERNEL_FACTORS.mse : o.layer === 'all' ? KERNEL_FACTORS.spAll : KERNEL_FACTORS.sp;
  const P = parameterCount(s.model);
  const A = activationsPerSample(s.model, s.numClasses !== undefined);
  const B = s.config.train.batchSize;
  // weights and Adam's m and v as float64 trees (24 P) with their float32 device copies (16 P); sp keeps the frozen copy
  return estimateOf(k, P, A, B, (40 + (o.kind === 'sp' ? 8 : 0)) * P);
};

/** Kernel bytes as float32: the factor per parameter times P, and per activation times the batch's activations. */
const estimateOf = (
  k: { perParameter: number; perActivation: number },
  P: number,
  A: number,
  B: number,
  hostBytes: number,
): MemoryEstimate => {
  const parameterBytes = 4 * k.perParameter * P;
  const activationBytes = 4 * k.perActivation * B * A;
  return {
    parameters: P,
    perSample: A,
    batch: B,
    kernelBytes: parameterBytes + activationBytes,
    parameterBytes,
    activationBytes,
    hostBytes,
  };
};

/** The memory of drawing `count` samples in batches of `batchSize` (a guided sampler runs a doubled batch). */
export const estimateSampleMemory = (s: RunSetup, o: { count: number; batchSize: number; guided: boolean }): MemoryEstimate => {
  const k = o.guided ? KERNEL_FACTORS.sampleGuided : KERNEL_FACTORS.sample;
  const P = parameterCount(s.model);
  const A = activationsPerSample(s.model, s.numClasses !== undefined);
  const B = Math.min(o.batchSize, o.count);
  // the weights in float64 and float32; every sample in float64 (held for evaluation) and float32 (the samples file)
  const per = s.model.dataShape.reduce((a, b) => a * b, 1);
  return estimateOf(k, P, A, B, 12 * P + 12 * o.count * per);
};

const fmtBytes = (b: number): string =>
  b >= 1e9 ? `${(b / 1e9).toFixed(1)} GB` : b >= 1e6 ? `${(b / 1e6).toFixed(b >= 1e8 ? 0 : 1)} MB` : `${Math.ceil(b / 1e3)} kB`;
const fmtCount = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n));
const andList = (xs: readonly string[]): string => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

/** The config fields that size the model, with their values. */
const modelFields = (c: RunConfig): string[] =>
  c.model.kind === 'mlp'
    ? [`model.hidden=${c.model.hidden}`, `model.depth=${c.model.depth}`]
    : [
        `model.baseChannels=${c.model.baseChannels}`,
        `model.channelMults=[${c.model.channelMults.join(',')}]`,
        `model.numResBlocks=${c.model.numResBlocks}`,
      ];

/** The wasm backend's limit: one WebAssembly.Memory of 32-bit addresses kept below 2^31 (compiler/wasm/plan.ts). */
export const WASM_PLAN_LIMIT = MAX_PLAN_BYTES;

export interface MachineMemory {
  total: number;
  free: number;
}

type NodeProcess = {
  getBuiltinModule?: (id: string) => unknown;
  emitWarning?: (message: string, type: string) => void;
};
const nodeProcess = (): NodeProcess | undefined => (globalThis as { process?: NodeProcess }).process;

/** This machine's memory (Node's os.totalmem and os.freemem); undefined in a page, which cannot tell. */
export const machineMemory = (): MachineMemory | undefined => {
  const os = nodeProcess()?.getBuiltinModule?.('node:os') as { totalmem(): number; freemem(): number } | undefined;
  return os && { total: os.totalmem(), free: os.freemem() };
};

/**
 * Refuses (MemoryLimitError) a plan that cannot fit: on the wasm backend, kernel memory above what one
 * WebAssembly.Memory holds; on any backend, kernel memory held by the process (wasm's) plus the host copies above
 * the machine's memory. More than its free memory is a warning (other programs may give memory back). The message
 * names the fields that drive it: the model's sizes, and `batchField` where the batch's activations are a tenth or
 * more of the kernel memory, `countField` where the host memory is mostly samples.
 */
export const checkMemory = (
  s: RunSetup,
  e: MemoryEstimate,
  what: { task: string; batchField: string; countField?: [string, number]; backend: RunConfig['backend'] },
  machine: MachineMemory | undefined = machineMemory(),
): void => {
  let backend: BackendName | undefined;
  try {
    // under auto the untimed choice: a plan over wasm's limit is refused here even where a hardware adapter might
    // have taken it by timing (an estimate runs before anything compiles, so there is no timing to go by)
    backend = resolveBackend(what.backend).name;
  } catch {
    return; // an unavailable backend: compiling says so, with the reason
  }
  const kernelFields = [...modelFields(s.config)];
  if (e.activationBytes >= 0.1 * e.kernelBytes) kernelFields.push(`${what.batchField}=${e.batch}`);
  const kernelParts =
    `${fmtCount(e.parameters)} parameters: ${fmtBytes(e.parameterBytes)}; ` +
    `activations of ${e.batch} sample${e.batch === 1 ? '' : 's'}: ${fmtBytes(e.activationBytes)}`;
  if (backend === 'wasm' && e.kernelBytes > WASM_PLAN_LIMIT)
    throw new MemoryLimitError(
      `${andList(kernelFields)} need at least ${fmtBytes(e.kernelBytes)} of kernel memory for a ${what.task} (${kernelParts}); ` +
        `the wasm backend holds at most 2 GiB (${WASM_PLAN_LIMIT} bytes: one WebAssembly memory with 32-bit signed offsets). ` +
        `Lower ${kernelFields.length > 1 ? 'them' : 'it'}, or use a GPU backend (--backend webgpu)`,
    );
  const kernelOnHost = backend === 'wasm' ? e.kernelBytes : 0;
  const need = kernelOnHost + e.hostBytes;
  const fields = [...kernelFields];
  if (what.countField && e.hostBytes > kernelOnHost) fields.push(`${what.countField[0]}=${what.countField[1]}`);
  const parts = `${kernelOnHost ? `kernel memory ${fmtBytes(kernelOnHost)}, ` : ''}host copies ${fmtBytes(e.hostBytes)}`;
  if (!machine) return;
  if (need > machine.total)
    throw new MemoryLimitError(
      `${andList(fields)} need at least ${fmtBytes(need)} of memory for a ${what.task} (${parts}); ` +
        `this machine has ${fmtBytes(machine.total)} in all (${fmtBytes(machine.free)} free). Lower ${fields.length > 1 ? 'them' : 'it'}`,
    );
  if (need > machine.free)
    nodeProcess()?.emitWarning?.(
      `${andList(fields)} need at least ${fmtBytes(need)} of memory for a ${what.task} (${parts}), ` +
        `more than the ${fmtBytes(machine.free)} free of this machine's ${fmtBytes(machine.total)}: it may swap or be killed`,
      'MemoryWarning',
    );
};

/**
 * A compile that failed because the wasm backend cannot place the plan's buffers (the estimate above is a lower
 * bound, so a run near the limit gets here), as a MemoryLimitError naming the fields; else undefined.
 */
export const planLimitError = (
  err: unknown,
  s: RunSetup,
  what: { task: string; batchField: string; batch: number },
): MemoryLimitError | undefined => {
  const cause = err instanceof Error ? err.cause : undefined;
  if (!(err instanceof WasmPlanError || cause instanceof WasmPlanError)) return undefined;
  const bytes = Number(/take (\d+) bytes/.exec((cause instanceof WasmPlanError ? cause : (err as Error)).message)?.[1]);
  const fields = [...modelFields(s.config), `${what.batchField}=${what.batch}`];
  return new MemoryLimitError(
    `${andList(fields)} need ${Number.isFinite(bytes) ? fmtBytes(bytes) : 'more than 2 GiB'} of kernel memory for a ${what.task}; ` +
      `the wasm backend holds at most 2 GiB (${WASM_PLAN_LIMIT} bytes). Lower them, or use a GPU backend (--backend webgpu)`,
    { cause: err },
  );
};
