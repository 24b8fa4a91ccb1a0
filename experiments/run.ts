// Runs an experiment spec end to end: stage 1 (load or train), fine-tunes, sampling and evaluation of every row,
// pictures, and the report. Each step is an ordinary command's building block (runTraining, drawSamples, ...).
import fs from 'node:fs';
import path from 'node:path';
import { sameSignature, SignatureMismatchError, type Checkpoint } from '../storage/checkpoint.ts';
import type { NDArray } from '../core/ndarray.ts';
import { resolveBackend } from '../compiler/index.ts';
import type { Json, RunConfig } from '../runs/config.ts';
import { resolveConfig } from '../runs/config.ts';
import { setupRun } from '../runs/setup.ts';
import { loadRunCheckpoint, type StoredConfig, type TrainResult } from '../runs/trainer.ts';
import { readLosses, RunFolderError, runTraining, trainingSummary } from '../runs/runTraining.ts';
import { progressBar } from '../runs/progress.ts';
import { drawSamples } from './sample.ts';
import { evaluate, type EvalAutoOptions, type Metrics } from './evaluate.ts';
import { backendSummary, phasesOf, type PhaseBackend } from './backendLine.ts';
import type { SamplerAutoOptions } from '../models/samplerAuto.ts';
import type { AutoInjection } from '../train/autoChoice.ts';
import { lossPicture, rowsCfgPicture, samplePicture } from './pictures.ts';
import { checkSpec, fileSafe, type ExperimentSpec } from './spec.ts';
import { overSeeds, type SeedSummary } from './seeds.ts';
import {
  modelKey,
  planExperiment,
  shardJobs,
  STAGE1_UNIT,
  type DatasetPlan,
  type ExperimentPlan,
  type Job,
  type RowJob,
  type TrainJob,
} from './plan.ts';
import { checkInside, doneJobs, mergeShards, openExperimentFolder, readJob, writeJob } from './folder.ts';

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
  /** trained here: the backend the step ran on and why (the training log's 'backend:' line) */
  backend?: string;
  backendReason?: string;
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
  /** samples drawn (per seed) */
  count: number;
  /** sampled with class labels (false: an unconditional model, or a row of the null class) */
  conditional: boolean;
  sampleSeconds: number;
  /** the backend the sampler's step ran on, and why (auto: timed on a hardware WebGPU adapter) */
  backend: string;
  backendReason?: string;
  /** the backend the classifier ran on (image rows), and why */
  evalBackend?: string;
  evalBackendReason?: string;
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
  /** the backends that ran (e.g. 'wasm', or 'webgpu, wasm'); auto's untimed choice only where nothing ran */
  backend: string;
  /** each phase on its backend and why, from the plans that ran (experiments/backendLine.ts) */
  backendReason: string;
  /** the distinct backends of each phase, with their plans' reasons */
  phases?: PhaseBackend[];
  startedAt: string;
  seconds: number;
  command: string;
  /** every job done; otherwise `missing` lists the jobs whose results the report lacks (and their rows are left out) */
  complete: boolean;
  missing: string[];
  datasets: DatasetReport[];
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);

/** Set .stop to end an experiment after the step or sampling batch in flight (Ctrl-C does). */
export interface Stopper {
  stop: boolean;
}

/** An experiment stopped before its jobs were done (Ctrl-C): what finished is kept, the report says what is missing. */
export class ExperimentInterrupted extends Error {
  override name = 'ExperimentInterrupted';
}

export interface ExperimentOptions {
  trainStage1?: boolean;
  quiet?: boolean;
  command?: string;
  /** continue the experiment in the folder, skipping finished jobs */
  resume?: boolean;
  /** replace the experiment in the folder */
  force?: boolean;
  /** run only this slice of the job list (0-based index of count); no report is written */
  shard?: { index: number; count: number };
  /** run only the stage-1 training jobs (what shards need first) */
  stage1Only?: boolean;
  /** folders of shards whose finished jobs are gathered into the folder first; no job is run */
  merge?: string[];
  stopper?: Stopper;
  /** called after each job this call ran */
  onJob?: (id: string) => void;
  /** fixes auto's adapter, cache or timer for every plan it times (tests) */
  auto?: AutoInjection;
}

export interface ExperimentOutcome {
  /** the report of the jobs done so far (complete or partial); absent for a shard or a stage-1-only run */
  report?: ExperimentReport;
  ran: string[];
  missing: string[];
  interrupted: boolean;
}

