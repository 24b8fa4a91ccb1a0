// How fuse treats each primitive: its class (what a kernel may do with it) and its cost when computed inline.
import type { OpName } from '../../core/ir.ts';

/**
 *  source      - a buffer (input, non-splat constant) or a literal (splat constant); no kernel computes it
 *  elementwise - output element i from element i of each input: inlined, and may carry a core's epilogue
 *  view        - one input element at a remapped index: inlined at no cost; a contraction reads its operand through it
 *  maskedView  - a view that also selects (zeros of pad, parts of concat): inlined, but a contraction's operand
 *                stops here, so the select is not repeated in its loop
 *  generator   - computed from the output index alone (random): inlined, but not an epilogue step
 *  core        - a loop (reduction, contraction): materialised, one per kernel
 */
export type FusionClass = 'source' | 'elementwise' | 'view' | 'maskedView' | 'generator' | 'core';

export interface FusionRule {
  readonly class: FusionClass;
  /** rough cost of computing it inline: a node read by several kernels is recomputed in each while cheap */
  readonly cost: number;
}

/** One rule per op of Ops (OpName; a parameter for test/optable.types.test.ts). */
export type FusionTable<Ops extends string = OpName> = { readonly [P in Ops]: FusionRule };

const source: FusionRule = { class: 'source', cost: 0 };
const arith: FusionRule = { class: 'elementwise', cost: 1 };
const transcendental: FusionRule = { class: 'elementwise', cost: 4 };
const view: FusionRule = { class: 'view', cost: 0 };
const maskedView: FusionRule = { class: 'maskedView', cost: 0 };
const core: FusionRule = { class: 'core', cost: 1 };

export const fusionRules: FusionTable = {
  input: source,
  constant: source,
  random: { class: 'generator', cost: 12 },

  neg: arith,
  exp: transcendental,
  log: transcendental,
  sqrt: transcendental,
  rsqrt: transcendental,
  sin: transcendental,
  cos: transcendental,
  tanh: transcendental,
  sigmoid: transcendental,
  relu: arith,
  abs: arith,
  floor: arith,
  add: arith,
  sub: arith,
  mul: arith,
  div: arith,
  pow: transcendental,
  max: arith,
  min: arith,
  lt: arith,
  le: arith,
  gt: arith,
  ge: arith,
  eq: arith,
  ne: arith,
  where: arith,
  stopGradient: arith,

  reshape: view,
  broadcast: view,
  permute: view,
  slice: view,
  flip: view,
  pad: maskedView,
  concat: maskedView,

  sum: core,
  reduceMax: core,
  matmul: core,
  conv2d: core,
};

export const fusionClass = (op: OpName): FusionClass => fusionRules[op].class;
