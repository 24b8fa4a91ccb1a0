// The training loop shared by `fusediff train` (stage 1, MSE) and `fusediff finetune` (stage 2, e.g. SP): one
// compiled step, deterministic per-step batches, atomic checkpoints, exact resume, Ctrl-C and non-finite losses.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as t from 'io-ts';
import { NonFiniteLossError } from '../train/compileStep.ts';
import { compileStepAuto } from '../train/compileStepAuto.ts';
import { cliChoiceCache } from './autoBackendCache.ts';
import type { AutoInjection } from '../train/autoChoice.ts';
import { adam } from '../dsl/optim.ts';
import { flattenParams, type Params } from '../dsl/params.ts';
import {
  CheckpointError,
  decodeCheckpoint,
  readCheckpointFile,
  sameSignature,
  saveCheckpoint,
  SignatureMismatchError,
  type Checkpoint,
  type LoadOptions,
} from '../storage/checkpoint.ts';
import { resolveCheckpointRef } from '../storage/packageFiles.ts';
import { decodeOrThrow } from '../storage/ioReport.ts';
import { RunConfig } from './config.ts';
import {
  batchSource,
  buildModel,
  buildObjective,
  checkMemory,
  estimateTrainMemory,
  planLimitError,
  setupRun,
  type RunSetup,
} from './setup.ts';

/** What a run's checkpoint stores as its metadata config: the run config and, for a fine-tune, its starting point. */
export const StoredConfig = t.intersection([
  t.type({ run: RunConfig }),
  t.partial({ init: t.type({ from: t.string, sha256: t.string, weights: t.keyof({ ema: null, params: null }), step: t.number }) }),
]);
export type StoredConfig = t.TypeOf<typeof StoredConfig>;

