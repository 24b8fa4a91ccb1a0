// The page's run configuration IS the CLI's run config (runs/config.ts), stored in checkpoints as `config.run`:
// a checkpoint made by `fusediff train` loads here, one downloaded here carries everything needed to rebuild its
// model, and the model, schedule, batches and objective are built by the same code as the CLI's (runs/setup.ts).
import { mixtures, type Mixture2D, type MixtureName } from '../data/mixtures.ts';
import { decodeConfig, defaultConfig, merge, type RunConfig } from '../runs/config.ts';

export const mixtureNames = Object.keys(mixtures) as MixtureName[];
export const isMixtureName = (n: unknown): n is MixtureName => typeof n === 'string' && Object.prototype.hasOwnProperty.call(mixtures, n);

export type ObjectiveKind = RunConfig['objective']['kind'];
/** A run config whose model is an MLP: what the page builds. */
export type PageRun = RunConfig & { model: Extract<RunConfig['model'], { kind: 'mlp' }> };

const isPageRun = (c: RunConfig): c is PageRun => c.model.kind === 'mlp';

/**
 * The page's defaults: the CLI's 2-D defaults (an MLP of width 128, batch 256, class = mixture mode with 10%
 * condition dropout, v-prediction), but on a cosine schedule rescaled to zero terminal SNR (the paper's setup), and
 * with the current weights (not the EMA) for sampling and for SP's frozen copy: runs here are a few hundred steps,
 * and compileStep's EMA starts at the initial weights without warm-up, so for the first ~3/(1 - decay) steps it is
 * dominated by them. The EMA is still kept, so checkpoints carry one. (With eps-prediction on the plain cosine
 * schedule alpha_T is 5e-5, so x0_hat = (x_t - sigma eps)/alpha amplifies the model's error 20,000-fold near
 * t = T: the SP objective, which re-noises x0_hat, then diverges.)
 */
export const defaultRun = (name: MixtureName = 'eightGaussians'): PageRun => {
  const c = defaultConfig(name);
  if (!isPageRun(c)) throw new Error(`the CLI's defaults for '${name}' are not an MLP run`);
  return {
    ...c,
    schedule: { ...c.schedule, zeroTerminalSnr: true },
    train: { ...c.train, lr: 3e-3, emaDecay: 0.99, initFrom: 'params' },
    sample: { ...c.sample, count: 1000, batchSize: 1000, cfgScales: [1], weights: 'params' },
    backend: 'webgl2',
  };
};

export const mixtureOf = (run: PageRun): Mixture2D => {
  if (!isMixtureName(run.data.name))
    throw new Error(`the playground trains the 2-D data sets (${mixtureNames.join(', ')}), not '${run.data.name}'`);
  return mixtures[run.data.name];
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export type RunFromConfig = { ok: true; run: PageRun } | { ok: false; why: string };

/**
 * The run a checkpoint's metadata config describes, when it is a 2-D MLP the page can build: the CLI's
 * `{ run: RunConfig, ... }`, or a bare run config, over the page's defaults and validated by the CLI's codec. The
 * backend stays the page's choice.
 */
export const runFromConfig = (config: unknown): RunFromConfig => {
  const run = isRecord(config) && isRecord(config.run) ? config.run : config;
  if (!isRecord(run)) return { ok: false, why: 'its metadata has no run config' };
  const name = isRecord(run.data) ? run.data.name : undefined;
  if (typeof name !== 'string') return { ok: false, why: 'its run config names no data set (config.run.data.name)' };
  if (!isMixtureName(name))
    return { ok: false, why: `it was trained on '${name}', and this page trains the 2-D data sets (${mixtureNames.join(', ')})` };
  const base = defaultRun(name);
  let decoded: RunConfig;
  try {
    decoded = decodeConfig(merge(base, { ...run, backend: base.backend }), 'its run config');
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
  if (!isPageRun(decoded)) return { ok: false, why: `its model is a '${decoded.model.kind}', and this page builds MLP denoisers` };
  return { ok: true, run: decoded };
};
