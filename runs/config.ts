// The run configuration: one JSON document (a file, flags on top) checked with io-ts before anything computes.
// Every field has a default, so a config file holds only what it changes; unknown keys are rejected as typos.
import * as t from 'io-ts';
import { backendNames } from '../compiler/index.ts';
import { datasetNames } from '../data/index.ts';
import { decodeOrThrow } from '../storage/ioReport.ts';
import { unetDefaults } from '../models/configs.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** t.type that also fails on keys it does not know, naming them (a misspelt option must not be ignored silently). */
const closed = <P extends t.Props>(props: P, name: string) => {
  const base = t.type(props, name);
  return new t.Type<t.TypeOf<typeof base>, t.OutputOf<typeof base>, unknown>(
    name,
    base.is,
    (u, c) => {
      if (typeof u === 'object' && u !== null && !Array.isArray(u)) {
        const extra = Object.keys(u).filter((k) => !Object.hasOwn(props, k));
        if (extra.length)
          return t.failure(
            u,
            c,
            `${[
              'config',
              ...c
                .slice(1)
                .map((e) => e.key)
                .filter((k) => k !== ''),
            ].join('.')}: unknown key${extra.length > 1 ? 's' : ''} ` +
              `${extra.map((k) => `'${k}'`).join(', ')}; ` +
              `expected one of: ${Object.keys(props).join(', ')}`,
          );
      }
      return base.validate(u, c);
    },
    base.encode,
  );
};

const refine = (name: string, ok: (n: number) => boolean) =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && ok(u),
    (u, c) => (typeof u === 'number' && ok(u) ? t.success(u) : t.failure(u, c)),
    (a) => a,
  );
const PositiveInt = refine('positive integer', (n) => Number.isSafeInteger(n) && n > 0);
const NonNegInt = refine('non-negative integer', (n) => Number.isSafeInteger(n) && n >= 0);
const PositiveNumber = refine('positive number', (n) => Number.isFinite(n) && n > 0);
const NonNegNumber = refine('non-negative number', (n) => Number.isFinite(n) && n >= 0);
const Probability = refine('number in [0, 1]', (n) => n >= 0 && n <= 1);
const Decay = refine('number in [0, 1)', (n) => n >= 0 && n < 1);
/** A field added after checkpoints were made: absent (an older run's config) decodes as the behaviour it had then. */
const since = <A>(type: t.Type<A, A, unknown>, before: A) =>
  new t.Type<A, A, unknown>(type.name, type.is, (u, c) => (u === undefined ? t.success(before) : type.validate(u, c)), type.encode);
const Int = refine('integer', (n) => Number.isSafeInteger(n));
/** An integer in lo..hi; the name states the range, so a refusal reads `config.model.hidden: expected integer in 1..16384, got 12000`. */
const IntIn = (lo: number, hi: number) => refine(`integer in ${lo}..${hi}`, (n) => Number.isSafeInteger(n) && n >= lo && n <= hi);

// Upper bounds of the sizes. Each is far above any run this project makes (the defaults and every experiment spec
// use hidden <= 512, depth <= 3, T = 1000, batches <= 256, 2000 samples), yet low enough that a typo or an absurd
// value (1e9, 1e12) is refused here, naming its field, instead of surfacing later as an allocation that runs for
// minutes, a `RangeError: Invalid typed array length` or a kernel that cannot be placed. The same bounds hold for
// the config stored in a checkpoint, so a crafted file is refused before anything is built from it. What fits in
// memory under these bounds is checked separately, per run (runs/setup.ts, memory estimates).
/** MLP width: 16384 makes one hidden layer 2^28 weights (1 GiB in f32, ten times that with Adam's state in a step). */
const Width = IntIn(1, 16384);
/** MLP depth: plain MLP denoisers use 2-8 layers; each layer is a few kernels of the compiled step. */
const Depth = IntIn(1, 128);
/** embedding widths (time, class, UNet conditioning): the reference models use 16-256. */
const EmbedWidth = IntIn(1, 4096);
/** UNet channels: base channels x every mult is a layer's width; DDPM's largest is 128 x 4 = 512. */
const BaseChannels = IntIn(1, 1024);
const ChannelMult = IntIn(1, 64);
/** schedule length: DDPM and its successors use T = 1000 (4000 at most); the host tables hold T values. */
const Timesteps = IntIn(1, 100_000);
/** batch sizes of training and of sampling: 2^16 samples per step; what fits is the memory check's to say. */
const BatchSize = IntIn(1, 65_536);
/** samples to draw: twice the 50,000 of an FID; they are all held at once (MNIST-28: 100k samples = 630 MB in f64). */
const SampleCount = IntIn(1, 100_000);
/** An array of `item` with lo..hi entries. */
const boundedArray = <A>(item: t.Type<A, A, unknown>, lo: number, hi: number) => {
  const base = t.array(item);
  return new t.Type<A[], A[], unknown>(
    `array of ${lo}..${hi} ${item.name}s`,
    (u): u is A[] => base.is(u) && u.length >= lo && u.length <= hi,
    (u, c) => (Array.isArray(u) && (u.length < lo || u.length > hi) ? t.failure(u, c) : base.validate(u, c)),
    base.encode,
  );
};
const keyof = <K extends string>(names: readonly K[], what: string) =>
  t.keyof(Object.fromEntries(names.map((n) => [n, null])) as { [k in K]: null }, `${what}: ${names.map((n) => `"${n}"`).join(' | ')}`);

