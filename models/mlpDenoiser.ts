// The MLP denoiser for low-dimensional data (2-D mixtures): [x, sinusoidal(t), class embedding] -> hidden layers with
// SiLU -> a linear map back to x's dimension. Its 'mid' layer is the middle hidden layer, the MLP's "bottleneck".
import { silu, timestepEmbedding } from '../dsl/composites.ts';
import * as nn from '../dsl/nn.ts';
import * as op from '../dsl/ops.ts';
import { seedFor, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { mlpDefaults, type MlpConfig, type MlpOptions } from './configs.ts';
import { DenoiserError, makeDenoiser, type Denoiser } from './denoiser.ts';

/** The parameter tree of the MLP denoiser: class embedding (conditional models), hidden layers, output layer. */
export type MlpParams = {
  /** numClasses + 1 rows; the last is the null class of CFG */
  cls?: nn.EmbeddingParams;
  /** hidden0, hidden1, ... */
  hidden: { [name: string]: nn.LinearParams };
  out: nn.LinearParams;
};

/** The index of the hidden layer that 'mid' names: the middle one (the first of the two middles for even depth). */
export const mlpMidIndex = (depth: number): number => Math.floor((depth - 1) / 2);

const positiveInt = (v: number) => Number.isInteger(v) && v > 0;

const resolve = (options: MlpOptions): MlpConfig => {
  const cfg: MlpConfig = { ...mlpDefaults, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)), kind: 'mlp' };
  for (const k of ['dim', 'hidden', 'depth', 'classDim'] as const)
    if (!positiveInt(cfg[k])) throw new DenoiserError(`mlp denoiser: ${k} must be a positive integer, got ${cfg[k]}`);
  if (!Number.isInteger(cfg.timeDim) || cfg.timeDim < 2)
    throw new DenoiserError(`mlp denoiser: timeDim must be an integer >= 2, got ${cfg.timeDim}`);
  if (cfg.numClasses !== undefined && !positiveInt(cfg.numClasses))
    throw new DenoiserError(`mlp denoiser: numClasses must be a positive integer, got ${cfg.numClasses}`);
  return cfg;
};

export const createMlpDenoiser = (options: MlpOptions): Denoiser<MlpParams> => {
  const config = resolve(options);
  const { dim, hidden, depth, timeDim, classDim, numClasses } = config;
  const hiddenNames = Array.from({ length: depth }, (_, i) => `hidden${i}`);
  const mid = mlpMidIndex(depth);
  const inDim = dim + timeDim + (numClasses === undefined ? 0 : classDim);

  const init = (seed: number): MlpParams => {
    const p: MlpParams = {
      hidden: Object.fromEntries(
        hiddenNames.map((n, i) => [n, nn.linear.init(seedFor(seed, `hidden.${n}`), i === 0 ? inDim : hidden, hidden)]),
      ),
      out: nn.linear.init(seedFor(seed, 'out'), hidden, dim),
    };
    if (numClasses !== undefined) p.cls = nn.embedding.init(seedFor(seed, 'cls'), numClasses + 1, classDim);
    return p;
  };

  function* forward(p: ParamTensors<MlpParams>, x: Tensor, t: Tensor, c: Tensor | undefined): Generator<readonly [string, Tensor]> {
    const parts = [x, timestepEmbedding(t, timeDim)];
    if (p.cls && c) parts.push(nn.embedding.apply(p.cls, c));
    let h = op.concat(parts, 1);
    for (let i = 0; i < depth; i++) {
      h = silu(nn.linear.apply(p.hidden[hiddenNames[i]], h));
      yield [hiddenNames[i], h];
      if (i === mid) yield ['mid', h];
    }
    yield ['out', nn.linear.apply(p.out, h)];
  }

  const layers = [...hiddenNames.slice(0, mid + 1), 'mid', ...hiddenNames.slice(mid + 1), 'out'];
  return makeDenoiser({ config, dataShape: [dim], layers, init, forward });
};
