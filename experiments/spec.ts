// An experiment: per data set, a stage-1 model (a committed checkpoint, or trained here), any number of fine-tunes
// from it, and the rows to sample and evaluate. JSON, validated with io-ts; `npm start` runs the embedded default.
import * as t from 'io-ts';
import { decodeOrThrow } from '../storage/ioReport.ts';
import { ConfigError } from '../runs/config.ts';
import { datasetNames } from '../data/index.ts';
import { backendNames } from '../compiler/index.ts';

const BACKENDS = new Set<string>(['auto', ...backendNames]);

const Overrides = t.record(t.string, t.unknown, 'config overrides { "dotted.path": value }');

export const FinetuneSpec = t.type({ name: t.string, set: Overrides }, 'fine-tune { name, set }');
export const RowSpec = t.intersection(
  [t.type({ name: t.string, model: t.string, cfg: t.number }), t.partial({ unconditional: t.boolean, rescale: t.number })],
  'row { name, model ("stage1" or a fine-tune name), cfg, unconditional?, rescale? (guidance rescale phi) }',
);

export const DatasetSpec = t.intersection(
  [
    t.type({
      dataset: t.string,
      /**
       * the stage-1 checkpoint to load (a path, or `pretrained:NAME` for the package's pretrained/NAME.safetensors);
       * when null (or with --train-stage1) stage 1 is trained with `stage1Set`
       */
      stage1Checkpoint: t.union([t.string, t.null]),
      stage1Set: Overrides,
      finetunes: t.array(FinetuneSpec),
      /** sample.* overrides (count, steps, seed, ...) */
      sampleSet: Overrides,
      rows: t.array(RowSpec),
    }),
    t.partial({
      /**
       * each fine-tune is trained once per seed (train.seed) and each row sampled once per seed (sample.seed, from the
       * fine-tune of that seed); rows then report the mean over seeds with a 95% interval
       */
      seeds: t.array(t.number),
    }),
  ],
  'dataset experiment',
);

/** Seeds live where they act: train.seed in stage1Set / a fine-tune's set, sample.seed in sampleSet. */
export const ExperimentSpec = t.type({ name: t.string, backend: t.string, datasets: t.array(DatasetSpec) }, 'experiment');
export type ExperimentSpec = t.TypeOf<typeof ExperimentSpec>;
export type DatasetSpec = t.TypeOf<typeof DatasetSpec>;

/**
 * What a name that becomes a file or folder may be: one path segment (no / or \\, no control characters, not `.` or
 * `..`), 1 to 64 characters. Pictures and run folders use it with every character but letters, digits, `.`, `_` and
 * `-` replaced by `_`, so two names must also differ after that replacement.
 */
const SAFE_NAME = /^(?!\.{1,2}$)(?!\s*$)[^/\\\p{Cc}]{1,64}$/u;
export const fileSafe = (name: string): string => name.replace(/[^\w.-]+/g, '_');

/**
 * The checks a spec's types cannot state, all before any work: names that become paths are single safe segments
 * and distinct, data sets are known and appear once, rows name a model the data set has, guidance scales and
 * rescales are in range, seeds are distinct integers. Each problem names its place in the spec.
 */
