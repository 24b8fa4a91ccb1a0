// Random composite graphs for gradient checking (and, as hard programs with constants and non-finite inputs, for
// comparing compiled plans with the interpreter). A program is a list of steps over a pool of tensors of one shape
// [R, C]: mostly [2,3], and now and then one whose extents reach the backends' vector and tiling paths (C of 5, 8, 12,
// 20, 36 or 100 with 1, 2 or 6 rows: test/shape-sweep.test.ts says why); each step applies a template (a primitive, or a
// small shape-preserving composition of primitives) to earlier values. fast-check shrinks a failing program by
// dropping steps, simplifying operands and going back to [2,3], down to a minimal failing graph (`describeProgram`).
import fc from 'fast-check';
import * as op from '../../dsl/ops.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { awayFromKinks, hardConstantArb, hardValuesArb, valuesArb } from './arbitraries.ts';

/** The pool's usual shape, and the first (the one a failing case shrinks to). */
export const poolShape = [2, 3] as const;
/** The pool shapes drawn now and then: last extents that are not, or are not only, multiples of 4 and 8; 1, 2, 6 rows. */
export const widePoolShapes = [
  [1, 5],
  [2, 8],
  [6, 12],
  [2, 20],
  [1, 36],
  [1, 100],
] as const satisfies readonly (readonly [number, number])[];
/** [2,3] three times in four, else a wide shape. */
export const poolShapeArb: fc.Arbitrary<readonly [number, number]> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(poolShape) },
  { weight: 1, arbitrary: fc.constantFrom(...widePoolShapes) },
);

/** The trace spec of a case: every argument at its own shape (the pool's). */
export const programSpec = (args: Readonly<Record<string, { readonly shape: readonly number[] }>>): Record<string, readonly number[]> =>
  Object.fromEntries(Object.entries(args).map(([k, v]) => [k, v.shape]));

/** Keeps the magnitude of a sum over a wide pool near that of the [2,3] pool (no op at all on [2,3]). */
const rescale = (x: Tensor, terms: number, base: number): Tensor => (terms === base ? x : op.mul(x, base / terms));

interface Template {
  readonly arity: 1 | 2;
  /** `c` is the step's constant (hard programs only; the templates above ignore it) */
  readonly apply: (a: Tensor, b: Tensor, c: number) => Tensor;
}

// stopGradient is absent on purpose: finite differences see through it (its laws are checked separately).
// Domains are kept safe by construction (log of x^2 + 1, division by b^2 + 1) so every program is finite.
const templates: Record<string, Template> = {
  neg: { arity: 1, apply: (a) => op.neg(a) },
  'exp∘tanh': { arity: 1, apply: (a) => op.exp(op.tanh(a)) },
  sin: { arity: 1, apply: (a) => op.sin(a) },
  cos: { arity: 1, apply: (a) => op.cos(a) },
  tanh: { arity: 1, apply: (a) => op.tanh(a) },
  sigmoid: { arity: 1, apply: (a) => op.sigmoid(a) },
  'log(a²+1)': { arity: 1, apply: (a) => op.log(op.add(op.mul(a, a), 1)) },
  'sqrt(a²+1)': { arity: 1, apply: (a) => op.sqrt(op.add(op.mul(a, a), 1)) },
  'rsqrt(a²+1)': { arity: 1, apply: (a) => op.rsqrt(op.add(op.mul(a, a), 1)) },
  'pow(a²+1, 1.5)': { arity: 1, apply: (a) => op.pow(op.add(op.mul(a, a), 1), 1.5) },
  add: { arity: 2, apply: (a, b) => op.add(a, b) },
  sub: { arity: 2, apply: (a, b) => op.sub(a, b) },
  mul: { arity: 2, apply: (a, b) => op.mul(a, b) },
  'a/(b²+1)': { arity: 2, apply: (a, b) => op.div(a, op.add(op.mul(b, b), 1)) },
  'a + row(b)': { arity: 2, apply: (a, b) => op.add(a, op.slice(b, [[0, 1]])) }, // broadcast of a [1,3] row
  'a * col(b)': { arity: 2, apply: (a, b) => op.mul(a, rescale(op.sum(b, [1], true), a.shape[1], 3)) }, // reduction, then broadcast
  'a - max(b)': { arity: 2, apply: (a, b) => op.sub(a, op.max(b, [0], true)) },
  'a @ (bᵀb)': { arity: 2, apply: (a, b) => rescale(op.matmul(a, op.matmul(op.transpose(b), b)), a.shape[0] * a.shape[1], 6) },
  'flip(a)': { arity: 1, apply: (a) => op.flip(a, [1]) },
  'a ⊕ b (concat, slice)': { arity: 2, apply: (a, b) => op.slice(op.concat([a, b], 1), [null, [1, 1 + a.shape[1]]]) },
  'pad(a) then slice': {
    arity: 1,
    apply: (a) =>
      op.slice(
        op.pad(
          a,
          [
            [1, 0],
            [0, 2],
          ],
          [0, 1],
        ),
        [
          [1, a.shape[0] + 1],
          [0, 2 * a.shape[1] - 1, 2],
        ],
      ),
  },
  'reshape/permute': { arity: 1, apply: (a) => op.reshape(op.permute(op.reshape(a, [a.shape[1], a.shape[0]]), [1, 0]), a.shape) },
  // a 2 x 2 kernel from b's corner (1 x 2 on one row), padded before so the output keeps the pool's shape
  'conv(a, b[:, :2])': {
    arity: 2,
    apply: (a, b) => {
      const [r, c] = a.shape;
      const [kh, kw] = [Math.min(r, 2), Math.min(c, 2)];
      return op.reshape(
        op.conv2d(
          op.reshape(a, [1, 1, r, c]),
          op.reshape(
            op.slice(b, [
              [0, kh],
              [0, kw],
            ]),
            [1, 1, kh, kw],
          ),
          {
            padding: [kh - 1, 0, kw - 1, 0],
          },
        ),
        [r, c],
      );
    },
  },
  'where(a>b, a, b²)': { arity: 2, apply: (a, b) => op.where(op.gt(a, b), a, op.mul(b, b)) },
};

