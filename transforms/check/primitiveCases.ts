// One fast-check generator per primitive: random shapes (size-1 dims, broadcasting, non-square), attributes
// and values, and the function that applies the primitive. The suite checks each with checkGrads.
import fc from 'fast-check';
import * as op from '../../dsl/ops.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import type { OpName } from '../../core/ir.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { arrayArb, awayFromKinks, awayFromZero, broadcastPartner, dim, dimOrWide, positive, shapeArb, valuesArb } from './arbitraries.ts';

export interface PrimitiveCase {
  readonly fn: (args: Record<string, Tensor>) => Tensor;
  readonly args: Readonly<Record<string, NDArray>>;
  /** arguments to differentiate (default all) */
  readonly wrt?: readonly string[];
  /** a readable description of the drawn attributes, for counterexamples */
  readonly describe: string;
}

const fmtShape = (a: NDArray) => `[${a.shape.join(',')}]`;

const unaryCase = (f: (x: Tensor) => Tensor, domain: (a: NDArray) => NDArray = (a) => a) =>
  arrayArb(shapeArb()).map((x0): PrimitiveCase => {
    const x = domain(x0);
    return { fn: ({ x: t }) => f(t), args: { x }, describe: `x ${fmtShape(x)}` };
  });

/** Two operands whose shapes broadcast (in either order). */
const binaryCase = (f: (a: Tensor, b: Tensor) => Tensor, domA = (a: NDArray) => a, domB = (b: NDArray) => b) =>
  shapeArb()
    .chain((s) => fc.tuple(fc.constant(s), broadcastPartner(s), fc.boolean()))
    .chain(([s, t, swap]) => fc.tuple(valuesArb(swap ? t : s), valuesArb(swap ? s : t)))
    .map(([a0, b0]): PrimitiveCase => {
      const a = domA(a0),
        b = domB(b0);
      return { fn: ({ a: x, b: y }) => f(x, y), args: { a, b }, describe: `a ${fmtShape(a)}, b ${fmtShape(b)}` };
    });

/** Values with no ties between a and b, for max/min and comparisons. */
const distinctPair = (a: NDArray, b: NDArray): [NDArray, NDArray] => [
  awayFromKinks(a),
  { shape: b.shape, data: awayFromKinks(b).data.map((v) => v + 0.0071) },
];

const axesArb = (rank: number) => fc.subarray([...Array(rank).keys()]).chain((axes) => fc.tuple(fc.constant(axes), fc.boolean()));

const reduceCase = (f: (x: Tensor, axes: number[], keep: boolean) => Tensor, domain = (a: NDArray) => a) =>
  arrayArb(shapeArb(1))
    .chain((x) => fc.tuple(fc.constant(x), axesArb(x.shape.length)))
    .map(([x0, [axes, keep]]): PrimitiveCase => {
      const x = domain(x0);
      return { fn: ({ x: t }) => f(t, axes, keep), args: { x }, describe: `x ${fmtShape(x)}, axes [${axes}], keepDims ${keep}` };
    });

const permutation = (n: number) => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n });

const sliceRange = (d: number) =>
  fc
    .tuple(fc.integer({ min: 0, max: d - 1 }), fc.integer({ min: 1, max: d }), fc.integer({ min: 1, max: 3 }))
    .map(([s, len, step]) => [s, Math.min(d, s + len), step] as const);

/** One entry per op of Ops (OpName; a parameter for test/optable.types.test.ts): its case, or null with the reason. */
export type CaseTable<Ops extends string = OpName> = { readonly [P in Ops]: fc.Arbitrary<PrimitiveCase> | null };