export const specProblems = (spec: ExperimentSpec): string[] => {
  const problems: string[] = [];
  const name = (value: string, where: string) => {
    if (!SAFE_NAME.test(value))
      problems.push(
        `${where}: ${JSON.stringify(value)} becomes a file or folder name: 1 to 64 characters, no / or \\ or control ` +
          'characters, not . or ..',
      );
  };
  const distinct = (values: string[], where: string) => {
    const seen = new Map<string, string>();
    for (const v of values) {
      const key = fileSafe(v).toLowerCase();
      const other = seen.get(key);
      if (other !== undefined) problems.push(`${where}: ${JSON.stringify(other)} and ${JSON.stringify(v)} would write the same files`);
      seen.set(key, v);
    }
  };
  name(spec.name, 'name');
  if (!BACKENDS.has(spec.backend)) problems.push(`backend: ${JSON.stringify(spec.backend)} is not a backend (${[...BACKENDS].join(', ')})`);
  distinct(
    spec.datasets.map((d) => d.dataset),
    'datasets',
  );
  spec.datasets.forEach((d, i) => {
    const at = `datasets[${i}]`;
    if (!(datasetNames as string[]).includes(d.dataset))
      problems.push(`${at}.dataset: unknown data set ${JSON.stringify(d.dataset)}; data sets: ${datasetNames.join(', ')}`);
    d.finetunes.forEach((f, j) => {
      name(f.name, `${at}.finetunes[${j}].name`);
      if (f.name === 'stage1') problems.push(`${at}.finetunes[${j}].name: 'stage1' names the stage-1 model; choose another name`);
    });
    distinct(
      d.finetunes.map((f) => f.name),
      `${at}.finetunes`,
    );
    const models = ['stage1', ...d.finetunes.map((f) => f.name)];
    d.rows.forEach((r, j) => {
      const w = `${at}.rows[${j}]`;
      name(r.name, `${w}.name`);
      if (!models.includes(r.model)) problems.push(`${w}.model: no model ${JSON.stringify(r.model)}; models: ${models.join(', ')}`);
      if (!(Number.isFinite(r.cfg) && r.cfg >= 0))
        problems.push(`${w}.cfg: ${r.cfg} is not a guidance scale (a finite number >= 0; 1 is no guidance)`);
      if (r.rescale !== undefined && !(r.rescale >= 0 && r.rescale <= 1))
        problems.push(`${w}.rescale: ${r.rescale} is not a guidance rescale in [0, 1]`);
      if (r.unconditional && r.cfg !== 1) problems.push(`${w}: an unconditional row samples the null class alone, so its cfg must be 1`);
    });
    distinct(
      d.rows.map((r) => r.name),
      `${at}.rows`,
    );
    const seeds = d.seeds ?? [];
    seeds.forEach((s, j) => Number.isSafeInteger(s) || problems.push(`${at}.seeds[${j}]: ${s} is not an integer`));
    if (new Set(seeds).size !== seeds.length) problems.push(`${at}.seeds: ${JSON.stringify(seeds)} repeats a seed`);
  });
  return problems;
};

/** Throws a ConfigError listing every problem of a spec (types first, then specProblems), naming its source. */
export const checkSpec = (spec: ExperimentSpec, source: string): ExperimentSpec => {
  const problems = specProblems(spec);
  if (problems.length) throw new ConfigError(`${source} is not a valid experiment:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return spec;
};

export const decodeSpec = (json: unknown, source: string): ExperimentSpec =>
  checkSpec(
    decodeOrThrow(ExperimentSpec, json, 'experiment', (m) => new ConfigError(`${source} is not a valid experiment:\n${m}`)),
    source,
  );

const mainRows = (cfg: number) => [
  { name: 'MSE', model: 'stage1', cfg: 1 },
  { name: `MSE+CFG ${cfg}`, model: 'stage1', cfg },
  { name: 'SP', model: 'SP', cfg: 1 },
  { name: `SP+CFG ${cfg}`, model: 'SP', cfg },
];

/**
 * `npm start`: 8 Gaussians (MLP) and class-conditional MNIST-16 on the paper's kind of network, a UNet whose
 * middle block (res, self-attention, res) is the perceptual layer. Stage 1 is loaded from pretrained/ (made by the
 * commands in pretrained/README.md), then a short SP fine-tune and four rows each. Sized to finish within 10 minutes
 * on 2 CPU cores; docs/RESULTS.md has the full tables (three seeds, 2,000 samples a row).
 */
export const defaultSpec: ExperimentSpec = {
  name: 'default',
  backend: 'auto',
  datasets: [
    {
      dataset: 'eightGaussians',
      stage1Checkpoint: 'pretrained:stage1-eightGaussians',
      stage1Set: {},
      finetunes: [{ name: 'SP', set: { 'train.steps': 400 } }],
      sampleSet: { 'sample.count': 2000 },
      rows: mainRows(3),
    },
    {
      dataset: 'mnist16',
      stage1Checkpoint: 'pretrained:stage1-unet-mnist16',
      // how that checkpoint was made (used with --train-stage1): pretrained/README.md
      stage1Set: {
        'model.kind': 'unet',
        'schedule.zeroTerminalSnr': true,
        'train.steps': 9000,
        'train.batchSize': 64,
        'train.emaDecay': 0.999,
        'train.checkpointEvery': 1000,
      },
      finetunes: [{ name: 'SP', set: { 'train.steps': 100, 'train.batchSize': 32 } }],
      sampleSet: { 'sample.count': 500, 'sample.steps': 25 },
      rows: mainRows(3),
    },
  ],
};