export const DataConfig = closed(
  {
    name: keyof(datasetNames, 'dataset'),
    /** train a class-conditional model (MNIST digits; for 2-D mixtures the class is the mixture mode) */
    conditional: t.boolean,
    /** MNIST: share of the 10,000 digits held out for evaluation, and the seed of that split */
    testFraction: Probability,
    splitSeed: NonNegInt,
  },
  'data config',
);

export const MlpModelConfig = closed(
  // timeDim: the sinusoidal embedding is sin and cos halves, so at least 2
  { kind: t.literal('mlp'), hidden: Width, depth: Depth, timeDim: IntIn(2, 4096), classDim: EmbedWidth },
  'mlp model config',
);
export const UnetModelConfig = closed(
  {
    kind: t.literal('unet'),
    baseChannels: BaseChannels,
    /** one per resolution level; each level halves the image, so more than 8 never fits an image here */
    channelMults: boundedArray(ChannelMult, 1, 8),
    numResBlocks: IntIn(1, 16),
    groups: BaseChannels,
    embDim: EmbedWidth,
    midAttention: t.boolean,
  },
  'unet model config',
);
/** A value of user JSON in a message: at most 80 characters; one JSON.stringify cannot print (nested 10,000 deep) by its kind. */
const shown = (v: unknown): string => {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    return Array.isArray(v) ? 'an array' : typeof v;
  }
  if (s === undefined) return 'undefined (missing)';
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/** Dispatches on `kind`, so errors name the chosen kind's fields (a plain union reports every member's failures). */
export const ModelConfig = new t.Type<t.TypeOf<typeof MlpModelConfig> | t.TypeOf<typeof UnetModelConfig>, unknown, unknown>(
  'model config',
  (u): u is t.TypeOf<typeof MlpModelConfig> | t.TypeOf<typeof UnetModelConfig> => MlpModelConfig.is(u) || UnetModelConfig.is(u),
  (u, c) => {
    const kind = typeof u === 'object' && u !== null ? (u as { kind?: unknown }).kind : undefined;
    if (kind === 'mlp') return MlpModelConfig.validate(u, c);
    if (kind === 'unet') return UnetModelConfig.validate(u, c);
    return t.failure(u, c, `config.model.kind: expected "mlp" | "unet", got ${shown(kind)}`);
  },
  (a) => a,
);

export const ScheduleConfig = closed(
  { kind: keyof(['cosine', 'linear', 'scaledLinear'], 'schedule'), T: Timesteps, zeroTerminalSnr: t.boolean },
  'schedule config',
);

export const objectiveNames = ['mse', 'sp'] as const;
const tPrimeNames = ['uniform', 'same', 'offset'] as const;
const renoiseNames = ['predicted', 'true', 'fresh'] as const;
const perceptualNames = ['frozen', 'ema'] as const;
export const ObjectiveConfig = closed(
  {
    kind: keyof(objectiveNames, 'objective'),
    /** mse: min-SNR-gamma weighting (0 = off) */
    minSnrGamma: NonNegNumber,
    /** probability of replacing the class by the null class (CFG training) */
    condDropout: Probability,
    /** sp: feature layer of the frozen copy ('mid', another layer name, or 'all') */
    layer: t.string,
    /** sp: t' uniform on 1..T (the paper), equal to t (a control: the loss is zero), or t + tPrimeOffset clamped */
    tPrime: keyof(tPrimeNames, 'tPrime'),
    tPrimeOffset: since(Int, 0),
    distance: keyof(['mse', 'mae'], 'distance'),
    /** sp: the noise at t': real with eps and predicted with eps_hat (the paper), both with eps, or both fresh */
    renoise: since(keyof(renoiseNames, 'renoise'), 'predicted'),
    /** sp: the perceptual network: the frozen stage-1 copy (the paper) or the EMA of the online model */
    perceptual: since(keyof(perceptualNames, 'perceptual'), 'frozen'),
  },
  'objective config',
);