export class TrainingError extends Error {
  override name = 'TrainingError';
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a checkpoint that is not a diffusion run is, in words, from its metadata (for the error that refuses it). */
const describeOther = (config: Record<string, unknown>, signature: string): string => {
  const model = isRecord(config.model) ? config.model.kind : undefined;
  if (model === 'cnn-classifier' || signature.startsWith('cnn-classifier'))
    return 'an evaluation classifier (fusediff train-classifier), not a diffusion run';
  const keys = Object.keys(config);
  return `not a diffusion run: its metadata config has ${keys.length ? `the keys ${keys.join(', ')}` : 'no keys'}, not 'run'`;
};

/**
 * The run config fields behind a model setting of the signature, with their values: `model.hidden is 12000`; the
 * data set sets dim, channels and imageSize, the data set and data.conditional set numClasses.
 */
const settingSource = (key: string, value: unknown, run: RunConfig): string => {
  const shown = value === undefined ? 'none' : JSON.stringify(value);
  if (key === 'dim' || key === 'channels' || key === 'imageSize') return `data.name is ${JSON.stringify(run.data.name)} (${key} ${shown})`;
  if (key === 'numClasses')
    return `data.name is ${JSON.stringify(run.data.name)} and data.conditional is ${run.data.conditional} (numClasses ${shown})`;
  return `model.${key} is ${shown}`;
};

/**
 * Compares a checkpoint's tensors with the shapes its stored run config implies (the model's parameter shapes,
 * computed from the config without making a weight), so a config that does not describe its file is refused before
 * anything is built from it: a config edited to model.hidden 12000 in a 2-D checkpoint would otherwise allocate
 * gigabytes of weights before the signature check. The refusal names the file, the config fields that differ from
 * what the file's signature records, and the tensors that differ.
 */
const checkStoredShapes = (source: string, ck: Checkpoint<StoredConfig>): void => {
  const run = ck.config.run;
  let model;
  try {
    model = buildModel(run).model;
  } catch (e) {
    throw new CheckpointError(`${source}: its stored config (metadata.config.run) does not describe a model: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const expected = new Map(model.paramShapes().map(([p, shape]) => [p, `[${shape.join(',')}]`]));
  const differences: string[] = [];
  const compare = (prefix: string, tree: Params) => {
    const found = new Map(flattenParams(tree).map(([p, a]) => [p, `[${a.shape.join(',')}]`]));
    for (const [p, shape] of found) {
      const want = expected.get(p);
      if (want === undefined) differences.push(`${prefix}.${p}: ${shape} in the file, not in the model of its config`);
      else if (want !== shape) differences.push(`${prefix}.${p}: ${shape} in the file, ${want} from its config`);
    }
    for (const [p, want] of expected) if (!found.has(p)) differences.push(`${prefix}.${p}: not in the file, ${want} from its config`);
  };
  compare('params', ck.params);
  if (Object.keys(ck.ema).length) compare('ema', ck.ema);
  // the optimizer's state: one parameter-shaped tree per slot (Adam's m and v)
  for (const [slot, tree] of Object.entries(ck.state))
    if (typeof tree === 'object' && !('data' in tree)) compare(`state.${slot}`, tree as Params);
  if (!differences.length) return;
  // the config fields that differ from the model settings the file's signature records
  const recorded = new Map(
    (ck.signature.split('|')[0] ?? '')
      .split(';')
      .filter((kv) => kv.includes('='))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const settings = model.config as unknown as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(settings), ...recorded.keys()])]
    .filter((k) => k !== 'kind' && recorded.get(k) !== (settings[k] === undefined ? undefined : JSON.stringify(settings[k])))
    .map(
      (k) =>
        `metadata.config.run.${settingSource(k, settings[k], run)}; the file's signature records ` +
        `${recorded.has(k) ? `${k}=${recorded.get(k)}` : `no ${k}`}`,
    );
  if (!fields.length)
    fields.push(
      `metadata.config.run: model ${JSON.stringify(run.model)} with data.name ${JSON.stringify(run.data.name)} and ` +
        `data.conditional ${run.data.conditional} does not describe these tensors`,
    );
  const shown = differences.slice(0, 8);
  throw new CheckpointError(
    `${source}: its stored config does not match its tensors; refusing to load it (the file is left unchanged):\n  ` +
      `${[...fields, ...shown].join('\n  ')}` +
      `${differences.length > shown.length ? `\n  ... and ${differences.length - shown.length} more tensors` : ''}`,
  );
};

/**
 * Decodes a checkpoint written by train or finetune. A fusediff checkpoint of another kind (the evaluation
 * classifier, say) is refused with what it is, instead of a codec error about a missing field. The stored config is
 * validated (its fields' bounds included) and its tensors are checked against the shapes it implies before anything
 * is built from it, so every refusal names the file and the field.
 */
export const decodeRunCheckpoint = (
  bytes: Uint8Array,
  source: string,
  opts: Omit<LoadOptions<StoredConfig>, 'configCodec'> = {},
): Checkpoint<StoredConfig> => {
  const raw = decodeCheckpoint(bytes, source);
  if (!('run' in raw.config)) throw new CheckpointError(`${source} is ${describeOther(raw.config, raw.signature)}`);
  if (opts.expectSignature !== undefined && !sameSignature(raw.signature, opts.expectSignature))
    throw new SignatureMismatchError(source, raw.signature, opts.expectSignature);
  const invalid = (m: string) => new CheckpointError(`${source}: invalid config in checkpoint metadata:\n${m}`);
  // the run config on its own first, so its errors read metadata.config.run.<field> (not through the intersection)
  decodeOrThrow(RunConfig, raw.config.run, 'metadata.config.run', invalid);
  const config = decodeOrThrow(StoredConfig, raw.config, 'metadata.config', invalid);
  const ck = { ...raw, config };
  checkStoredShapes(source, ck);
  return ck;
};

/** loadCheckpoint for the checkpoints of train and finetune (decodeRunCheckpoint). */
export const loadRunCheckpoint = (path: string, opts: Omit<LoadOptions<StoredConfig>, 'configCodec'> = {}): Checkpoint<StoredConfig> =>
  decodeRunCheckpoint(readCheckpointFile(path), path, opts);

const show = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v));

/**
 * The dotted paths at which two JSON values differ, with both values: `train.lr: saved 0.001, requested 0.01`.
 * With `intoArrays`, arrays are compared element by element too (`datasets[0].rows[2].cfg: ...`).
 */
export const configDifferences = (saved: unknown, requested: unknown, prefix = '', intoArrays = false): string[] => {
  const arrays = intoArrays && Array.isArray(saved) && Array.isArray(requested);
  if ((isRecord(saved) && isRecord(requested)) || arrays) {
    const [a, b] = [saved as Record<string, unknown>, requested as Record<string, unknown>];
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    const at = (k: string) => (arrays ? `${prefix}[${k}]` : prefix ? `${prefix}.${k}` : k);
    return keys.flatMap((k) => configDifferences(a[k], b[k], at(k), intoArrays));
  }
  return JSON.stringify(saved) === JSON.stringify(requested)
    ? []
    : [`${prefix || '(root)'}: saved ${show(saved)}, requested ${show(requested)}`];
};

