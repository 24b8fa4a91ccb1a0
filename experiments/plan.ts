// Everything an experiment will do, decided and checked before any of it runs: each data set's stage 1 (a committed
// checkpoint, read and checked, or a training job), every fine-tune per seed, every row per seed, with each
// config resolved, so a misspelt key, a missing checkpoint or an impossible row stops the run before the first step.
// The result is a flat list of jobs; each writes its result on its own, so a run can stop, resume and shard.
import fs from 'node:fs';
import { ConfigError, finetuneBase, resolveConfig, type Json, type RunConfig } from '../runs/config.ts';
import { loadRunCheckpoint } from '../runs/trainer.ts';
import { resolveCheckpointRef } from '../storage/packageFiles.ts';
import { fileSafe, type DatasetSpec, type ExperimentSpec } from './spec.ts';

type RowSpec = DatasetSpec['rows'][number];

/** Training a model: stage 1 (when the spec trains it) or a fine-tune at one seed. */
export interface TrainJob {
  kind: 'train';
  id: string;
  dataset: string;
  /** the model's name in the spec ('stage1' or a fine-tune's) */
  model: string;
  seed?: number;
  config: RunConfig;
  /** the run folder, relative to the experiment folder */
  folder: string;
  /** a fine-tune starts from stage 1 */
  fromStage1: boolean;
  unit: string;
}

/** Sampling and evaluating one row at one seed. */
export interface RowJob {
  kind: 'row';
  id: string;
  dataset: string;
  row: RowSpec;
  seed?: number;
  /** the key of the model it samples ('stage1', 'SP', 'SP@2') */
  modelKey: string;
  /** that model's run folder (relative to the experiment folder) when this experiment trains it; else the committed stage 1 */
  modelFolder?: string;
  /** sample.* and backend overrides for sampleRow */
  overrides: Record<string, Json>;
  /** the first seed of a row draws the row's picture */
  picture: boolean;
  unit: string;
}

export type Job = TrainJob | RowJob;

export type Stage1 = { kind: 'committed'; file: string; config: RunConfig; step: number } | { kind: 'trained'; job: TrainJob };

export interface DatasetPlan {
  spec: DatasetSpec;
  stage1: Stage1;
  seeds: (number | undefined)[];
  trains: TrainJob[];
  rows: RowJob[];
}

export interface ExperimentPlan {
  spec: ExperimentSpec;
  datasets: DatasetPlan[];
  jobs: Job[];
}

/** The key a model is known by: a fine-tune trained once per seed is `name@seed`; stage 1 is shared by all seeds. */
export const modelKey = (model: string, seed: number | undefined): string =>
  model === 'stage1' || seed === undefined ? model : `${model}@${seed}`;

/** The file name under jobs/ that holds a job's result. */
export const jobFileName = (id: string): string => `${id.split('/').map(fileSafe).join('--')}.json`;

/** A stage-1 model trained here: every shard needs it, so it is a unit of its own that runs before any shard. */
export const STAGE1_UNIT = 'stage1-training';

