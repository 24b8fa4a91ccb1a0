// Checkpoints: weights, optimizer state and EMA in ONE safetensors file, plus JSON metadata checked with io-ts on
// load; written atomically (temporary file, fsync, rename).
//
// ---- file layout (for PyTorch / diffusers / jax-js readers) ------------------------------------------------
//
// A checkpoint is a plain safetensors file, so `safetensors.torch.load_file(path)` (or `safe_open`, or any other
// safetensors reader) returns a dict with exactly these names:
//
//   params.<path>   the model weights           e.g. params.hidden.hidden0.w, params.hidden.hidden0.b
//   state.<path>    the optimizer state         e.g. state.m.hidden.hidden0.w, state.v.hidden.hidden0.w (Adam),
//                                                    state.velocity.<path> (SGD with momentum); none for plain SGD
//   ema.<path>      the EMA of the weights      same paths and shapes as params.*
//
// where <path> is the dotted path of dsl/params.ts's flattenParams (the same names a traced graph gives its inputs).
// A tree that is a single array (not a record) is stored under the bare prefix: `params`, `state` or `ema`.
//
// dtype: F32 by default (float64 host values rounded to nearest), or F64 (`{ dtype: 'F64' }`, exact; use it to
// resume float64 interpreter runs bit for bit). Values are row-major, little-endian, as safetensors specifies.
//
// Layouts (shapes as stored):
//   nn.linear   w: [in, out]  (y = x @ w + b)   -- PyTorch's nn.Linear.weight is [out, in]: transpose it,
//                                                  e.g. `lin.weight.copy_(sd['params.<path>.w'].T)`
//               b: [out]                         -- same as PyTorch
//   nn.conv2d   w: [out, in, kh, kw] (OIHW)      -- same as PyTorch's nn.Conv2d.weight; b: [out]
//   groupNorm / layerNorm   gamma, beta: [channels]   -- PyTorch's weight, bias
//   nn.embedding            table: [count, dim]        -- same as nn.Embedding.weight
//
// Metadata: `__metadata__.fusediff` is a JSON string
//   { "format": 1, "version": "<fusediff version>", "signature": "<model signature>", "step": <int>,
//     "rngCounter": <int>, "schedule": "<noise schedule name>", "config": { ...the run's config... } }
// Python: `json.loads(safe_open(path, 'pt').metadata()['fusediff'])`.
import { packageFile, resolveCheckpointRef } from './packageFiles.ts';
import fs from 'node:fs';
import * as t from 'io-ts';
import type { NDArray } from '../core/ndarray.ts';
import type { Params } from '../dsl/params.ts';
import { writeFileAtomic, WriteError } from './atomicWrite.ts';
import { decodeOrThrow, NonNegativeInteger } from './ioReport.ts';
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type WriteDtype } from './safetensors.ts';

/** A checkpoint that cannot be written, read or used; the message says what and where. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** The two halves of a model signature `<config>|<name=shape>;...`: the config part and parameter name -> shape. */
const splitSignature = (sig: string): { config: string; params: Map<string, string> } => {
  const i = sig.indexOf('|');
  const list = i < 0 ? '' : sig.slice(i + 1);
  const params = new Map<string, string>();
  for (const entry of list.split(';').filter((e) => e !== '')) {
    const eq = entry.indexOf('=');
    params.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? '?' : entry.slice(eq + 1));
  }
  return { config: i < 0 ? sig : sig.slice(0, i), params };
};

/**
 * What differs between two model signatures, one line each: the parameters whose shapes differ (name, saved
 * shape, requested shape), those only one side has, and the model settings of the config part.
 */
export const signatureDifferences = (saved: string, requested: string): string[] => {
  const a = splitSignature(saved);
  const b = splitSignature(requested);
  const lines: string[] = [];
  // `mlp;hidden=16;...`: a bare entry is the model's kind, the others are settings
  const settings = (c: string) =>
    new Map(
      c
        .split(';')
        .map((kv, i) => (kv.includes('=') ? [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] : [i ? kv : 'kind', kv])),
    );
  const sa = settings(a.config);
  const sb = settings(b.config);
  for (const k of new Set([...sa.keys(), ...sb.keys()]))
    if (sa.get(k) !== sb.get(k)) lines.push(`model ${k}: saved ${sa.get(k) ?? '(absent)'}, requested ${sb.get(k) ?? '(absent)'}`);
  for (const [name, shape] of a.params) {
    const other = b.params.get(name);
    if (other === undefined) lines.push(`${name}: saved ${shape}, not in the requested model`);
    else if (other !== shape) lines.push(`${name}: saved ${shape}, requested ${other}`);
  }
  for (const [name, shape] of b.params) if (!a.params.has(name)) lines.push(`${name}: not in the checkpoint, requested ${shape}`);
  return lines;
};

