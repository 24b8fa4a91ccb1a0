// Elementwise ops: the same index into every input, one expression each. Comparisons give 1.0 or 0.0.
import type { BinaryOp, CompareOp, OpsIn, UnaryOp } from '../../../core/ir.ts';
import type { Emit, EmitTable } from './types.ts';

const unary = (f: (x: string) => string): Emit<UnaryOp> => (c, n, idx) => f(c.value(n.inputs[0], idx));
// the first operand is read (and its statements emitted) before the second
const binary = (f: (a: string, b: string) => string): Emit<BinaryOp | CompareOp> => (c, n, idx) => f(c.value(n.inputs[0], idx), c.value(n.inputs[1], idx));
const compare = (o: string) => binary((a, b) => `(${a} ${o} ${b} ? 1.0 : 0.0)`);

/** x^p for a literal exponent p: the common powers without Math.pow (which is slow and NaN for x < 0 on GPUs). */
const power = (x: string, p: number | undefined, y: () => string): string => {
  if (p === 1) return x;
  if (p === 2) return `(${x} * ${x})`;
  if (p === 3) return `(${x} * ${x} * ${x})`;
  if (p === 0.5) return `Math.sqrt(${x})`;
  if (p === -0.5) return `(1.0 / Math.sqrt(${x}))`;
  if (p === -1) return `(1.0 / ${x})`;
  if (p === 1.5) return `(${x} * Math.sqrt(${x}))`;
  if (p === 0) return '1.0';
  return `Math.pow(${x}, ${y()})`;
};

export const elementwiseEmitters: EmitTable<OpsIn<'elementwise'>> = {
  neg: unary((x) => `(-${x})`),
  exp: unary((x) => `Math.exp(${x})`),
  log: unary((x) => `Math.log(${x})`),
  sqrt: unary((x) => `Math.sqrt(${x})`),
  rsqrt: unary((x) => `(1.0 / Math.sqrt(${x}))`),
  sin: unary((x) => `Math.sin(${x})`),
  cos: unary((x) => `Math.cos(${x})`),
  tanh: (c, n, idx) => {
    const x = c.e.let(`Math.min(Math.max(${c.value(n.inputs[0], idx)}, -15.0), 15.0)`); // tanh(15) = 1 in f32; keeps exp finite
    const q = c.e.let(`Math.exp(2.0 * ${x})`);
    return `((${q} - 1.0) / (${q} + 1.0))`;
  },
  sigmoid: unary((x) => `(1.0 / (1.0 + Math.exp(-${x})))`),
  relu: unary((x) => `Math.max(${x}, 0.0)`),
  abs: unary((x) => `Math.abs(${x})`),
  floor: unary((x) => `Math.floor(${x})`),

  add: binary((a, b) => `(${a} + ${b})`),
  sub: binary((a, b) => `(${a} - ${b})`),
  mul: binary((a, b) => `(${a} * ${b})`),
  div: binary((a, b) => `(${a} / ${b})`),
  pow: (c, n, idx) => power(c.value(n.inputs[0], idx), c.splat(n.inputs[1]), () => c.value(n.inputs[1], idx)),
  max: binary((a, b) => `Math.max(${a}, ${b})`),
  min: binary((a, b) => `Math.min(${a}, ${b})`),

  lt: compare('<'),
  le: compare('<='),
  gt: compare('>'),
  ge: compare('>='),
  eq: compare('==='),
  ne: compare('!=='),

  where: (c, n, idx) => `(${c.value(n.inputs[0], idx)} !== 0.0 ? ${c.value(n.inputs[1], idx)} : ${c.value(n.inputs[2], idx)})`,
  stopGradient: (c, n, idx) => c.value(n.inputs[0], idx), // autodiff has already run
};