export const TrainConfig = closed(
  {
    steps: NonNegInt,
    batchSize: BatchSize,
    lr: PositiveNumber,
    weightDecay: NonNegNumber,
    emaDecay: Decay,
    seed: NonNegInt,
    /** save a checkpoint every this many steps (and at the end, and on Ctrl-C) */
    checkpointEvery: PositiveInt,
    /** also keep the checkpoint of every this many steps as step-<n>.safetensors (0 = off): FD-against-steps curves */
    keepEvery: since(NonNegInt, 0),
    /** the weights the fine-tune starts from and the frozen copy is made of: the stage-1 'ema' or raw 'params' */
    initFrom: keyof(['ema', 'params'], 'initFrom'),
  },
  'train config',
);

export const SampleConfig = closed(
  {
    sampler: keyof(['ddim', 'ddpm'], 'sampler'),
    /** denoising steps: at most schedule.T (the sampler refuses more), so T's bound */
    steps: Timesteps,
    eta: NonNegNumber,
    count: SampleCount,
    batchSize: BatchSize,
    /** guidance scales to sample at (1 = no guidance); at least one, since sample and eval draw a row per scale */
    cfgScales: boundedArray(PositiveNumber, 1, 64),
    seed: NonNegInt,
    /** sample with the EMA weights (default) or the raw ones */
    weights: keyof(['ema', 'params'], 'weights'),
  },
  'sample config',
);

export const RunConfig = closed(
  {
    data: DataConfig,
    model: ModelConfig,
    schedule: ScheduleConfig,
    prediction: keyof(['eps', 'v', 'x0'], 'prediction'),
    objective: ObjectiveConfig,
    train: TrainConfig,
    sample: SampleConfig,
    backend: keyof([...backendNames, 'auto'], 'backend'),
  },
  'run config',
);
export type RunConfig = t.TypeOf<typeof RunConfig>;
export type ModelConfig = t.TypeOf<typeof ModelConfig>;

/** The image data sets' MLP (`--set model.kind=mlp`): 512 x 3 over the flattened image. */
const imageMlp: RunConfig['model'] = { kind: 'mlp', hidden: 512, depth: 3, timeDim: 64, classDim: 32 };

/** The UNet of `models/unet.ts` with its defaults (16 -> 8 -> 4 pixels on MNIST-16 with 16, 32, 32 channels). */
const unetModel = (): RunConfig['model'] => {
  const { baseChannels, channelMults, numResBlocks, groups, embDim, midAttention } = unetDefaults;
  return { kind: 'unet', baseChannels, channelMults: [...channelMults], numResBlocks, groups, embDim, midAttention };
};

/**
 * Per-dataset defaults. The image data sets default to the recipe of the committed UNet,
 * pretrained/stage1-unet-mnist16.safetensors (pretrained/README.md): the UNet, a cosine schedule rescaled to zero
 * terminal SNR, batch 64, 9,000 steps, EMA 0.999, a checkpoint every 1,000 steps, so `fusediff train --dataset
 * mnist16` trains that model (its config equals the file's, backend aside; test/cli-defaults.test.ts). `kind`
 * 'mlp' gives them the MLP recipe of pretrained/stage1-mlp-mnist16.safetensors instead (batch 128, 3,000 steps, EMA
 * 0.995, plain cosine), the defaults before the UNet. The 2-D data sets have one recipe, an MLP of width 128.
 */