export const templateNames = Object.keys(templates);

/**
 * Templates with a constant operand `c` (from arbitraries.ts's hardConstants: negatives, +-0, +-Infinity, NaN),
 * for the hard programs only: their values are not finite in general, so they are compared with the interpreter,
 * never gradient-checked. `full(c)` builds a splat that constant folding turns into a literal, the form that
 * broke code generation (`neg` of a literal -2 printed as `--2`); `a op c` gives a literal operand.
 */
const constantTemplates: Record<string, Template> = {
  'neg(full(c))': { arity: 1, apply: (a, _b, c) => op.neg(op.full(a.shape, c)) },
  'sigmoid(full(c))': { arity: 1, apply: (a, _b, c) => op.sigmoid(op.full(a.shape, c)) },
  'a + c': { arity: 1, apply: (a, _b, c) => op.add(a, c) },
  'c - a': { arity: 1, apply: (a, _b, c) => op.sub(c, a) },
  'a * c': { arity: 1, apply: (a, _b, c) => op.mul(a, c) },
  'neg(a) * c': { arity: 1, apply: (a, _b, c) => op.mul(op.neg(a), c) },
  'a / c': { arity: 1, apply: (a, _b, c) => op.div(a, c) },
  'max(a, c)': { arity: 1, apply: (a, _b, c) => op.maximum(a, c) },
  'min(a, c)': { arity: 1, apply: (a, _b, c) => op.minimum(a, c) },
  'eq(a, c)': { arity: 1, apply: (a, _b, c) => op.eq(a, c) },
  'gt(a, c)': { arity: 1, apply: (a, _b, c) => op.gt(a, c) },
  'where(a > c, a, c)': { arity: 1, apply: (a, _b, c) => op.where(op.gt(a, c), a, c) },
  'relu(a + c)': { arity: 1, apply: (a, _b, c) => op.relu(op.add(a, c)) },
  'tanh(a * c)': { arity: 1, apply: (a, _b, c) => op.tanh(op.mul(a, c)) },
  'sigmoid(a * c)': { arity: 1, apply: (a, _b, c) => op.sigmoid(op.mul(a, c)) },
  'abs(a) + c': { arity: 1, apply: (a, _b, c) => op.add(op.abs(a), c) },
  'exp(c) * a': { arity: 1, apply: (a, _b, c) => op.mul(op.exp(op.full(a.shape, c)), a) },
  'a - max(a * c) over rows': { arity: 1, apply: (a, _b, c) => op.sub(a, op.max(op.mul(a, c), [1], true)) },
};

/** Every template a hard program may use: the ordinary ones and the constant ones. */
export const hardTemplateNames = [...templateNames, ...Object.keys(constantTemplates)];

const allTemplates: Record<string, Template> = { ...templates, ...constantTemplates };

export interface Step {
  readonly template: string;
  readonly a: number;
  readonly b: number;
  /** the constant of a constant template */
  readonly c?: number;
}

