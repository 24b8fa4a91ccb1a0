// The denoiser contract every objective and sampler codes against, and the plumbing shared by its
// implementations: input checks, the `until` layer cut and signatures for frozen copies.
import { flattenParams, paramShapesOf, type Params, type ParamTensors } from '../dsl/params.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import type { DenoiserConfig } from './configs.ts';

/** Options of `Denoiser.apply`. */
export interface ApplyOptions {
  /** return this named layer's output instead of the model output; only the nodes it needs are traced */
  until?: string;
}

/**
 * A denoiser, the contract every objective and sampler codes against: `init(seed)` makes its parameter tree P and
 * `apply(params, x, t, c?)` traces its prediction (eps, v or x0, as the objective reads it) for noisy x at timesteps t.
 */
export interface Denoiser<P extends Params = Params> {
  readonly config: DenoiserConfig;
  /** the shape of one sample: x is [B, ...dataShape] and so is the output */
  readonly dataShape: readonly number[];
  /** names `until` accepts, in evaluation order; the last is 'out' */
  readonly layers: readonly string[];
  /** config and parameter shapes as one stable string: equal signatures mean interchangeable parameters */
  readonly signature: string;
  init(seed: number): P;
  /** [path, shape] of every parameter init makes, computed without allocating them (checks and estimates before init) */
  paramShapes(): readonly (readonly [string, readonly number[]])[];
  /** x [B, ...dataShape]; t [B] (or [B, 1]) float integer-valued timesteps; c [B] float class ids, only for a conditional model */
  apply(params: ParamTensors<P>, x: Tensor, t: Tensor, c?: Tensor, opts?: ApplyOptions): Tensor;
}

/** Thrown for inputs a denoiser refuses (a wrong shape, class ids given or missing) and for an unknown layer name. */
export class DenoiserError extends Error {
  override readonly name = 'DenoiserError';
}

// ---- building a denoiser from its layer generator -----------------------------------------------------------

/**
 * What an implementation provides. `forward` yields [layer name, output] in evaluation order; generators are lazy,
 * so stopping at a layer means nothing after it is ever traced (asking for 'mid' never builds the up path).
 */
export interface DenoiserParts<P extends Params> {
  readonly config: DenoiserConfig;
  readonly dataShape: readonly number[];
  readonly layers: readonly string[];
  init(seed: number): P;
  forward(params: ParamTensors<P>, x: Tensor, t: Tensor, c: Tensor | undefined): Iterable<readonly [string, Tensor]>;
}

const fmtShape = (s: readonly number[]): string => `[${s.join(',')}]`;

/** Checks x, t and c against the model; returns t as [B]. */
const checkInputs = (parts: DenoiserParts<Params>, x: Tensor, t: Tensor, c: Tensor | undefined): Tensor => {
  const { dataShape, config } = parts;
  const want = `[B,${dataShape.join(',')}]`;
  if (x.rank !== dataShape.length + 1 || dataShape.some((d, i) => x.shape[i + 1] !== d))
    throw new DenoiserError(`${config.kind} denoiser: x must be ${want}, got ${fmtShape(x.shape)}`);
  const B = x.shape[0];
  const isBatchVector = (v: Tensor) => (v.rank === 1 && v.shape[0] === B) || (v.rank === 2 && v.shape[0] === B && v.shape[1] === 1);
  if (!isBatchVector(t))
    throw new DenoiserError(
      `${config.kind} denoiser: t must be [${B}] (one timestep per sample of x ${fmtShape(x.shape)}), got ${fmtShape(t.shape)}`,
    );
  const n = config.numClasses;
  if (n === undefined && c)
    throw new DenoiserError(
      `${config.kind} denoiser: class ids were given to an unconditional model ` +
        `(its config has no numClasses); omit c, or create the model with numClasses`,
    );
  if (n !== undefined && !c)
    throw new DenoiserError(
      `${config.kind} denoiser: the model is conditional (numClasses ${n}) ` +
        `and needs class ids c [${B}]; for the unconditional (CFG) branch pass the null class id ${n}`,
    );
  if (c && !(c.rank === 1 && c.shape[0] === B))
    throw new DenoiserError(`${config.kind} denoiser: c must be [${B}] class ids, got ${fmtShape(c.shape)}`);
  return t.rank === 1 ? t : op.reshape(t, [B]);
};