/** Loading a checkpoint of another model: names the parameters (and model settings) that differ. */
export class SignatureMismatchError extends CheckpointError {
  override name = 'SignatureMismatchError';
  /** one line per difference: `name: saved [..], requested [..]` */
  readonly differences: string[];
  constructor(
    readonly path: string,
    readonly found: string,
    readonly expected: string,
  ) {
    const differences = signatureDifferences(found, expected);
    if (differences.length === 0) differences.push(`signature: saved '${found}', requested '${expected}'`);
    const shown = differences.slice(0, 12);
    super(
      `${path} was saved for another model; refusing to load it (the file is left unchanged). It differs at:\n  ` +
        `${shown.join('\n  ')}${differences.length > shown.length ? `\n  ... and ${differences.length - shown.length} more` : ''}`,
    );
    this.differences = differences;
  }
}

/** The fusediff version that writes checkpoints (package.json's). */
export const FUSEDIFF_VERSION: string = (() => {
  try {
    return String(JSON.parse(fs.readFileSync(packageFile('package.json'), 'utf8')).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
})();

/** The key of the fusediff JSON in safetensors `__metadata__`. */
export const METADATA_KEY = 'fusediff';
/** The checkpoint layout version written in the metadata's `format`. */
export const CHECKPOINT_FORMAT = 1;
/** The tensor-name prefixes of the three trees. */
export const PREFIXES = ['params', 'state', 'ema'] as const;

/** The metadata stored as JSON in `__metadata__.fusediff`, as the io-ts codec checks it on load. */
export const CheckpointMetadata = t.type(
  {
    format: t.literal(CHECKPOINT_FORMAT),
    version: t.string,
    signature: t.string,
    step: NonNegativeInteger,
    rngCounter: NonNegativeInteger,
    schedule: t.string,
    config: t.UnknownRecord,
  },
  'fusediff checkpoint metadata',
);
export type CheckpointMetadata = t.TypeOf<typeof CheckpointMetadata>;

/**
 * A checkpoint as the host sees it: weights, optimizer state and EMA as parameter trees, plus the run's config, step,
 * RNG counter, schedule, model signature and version (stored as one safetensors file: storage/README.md).
 */
export interface Checkpoint<C = Record<string, unknown>> {
  /** model weights */
  params: Params;
  /** optimizer state ({} when the optimizer has none) */
  state: Params;
  /** EMA of the weights ({} when there is none) */
  ema: Params;
  /** the run's config (JSON: plain objects, arrays, strings, finite numbers, booleans, null) */
  config: C;
  /** completed training steps */
  step: number;
  /** the RNG counter to continue from */
  rngCounter: number;
  /** noise schedule name */
  schedule: string;
  /** the model signature: a checkpoint only loads into a model with the same one */
  signature: string;
  /** fusediff version that wrote it (set by saveCheckpoint) */
  version: string;
}

/** What saveCheckpoint takes: a Checkpoint whose version defaults to FUSEDIFF_VERSION. */
export type CheckpointInput<C = Record<string, unknown>> = Omit<Checkpoint<C>, 'version'> & { version?: string };

/** Options of `saveCheckpoint`: the dtype the tensors are stored in. */
export interface SaveOptions {
  /** tensor dtype: F32 (default; float64 values rounded) or F64 (exact) */
  dtype?: WriteDtype;
}

/** Options of `loadCheckpoint`: the model signature to insist on, and an io-ts codec for the config. */
export interface LoadOptions<C> {
  /** refuse (SignatureMismatchError) a checkpoint whose model signature differs */
  expectSignature?: string;
  /** validates `config` too; its errors name `metadata.config.<path>` */
  configCodec?: t.Decoder<unknown, C>;
}

// ---- trees <-> tensor names ---------------------------------------------------------------------------------

const isNDArray = (x: unknown): x is NDArray =>
  typeof x === 'object' && x !== null && (x as NDArray).data instanceof Float64Array && Array.isArray((x as NDArray).shape);

const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null);

/** Tensor names of a tree under a prefix (flattenParams's dotted paths), checking every leaf is an NDArray. */
const flattenTree = (tree: unknown, prefix: string, out: Record<string, NDArray>): void => {
  if (isNDArray(tree)) {
    out[prefix] = tree;
    return;
  }
  if (!isPlainObject(tree))
    throw new CheckpointError(
      `saveCheckpoint: '${prefix}' is neither an NDArray nor a record of them (got ${tree === null ? 'null' : typeof tree})`,
    );
  for (const [k, v] of Object.entries(tree)) {
    if (k === '' || k.includes('.'))
      throw new CheckpointError(`saveCheckpoint: key '${k}' under '${prefix}' is empty or contains '.', which separates path segments`);
    flattenTree(v, `${prefix}.${k}`, out);
  }
};

/**
 * Keys that reach an object's prototype rather than a field of it (`o['__proto__']`, `o.constructor.prototype`): a
 * file's tensor names and metadata may not hold them, so nothing built from a file can reach Object.prototype.
 */
const PROTOTYPE_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** The first path in parsed JSON (`root.a[0].b`) whose key is in PROTOTYPE_KEYS, or undefined; iterative, so any depth is fine. */
const prototypeKeyPath = (json: unknown, root: string): string | undefined => {
  const stack: [unknown, string][] = [[json, root]];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) v.forEach((x, i) => stack.push([x, `${path}[${i}]`]));
    else
      for (const [k, x] of Object.entries(v)) {
        if (PROTOTYPE_KEYS.has(k)) return `${path}.${k}`;
        stack.push([x, `${path}.${k}`]);
      }
  }
  return undefined;
};