export const defaultConfig = (dataset: string, kind?: RunConfig['model']['kind']): RunConfig => {
  const image = dataset.startsWith('mnist');
  const unet = image && kind !== 'mlp';
  return {
    data: { name: dataset as RunConfig['data']['name'], conditional: true, testFraction: 0.2, splitSeed: 0 },
    model: unet ? unetModel() : image ? imageMlp : { kind: 'mlp', hidden: 128, depth: 3, timeDim: 32, classDim: 16 },
    schedule: { kind: 'cosine', T: 1000, zeroTerminalSnr: unet },
    prediction: 'v',
    objective: {
      kind: 'mse',
      minSnrGamma: 0,
      condDropout: 0.1,
      layer: 'mid',
      tPrime: 'uniform',
      tPrimeOffset: 0,
      distance: 'mse',
      renoise: 'predicted',
      perceptual: 'frozen',
    },
    train: {
      steps: unet ? 9000 : image ? 3000 : 2000,
      batchSize: unet ? 64 : image ? 128 : 256,
      lr: image ? 1e-3 : 2e-3,
      weightDecay: 0,
      emaDecay: unet ? 0.999 : 0.995,
      seed: 0,
      checkpointEvery: unet ? 1000 : 250,
      keepEvery: 0,
      initFrom: 'ema',
    },
    sample: {
      sampler: 'ddim',
      steps: 50,
      eta: 0,
      count: image ? 500 : 2000,
      batchSize: image ? 250 : 1000,
      cfgScales: [1, 3],
      seed: 1,
      weights: 'ema',
    },
    backend: 'auto',
  };
};

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge of plain objects; arrays and scalars of `over` replace those of `base`. */
/** Keys that would reach an object's prototype rather than a field of it: refused wherever user JSON becomes a path. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);
const checkKey = (k: string, where: string): void => {
  if (FORBIDDEN_KEYS.has(k)) throw new ConfigError(`${where}: '${k}' is not a config field (it would reach the object's prototype)`);
};

export const merge = (base: unknown, over: unknown, where = 'config'): unknown => {
  if (!isRecord(base) || !isRecord(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    checkKey(k, `${where}.${k}`);
    out[k] = merge(Object.hasOwn(base, k) ? base[k] : undefined, v, `${where}.${k}`);
  }
  return out;
};

/** Sets a dotted path ('train.lr') in a plain object, creating records on the way; prototype keys are refused. */
export const setPath = (obj: Record<string, unknown>, path: string, value: Json): void => {
  const keys = path.split('.');
  for (const k of keys) checkKey(k, path);
  let node = obj;
  for (const k of keys.slice(0, -1))
    node = (node[k] = Object.hasOwn(node, k) && isRecord(node[k]) ? node[k] : {}) as Record<string, unknown>;
  node[keys[keys.length - 1]] = value;
};

/** Validates a whole config; errors name each failing path and the type expected there. */
export const decodeConfig = (value: unknown, source = 'config'): RunConfig =>
  decodeOrThrow(RunConfig, value, 'config', (msg) => new ConfigError(`${source} is not a valid run config:\n${msg}`));

/**
 * The base config of a fine-tune of a stage-1 run: the same data, model and schedule; 500 steps at a tenth of the
 * stage-1 learning rate (a fresh Adam at the full rate first undoes training), a checkpoint every 100 steps. The
 * backend is not inherited (it says where stage 1 ran, not what it computed): `auto` unless given.
 */
export const finetuneBase = (stage1: RunConfig): RunConfig => ({
  ...stage1,
  train: { ...stage1.train, steps: 500, lr: stage1.train.lr / 10, checkpointEvery: 100 },
  backend: 'auto',
});