/** The Denoiser of an implementation: validates inputs and the layer name, cuts at `until`, computes the signature once. */
export const makeDenoiser = <P extends Params>(parts: DenoiserParts<P>): Denoiser<P> => {
  let signature: string | undefined;
  let shapes: [string, number[]][] | undefined;
  const paramShapes = () => (shapes ??= paramShapesOf(() => parts.init(0)));
  return {
    config: parts.config,
    dataShape: parts.dataShape,
    layers: parts.layers,
    // lazy, from the parameter shapes alone: no weight is allocated, whatever the model's size
    get signature() {
      return (signature ??= signatureFromShapes(parts.config, paramShapes()));
    },
    init: parts.init,
    paramShapes,
    apply(params, x, t, c, opts = {}) {
      const target = opts.until ?? 'out';
      if (!parts.layers.includes(target))
        throw new DenoiserError(`${parts.config.kind} denoiser has no layer '${target}'; its layers are: ${parts.layers.join(', ')}`);
      const t1 = checkInputs(parts as DenoiserParts<Params>, x, t, c);
      for (const [name, h] of parts.forward(params, x, t1, c)) if (name === target) return h;
      throw new Error(`internal: ${parts.config.kind} denoiser's forward never produced layer '${target}'`);
    },
  };
};

// ---- signatures ----------------------------------------------------------------------------------------------

/** `kind;key=value;...|path=[shape];...` with config keys sorted, so equal configs give equal strings. */
export const signatureOf = (config: DenoiserConfig, params: Params): string =>
  signatureFromShapes(
    config,
    flattenParams(params).map(([p, a]) => [p, a.shape]),
  );

/** signatureOf from the parameters' [path, shape] pairs (Denoiser.paramShapes), without the arrays. */
export const signatureFromShapes = (config: DenoiserConfig, shapes: readonly (readonly [string, readonly number[]])[]): string => {
  const entries = Object.entries(config)
    .filter(([k, v]) => k !== 'kind' && v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  // sorted: a parameter tree is a record, so a checkpoint's (name-sorted) tree must sign like a fresh init
  const list = shapes.map(([p, shape]) => `${p}=${fmtShape(shape)}`).sort();
  return `${[config.kind, ...entries].join(';')}|${list.join(';')}`;
};

/** key -> value of each signature token ('kind' for the bare first token, 'param <path>' for shapes). */
const parseSignature = (sig: string): Map<string, string> => {
  const [cfg = '', shapes = ''] = sig.split('|');
  const out = new Map<string, string>();
  cfg.split(';').forEach((tok, i) => {
    const eq = tok.indexOf('=');
    if (eq < 0) out.set(i === 0 ? 'kind' : tok, i === 0 ? tok : '');
    else out.set(tok.slice(0, eq), tok.slice(eq + 1));
  });
  for (const tok of shapes.split(';').filter(Boolean)) {
    const eq = tok.indexOf('=');
    out.set(`param ${eq < 0 ? tok : tok.slice(0, eq)}`, eq < 0 ? '' : tok.slice(eq + 1));
  }
  return out;
};

/** The tokens two signatures disagree on, as 'key: a vs b' lines (at most `limit`). */
export const signatureDiff = (a: string, b: string, names: readonly [string, string] = ['a', 'b'], limit = 8): string[] => {
  const pa = parseSignature(a);
  const pb = parseSignature(b);
  const lines: string[] = [];
  for (const key of new Set([...pa.keys(), ...pb.keys()])) {
    const va = pa.get(key);
    const vb = pb.get(key);
    if (va === vb) continue;
    lines.push(
      va === undefined
        ? `${key}: only in ${names[1]} (${vb})`
        : vb === undefined
          ? `${key}: only in ${names[0]} (${va})`
          : `${key}: ${va} (${names[0]}) vs ${vb} (${names[1]})`,
    );
  }
  return lines.length > limit ? [...lines.slice(0, limit), `... and ${lines.length - limit} more`] : lines;
};

/**
 * Throws unless b (a model or a signature string, e.g. of a frozen copy's parameters) has a's signature. The
 * error names what differs, so a frozen network built with other sizes is caught before any tracing.
 */
export const assertSameSignature = (a: Denoiser, b: Denoiser | string, names: readonly [string, string] = ['online', 'frozen']): void => {
  const sa = a.signature;
  const sb = typeof b === 'string' ? b : b.signature;
  if (sa === sb) return;
  const diff = signatureDiff(sa, sb, names);
  throw new DenoiserError(
    `the ${names[1]} network does not match the ${names[0]} model (different signatures):\n  ${diff.join('\n  ')}\n` +
      `${names[0]}: ${sa.split('|')[0]}\n${names[1]}: ${sb.split('|')[0]}`,
  );
};