/** The tree of the tensors named `prefix` or `prefix.<path>`. */
const treeOf = (tensors: Record<string, NDArray>, prefix: string, source: string): Params => {
  if (tensors[prefix]) return tensors[prefix];
  const root: Record<string, unknown> = {};
  for (const [name, a] of Object.entries(tensors)) {
    if (!name.startsWith(`${prefix}.`)) continue;
    const keys = name.slice(prefix.length + 1).split('.');
    if (keys.some((k) => k === '')) throw new CheckpointError(`${source}: tensor '${name}' has an empty path segment`);
    const bad = keys.find((k) => PROTOTYPE_KEYS.has(k));
    if (bad !== undefined)
      throw new CheckpointError(`${source}: tensor '${name}' has the path segment '${bad}', which would reach an object's prototype`);
    let node = root;
    keys.slice(0, -1).forEach((k, i) => {
      if (!Object.hasOwn(node, k)) Object.defineProperty(node, k, { value: {}, enumerable: true, writable: true, configurable: true });
      const next = node[k];
      if (isNDArray(next))
        throw new CheckpointError(
          `${source}: '${[prefix, ...keys.slice(0, i + 1)].join('.')}' is both a tensor and the group of '${name}'`,
        );
      node = next as Record<string, unknown>;
    });
    const last = keys[keys.length - 1];
    if (Object.hasOwn(node, last)) throw new CheckpointError(`${source}: '${name}' is both a tensor and a group of tensors`);
    Object.defineProperty(node, last, { value: a, enumerable: true, writable: true, configurable: true });
  }
  return root as Params;
};

/** Throws unless `v` survives JSON.stringify/parse unchanged (no NaN/Infinity, bigint, functions, class instances, cycles). */
const checkJson = (v: unknown, path: string, seen: Set<object>): void => {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new CheckpointError(`saveCheckpoint: ${path} is ${v}, which JSON cannot hold`);
    return;
  }
  if (typeof v !== 'object') throw new CheckpointError(`saveCheckpoint: ${path} is a ${typeof v}, which JSON cannot hold`);
  if (seen.has(v)) throw new CheckpointError(`saveCheckpoint: ${path} is a circular reference`);
  seen.add(v);
  if (Array.isArray(v)) v.forEach((x, i) => checkJson(x, `${path}[${i}]`, seen));
  else if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) if (x !== undefined) checkJson(x, `${path}.${k}`, seen);
  } else throw new CheckpointError(`saveCheckpoint: ${path} is a ${v.constructor?.name ?? 'non-plain object'}, not a plain JSON object`);
  seen.delete(v);
};

/**
 * Signatures are `<config>|<name=shape>;...`; the parameter list is a record, so its order carries no meaning
 * (older checkpoints list parameters in init order, newer ones sorted): compare them as sets.
 */
export const sameSignature = (a: string, b: string): boolean => {
  const canon = (s: string) => {
    const i = s.indexOf('|');
    return i < 0
      ? s
      : `${s.slice(0, i)}|${s
          .slice(i + 1)
          .split(';')
          .sort()
          .join(';')}`;
  };
  return a === b || canon(a) === canon(b);
};

// ---- encode / decode ------------------------------------------------------------------------------------------

/** The safetensors bytes of a checkpoint (what saveCheckpoint writes). */
export const encodeCheckpoint = <C>(ckpt: CheckpointInput<C>, { dtype = 'F32' }: SaveOptions = {}): Uint8Array => {
  const meta = {
    format: CHECKPOINT_FORMAT,
    version: ckpt.version ?? FUSEDIFF_VERSION,
    signature: ckpt.signature,
    step: ckpt.step,
    rngCounter: ckpt.rngCounter,
    schedule: ckpt.schedule,
    config: ckpt.config,
  };
  checkJson(meta, 'metadata', new Set());
  decodeOrThrow(CheckpointMetadata, meta, 'metadata', (m) => new CheckpointError(`saveCheckpoint: invalid metadata:\n${m}`));
  const tensors: Record<string, NDArray> = {};
  for (const prefix of PREFIXES) flattenTree(ckpt[prefix], prefix, tensors);
  return encodeSafetensors(tensors, { [METADATA_KEY]: JSON.stringify(meta) }, dtype);
};

