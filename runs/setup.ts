// From a validated run config to the things a run computes with: the data set and its per-step batches, the
// denoiser, the noise schedule and the objective. Pure construction; nothing here trains.
import type { NDArray } from '../core/ndarray.ts';
import type { Params } from '../dsl/params.ts';
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

export const setupRun = (config: RunConfig): RunSetup => {
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
  return { config, dataset, model, schedule: buildSchedule(config.schedule), sampleShape, numClasses };
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