export interface TrainOptions {
  config: RunConfig;
  /** the checkpoint file this run writes (and resumes from) */
  checkpoint: string;
  /** continue from `checkpoint` if it exists */
  resume?: boolean;
  /** stage 2: the stage-1 checkpoint whose weights start the run and make the frozen copy */
  from?: string;
  /** told which backend runs the step and why (auto's timed choice: train/compileStepAuto.ts), once it is compiled */
  onBackend?: (reason: string) => void;
  /** fixes auto's adapter, cache or timer (tests); default: the device's adapter, the CLI's file cache, timed steps */
  auto?: AutoInjection;
  /** called after every completed step */
  onStep?: (info: { step: number; loss: number; total: number; startStep: number }) => void;
  /** set .stop to end the run after the step in flight (Ctrl-C); the checkpoint is saved at that step */
  stopper?: { stop: boolean };
}

export interface TrainResult {
  setup: RunSetup;
  /** completed steps (the checkpoint's step) */
  step: number;
  startStep: number;
  losses: number[];
  seconds: number;
  backend: string;
  /** why that backend: requested, or auto's choice (on a hardware WebGPU adapter, by timing the step against wasm) */
  backendReason: string;
  interrupted: boolean;
  checkpoint: string;
}

// Fields that may change between a run and its resumption without changing what is computed.
const comparable = (c: RunConfig) => ({
  ...c,
  train: { ...c.train, steps: 0, checkpointEvery: 0, keepEvery: 0 },
  sample: undefined,
  backend: undefined,
});

interface Start {
  params: Params;
  state?: Params;
  ema?: Params;
  step: number;
  frozen?: Params;
  init?: StoredConfig['init'];
}

const startingPoint = (o: TrainOptions, s: RunSetup): Start => {
  const sig = s.model.signature;
  // the stage-1 file is read once: its bytes are hashed (recorded, or checked on resume) and decoded
  const stage1 = (path: string, weights: 'ema' | 'params', expectSha256?: string) => {
    const changed = () =>
      new TrainingError(
        `--resume: the stage-1 checkpoint ${path} this fine-tune started from is missing or has changed (sha256 ${expectSha256})`,
      );
    if (expectSha256 !== undefined && !fs.existsSync(resolveCheckpointRef(path))) throw changed();
    const bytes = readCheckpointFile(path);
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (expectSha256 !== undefined && hash !== expectSha256) throw changed();
    const ck = decodeRunCheckpoint(bytes, path, { expectSignature: sig });
    const w = weights === 'ema' && Object.keys(ck.ema).length ? ck.ema : ck.params;
    return { weights: w, init: { from: path, sha256: hash, weights, step: ck.step } };
  };
  if (o.resume && fs.existsSync(o.checkpoint)) {
    const ck = loadRunCheckpoint(o.checkpoint, { expectSignature: sig });
    const differences = configDifferences(comparable(ck.config.run), comparable(o.config));
    if (differences.length)
      throw new TrainingError(
        `--resume: ${o.checkpoint} was made by a different run config; it differs at:\n  ${differences.join('\n  ')}\n` +
          '(only train.steps, train.checkpointEvery, sample and backend may change on resume)',
      );
    if (ck.step >= o.config.train.steps)
      throw new TrainingError(
        `--resume: ${o.checkpoint} is at step ${ck.step}, ${ck.step === o.config.train.steps ? 'which is' : 'past'} ` +
          `train.steps ${o.config.train.steps}: nothing to train; give --steps above ${ck.step} to continue it`,
      );
    const init = ck.config.init;
    const frozen = init && stage1(init.from, init.weights, init.sha256).weights;
    return { params: ck.params, state: ck.state, ema: Object.keys(ck.ema).length ? ck.ema : undefined, step: ck.step, frozen, init };
  }
  if (o.from) {
    const { weights, init } = stage1(o.from, o.config.train.initFrom);
    return { params: weights, step: 0, frozen: weights, init };
  }
  return { params: s.model.init(o.config.train.seed), step: 0 };
};

