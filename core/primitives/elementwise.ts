// Elementwise primitives take equal shapes: broadcasting is an explicit `broadcast` node, inserted by the DSL,
// so the backward of every broadcast is one reduction rule and the elementwise rules stay shape-free.
import type { BinaryOp, CompareOp, UnaryOp } from '../ir.ts';
import { fmt, sameShape, ShapeError, type Shape } from '../shape.ts';
import type { NDArray } from '../ndarray.ts';
import type { PrimitiveImpl } from './types.ts';

// Non-finite values (docs/numerics.md): NaN propagates through every op as IEEE 754 says. Every unary op of a NaN is
// NaN (relu included: relu(NaN) is NaN, not 0); a binary op with a NaN operand is NaN (max and min included),
// except pow(NaN, 0) = 1 (IEEE and JavaScript agree) and pow(1, NaN) = NaN (JavaScript's Math.pow; IEEE's pow says
// 1); comparisons with NaN are false (0) except ne (1); where(NaN, a, b) is a (NaN is not 0). The reductions and
// contractions are sums of products and maxima of these: a NaN term makes the result NaN.
export const unaryFns: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  relu: (x) => (x > 0 || Number.isNaN(x) ? x : 0), // relu(NaN) = NaN, relu(-0) = 0
  abs: Math.abs,
  floor: Math.floor,
};

export const binaryFns: Record<BinaryOp | CompareOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  max: Math.max,
  min: Math.min,
  lt: (a, b) => +(a < b),
  le: (a, b) => +(a <= b),
  gt: (a, b) => +(a > b),
  ge: (a, b) => +(a >= b),
  eq: (a, b) => +(a === b),
  ne: (a, b) => +(a !== b),
};

const sameShapes = (op: string, shapes: readonly Shape[]): Shape => {
  const first = shapes[0];
  for (const s of shapes)
    if (!sameShape(s, first))
      throw new ShapeError(op, `inputs must have equal shapes after broadcasting, got ${shapes.map(fmt).join(' and ')}`);
  return first;
};

export const unary = (op: UnaryOp): PrimitiveImpl<UnaryOp> => ({
  shape: ([x]) => x,
  eval: ([x]) => x.data.map(unaryFns[op]),
});

export const binary = (op: BinaryOp | CompareOp): PrimitiveImpl<BinaryOp | CompareOp> => ({
  shape: (shapes) => sameShapes(op, shapes),
  eval: ([a, b]) => {
    const f = binaryFns[op];
    const out = new Float64Array(a.data.length);
    for (let i = 0; i < out.length; i++) out[i] = f(a.data[i], b.data[i]);
    return out;
  },
});

export const where: PrimitiveImpl<'where'> = {
  shape: (shapes) => sameShapes('where', shapes),
  eval: ([c, a, b]: readonly NDArray[]) => {
    const out = new Float64Array(c.data.length);
    for (let i = 0; i < out.length; i++) out[i] = c.data[i] !== 0 ? a.data[i] : b.data[i];
    return out;
  },
};