/** What a training job's result file holds: the model's report, its checkpoint relative to the experiment folder. */
const trainedModel = async (job: TrainJob, dir: string, r: TrainResult | undefined): Promise<ModelReport> => {
  const runDir = path.join(dir, job.folder);
  const losses = readLosses(runDir) ?? [];
  const window = job.model === 'stage1' ? 50 : 20;
  return {
    name: job.model,
    seed: job.seed,
    checkpoint: path.join(job.folder, 'checkpoint.safetensors'),
    source: 'trained',
    steps: job.config.train.steps,
    seconds: r?.seconds,
    lossFirst: mean(losses.slice(0, window)),
    lossLast: mean(losses.slice(-window)),
    losses,
    config: job.config,
    // a job finished by an earlier call (r undefined) has no reason to give: the report leaves it out
    backend: r?.backend,
    backendReason: r?.backendReason,
  };
};

/** Trains a model in its run folder, continuing a run an interruption left there; undefined when it was stopped. */
const runTrainJob = async (job: TrainJob, plan: DatasetPlan, dir: string, o: ExperimentOptions): Promise<ModelReport | undefined> => {
  const runDir = path.join(dir, job.folder);
  checkInside(dir, runDir);
  const checkpoint = path.join(runDir, 'checkpoint.safetensors');
  const log = (m: string) => !o.quiet && console.error(`[${job.dataset}] ${m}`);
  const c = job.config.objective;
  log(
    job.model === 'stage1'
      ? `stage 1: training (MSE, ${job.config.train.steps} steps)`
      : `fine-tune '${job.model}'${job.seed === undefined ? '' : ` seed ${job.seed}`}: ${c.kind}, layer ${c.layer}, t' ${c.tPrime}, ` +
          `${c.distance}, re-noise ${c.renoise}, perceptual ${c.perceptual}, ${job.config.train.steps} steps`,
  );
  const from = job.fromStage1 ? stage1File(plan, dir) : undefined;
  const existing = fs.existsSync(checkpoint) ? loadRunCheckpoint(checkpoint).step : 0;
  // trained to the end before a stop that came too early to record it: nothing left to train
  if (existing >= job.config.train.steps) return trainedModel(job, dir, undefined);
  const r = await runTraining(job.config, runDir, {
    resume: existing > 0,
    from,
    quiet: o.quiet,
    label: job.model === 'stage1' ? 'stage 1 (mse)' : `fine-tune ${job.model}`,
    stopper: o.stopper,
    auto: o.auto,
  });
  log(trainingSummary(r));
  return r.interrupted ? undefined : trainedModel(job, dir, r);
};

const stage1File = (plan: DatasetPlan, dir: string): string =>
  plan.stage1.kind === 'committed' ? plan.stage1.file : path.join(dir, plan.stage1.job.folder, 'checkpoint.safetensors');

const committedModel = (plan: DatasetPlan): ModelReport | undefined =>
  plan.stage1.kind === 'committed'
    ? { name: 'stage1', checkpoint: plan.stage1.file, source: 'committed', steps: plan.stage1.step, config: plan.stage1.config }
    : undefined;

/** What a row job's result file holds: the row's report without its samples. */
type RowResult = Omit<RowReport, 'samples' | 'classes' | 'seeds'>;

const runRowJob = async (
  job: RowJob,
  plan: DatasetPlan,
  dir: string,
  o: ExperimentOptions,
  name: string,
  loaded: Map<string, Checkpoint<StoredConfig>>,
): Promise<RowResult> => {
  const file = job.modelFolder === undefined ? stage1File(plan, dir) : path.join(dir, job.modelFolder, 'checkpoint.safetensors');
  if (!loaded.has(file)) loaded.set(file, loadModel(file));
  checkInside(dir, path.join(dir, `${job.dataset}-${fileSafe(job.row.name)}.png`));
  const auto = { sampling: o.auto, evaluation: o.auto };
  const r = await sampleRow(loaded.get(file)!, job.row, job.overrides, dir, o.quiet, name, job.picture, o.stopper, auto);
  const { samples: _s, classes: _c, ...result } = r;
  return result;
};

