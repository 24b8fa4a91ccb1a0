// Gradient-check cases for the composites users build models from, and the frozen-network law. Composites
// have no rules of their own (they are primitives), so these check the compositions and their numerics.
import fc from 'fast-check';
import * as c from '../../dsl/composites.ts';
import * as nn from '../../dsl/nn.ts';
import * as op from '../../dsl/ops.ts';
import { bindInputs, frozen, paramSpec, type ParamTensors } from '../../dsl/params.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { trace } from '../../dsl/trace.ts';
import { grad, gradName } from '../grad.ts';
import { graphInputs } from '../../core/ir.ts';
import { evaluate } from '../../core/interpret.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { arrayArb, awayFromKinks, dim, shapeArb, valuesArb } from './arbitraries.ts';
import { checkGrads } from './checkGrads.ts';
import type { PrimitiveCase } from './primitiveCases.ts';

const fmtShape = (a: NDArray) => `[${a.shape.join(',')}]`;
const unary = (f: (x: Tensor) => Tensor, shape = shapeArb(1), domain = (a: NDArray) => a) =>
  arrayArb(shape).map((x0): PrimitiveCase => {
    const x = domain(x0);
    return { fn: ({ x: t }) => f(t), args: { x }, describe: `x ${fmtShape(x)}` };
  });

/**
 * Normalisation's derivatives grow like 1 / std^k, so for near-constant groups central differences lose their
 * accuracy (truncation ~ eps^2 / std^3 at order 2) while the rule is right. Alternating +-0.5 offsets keep
 * every group's spread away from zero; the rules at tiny spread are the same code, checked here at safe points.
 */
const spread = (a: NDArray): NDArray => ({ shape: a.shape, data: a.data.map((v, i) => v + (i % 2 ? 0.5 : -0.5)) });

const nchw = fc.tuple(dim, fc.integer({ min: 1, max: 2 }), dim, dim);

export const compositeCases: Record<string, fc.Arbitrary<PrimitiveCase>> = {
  softmax: unary((x) => c.softmax(x)),
  logsumexp: unary((x) => c.logsumexp(x, [x.rank - 1])),
  // normalisation over a single element is degenerate (variance 0): at least 2 elements per group
  layerNorm: unary(
    (x) => c.layerNorm(x),
    fc.tuple(dim, fc.integer({ min: 2, max: 5 })).map(([a, b]) => [a, b]),
    spread,
  ),
  groupNorm: fc
    .tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 2, max: 3 }))
    .chain(([n, g, cpg, hw]) => fc.tuple(fc.constant(g), valuesArb([n, g * cpg, hw, hw]), valuesArb([g * cpg]), valuesArb([g * cpg])))
    .map(([g, x, gamma, beta]): PrimitiveCase => ({
      fn: ({ x: t, gamma: ga, beta: be }) => c.groupNorm(t, g, ga, be),
      args: { x: spread(x), gamma, beta },
      describe: `x ${fmtShape(x)}, ${g} groups`,
    })),
  silu: unary((x) => c.silu(x)),
  gelu: unary((x) => c.gelu(x)),
  avgPool2d: fc
    .tuple(nchw, fc.integer({ min: 1, max: 2 }))
    .chain(([[n, ch, h, w], k]) => fc.tuple(fc.constant(k), valuesArb([n, ch, h * k, w * k])))
    .map(([k, x]): PrimitiveCase => ({
      fn: ({ x: t }) => c.avgPool2d(t, k),
      args: { x },
      describe: `x ${fmtShape(x)}, k ${k}`,
    })),
  upsampleNearest2d: fc
    .tuple(nchw, fc.integer({ min: 1, max: 3 }))
    .chain(([s, k]) => fc.tuple(fc.constant(k), valuesArb(s)))
    .map(([k, x]): PrimitiveCase => ({
      fn: ({ x: t }) => c.upsampleNearest2d(t, k),
      args: { x },
      describe: `x ${fmtShape(x)}, k ${k}`,
    })),
  timestepEmbedding: fc
    .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 4 }))
    .chain(([b, half]) => fc.tuple(fc.constant(2 * half), valuesArb([b], 0, 3)))
    .map(([d, t]): PrimitiveCase => ({
      fn: ({ t: x }) => c.timestepEmbedding(x, d),
      args: { t },
      describe: `t ${fmtShape(t)}, dim ${d}`,
    })),
};

export interface FrozenCase {
  readonly widths: readonly [number, number, number];
  readonly seed: number;
  readonly x: NDArray;
}

export const frozenCaseArb: fc.Arbitrary<FrozenCase> = fc
  .tuple(fc.tuple(dim, dim, dim), fc.nat(1 << 20), dim)
  .chain(([widths, seed, batch]) => fc.tuple(fc.constant(widths), fc.constant(seed), valuesArb([batch, widths[0]])))
  .map(([widths, seed, x]) => ({ widths, seed, x: awayFromKinks(x) }));

/**
 * The frozen-network law: with `frozen(params)` the graph has no parameter inputs (so no gradient entries),
 * while the gradient with respect to the network's input flows through it, matches finite differences, and
 * equals the input gradient of the same network with its parameters as ordinary inputs.
 */
export const frozenLaw = ({ widths: [a, b, o], seed, x }: FrozenCase) => {
  const params = { l1: nn.linear.init(seed, a, b), l2: nn.linear.init(seed + 1, b, o) };
  const net = (p: ParamTensors<typeof params>, t: Tensor) => op.sum(op.mul(nn.linear.apply(p.l2, c.silu(nn.linear.apply(p.l1, t))), 0.7));
  const frozenGraph = trace(({ x: t }) => net(frozen(params), t as Tensor), { x: x.shape });
  const onlyX =
    graphInputs(frozenGraph)
      .map((n) => n.attrs.name)
      .join(',') === 'x';
  const report = checkGrads(({ x: t }) => net(frozen(params), t), { x });
  const liveGraph = trace(({ x: t, p }) => net(p as ParamTensors<typeof params>, t), { x: x.shape, p: paramSpec(params) });
  const inputs = { x, ...bindInputs({ p: params }) };
  const gFrozen = evaluate(grad(frozenGraph, ['x']), { x })[gradName('x')].data;
  const gLive = evaluate(grad(liveGraph, ['x']), inputs)[gradName('x')].data;
  const same = gFrozen.every((v, i) => v === gLive[i]);
  return {
    ok: onlyX && report.ok && same,
    relErr: report.worst.relErr,
    text: `only input x: ${onlyX}, matches finite differences: ${report.ok}, equals unfrozen input gradient: ${same}`,
  };
};