export const primitiveCaseTable: CaseTable = {
  // Every case's arguments are inputs and most have literal operands: there is nothing of their own to check.
  input: null,
  constant: null,
  // Finite differences see through stopGradient while reverse mode stops by design: its laws are the suite's
  // own 'stopGradient' property (suite.ts).
  stopGradient: null,

  neg: unaryCase(op.neg),
  exp: unaryCase(op.exp),
  log: unaryCase(op.log, (a) => positive(a)),
  sqrt: unaryCase(op.sqrt, (a) => positive(a)),
  rsqrt: unaryCase(op.rsqrt, (a) => positive(a)),
  sin: unaryCase(op.sin),
  cos: unaryCase(op.cos),
  tanh: unaryCase(op.tanh),
  sigmoid: unaryCase(op.sigmoid, (a) => ({ shape: a.shape, data: a.data.map((v) => 4 * v) })),
  relu: unaryCase(op.relu, awayFromKinks),
  abs: unaryCase(op.abs, awayFromKinks),
  // piecewise constant: away from integers both sides agree that the gradient is zero
  floor: unaryCase(
    (x) => op.add(op.floor(x), op.mul(x, x)),
    (a) => ({ shape: a.shape, data: a.data.map((v) => Math.round(v) + 0.5 + 0.8 * (v - Math.round(v))) }),
  ),

  add: binaryCase(op.add),
  sub: binaryCase(op.sub),
  mul: binaryCase(op.mul),
  div: binaryCase(
    op.div,
    (a) => a,
    (b) => awayFromZero(b),
  ),
  pow: binaryCase(op.pow, (a) => positive(a, 0.5)),
  max: binaryCase((a, b) => op.maximum(a, b)).map((c) => withDistinct(c)),
  min: binaryCase((a, b) => op.minimum(a, b)).map((c) => withDistinct(c)),
  // Comparisons are piecewise constant: away from ties both sides agree that the gradient is zero.
  lt: binaryCase((a, b) => op.mul(op.lt(a, b), op.add(a, b))).map((c) => withDistinct(c)),
  le: binaryCase((a, b) => op.mul(op.le(a, b), op.add(a, b))).map((c) => withDistinct(c)),
  gt: binaryCase((a, b) => op.mul(op.gt(a, b), op.add(a, b))).map((c) => withDistinct(c)),
  ge: binaryCase((a, b) => op.mul(op.ge(a, b), op.add(a, b))).map((c) => withDistinct(c)),
  eq: binaryCase((a, b) => op.add(op.eq(a, b), op.mul(a, b))).map((c) => withDistinct(c)),
  ne: binaryCase((a, b) => op.add(op.ne(a, b), op.mul(a, b))).map((c) => withDistinct(c)),
  where: shapeArb()
    .chain((s) => fc.tuple(valuesArb(s), broadcastPartner(s), broadcastPartner(s)))
    .chain(([c, sa, sb]) => fc.tuple(fc.constant(c), valuesArb(sa), valuesArb(sb)))
    .map(([c, a, b]): PrimitiveCase => ({
      fn: ({ c: ct, a: x, b: y }) => op.where(op.gt(ct, 0), x, y),
      args: { c, a, b },
      wrt: ['a', 'b'],
      describe: `cond ${fmtShape(c)}, a ${fmtShape(a)}, b ${fmtShape(b)}`,
    })),

  sum: reduceCase((x, axes, keep) => op.sum(x, axes, keep)),
  reduceMax: reduceCase((x, axes, keep) => op.max(x, axes, keep), awayFromKinks),

  reshape: arrayArb(shapeArb())
    .chain((x) => fc.tuple(fc.constant(x), fc.shuffledSubarray(factorise(x.shape.reduce((a, b) => a * b, 1)))))
    .map(([x, dims]): PrimitiveCase => {
      const target = dims.length ? dims : [];
      const rest = x.data.length / target.reduce((a, b) => a * b, 1);
      const shape = [...target, rest];
      return { fn: ({ x: t }) => op.reshape(t, shape), args: { x }, describe: `x ${fmtShape(x)} -> [${shape}]` };
    }),
  broadcast: arrayArb(shapeArb())
    .chain((x) =>
      fc.tuple(fc.constant(x), fc.array(dim, { maxLength: 2 }), fc.array(dim, { minLength: x.shape.length, maxLength: x.shape.length })),
    )
    .map(([x, lead, grow]): PrimitiveCase => {
      const shape = [...lead, ...x.shape.map((d, i) => (d === 1 ? grow[i] : d))];
      return { fn: ({ x: t }) => op.broadcastTo(t, shape), args: { x }, describe: `x ${fmtShape(x)} -> [${shape}]` };
    }),
  permute: arrayArb(shapeArb(1, 4))
    .chain((x) => fc.tuple(fc.constant(x), permutation(x.shape.length)))
    .map(([x, perm]): PrimitiveCase => ({
      fn: ({ x: t }) => op.permute(t, perm),
      args: { x },
      describe: `x ${fmtShape(x)}, perm [${perm}]`,
    })),
  slice: arrayArb(shapeArb(1))
    .chain((x) => fc.tuple(fc.constant(x), fc.tuple(...x.shape.map(sliceRange))))
    .map(([x, ranges]): PrimitiveCase => ({
      fn: ({ x: t }) => op.slice(t, ranges),
      args: { x },
      describe: `x ${fmtShape(x)}, ranges ${JSON.stringify(ranges)}`,
    })),
  pad: arrayArb(shapeArb(1))
    .chain((x) =>
      fc.tuple(
        fc.constant(x),
        fc.array(fc.tuple(fc.nat(2), fc.nat(2)), { minLength: x.shape.length, maxLength: x.shape.length }),
        fc.array(fc.nat(2), { minLength: x.shape.length, maxLength: x.shape.length }),
      ),
    )
    .map(([x, widths, interior]): PrimitiveCase => ({
      fn: ({ x: t }) => op.pad(t, widths, interior),
      args: { x },
      describe: `x ${fmtShape(x)}, widths ${JSON.stringify(widths)}, interior [${interior}]`,
    })),
  concat: shapeArb(1)
    .chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: s.length - 1 }), fc.array(dim, { minLength: 2, maxLength: 3 })))
    .chain(([s, axis, sizes]) =>
      fc.tuple(fc.constant(axis), fc.tuple(...sizes.map((d) => valuesArb(s.map((e, i) => (i === axis ? d : e)))))),
    )
    .map(([axis, parts]): PrimitiveCase => ({
      fn: (args) =>
        op.concat(
          parts.map((_, i) => args[`x${i}`]),
          axis,
        ),
      args: Object.fromEntries(parts.map((p, i) => [`x${i}`, p])),
      describe: `${parts.map(fmtShape).join(' ++ ')} on axis ${axis}`,
    })),
  flip: arrayArb(shapeArb(1))
    .chain((x) => fc.tuple(fc.constant(x), fc.subarray([...Array(x.shape.length).keys()])))
    .map(([x, axes]): PrimitiveCase => ({
      fn: ({ x: t }) => op.flip(t, axes),
      args: { x },
      describe: `x ${fmtShape(x)}, axes [${axes}]`,
    })),

  matmul: fc
    .tuple(shapeArb(0, 2), dim, dim, dimOrWide)
    .chain(([batch, m, k, n]) => fc.tuple(fc.constant([batch, m, k, n] as const), broadcastPartner(batch), fc.boolean()))
    .chain(([[batch, m, k, n], other, swap]) =>
      fc.tuple(valuesArb([...(swap ? other : batch), m, k]), valuesArb([...(swap ? batch : other), k, n])),
    )
    .map(([a, b]): PrimitiveCase => ({
      fn: ({ a: x, b: y }) => op.matmul(x, y),
      args: { a, b },
      describe: `a ${fmtShape(a)}, b ${fmtShape(b)}`,
    })),
  conv2d: fc
    .record({
      n: fc.integer({ min: 1, max: 2 }),
      c: fc.integer({ min: 1, max: 3 }),
      o: fc.integer({ min: 1, max: 3 }),
      kh: fc.integer({ min: 1, max: 3 }),
      kw: fc.integer({ min: 1, max: 3 }),
      sh: fc.integer({ min: 1, max: 3 }),
      sw: fc.integer({ min: 1, max: 3 }),
      pad: fc.tuple(fc.nat(2), fc.nat(2), fc.nat(2), fc.nat(2)),
      extraH: fc.nat(4),
      extraW: fc.nat(4),
    })
    .chain((p) => {
      // the input is at least as large as the kernel, so every drawn configuration is valid
      const h = Math.max(1, p.kh + p.extraH - p.pad[0] - p.pad[1]);
      const w = Math.max(1, p.kw + p.extraW - p.pad[2] - p.pad[3]);
      return fc.tuple(
        fc.constant(p),
        valuesArb([p.n, p.c, h + Math.max(0, p.kh - (h + p.pad[0] + p.pad[1])), w + Math.max(0, p.kw - (w + p.pad[2] + p.pad[3]))]),
        valuesArb([p.o, p.c, p.kh, p.kw]),
      );
    })
    .map(([p, x, w]): PrimitiveCase => ({
      fn: ({ x: a, w: b }) => op.conv2d(a, b, { stride: [p.sh, p.sw], padding: p.pad }),
      args: { x, w },
      describe: `x ${fmtShape(x)}, w ${fmtShape(w)}, stride [${p.sh},${p.sw}], padding [${p.pad}]`,
    })),

  // The random primitive has no differentiable input; in a product its draw acts as a constant.
  random: fc.tuple(arrayArb(shapeArb()), fc.nat(1000), fc.constantFrom('normal', 'uniform')).map(([x, seed, dist]): PrimitiveCase => ({
    fn: ({ x: t }) => op.mul(t, (dist === 'normal' ? op.normal : op.uniform)(t.shape, { seed, stream: 1 })),
    args: { x },
    describe: `x ${fmtShape(x)}, ${dist} seed ${seed}`,
  })),
};

/** The suite names a case by the DSL function users call where it differs from the op (op.maximum is 'max'). */
const suiteName: Partial<Record<OpName, string>> = { max: 'maximum', min: 'minimum', reduceMax: 'max' };

/** The cases by suite name, in table order, without the null entries. */
export const primitiveCases: Readonly<Record<string, fc.Arbitrary<PrimitiveCase>>> = Object.fromEntries(
  (Object.entries(primitiveCaseTable) as [OpName, fc.Arbitrary<PrimitiveCase> | null][]).flatMap(([o, arb]) =>
    arb ? [[suiteName[o] ?? o, arb]] : [],
  ),
);

function withDistinct(c: PrimitiveCase): PrimitiveCase {
  const { a, b } = c.args as { a: NDArray; b: NDArray };
  const [da, db] = distinctPair(a, b);
  return { ...c, args: { a: da, b: db } };
}

/** Prime factors of n (with repetition), for drawing a reshape target. */
function factorise(n: number): number[] {
  const out: number[] = [];
  for (let p = 2; n > 1; p++) while (n % p === 0) (out.push(p), (n /= p));
  return out;
}
