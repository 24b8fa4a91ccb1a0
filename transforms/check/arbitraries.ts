// fast-check arbitraries for shapes and values, shared by the primitive cases and the graph generator.
import fc from 'fast-check';
import type { NDArray } from '../../core/ndarray.ts';
import { size } from '../../core/shape.ts';

/** Dimensions 1..4: size-1 dims are common so broadcasting and degenerate axes are exercised. */
export const dim = fc.integer({ min: 1, max: 4 });
export const shapeArb = (minRank = 0, maxRank = 3) => fc.array(dim, { minLength: minRank, maxLength: maxRank });

export const valuesArb = (shape: readonly number[], min = -2, max = 2): fc.Arbitrary<NDArray> =>
  fc
    .array(fc.double({ min, max, noNaN: true, noDefaultInfinity: true }), { minLength: size(shape), maxLength: size(shape) })
    .map((vs) => ({ shape, data: Float64Array.from(vs) }));

export const arrayArb = (shapeA: fc.Arbitrary<number[]>, min = -2, max = 2) => shapeA.chain((s) => valuesArb(s, min, max));

/** Maps values into a domain: positive (log, sqrt, pow base) or away from zero (div). */
export const positive = (a: NDArray, floor = 0.2): NDArray => ({ shape: a.shape, data: a.data.map((v) => floor + Math.abs(v)) });
export const awayFromZero = (a: NDArray, floor = 0.5): NDArray => ({ shape: a.shape, data: a.data.map((v) => (v < 0 ? -floor + v : floor + v)) });

/**
 * Non-differentiable points (relu/abs at 0, ties of max/min and comparisons) are avoided, not tested:
 * values are kept at least `gap` from zero and made pairwise distinct by a per-element offset, so a central
 * difference with eps = 1e-6 never straddles a kink. The rules' choices at the kinks (subgradient 0, ties
 * share equally) are pinned by unit tests instead.
 */
export const awayFromKinks = (a: NDArray, gap = 0.05): NDArray => ({
  shape: a.shape,
  data: a.data.map((v, i) => {
    const w = v + 0.0137 * i;
    return Math.abs(w) < gap ? (w < 0 ? -gap : gap) - 0.0011 * i : w;
  }),
});

/** A shape that broadcasts against `s`: some dims set to 1 and possibly some leading dims dropped. */
export const broadcastPartner = (s: readonly number[]) =>
  fc.tuple(fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }), fc.integer({ min: 0, max: s.length })).map(([ones, drop]) =>
    s.map((d, i) => (ones[i] ? 1 : d)).slice(drop),
  );