const at = (where: string, f: () => RunConfig): RunConfig => {
  try {
    return f();
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${where}: ${e.message}`);
    throw e;
  }
};

const stage1Of = (d: DatasetSpec, i: number, e: ExperimentSpec, trainStage1: boolean, source: string): Stage1 => {
  const where = `${source}: datasets[${i}]`;
  if (d.stage1Checkpoint !== null && !trainStage1) {
    let file: string;
    try {
      file = resolveCheckpointRef(d.stage1Checkpoint);
    } catch (e) {
      throw new ConfigError(`${where}.stage1Checkpoint: ${(e as Error).message}`);
    }
    if (!fs.existsSync(file))
      throw new ConfigError(
        `${where}.stage1Checkpoint: ${d.stage1Checkpoint} does not exist. To train stage 1 in this run instead, set ` +
          'stage1Checkpoint to null or pass --train-stage1 (stage1Set says how)',
      );
    const ck = loadRunCheckpoint(d.stage1Checkpoint);
    if (ck.config.run.data.name !== d.dataset)
      throw new ConfigError(`${where}.stage1Checkpoint: ${d.stage1Checkpoint} was trained on ${ck.config.run.data.name}, not ${d.dataset}`);
    return { kind: 'committed', file: d.stage1Checkpoint, config: ck.config.run, step: ck.step };
  }
  const config = at(`${where}.stage1Set`, () =>
    resolveConfig(
      undefined,
      { ...(d.stage1Set as Record<string, Json>), 'data.name': d.dataset, 'objective.kind': 'mse', backend: e.backend },
      d.dataset,
    ),
  );
  const job: TrainJob = {
    kind: 'train',
    id: `${d.dataset}/model/stage1`,
    dataset: d.dataset,
    model: 'stage1',
    config,
    folder: `${d.dataset}/stage1`,
    fromStage1: false,
    unit: STAGE1_UNIT,
  };
  return { kind: 'trained', job };
};

/** The problem with sampling `row` from a model trained with `config`, or undefined. */
const guidanceProblem = (row: RowSpec, config: RunConfig): string | undefined => {
  const conditional = config.data.conditional;
  if (row.unconditional && !conditional) return 'an unconditional row needs a class-conditional (CFG-trained) model';
  if (row.cfg !== 1 && !conditional) return `cfg ${row.cfg} needs a class-conditional model; this model is unconditional`;
  return undefined;
};

const planDataset = (d: DatasetSpec, i: number, e: ExperimentSpec, trainStage1: boolean, source: string): DatasetPlan => {
  const stage1 = stage1Of(d, i, e, trainStage1, source);
  const stage1Config = stage1.kind === 'committed' ? stage1.config : stage1.job.config;
  const seeds: (number | undefined)[] = d.seeds?.length ? d.seeds : [undefined];
  const configs = new Map<string, RunConfig>([['stage1', stage1Config]]);
  const trains: TrainJob[] = stage1.kind === 'trained' ? [stage1.job] : [];
  d.finetunes.forEach((f, j) => {
    for (const seed of seeds) {
      const config = at(`${source}: datasets[${i}].finetunes[${j}].set`, () =>
        resolveConfig(
          undefined,
          {
            'objective.kind': 'sp',
            ...(f.set as Record<string, Json>),
            ...(seed === undefined ? {} : { 'train.seed': seed }),
            backend: e.backend,
          },
          d.dataset,
          finetuneBase(stage1Config),
        ),
      );
      const key = modelKey(f.name, seed);
      configs.set(key, config);
      trains.push({
        kind: 'train',
        id: `${d.dataset}/model/${key}`,
        dataset: d.dataset,
        model: f.name,
        seed,
        config,
        folder: `${d.dataset}/${fileSafe(f.name)}${seed === undefined ? '' : `-seed${seed}`}`,
        fromStage1: true,
        unit: `${d.dataset}/${key}`,
      });
    }
  });
  const rows: RowJob[] = [];
  d.rows.forEach((row, j) => {
    seeds.forEach((seed, k) => {
      const key = modelKey(row.model, seed);
      const model = configs.get(key)!;
      const modelFolder = trains.find((t) => modelKey(t.model, t.seed) === key)?.folder;
      const overrides = {
        ...(d.sampleSet as Record<string, Json>),
        ...(seed === undefined ? {} : { 'sample.seed': seed }),
        backend: e.backend,
      };
      // the same resolution sampleRow makes, so a bad sample.* key is found now
      at(`${source}: datasets[${i}].sampleSet`, () => resolveConfig(undefined, overrides, d.dataset, model));
      const problem = guidanceProblem(row, model);
      if (problem) throw new ConfigError(`${source}: datasets[${i}].rows[${j}] (${row.name}): ${problem}`);
      rows.push({
        kind: 'row',
        id: `${d.dataset}/row/${row.name}${seed === undefined ? '' : `@${seed}`}`,
        dataset: d.dataset,
        row,
        seed,
        modelKey: key,
        modelFolder,
        overrides,
        picture: k === 0,
        // stage 1 is shared by the seeds, but its rows at each seed are a unit of their own
        unit: `${d.dataset}/${row.model}${seed === undefined ? '' : `@${seed}`}`,
      });
    });
  });
  return { spec: d, stage1, seeds, trains, rows };
};

/** Plans a checked spec (decodeSpec): every config resolved, every checkpoint it loads read; throws ConfigError naming the place. */
export const planExperiment = (spec: ExperimentSpec, opts: { trainStage1?: boolean; source?: string } = {}): ExperimentPlan => {
  const source = opts.source ?? `experiment '${spec.name}'`;
  const datasets = spec.datasets.map((d, i) => planDataset(d, i, spec, opts.trainStage1 ?? false, source));
  return { spec, datasets, jobs: datasets.flatMap((d) => [...d.trains, ...d.rows]) };
};

/**
 * The jobs of shard `index` of `count`: units (a model at a seed with the rows sampled from it) are dealt in turn,
 * so a fine-tune and its rows run in one process. Stage-1 training is not dealt: it must be done before the shards.
 */
export const shardJobs = (plan: ExperimentPlan, index: number, count: number): Job[] => {
  const units = [...new Set(plan.jobs.filter((j) => j.unit !== STAGE1_UNIT).map((j) => j.unit))];
  const mine = new Set(units.filter((_, k) => k % count === index));
  return plan.jobs.filter((j) => mine.has(j.unit));
};
