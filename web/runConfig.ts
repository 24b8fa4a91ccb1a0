// The page's run configuration, in the same JSON shape as the CLI's run config (train/config.ts: data, model,
// schedule, prediction, objective, train, sample, backend), stored in checkpoints as `config.run`, so a checkpoint
// made by `fusediff train` loads here and one downloaded here carries everything needed to rebuild its model.
import { mixtures, type Mixture2D, type MixtureName } from '../data/mixtures.ts';
import { createDenoiser, type Denoiser } from '../models/denoiser.ts';
import { cosineSchedule, linearSchedule, rescaleZeroTerminalSnr, scaledLinearSchedule, type Schedule } from '../models/schedule.ts';

export const mixtureNames = Object.keys(mixtures) as MixtureName[];
export const isMixtureName = (n: unknown): n is MixtureName => typeof n === 'string' && Object.prototype.hasOwnProperty.call(mixtures, n);

export type Prediction = 'eps' | 'v' | 'x0';
export type ObjectiveKind = 'mse' | 'sp';

export interface PageRun {
  data: { name: MixtureName; conditional: boolean; testFraction: number; splitSeed: number };
  model: { kind: 'mlp'; hidden: number; depth: number; timeDim: number; classDim: number };
  schedule: { kind: 'cosine' | 'linear' | 'scaledLinear'; T: number; zeroTerminalSnr: boolean };
  prediction: Prediction;
  objective: { kind: ObjectiveKind; minSnrGamma: number; condDropout: number; layer: string; tPrime: 'uniform' | 'same'; distance: 'mse' | 'mae' };
  train: { steps: number; batchSize: number; lr: number; weightDecay: number; emaDecay: number; seed: number; checkpointEvery: number; initFrom: 'ema' | 'params' };
  sample: { sampler: 'ddim' | 'ddpm'; steps: number; eta: number; count: number; batchSize: number; cfgScales: number[]; seed: number; weights: 'ema' | 'params' };
  backend: string;
}

/**
 * The page's defaults: the CLI's 2-D defaults (an MLP of width 128, batch 256, class = mixture mode with 10%
 * condition dropout), but with the paper's parameterisation: v-prediction on a cosine schedule rescaled to zero
 * terminal SNR, and the current weights (not the EMA) for sampling and for SP's frozen copy: runs here are a few
 * hundred steps, and compileStep's EMA starts at the initial weights without warm-up, so for the first ~3/(1 - decay)
 * steps it is dominated by them. The EMA is still kept, so checkpoints carry one. (With eps-prediction on the plain cosine schedule alpha_T is 5e-5, so x0_hat = (x_t - sigma eps)/alpha
 * amplifies the model's error 20,000-fold near t = T: the SP objective, which re-noises x0_hat, then diverges.)
 */
export const defaultRun = (name: MixtureName = 'eightGaussians'): PageRun => ({
  data: { name, conditional: true, testFraction: 0.2, splitSeed: 0 },
  model: { kind: 'mlp', hidden: 128, depth: 3, timeDim: 32, classDim: 16 },
  schedule: { kind: 'cosine', T: 1000, zeroTerminalSnr: true },
  prediction: 'v',
  objective: { kind: 'mse', minSnrGamma: 0, condDropout: 0.1, layer: 'mid', tPrime: 'uniform', distance: 'mse' },
  train: { steps: 2000, batchSize: 256, lr: 3e-3, weightDecay: 0, emaDecay: 0.99, seed: 0, checkpointEvery: 250, initFrom: 'params' },
  sample: { sampler: 'ddim', steps: 50, eta: 0, count: 1000, batchSize: 1000, cfgScales: [1], seed: 1, weights: 'params' },
  backend: 'webgl2',
});

export const mixtureOf = (run: PageRun): Mixture2D => mixtures[run.data.name];