/** The report of the jobs done: rows whose every seed is done, models trained or loaded, and what is missing. */
const assemble = async (
  plan: ExperimentPlan,
  dir: string,
  meta: { startedAt: string; seconds: number; command: string; untimed: { name: string; reason: string } },
): Promise<ExperimentReport> => {
  const missing: string[] = [];
  const datasets: DatasetReport[] = [];
  for (const d of plan.datasets) {
    const models = new Map<string, ModelReport>();
    const stage1 = committedModel(d);
    if (stage1) models.set('stage1', stage1);
    for (const t of d.trains) {
      const m = readJob<ModelReport>(dir, t.id);
      if (m) models.set(modelKey(t.model, t.seed), m);
      else missing.push(t.id);
    }
    const rows: RowReport[] = [];
    for (const row of d.spec.rows) {
      const jobs = d.rows.filter((r) => r.row === row);
      const runs = jobs.map((j) => readJob<RowReport>(dir, j.id));
      missing.push(...jobs.filter((_, k) => !runs[k]).map((j) => j.id));
      if (runs.some((r) => !r)) continue;
      const done = runs as RowReport[];
      rows.push(d.seeds.length > 1 ? overSeeds(done, d.seeds as number[]) : done[0]);
    }
    datasets.push({
      dataset: d.spec.dataset,
      models: [...models.values()],
      rows,
      pictures: await datasetPictures(d.spec.dataset, plan.spec, models, rows, dir),
    });
  }
  const { untimed, ...rest } = meta;
  const phases = phasesOf(datasets);
  return { name: plan.spec.name, ...rest, ...backendSummary(phases, untimed), phases, complete: missing.length === 0, missing, datasets };
};

/** `<dataset>-loss.png` (models trained here) and `<dataset>-cfg.png` (when the rows have more than one CFG scale). */
/**
 * A model as the legends name it: its name, with its objective where the name does not say it already ('stage1 (MSE)',
 * but 'SP', not 'SP (SP)').
 */
export const describeModel = (m: { name: string; config: { objective: { kind: string } } }): string => {
  const objective = m.config.objective.kind === 'sp' ? 'SP' : 'MSE';
  return new RegExp(`\\b${objective}\\b`, 'i').test(m.name) ? m.name : `${m.name} (${objective})`;
};

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
  const describe = describeModel;
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
      path.join(dir, pictures.loss),
    );
  }
  const modelOf = (name: string) => models.get(name) ?? [...models.values()].find((m) => m.name === name)!;
  const series = (r: RowReport) => `${describe(modelOf(r.model))}${r.conditional ? '' : ' unconditional'}`;
  pictures.cfg = await rowsCfgPicture(rows, e.name, series, dir);
  return pictures;
};

/** Runs `jobs` in order, skipping those done; stops (throwing ExperimentInterrupted) when the stopper is set. */
const runJobs = async (plan: ExperimentPlan, jobs: Job[], dir: string, o: ExperimentOptions, ran: string[]): Promise<void> => {
  const loaded = new Map<string, Checkpoint<StoredConfig>>();
  const planOf = new Map(plan.datasets.map((d) => [d.spec.dataset, d]));
  for (const job of jobs) {
    if (o.stopper?.stop) throw new ExperimentInterrupted(`stopped before ${job.id}`);
    if (readJob(dir, job.id)) continue;
    const d = planOf.get(job.dataset)!;
    if (job.kind === 'train') {
      if (job.fromStage1 && d.stage1.kind === 'trained' && !readJob(dir, d.stage1.job.id))
        throw new RunFolderError(
          `${job.id} starts from the stage-1 model this experiment trains, which is not done in ${dir}: run ` +
            '`fusediff experiment SPEC --out DIR --stage1-only` first, then the shards with the same --out',
        );
      const m = await runTrainJob(job, d, dir, o);
      if (!m) throw new ExperimentInterrupted(`${job.id} stopped midway (its checkpoint is saved; --resume continues it)`);
      writeJob(dir, job.id, m);
    } else {
      if (d.stage1.kind === 'trained' && job.modelKey === 'stage1' && !readJob(dir, d.stage1.job.id))
        throw new RunFolderError(`${job.id} samples the stage-1 model this experiment trains, which is not done in ${dir}`);
      writeJob(dir, job.id, await runRowJob(job, d, dir, o, plan.spec.name, loaded));
    }
    ran.push(job.id);
    o.onJob?.(job.id);
  }
};