export interface Program {
  /** the pool's shape (default [2,3]) */
  readonly shape?: readonly [number, number];
  readonly inputs: number;
  readonly steps: readonly Step[];
}

export interface GraphCase {
  readonly program: Program;
  readonly args: Record<string, NDArray>;
}

export const programArb = (maxSteps = 8): fc.Arbitrary<Program> =>
  fc.record({
    shape: poolShapeArb,
    inputs: fc.integer({ min: 1, max: 3 }),
    steps: fc.array(fc.record({ template: fc.constantFrom(...templateNames), a: fc.nat(20), b: fc.nat(20) }), {
      minLength: 1,
      maxLength: maxSteps,
    }),
  });

export const graphCaseArb = (maxSteps = 8): fc.Arbitrary<GraphCase> =>
  programArb(maxSteps).chain((program) =>
    fc.tuple(...Array.from({ length: program.inputs }, () => valuesArb(program.shape ?? poolShape, -1.5, 1.5))).map((vals) => ({
      program,
      // distinct inputs keep max/where away from ties; inputs differ from each other by a per-input shift
      args: Object.fromEntries(vals.map((v, i) => [`x${i}`, { shape: v.shape, data: awayFromKinks(v).data.map((e) => e + 0.031 * i) }])),
    })),
  );

/**
 * Programs over every template, constant ones included, with each step's constant drawn from hardConstants; fed
 * by hardGraphCaseArb with inputs that hold NaN and +-Infinity now and then. Every value may be non-finite, so these
 * are for compiled-versus-interpreter comparisons (NaN equals NaN there), not gradient checks.
 */
export const hardProgramArb = (maxSteps = 6): fc.Arbitrary<Program> =>
  fc.record({
    shape: poolShapeArb,
    inputs: fc.integer({ min: 1, max: 3 }),
    steps: fc.array(fc.record({ template: fc.constantFrom(...hardTemplateNames), a: fc.nat(20), b: fc.nat(20), c: hardConstantArb }), {
      minLength: 1,
      maxLength: maxSteps,
    }),
  });

/** Hard programs on pool inputs in [-1.5, 1.5] where about `pNonFinite` of the elements are NaN or +-Infinity. */
export const hardGraphCaseArb = (maxSteps = 6, pNonFinite = 0.1): fc.Arbitrary<GraphCase> =>
  hardProgramArb(maxSteps).chain((program) =>
    fc
      .tuple(...Array.from({ length: program.inputs }, () => hardValuesArb(program.shape ?? poolShape, -1.5, 1.5, pNonFinite)))
      .map((vals) => ({
        program,
        // as in graphCaseArb: finite values kept apart (non-finite ones stay as they are), so that float32 rounding
        // rarely decides a comparison or a max
        args: Object.fromEntries(vals.map((v, i) => [`x${i}`, { shape: v.shape, data: awayFromKinks(v).data.map((e) => e + 0.031 * i) }])),
      })),
  );

/** Builds the program over the pool; the result is the last value, reduced against fixed weights. */
export const runProgram = (program: Program, args: Record<string, Tensor>): Tensor => {
  const pool: Tensor[] = Object.keys(args)
    .sort()
    .map((k) => args[k]);
  for (const s of program.steps) {
    const t = allTemplates[s.template];
    pool.push(t.apply(pool[s.a % pool.length], pool[s.b % pool.length], s.c ?? 0));
  }
  const last = pool[pool.length - 1];
  const w = [0.3, -0.7, 1.1, 0.5, -0.2, 0.9];
  const weights = op.constant(
    Array.from({ length: last.shape[0] * last.shape[1] }, (_, i) => w[i % w.length]),
    last.shape,
  );
  return op.sum(op.mul(last, weights));
};

export const describeProgram = (p: Program): string => {
  const names = Array.from({ length: p.inputs }, (_, i) => `x${i}`);
  const lines = p.steps.map((s, i) => {
    const t = allTemplates[s.template];
    const a = names[s.a % names.length];
    const b = names[s.b % names.length];
    names.push(`v${i}`);
    return (
      `v${i} = ${s.template}(${t.arity === 1 ? a : `${a}, ${b}`})` +
      `${s.c === undefined ? '' : ` with c = ${Object.is(s.c, -0) ? '-0' : s.c}`}`
    );
  });
  const pool = p.shape && (p.shape[0] !== poolShape[0] || p.shape[1] !== poolShape[1]) ? [`(pool [${p.shape}])`] : [];
  return [...pool, ...lines, `out = sum(${names[names.length - 1]} * w)`].join('\n');
};
