// Runs an experiment spec end to end: stage 1 (load or train), fine-tunes, sampling and evaluation of every row,
// pictures, and the report. Each step is an ordinary command's building block (runTraining, drawSamples, ...).
import fs from 'node:fs';
import path from 'node:path';
import { loadCheckpoint, sameSignature, SignatureMismatchError, type Checkpoint } from '../storage/checkpoint.ts';
import type { NDArray } from '../core/ndarray.ts';
import { resolveBackend } from '../compiler/index.ts';
import type { Json, RunConfig } from '../runs/config.ts';
import { finetuneBase, resolveConfig } from '../runs/config.ts';
import { setupRun } from '../runs/setup.ts';
import { loadRunCheckpoint, StoredConfig } from '../runs/trainer.ts';
import { runTraining, trainingSummary } from '../runs/runTraining.ts';
import { progressBar } from '../runs/progress.ts';
import { drawSamples } from './sample.ts';
import { evaluateSamples, type Metrics } from './evaluate.ts';
import { lossPicture, rowsCfgPicture, samplePicture } from './pictures.ts';
import type { DatasetSpec, ExperimentSpec } from './spec.ts';
import { overSeeds, type SeedSummary } from './seeds.ts';

export interface ModelReport {
  name: string;
  /** the fine-tune's train.seed, when the experiment has seeds */
  seed?: number;
  checkpoint: string;
  /** 'committed' (loaded) or 'trained' (in this run) */
  source: 'committed' | 'trained';
  steps: number;
  seconds?: number;
  lossFirst?: number;
  lossLast?: number;
  /** the loss of every step trained here (not written to report.json; each run folder has losses.json) */
  losses?: number[];
  config: RunConfig;
}

export interface RowReport {
  dataset: string;
  name: string;
  model: string;
  cfgScale: number;
  /** one run's metrics, or with seeds the mean over them (`seeds` has the rest) */
  metrics: Metrics;
  /** with several seeds: each seed's metrics and the 95% interval of every metric's mean */
  seeds?: SeedSummary;
  picture: string;
  sampleSeconds: number;
  backend: string;
  /** the samples themselves (not written to report.json) */
  samples?: NDArray;
  classes?: Int32Array;
}

export interface DatasetReport {
  dataset: string;
  models: ModelReport[];
  rows: RowReport[];
  /** the loss curves of the models trained here and each metric against the CFG scale, next to the row pictures */
  pictures?: { loss?: string; cfg?: string };
}

export interface ExperimentReport {
  name: string;
  backend: string;
  backendReason: string;
  startedAt: string;
  seconds: number;
  command: string;
  datasets: DatasetReport[];
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);

/** A model trained in this run; its loss is summarised by the mean of the first and of the last `window` steps. */
const trainedModel = (
  name: string,
  seed: number | undefined,
  r: Awaited<ReturnType<typeof runTraining>>,
  config: RunConfig,
  window: number,
): ModelReport => ({
  name,
  seed,
  checkpoint: r.checkpoint,
  source: 'trained',
  steps: r.step,
  seconds: r.seconds,
  lossFirst: mean(r.losses.slice(0, window)),
  lossLast: mean(r.losses.slice(-window)),
  losses: r.losses,
  config,
});

