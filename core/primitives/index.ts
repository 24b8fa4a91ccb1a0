// The primitive table: one entry per op of the closed set, each with its abstract evaluation and f64 rule.
// (The other per-op tables: vjp rules in transforms/vjpRules.ts, fusion classes in compiler/passes/fusionClass.ts,
// emitters in compiler/kernel/lower.ts, gradient-check cases in transforms/check/primitiveCases.ts.)
import { binaryOps, compareOps, unaryOps, type OpName } from '../ir.ts';
import { ShapeError } from '../shape.ts';
import { conv2d } from './conv2d.ts';
import { binary, unary, where } from './elementwise.ts';
import { broadcast, concat, flip, pad, permute, reshape, slice } from './layout.ts';
import { matmul } from './matmul.ts';
import { random } from './random.ts';
import { reduceMax, sum } from './reduce.ts';
import type { PrimitiveImpl } from './types.ts';

export type { PrimitiveImpl } from './types.ts';

/**
 * One rule per op of Ops. Ops is OpName here; it is a parameter so that test/optable.types.test.ts can show that a
 * table missing a rule for an added op fails to typecheck (a name outside OpName gets a rule over `never` attrs).
 */
export type PrimitiveTable<Ops extends string = OpName> = { [P in Ops]: PrimitiveImpl<P & OpName> };

const identity: PrimitiveImpl<'stopGradient'> = { shape: ([x]) => x, eval: ([x]) => x.data };

export const primitives: PrimitiveTable = {
  ...(Object.fromEntries(unaryOps.map((op) => [op, unary(op)])) as { [K in (typeof unaryOps)[number]]: PrimitiveImpl<K> }),
  ...(Object.fromEntries([...binaryOps, ...compareOps].map((op) => [op, binary(op)])) as {
    [K in (typeof binaryOps)[number] | (typeof compareOps)[number]]: PrimitiveImpl<K>;
  }),
  input: {
    shape: (_i, { name }, declared) => {
      if (!declared) throw new ShapeError('input', `input '${name}' needs a shape`);
      return declared;
    },
    eval: () => {
      throw new Error('inputs are bound by the interpreter, not evaluated');
    },
  },
  constant: {
    shape: (_i, { value }, declared) => {
      const shape = declared ?? [value.length];
      if (shape.reduce((a, b) => a * b, 1) !== value.length)
        throw new ShapeError('constant', `${value.length} values do not fill shape [${shape.join(',')}]`);
      return shape;
    },
    eval: (_i, { value }) => value,
  },
  where,
  sum,
  reduceMax,
  reshape,
  broadcast,
  permute,
  slice,
  pad,
  concat,
  flip,
  matmul,
  conv2d,
  random,
  stopGradient: identity,
};