/** Number of classes of a conditional run (the mixture's coverage modes; the null class is this id), as the CLI does. */
export const numClassesOf = (run: PageRun): number | undefined => (run.data.conditional ? mixtureOf(run).coverageModes : undefined);

/** The denoiser of a run, built exactly as the CLI builds a 2-D run's model (train/setup.ts). */
export const buildModel = (run: PageRun): Denoiser =>
  createDenoiser({ kind: 'mlp', dim: 2, hidden: run.model.hidden, depth: run.model.depth, timeDim: run.model.timeDim, classDim: run.model.classDim, numClasses: numClassesOf(run) });

export const buildSchedule = (c: PageRun['schedule']): Schedule => {
  const base = c.kind === 'cosine' ? cosineSchedule(c.T) : c.kind === 'linear' ? linearSchedule(c.T) : scaledLinearSchedule(c.T);
  return c.zeroTerminalSnr ? rescaleZeroTerminalSnr(base) : base;
};

// ---- reading a run back from checkpoint metadata ---------------------------------------------------------------

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

export type RunFromConfig = { ok: true; run: PageRun } | { ok: false; why: string };

/**
 * The run a checkpoint's metadata config describes, when it is a 2-D MLP the page can build: the CLI's
 * `{ run: RunConfig, ... }`, or a bare run config. Fields the page does not need fall back to its defaults;
 * anything that decides the model (data set, conditioning, sizes, schedule, parameterisation) must be there.
 */
export const runFromConfig = (config: unknown): RunFromConfig => {
  const run = isRecord(config) && isRecord(config.run) ? config.run : config;
  if (!isRecord(run)) return { ok: false, why: 'its metadata has no run config' };
  const { data, model, schedule, prediction } = run;
  if (!isRecord(data) || typeof data.name !== 'string') return { ok: false, why: 'its run config names no data set (config.run.data.name)' };
  if (!isMixtureName(data.name)) return { ok: false, why: `it was trained on '${data.name}', and this page trains the 2-D data sets (${mixtureNames.join(', ')})` };
  if (!isRecord(model) || model.kind !== 'mlp') return { ok: false, why: `its model is ${isRecord(model) ? `a '${String(model.kind)}'` : 'not described'}, and this page builds MLP denoisers` };
  for (const k of ['hidden', 'depth', 'timeDim', 'classDim'] as const) if (!posInt(model[k])) return { ok: false, why: `its model config has no valid ${k} (got ${JSON.stringify(model[k])})` };
  if (!isRecord(schedule) || !['cosine', 'linear', 'scaledLinear'].includes(schedule.kind as string) || !posInt(schedule.T) || typeof schedule.zeroTerminalSnr !== 'boolean')
    return { ok: false, why: `its schedule config is not one the page knows (${JSON.stringify(schedule)})` };
  if (prediction !== 'eps' && prediction !== 'v' && prediction !== 'x0') return { ok: false, why: `its prediction is not eps, v or x0 (got ${JSON.stringify(prediction)})` };
  const base = defaultRun(data.name);
  const pick = <T extends Record<string, unknown>>(defaults: T, given: unknown): T =>
    isRecord(given) ? (Object.fromEntries(Object.entries(defaults).map(([k, v]) => [k, typeof given[k] === typeof v && (Array.isArray(v) === Array.isArray(given[k])) ? given[k] : v])) as T) : defaults;
  return {
    ok: true,
    run: {
      ...base,
      data: { ...base.data, name: data.name, conditional: data.conditional === true },
      model: { kind: 'mlp', hidden: model.hidden as number, depth: model.depth as number, timeDim: model.timeDim as number, classDim: model.classDim as number },
      schedule: { kind: schedule.kind as PageRun['schedule']['kind'], T: schedule.T as number, zeroTerminalSnr: schedule.zeroTerminalSnr as boolean },
      prediction,
      objective: pick(base.objective, run.objective),
      train: pick(base.train, run.train),
      sample: pick(base.sample, run.sample),
    },
  };
};