const runDataset = async (
  spec: DatasetSpec,
  e: ExperimentSpec,
  dir: string,
  opts: { trainStage1: boolean; quiet: boolean },
): Promise<DatasetReport> => {
  fs.mkdirSync(dir, { recursive: true });
  const models = new Map<string, ModelReport>();
  const log = (m: string) => !opts.quiet && console.error(`[${spec.dataset}] ${m}`);
  // ---- stage 1
  let stage1: ModelReport;
  if (spec.stage1Checkpoint && fs.existsSync(spec.stage1Checkpoint) && !opts.trainStage1) {
    const ck = loadCheckpoint(spec.stage1Checkpoint, { configCodec: StoredConfig });
    stage1 = { name: 'stage1', checkpoint: spec.stage1Checkpoint, source: 'committed', steps: ck.step, config: ck.config.run };
    log(`stage 1: loaded ${spec.stage1Checkpoint} (MSE, ${ck.step} steps)`);
  } else {
    const config = resolveConfig(
      undefined,
      { ...(spec.stage1Set as Record<string, Json>), 'data.name': spec.dataset, 'objective.kind': 'mse', backend: e.backend },
      spec.dataset,
    );
    log(`stage 1: training (MSE, ${config.train.steps} steps)`);
    const r = await runTraining(config, path.join(dir, 'stage1'), { quiet: opts.quiet, label: 'stage 1 (mse)' });
    log(trainingSummary(r));
    stage1 = trainedModel('stage1', undefined, r, config, 50);
  }
  models.set('stage1', stage1);
  // ---- fine-tunes from stage 1, once per seed when the spec has seeds
  const seeds: (number | undefined)[] = spec.seeds?.length ? spec.seeds : [undefined];
  const keyOf = (model: string, seed: number | undefined) => (model === 'stage1' || seed === undefined ? model : `${model}@${seed}`);
  for (const f of spec.finetunes)
    for (const seed of seeds) {
      const config = resolveConfig(
        undefined,
        {
          'objective.kind': 'sp',
          ...(f.set as Record<string, Json>),
          ...(seed === undefined ? {} : { 'train.seed': seed }),
          backend: e.backend,
        },
        spec.dataset,
        finetuneBase(stage1.config),
      );
      const o = config.objective;
      log(
        `fine-tune '${f.name}'${seed === undefined ? '' : ` seed ${seed}`}: ${o.kind}, layer ${o.layer}, t' ${o.tPrime}, ${o.distance}, ` +
          `re-noise ${o.renoise}, perceptual ${o.perceptual}, ${config.train.steps} steps`,
      );
      const folder = `${f.name.replace(/[^\w.-]+/g, '_')}${seed === undefined ? '' : `-seed${seed}`}`;
      const r = await runTraining(config, path.join(dir, folder), {
        from: stage1.checkpoint,
        quiet: opts.quiet,
        label: `fine-tune ${f.name}`,
      });
      log(trainingSummary(r));
      models.set(keyOf(f.name, seed), trainedModel(f.name, seed, r, config, 20));
    }
  // ---- rows: one sampling run per seed, from that seed's fine-tune
  const rows: RowReport[] = [];
  const loaded = new Map<string, Checkpoint<StoredConfig>>();
  for (const row of spec.rows) {
    const runs: RowReport[] = [];
    for (const [i, seed] of seeds.entries()) {
      const key = keyOf(row.model, seed);
      const m = models.get(key);
      if (!m)
        throw new Error(
          `experiment row '${row.name}': no model '${row.model}'; models: ${spec.finetunes.map((f) => f.name).join(', ')}, stage1`,
        );
      if (!loaded.has(key)) loaded.set(key, loadModel(m.checkpoint));
      const sampleSet = {
        ...(spec.sampleSet as Record<string, Json>),
        ...(seed === undefined ? {} : { 'sample.seed': seed }),
        backend: e.backend,
      };
      runs.push(await sampleRow(loaded.get(key)!, row, sampleSet, path.join(dir, '..'), opts.quiet, e.name, i === 0));
    }
    rows.push(seeds.length > 1 ? overSeeds(runs, seeds as number[]) : runs[0]);
  }
  return { dataset: spec.dataset, models: [...models.values()], rows, pictures: await datasetPictures(spec.dataset, e, models, rows, dir) };
};

/** `<dataset>-loss.png` (models trained here) and `<dataset>-cfg.png` (when the rows have more than one CFG scale). */
const datasetPictures = async (
  dataset: string,
  e: ExperimentSpec,
  models: ReadonlyMap<string, ModelReport>,
  rows: readonly RowReport[],
  dir: string,
): Promise<DatasetReport['pictures']> => {
  const pictures: DatasetReport['pictures'] = {};
  const trained = [...models.values()].filter((m) => m.losses?.length);
  const committed = [...models.values()].filter((m) => m.source === 'committed').map((m) => m.name);
  const describe = (m: ModelReport) => `${m.name} (${m.config.objective.kind === 'sp' ? 'SP' : 'MSE'})`;
  if (trained.length) {
    pictures.loss = `${dataset}-loss.png`;
    await lossPicture(
      {
        title: `${dataset} · training loss · ${e.name}`,
        subtitle: [
          trained.map((m) => `${describe(m)}: ${m.steps} steps, batch ${m.config.train.batchSize}, lr ${m.config.train.lr}`).join(' · '),
          ...(committed.length ? [`not shown: ${committed.join(', ')} (committed: its checkpoint holds no loss history)`] : []),
        ],
      },
      trained.map((m) => ({ name: describe(m), losses: m.losses!, objective: m.config.objective.kind })),
      path.join(dir, '..', pictures.loss),
    );
  }
  const modelOf = (name: string) => models.get(name) ?? [...models.values()].find((m) => m.name === name)!;
  const series = (r: RowReport) => `${describe(modelOf(r.model))}${r.classes ? '' : ' unconditional'}`;
  pictures.cfg = await rowsCfgPicture(rows, e.name, series, path.join(dir, '..'));
  return pictures;
};