/** Levenshtein distance, case-insensitive (for "did you mean"). */
const distance = (a: string, b: string): number => {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const row = [i];
    for (let j = 1; j <= y.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[y.length];
};

/**
 * The names `value` may have meant: those that contain it as a word part ('gpu' -> webgpu, gpujs-webgpu; at least 3
 * letters, so a short typo is no part of everything), else the closest when it is close enough to be a typo (a third
 * of its letters, at least 2), else none.
 */
export const nearNames = (value: string, names: readonly string[]): string[] => {
  const v = value.toLowerCase();
  const containing = v.length >= 3 ? names.filter((n) => n.toLowerCase().includes(v)) : [];
  if (containing.length) return containing;
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = distance(value, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(value.length / 3)) ? [best] : [];
};

/** The first of nearNames: the one name `value` most likely meant, else undefined. */
export const closestName = (value: string, names: readonly string[]): string | undefined => nearNames(value, names)[0];

/**
 * A name as the config spells it: `names`' own spelling of a case-insensitive match ('eightgaussians' ->
 * 'eightGaussians'), else the value unchanged (validation then refuses it, with closestName's suggestion).
 */
export const canonicalName = (value: string, names: readonly string[]): string =>
  names.find((n) => n.toLowerCase() === value.toLowerCase()) ?? value;

/** The config's fields that hold a name from a fixed list: matched case-insensitively, typos get a suggestion. */
const NAMED_FIELDS: [string, readonly string[]][] = [
  ['data.name', datasetNames],
  ['model.kind', ['mlp', 'unet']],
  ['backend', [...backendNames, 'auto']],
  ['objective.kind', objectiveNames],
  ['schedule.kind', ['cosine', 'linear', 'scaledLinear']],
  ['prediction', ['eps', 'v', 'x0']],
  ['objective.tPrime', tPrimeNames],
  ['objective.renoise', renoiseNames],
  ['objective.perceptual', perceptualNames],
  ['objective.distance', ['mse', 'mae']],
  ['train.initFrom', ['ema', 'params']],
  ['sample.sampler', ['ddim', 'ddpm']],
  ['sample.weights', ['ema', 'params']],
];

const getPath = (obj: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((node, k) => (isRecord(node) ? node[k] : undefined), obj);

/** Canonicalises the named fields in place; returns "did you mean" lines for the values that match no name. */
const canonicalNames = (merged: Record<string, unknown>): string[] => {
  const hints: string[] = [];
  for (const [p, names] of NAMED_FIELDS) {
    const v = getPath(merged, p);
    if (typeof v !== 'string') continue;
    const c = canonicalName(v, names);
    if (c !== v) setPath(merged, p, c);
    else if (!names.includes(v)) {
      const near = nearNames(v, names);
      if (near.length) hints.push(`config.${p}: did you mean ${near.map((n) => `"${n}"`).join(' or ')} (for "${v}")?`);
    }
  }
  return hints;
};

/** The fields only an MLP model config has. */
const MLP_FIELDS = ['hidden', 'depth', 'timeDim', 'classDim'] as const;

/** A model section of `kind` with that kind's defaults (switching kind must not drag the other kind's fields along). */
const modelDefaults = (kind: unknown, fallback: RunConfig['model']): RunConfig['model'] => {
  if (kind === fallback.kind || (kind !== 'mlp' && kind !== 'unet')) return fallback;
  return kind === 'mlp' ? imageMlp : unetModel();
};

/**
 * The effective config: `base` (a stage-1 run's config for a fine-tune, else the dataset's defaults), then the
 * file's JSON, then the flags' overrides (dotted paths), validated as a whole. Without a base the dataset comes
 * from the overrides, then the file, then `fallbackDataset`.
 */
export const resolveConfig = (
  file: { json: unknown; path: string } | undefined,
  overrides: Record<string, Json>,
  fallbackDataset: string,
  base?: RunConfig,
): RunConfig => {
  if (file && !isRecord(file.json))
    throw new ConfigError(
      `${file.path}: a run config must be a JSON object, got ${Array.isArray(file.json) ? 'an array' : typeof file.json}`,
    );
  const fromFile = (k: string): unknown => (file && isRecord(file.json) && isRecord(file.json[k]) ? file.json[k] : undefined);
  // only a string names a data set (String() of user JSON such as {"toString": 1} throws a TypeError); any other value
  // is left to validation, which names it
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const dataset = canonicalName(
    text(overrides['data.name']) ?? text((fromFile('data') as { name?: unknown } | undefined)?.name) ?? fallbackDataset,
    datasetNames,
  );
  const given = overrides['model.kind'] ?? (fromFile('model') as { kind?: unknown } | undefined)?.kind;
  const kind = typeof given === 'string' ? canonicalName(given, ['mlp', 'unet']) : given;
  // the data set's defaults for the model kind asked for (an image data set's MLP brings its own training recipe)
  const start = structuredClone(base ?? defaultConfig(dataset, kind === 'mlp' || kind === 'unet' ? kind : undefined));
  start.model = modelDefaults(kind, start.model);
  const merged = merge(start, file?.json ?? {}, file ? `${file.path}: config` : 'config') as Record<string, unknown>;
  for (const [p, v] of Object.entries(overrides)) setPath(merged, p, v);
  const hints = canonicalNames(merged);
  const model = getPath(merged, 'model');
  if (given === undefined && start.model.kind === 'unet' && isRecord(model) && MLP_FIELDS.some((k) => Object.hasOwn(model, k)))
    hints.push(
      `config.model: ${dataset}'s default model is the UNet (model.kind "unet"); ` +
        `the MLP's fields (${MLP_FIELDS.join(', ')}) need model.kind=mlp (--set model.kind=mlp)`,
    );
  try {
    return decodeConfig(merged, file?.path ?? 'config');
  } catch (e) {
    if (e instanceof ConfigError && hints.length) throw new ConfigError(`${e.message}\n${hints.join('\n')}`);
    throw e;
  }
};