export const train = async (o: TrainOptions): Promise<TrainResult> => {
  const setup = setupRun(o.config);
  const { config: c, model } = setup;
  if (c.train.steps < 1) throw new TrainingError(`train.steps is ${c.train.steps}: a run trains at least one step`);
  if (c.objective.kind === 'sp' && !o.from && !(o.resume && fs.existsSync(o.checkpoint)))
    throw new TrainingError('the "sp" objective fine-tunes a stage-1 model: pass --from <stage-1 checkpoint>');
  // before any weight is made or kernel compiled: a step that cannot fit is refused, naming the fields that size it
  const task = { task: 'training step', batchField: 'train.batchSize', batch: c.train.batchSize };
  checkMemory(setup, estimateTrainMemory(setup), { ...task, backend: c.backend });
  const start = startingPoint(o, setup);
  const objective = buildObjective(setup, start.frozen);
  const source = batchSource(setup);
  const B = c.train.batchSize;
  const conditional = setup.numClasses !== undefined;
  const data: Record<string, number[]> = { x0: [B, ...model.dataShape] };
  if (conditional) data.c = [B];
  let step;
  try {
    step = await compileStepAuto(({ params, step: k, x0, c: cls, ema }) => objective({ params, x0, c: cls, step: k, ema }), {
      params: start.params,
      optimizer: adam({ lr: c.train.lr, weightDecay: c.train.weightDecay }),
      data,
      backend: c.backend,
      startStep: start.step + 1,
      emaDecay: c.train.emaDecay,
      emaInLoss: c.objective.kind === 'sp' && c.objective.perceptual === 'ema',
      initialState: { state: start.state, ema: start.ema },
      auto: { cache: cliChoiceCache(), ...o.auto, log: o.onBackend },
    });
  } catch (e) {
    // the estimate is a lower bound: a plan just over the wasm limit is refused here, by its exact size
    throw planLimitError(e, setup, task) ?? e;
  }
  const stored: StoredConfig = start.init ? { run: c, init: start.init } : { run: c };
  let done = start.step;
  // read without blocking: on webgpu the state comes back only asynchronously (the same values on every backend)
  const save = async () => {
    const { params, state, ema } = await step.readAsync();
    saveCheckpoint(o.checkpoint, {
      params,
      state,
      ema,
      config: stored,
      step: done,
      rngCounter: done + 1,
      schedule: setup.schedule.name,
      signature: model.signature,
    });
  };
  // kept checkpoints (train.keepEvery) are copies of the atomically written one: a partial copy is never the only one
  const keep = (k: number) => c.train.keepEvery > 0 && k % c.train.keepEvery === 0;
  const kept = (k: number) => path.join(path.dirname(o.checkpoint), `step-${k}.safetensors`);
  const losses: number[] = [];
  const t0 = performance.now();
  let interrupted = false;
  for (let k = start.step + 1; k <= c.train.steps; k++) {
    const batch = source(k);
    let loss: number;
    try {
      loss = await step.runAsync(batch.c ? { x0: batch.x0, c: batch.c } : { x0: batch.x0 });
    } catch (e) {
      if (!(e instanceof NonFiniteLossError)) throw e;
      const kept = fs.existsSync(o.checkpoint)
        ? `the last good checkpoint ${o.checkpoint} is kept unchanged`
        : 'no checkpoint had been written yet';
      throw new TrainingError(
        `training stopped at step ${k}: the loss is ${e.loss} (not finite); ${kept}. Lower train.lr or check the data.`,
      );
    }
    done = k;
    losses.push(loss);
    o.onStep?.({ step: k, loss, total: c.train.steps, startStep: start.step });
    // let signal handlers (Ctrl-C) and timers run: kernels may complete synchronously, leaving no other gap
    await new Promise((r) => setImmediate(r));
    if (o.stopper?.stop) {
      interrupted = true;
      break;
    }
    if (k % c.train.checkpointEvery === 0 && k < c.train.steps) await save();
    if (keep(k) && k < c.train.steps) {
      if (k % c.train.checkpointEvery !== 0) await save();
      fs.copyFileSync(o.checkpoint, kept(k));
    }
  }
  if (done > start.step || !fs.existsSync(o.checkpoint)) await save();
  if (keep(done) && done > start.step) fs.copyFileSync(o.checkpoint, kept(done));
  const seconds = (performance.now() - t0) / 1000;
  const { backend, backendReason } = step.executable;
  step.dispose(); // an experiment trains several models in one process: free this one's kernels and buffers
  return { setup, step: done, startStep: start.step, losses, seconds, backend, backendReason, interrupted, checkpoint: o.checkpoint };
};