/** A model's checkpoint, loaded once and checked against the model its own run config builds. */
export const loadModel = (file: string): Checkpoint<StoredConfig> => {
  const ck = loadRunCheckpoint(file);
  const expected = setupRun(ck.config.run).model.signature;
  if (!sameSignature(ck.signature, expected)) throw new SignatureMismatchError(file, ck.signature, expected);
  return ck;
};

/** Samples one row from a loaded model, evaluates it and draws its picture into `pictureDir`. */
export const sampleRow = async (
  ck: Checkpoint<StoredConfig>,
  row: { name: string; model: string; cfg: number; unconditional?: boolean; rescale?: number },
  overrides: Record<string, Json>,
  pictureDir: string,
  quiet = false,
  /** what the picture's title names besides the data set and row, e.g. the experiment */
  context?: string,
  /** draw the row's picture (the later seeds of a row do not: the first seed's grid shows the row) */
  picture = true,
): Promise<RowReport> => {
  const run = ck.config.run;
  // the backend the run trained on is not inherited (the committed models record webasm): auto unless given
  const config = resolveConfig(undefined, { backend: 'auto', ...overrides }, run.data.name, run);
  const setup = setupRun(config);
  const ema = config.sample.weights === 'ema' && Object.keys(ck.ema).length > 0;
  const weights = ema ? ck.ema : ck.params;
  const bar = quiet ? undefined : progressBar(`sample ${row.name}`.slice(0, 14), config.sample.count);
  const s = await drawSamples(
    setup,
    {
      ...config.sample,
      weights,
      cfgScale: row.cfg,
      guidanceRescale: row.rescale,
      backend: config.backend,
      unconditional: row.unconditional,
    },
    (done) => bar?.update(done),
  );
  bar?.stop();
  const metrics = await evaluateSamples(setup, s.samples, s.classes, config.backend);
  const file = `${config.data.name}-${row.name.replace(/[^\w.-]+/g, '_')}.png`;
  const o = run.objective;
  const heading = {
    title: `${config.data.name} · ${row.name}${context ? ` · ${context}` : ''}`,
    subtitle: [
      `model ${row.model}: ${o.kind === 'sp' ? `SP fine-tune (layer ${o.layer}, t' ${o.tPrime})` : 'MSE'}, ${ck.step} steps`,
      `CFG ${row.cfg}${row.rescale ? ` (rescale ${row.rescale})` : ''}${row.unconditional ? ' (null class: unconditional)' : ''} · ` +
        `${ema ? 'EMA' : 'current'} weights · ${config.sample.sampler.toUpperCase()} ${config.sample.steps} steps · ` +
        `${config.sample.count} samples · seed ${config.sample.seed}`,
    ],
  };
  if (picture) fs.mkdirSync(pictureDir, { recursive: true });
  if (picture) await samplePicture(setup, s.samples, s.classes, heading, path.join(pictureDir, file));
  return {
    dataset: config.data.name,
    name: row.name,
    model: row.model,
    cfgScale: row.cfg,
    metrics,
    picture: file,
    sampleSeconds: s.seconds,
    backend: s.backend,
    samples: s.samples,
    classes: s.classes,
  };
};

export const runExperiment = async (
  e: ExperimentSpec,
  outDir: string,
  opts: { trainStage1?: boolean; quiet?: boolean; command?: string } = {},
): Promise<ExperimentReport> => {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const resolved = resolveBackend(e.backend as never);
  const datasets: DatasetReport[] = [];
  for (const d of e.datasets)
    datasets.push(
      await runDataset(d, e, path.join(outDir, d.dataset), { trainStage1: opts.trainStage1 ?? false, quiet: opts.quiet ?? false }),
    );
  return {
    name: e.name,
    backend: resolved.name,
    backendReason: resolved.reason,
    startedAt,
    seconds: (performance.now() - t0) / 1000,
    command: opts.command ?? '',
    datasets,
  };
};
