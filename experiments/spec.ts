// An experiment: per data set, a stage-1 model (a committed checkpoint, or trained here), any number of fine-tunes
// from it, and the rows to sample and evaluate. JSON, validated with io-ts; `npm start` runs the embedded default.
import * as t from 'io-ts';
import { decodeOrThrow } from '../storage/ioReport.ts';
import { ConfigError } from '../runs/config.ts';

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
      /** the committed stage-1 checkpoint to load; when absent (or with --train-stage1) stage 1 is trained with `stage1Set` */
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

export const decodeSpec = (json: unknown, source: string): ExperimentSpec =>
  decodeOrThrow(ExperimentSpec, json, 'experiment', (m) => new ConfigError(`${source} is not a valid experiment:\n${m}`));

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
      stage1Checkpoint: 'pretrained/stage1-eightGaussians.safetensors',
      stage1Set: {},
      finetunes: [{ name: 'SP', set: { 'train.steps': 400 } }],
      sampleSet: { 'sample.count': 2000 },
      rows: mainRows(3),
    },
    {
      dataset: 'mnist16',
      stage1Checkpoint: 'pretrained/stage1-unet-mnist16.safetensors',
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