/** The files a job leaves besides its result (what --merge copies from a shard's folder). */
const artifactsOf =
  (plan: ExperimentPlan) =>
  (id: string): string[] => {
    const job = plan.jobs.find((j) => j.id === id);
    if (!job) return [];
    return job.kind === 'train' ? [job.folder] : job.picture ? [`${job.dataset}-${fileSafe(job.row.name)}.png`] : [];
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
  /** set .stop to end sampling after the batch in flight (throws ExperimentInterrupted) */
  stopper?: Stopper,
  /** how `auto` is timed for the sampler and the classifier (tests inject an adapter and a timer) */
  auto?: { sampling?: SamplerAutoOptions; evaluation?: EvalAutoOptions },
): Promise<RowReport> => {
  const run = ck.config.run;
  // the backend the run trained on is not inherited (the committed models record webasm): auto unless given
  const config = resolveConfig(undefined, { backend: 'auto', ...overrides }, run.data.name, run);
  const setup = setupRun(config);
  const ema = config.sample.weights === 'ema' && Object.keys(ck.ema).length > 0;
  const weights = ema ? ck.ema : ck.params;
  const bar = quiet ? undefined : progressBar(`sample ${row.name}`.slice(0, 14), config.sample.count);
  // the reasons go to stderr before the bar starts, as the training log's 'backend:' line does
  const say = (phase: string) => (quiet ? undefined : (reason: string) => process.stderr.write(`backend (${phase}): ${reason}\n`));
  const s = await drawSamples(
    setup,
    {
      ...config.sample,
      weights,
      cfgScale: row.cfg,
      guidanceRescale: row.rescale,
      backend: config.backend,
      unconditional: row.unconditional,
      auto: { ...auto?.sampling, log: say(`sampling ${row.name}`) },
    },
    (done) => {
      bar?.update(done);
      if (stopper?.stop) {
        bar?.stop();
        throw new ExperimentInterrupted(`sampling row '${row.name}' stopped after ${done} of ${config.sample.count} samples`);
      }
    },
  );
  bar?.stop();
  const evaluation = await evaluate(setup, s.samples, s.classes, config.backend, { ...auto?.evaluation, log: say('evaluation') });
  const file = `${config.data.name}-${fileSafe(row.name)}.png`;
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
    metrics: evaluation.metrics,
    picture: file,
    count: config.sample.count,
    conditional: s.classes !== undefined,
    sampleSeconds: s.seconds,
    backend: s.backend,
    backendReason: s.backendReason,
    evalBackend: evaluation.backend,
    evalBackendReason: evaluation.backendReason,
    samples: s.samples,
    classes: s.classes,
  };
};

/**
 * Runs an experiment in `outDir` (see folder.ts for what the folder holds): plans and checks everything first, then
 * runs each job not yet done, writing its result as it finishes. A stop (Ctrl-C) keeps what finished and returns a
 * partial report listing the missing jobs; `resume` continues; `shard` runs one slice; `merge` gathers shards.
 */
export const runExperiment = async (e: ExperimentSpec, outDir: string, opts: ExperimentOptions = {}): Promise<ExperimentOutcome> => {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const trainStage1 = opts.trainStage1 ?? false;
  const plan = planExperiment(checkSpec(e, `experiment '${e.name}'`), { trainStage1 });
  // the report names what ran; this untimed choice only where nothing did (and checks the name before any job runs)
  const resolved = resolveBackend(e.backend as never);
  const continuing = opts.resume || opts.shard !== undefined || opts.stage1Only || opts.merge !== undefined;
  openExperimentFolder(outDir, e, { trainStage1, resume: continuing && !opts.force, force: opts.force });
  const ran: string[] = [];
  let interrupted = false;
  if (opts.merge) ran.push(...mergeShards(outDir, plan, opts.merge, artifactsOf(plan)));
  else {
    const jobs = opts.stage1Only
      ? plan.jobs.filter((j) => j.unit === STAGE1_UNIT)
      : opts.shard
        ? shardJobs(plan, opts.shard.index, opts.shard.count)
        : plan.jobs;
    try {
      await runJobs(plan, jobs, outDir, opts, ran);
    } catch (err) {
      if (!(err instanceof ExperimentInterrupted)) throw err;
      interrupted = true;
      if (!opts.quiet) console.error(`interrupted: ${err.message}`);
    }
  }
  const done = doneJobs(outDir);
  const missing = plan.jobs.filter((j) => !done.has(j.id)).map((j) => j.id);
  if (opts.shard || opts.stage1Only) return { ran, missing, interrupted };
  const report = await assemble(plan, outDir, {
    startedAt,
    seconds: (performance.now() - t0) / 1000,
    command: opts.command ?? '',
    untimed: resolved,
  });
  return { report, ran, missing, interrupted };
};
