// fast-check arbitraries for shapes and values, shared by the primitive cases and the graph generator.
import fc from 'fast-check';
import type { NDArray } from '../../core/ndarray.ts';
import { size } from '../../core/shape.ts';

/** Dimensions 1..4: size-1 dims are common so broadcasting and degenerate axes are exercised. */
export const dim = fc.integer({ min: 1, max: 4 });
/**
 * Extents the small dims never reach, where the backends change paths: the wasm emitter vectorises an axis whose extent
 * is a multiple of 4 and unrolls two vectors at a multiple of 8, the WGSL tuner blocks by 4 or 2 (12, 20 and 36 are
 * multiples of 4 but not 8; 5 is neither; test/shape-sweep.test.ts sweeps them all).
 */
export const wideExtents = [5, 8, 12, 20, 36] as const;
/** A small dim three times in four, else a wide extent. */
export const dimOrWide = fc.oneof({ weight: 3, arbitrary: dim }, { weight: 1, arbitrary: fc.constantFrom(...wideExtents) });
/** Shapes of small dims whose last axis is wide now and then (one axis only, so sizes stay in the hundreds). */
export const shapeArb = (minRank = 0, maxRank = 3) =>
  fc
    .tuple(fc.array(dim, { minLength: minRank, maxLength: maxRank }), dimOrWide)
    .map(([s, last]) => (s.length && last > 4 ? [...s.slice(0, -1), last] : s));

export const valuesArb = (shape: readonly number[], min = -2, max = 2): fc.Arbitrary<NDArray> =>
  fc
    .array(fc.double({ min, max, noNaN: true, noDefaultInfinity: true }), { minLength: size(shape), maxLength: size(shape) })
    .map((vs) => ({ shape, data: Float64Array.from(vs) }));

export const arrayArb = (shapeA: fc.Arbitrary<number[]>, min = -2, max = 2) => shapeA.chain((s) => valuesArb(s, min, max));

/** Maps values into a domain: positive (log, sqrt, pow base) or away from zero (div). */
export const positive = (a: NDArray, floor = 0.2): NDArray => ({ shape: a.shape, data: a.data.map((v) => floor + Math.abs(v)) });
export const awayFromZero = (a: NDArray, floor = 0.5): NDArray => ({
  shape: a.shape,
  data: a.data.map((v) => (v < 0 ? -floor + v : floor + v)),
});

/**
 * Non-differentiable points (relu/abs at 0, ties of max/min and comparisons) are avoided, not tested:
 * values are kept at least `gap` from zero and made pairwise distinct by a per-element offset, so a central
 * difference with eps = 1e-6 never straddles a kink. The rules' choices at the kinks (subgradient 0, ties
 * share equally; docs/numerics.md, "Kinks and ties") are pinned by test/kinks.test.ts instead.
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
  fc
    .tuple(fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }), fc.integer({ min: 0, max: s.length }))
    .map(([ones, drop]) => s.map((d, i) => (ones[i] ? 1 : d)).slice(drop));

// ---- hard inputs: non-finite values, negative and non-finite constants, zero-size shapes -----------------------

/** The values IEEE arithmetic treats specially; mixed into inputs by `hardValuesArb`. */
export const nonFiniteValues = [NaN, Infinity, -Infinity] as const;

/**
 * Constants that have broken code generators: negatives (a sign printed before a negative literal gives `--2`),
 * +-0 (String(-0) is '0'), +-Infinity and NaN (no literal in GLSL or JS source; a finite stand-in such as 3.4e38
 * compares unequal to Infinity), and ordinary values beside them.
 */
export const hardConstants = [-2, -0.5, -1.3, -Infinity, Infinity, NaN, 0, -0, 1, 2.5] as const;
export const hardConstantArb = fc.constantFrom(...hardConstants);

/** Like valuesArb, but each element is NaN, +Infinity or -Infinity with probability about `pNonFinite`. */
export const hardValuesArb = (shape: readonly number[], min = -2, max = 2, pNonFinite = 0.1): fc.Arbitrary<NDArray> => {
  const weight = Math.max(1, Math.round(1 / pNonFinite) - 1);
  const element = fc.oneof(
    { weight, arbitrary: fc.double({ min, max, noNaN: true, noDefaultInfinity: true }) },
    { weight: 1, arbitrary: fc.constantFrom(...nonFiniteValues) },
  );
  return fc.array(element, { minLength: size(shape), maxLength: size(shape) }).map((vs) => ({ shape, data: Float64Array.from(vs) }));
};

/** Shapes with at least one zero dimension: every one must be refused at trace time (core/builder.ts). */
export const zeroSizeShapeArb = fc.tuple(shapeArb(1, 3), fc.nat()).map(([s, k]) => s.map((d, i) => (i === k % s.length ? 0 : d)));

// ---- size classes ----------------------------------------------------------------------------------------------
// tiny: the shapes above (dims 1..4 and now and then one wide axis; graphArbitrary.ts's pools): fast, and where algebra
// bugs show.
// large: element counts and reduction lengths chosen to cross the backends' limits (docs/numerics.md): float32
// index arithmetic is exact to 2^21 (GL) and about 2^23 (webasm) and integers to 2^24; headless-gl (Mesa llvmpipe)
// cuts loops after 65,535 iterations. Each large case allocates tens to hundreds of MB and takes seconds on the
// cpu backend: use them in a handful of runs, not hundreds (transforms/check/sizeCases.ts builds graphs on them).

/** 2-D shapes from 2^20 to 2^25 elements, each just above (or at) a limit. */
export const largeShapes = [
  [1024, 1024], // 2^20: below every limit, must match everywhere
  [1449, 1448], // 2,098,152: just above 2^21 (GL's exact float index range)
  [2897, 2896], // 8,389,712: just above 2^23 (webasm's)
  [4096, 4096], // 2^24: the last exact float32 integer
  [4099, 4097], // 16,793,603: just above 2^24, odd dims
  [8192, 4096], // 2^25
] as const satisfies readonly (readonly [number, number])[];
export const largeShapeArb = fc.constantFrom(...largeShapes);

/** Reduction lengths around and above GL's loop cut, up to 10^6 terms. */
export const longReductionLengths = [65_535, 65_536, 100_000, 150_000, 1_000_000] as const;
export const longReductionArb = fc.oneof(fc.constantFrom(...longReductionLengths), fc.integer({ min: 100_000, max: 1_000_000 }));

/**
 * Deterministic test data for large tensors: integers in [0, modulus) from a multiplicative hash of the flat index.
 * They are exact in float32, and with the default modulus neighbouring elements differ by O(1000), so an element read
 * from a wrong index is an O(1) relative error, not a rounding-sized one. For long sums take a small modulus: n terms
 * below m sum exactly in float32 while n * m <= 2^24.
 */
export const hashedInts = (n: number, salt = 0, modulus = 4093): Float64Array => {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.imul(i + salt, 0x9e3779b1) >>> 0) % modulus;
  return out;
};