/** A checkpoint from safetensors bytes; `source` names it in errors. */
export const decodeCheckpoint = <C = Record<string, unknown>>(
  bytes: Uint8Array,
  source: string,
  opts: LoadOptions<C> = {},
): Checkpoint<C> => {
  const { tensors, metadata } = decodeSafetensors(bytes, { source });
  const raw = metadata[METADATA_KEY];
  if (raw === undefined)
    throw new CheckpointError(
      `${source}: not a fusediff checkpoint: ` +
        `__metadata__ has no '${METADATA_KEY}' key (keys: ${Object.keys(metadata).join(', ') || 'none'})`,
    );
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new CheckpointError(`${source}: __metadata__.${METADATA_KEY} is not valid JSON (${(e as Error).message})`);
  }
  // JSON.parse keeps "__proto__" as an own key, which a later spread, Object.assign or io-ts copy turns into the
  // prototype of the copy (its fields then bypass validation): refused, like the config's paths (runs/config.ts)
  const bad = prototypeKeyPath(json, 'metadata');
  if (bad !== undefined)
    throw new CheckpointError(
      `${source}: invalid checkpoint metadata: ${bad}: '${bad.slice(bad.lastIndexOf('.') + 1)}' is not a metadata field ` +
        `(it would reach an object's prototype)`,
    );
  const meta = decodeOrThrow(
    CheckpointMetadata,
    json,
    'metadata',
    (m) => new CheckpointError(`${source}: invalid checkpoint metadata:\n${m}`),
  );
  if (opts.expectSignature !== undefined && !sameSignature(meta.signature, opts.expectSignature))
    throw new SignatureMismatchError(source, meta.signature, opts.expectSignature);
  const config = opts.configCodec
    ? decodeOrThrow(
        opts.configCodec,
        meta.config,
        'metadata.config',
        (m) => new CheckpointError(`${source}: invalid config in checkpoint metadata:\n${m}`),
      )
    : (meta.config as C);
  const stray = Object.keys(tensors).filter((n) => !PREFIXES.some((p) => n === p || n.startsWith(`${p}.`)));
  if (stray.length)
    throw new CheckpointError(
      `${source}: tensor${stray.length > 1 ? 's' : ''} ${stray.map((n) => `'${n}'`).join(', ')} outside params.*, state.* and ema.*`,
    );
  return {
    params: treeOf(tensors, 'params', source),
    state: treeOf(tensors, 'state', source),
    ema: treeOf(tensors, 'ema', source),
    config,
    step: meta.step,
    rngCounter: meta.rngCounter,
    schedule: meta.schedule,
    signature: meta.signature,
    version: meta.version,
  };
};

// ---- files ---------------------------------------------------------------------------------------------------

/**
 * Saves a checkpoint atomically: everything is validated and encoded first, then written to
 * `<path>.tmp-<pid>-<random>`, fsynced and renamed over `path`. A failure at any point leaves the previous file
 * (if any) intact and no temporary file behind.
 */
export const saveCheckpoint = <C>(path: string, ckpt: CheckpointInput<C>, opts: SaveOptions = {}): void => {
  const bytes = encodeCheckpoint(ckpt, opts);
  try {
    writeFileAtomic(path, bytes);
  } catch (e) {
    throw e instanceof WriteError ? new CheckpointError(e.message, { cause: e }) : e;
  }
};

/**
 * Loads and validates a checkpoint. Throws SafetensorsError on a truncated or corrupted file, CheckpointError on
 * metadata that fails the io-ts codec (naming the path and expected type), SignatureMismatchError when
 * `expectSignature` is given and differs. Never writes.
 */
export const loadCheckpoint = <C = Record<string, unknown>>(path: string, opts: LoadOptions<C> = {}): Checkpoint<C> =>
  decodeCheckpoint(readCheckpointFile(path), path, opts);

/**
 * A checkpoint file's bytes (for callers that also hash them); `path` may be a `pretrained:NAME` reference or a run
 * folder (resolveCheckpointRef). An unreadable file is a CheckpointError naming it.
 */
export const readCheckpointFile = (path: string): Uint8Array => {
  try {
    return fs.readFileSync(resolveCheckpointRef(path));
  } catch (e) {
    throw new CheckpointError(`could not read checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
};

export { SafetensorsError };
