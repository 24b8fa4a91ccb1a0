// Transcendentals computed inside the module, branch-free (selects instead of ifs) so that one routine serves the
// scalar and the f32x4 paths. Polynomials and range reductions are the classic single-precision ones (Cody-Waite
// splits of ln 2 and pi/2, minimax polynomials as in Cephes). Error bounds, checked by test/wasm-math.test.ts
// against float64 Math: exp, log, sigmoid, tanh within 4 ulp of the f32-rounded exact value; sin and cos within
// 4e-7 absolute for |x| <= 1e4 (the reduction uses three f32 parts of pi/2, exact while x * 2/pi < 2^15); beyond,
// the reduction loses accuracy with |x| and the result is only promised finite and in [-1, 1] (sin(1e30) was -Infinity).
// Special values follow IEEE: NaN in gives NaN out, exp(+inf) = inf, exp(-inf) = 0, log(0) = -inf, log(x<0) = NaN.
import type { Lanes } from './lanes.ts';
import { COS_POLY, PIO2, REMAINDER_CLAMP, SIN_POLY, TWO_OVER_PI } from '../kernel/sincos.ts';

const LOG2E = 1.4426950408889634;
const LN2_HI = 0.693359375; // 9 significant bits: n * LN2_HI is exact
const LN2_LO = -2.1219444e-4;

/** e^x */
export const exp = (L: Lanes, x: number): number => {
  const xc = L.max(L.min(x, { c: 89 }), { c: -104 });
  const { p, n } = expParts(L, xc);
  // 2^n in two factors, each within the normal exponent range, so results near overflow and underflow are right
  const n1 = L.floor(L.mul(n, { c: 0.5 }));
  const n2 = L.sub(n, n1);
  L.mul(p, L.pow2i(n1), p);
  return L.mul(p, L.pow2i(n2), p);
};

/**
 * e^x for x <= 0 (or NaN), as sigmoid needs it: one clamp, and 2^n (n in [-150, 0]) as 2^(n + 64) then 2^-64. The
 * first product is exact and the second rounds once, as exp's two factors do, so the bits are exp's (6 fewer
 * instructions of about 40 in a sigmoid).
 */
const expNonPositive = (L: Lanes, x: number): number => {
  const { p, n } = expParts(L, L.max(x, { c: -104 }));
  L.mul(p, L.pow2i(L.add(n, { c: 64 })), p);
  return L.mul(p, { c: 2 ** -64 }, p);
};

/** x = n ln 2 + r, |r| <= ln 2 / 2: n, and p = e^r by its minimax polynomial */
const expParts = (L: Lanes, xc: number): { p: number; n: number } => {
  const n = L.nearest(L.mul(xc, { c: LOG2E }));
  const r = L.sub(xc, L.mul(n, { c: LN2_HI }));
  L.sub(r, L.mul(n, { c: LN2_LO }), r);
  const r2 = L.mul(r, r);
  const p = L.poly(r, [5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.98756915e-4]);
  L.mul(p, r2, p);
  L.add(p, r, p);
  L.add(p, { c: 1 }, p);
  return { p, n };
};

/** natural logarithm */
export const log = (L: Lanes, x: number): number => {
  // subnormals: scale into the normal range first (frexp reads the exponent bits)
  const tiny = L.compare('lt', x, { c: 1.1754943508222875e-38 });
  const xs = L.select(tiny, L.mul(x, { c: 8388608 }), x);
  const { m, e } = L.frexp(xs);
  L.sub(e, L.select(tiny, { c: 23 }, { c: 0 }), e);
  // m in [1, 2) -> [sqrt(1/2), sqrt(2))
  const big = L.compare('gt', m, { c: Math.SQRT2 });
  L.select(big, L.mul(m, { c: 0.5 }), m, m);
  L.add(e, L.select(big, { c: 1 }, { c: 0 }), e);
  const f = L.sub(m, { c: 1 });
  const z = L.mul(f, f);
  const p = L.poly(
    f,
    [
      3.3333331174e-1, -2.4999993993e-1, 2.0000714765e-1, -1.6668057665e-1, 1.4249322787e-1, -1.2420140846e-1, 1.167699874e-1,
      -1.151461031e-1, 7.0376836292e-2,
    ],
  );
  const y = L.mul(L.mul(f, z), p);
  L.mulAdd(e, { c: LN2_LO }, y, y);
  L.mulAdd(z, { c: -0.5 }, y, y);
  const r = L.add(f, y);
  L.mulAdd(e, { c: LN2_HI }, r, r);
  // special values
  L.select(L.compare('eq', x, { c: Infinity }), { c: Infinity }, r, r);
  L.select(L.compare('eq', x, { c: 0 }), { c: -Infinity }, r, r);
  L.select(L.compare('lt', x, { c: 0 }), { c: NaN }, r, r);
  return L.select(L.compare('ne', x, x), x, r, r);
};

/** sin(x) (cosine = true: cos(x)), by quadrant: x = q pi/2 + r, |r| <= pi/4. */
const sinCos = (L: Lanes, x0: number, cosine: boolean): number => {
  const x = cosine ? L.abs(x0) : x0; // cos is even exactly, also where the reduction is inexact
  const q = L.nearest(L.mul(x, { c: TWO_OVER_PI }));
  const r = L.sub(x, L.mul(q, { c: PIO2[0] }));
  L.sub(r, L.mul(q, { c: PIO2[1] }), r);
  L.sub(r, L.mul(q, { c: PIO2[2] }), r);
  // beyond the exact range the parts of q pi/2 are rounded and r can be anything (1e22 for x = 1e30, where the
  // polynomials overflowed to -Infinity): clamped to just past pi/4, the result stays in [-1, 1]; never active below 1e5
  L.max(L.min(r, { c: REMAINDER_CLAMP }), { c: -REMAINDER_CLAMP }, r);
  const z = L.mul(r, r);
  const s = L.poly(z, SIN_POLY);
  L.mul(s, L.mul(r, z), s);
  L.add(s, r, s);
  const c = L.poly(z, COS_POLY);
  L.mul(c, L.mul(z, z), c);
  L.mulAdd(z, { c: -0.5 }, c, c);
  L.add(c, { c: 1 }, c);
  // quadrant k = q (+1 for cosine) mod 4: odd k swaps sin and cos, k >= 2 negates
  const k = cosine ? L.add(q, { c: 1 }) : q;
  L.sub(k, L.mul(L.floor(L.mul(k, { c: 0.25 })), { c: 4 }), k);
  const odd = L.compare('eq', L.sub(k, L.mul(L.floor(L.mul(k, { c: 0.5 })), { c: 2 })), { c: 1 });
  const v = L.select(odd, c, s);
  L.select(L.compare('ge', k, { c: 2 }), L.neg(v), v, v);
  return cosine ? v : L.select(L.compare('eq', x, { c: 0 }), x, v, v); // sin(-0) = -0
};

export const sin = (L: Lanes, x: number): number => sinCos(L, x, false);
export const cos = (L: Lanes, x: number): number => sinCos(L, x, true);

/** tanh: a polynomial near 0 (where 1 - 2/(e^2x + 1) cancels), the exponential form elsewhere. */
export const tanh = (L: Lanes, x: number): number => {
  const ax = L.abs(x);
  const e = exp(L, L.mul(ax, { c: 2 }));
  const far = L.sub({ c: 1 }, L.div({ c: 2 }, L.add(e, { c: 1 })));
  L.copySign(far, x, far);
  const z = L.mul(x, x);
  const p = L.poly(z, [-3.33332819422e-1, 1.33314422036e-1, -5.37397155531e-2, 2.06390887954e-2, -5.70498872745e-3]);
  const near = L.mulAdd(L.mul(x, z), p, x);
  L.select(L.compare('lt', ax, { c: 0.625 }), near, far, far);
  return L.select(L.compare('eq', x, { c: 0 }), x, far, far); // tanh(-0) = -0
};

/** 1 / (1 + e^-x), without overflow for large |x| */
export const sigmoid = (L: Lanes, x: number): number => {
  // e = exp(-|x|) never overflows: 1 / (1 + e) for x >= 0, e / (1 + e) below (as the interpreter computes it)
  const e = expNonPositive(L, L.neg(L.abs(x)));
  const d = L.add(e, { c: 1 });
  // one division, of the numerator chosen first: the same correctly rounded quotient in every lane
  return L.div(L.select(L.compare('ge', x, { c: 0 }), { c: 1 }, e), d);
};

/**
 * a^b as exp(b log|a|), with the signs of a negative base: an odd integer exponent keeps the sign, a non-integer
 * one gives NaN; b = 0 gives 1 (even for a NaN base), as Math.pow does.
 */
export const pow = (L: Lanes, a: number, b: number): number => {
  const r = exp(L, L.mul(b, log(L, L.abs(a))));
  const isInt = L.compare('eq', L.floor(b), b);
  const half = L.mul(b, { c: 0.5 });
  const odd = L.compare('ne', L.floor(half), half);
  const negBase = L.compare('lt', a, { c: 0 });
  const signed = L.select(odd, L.neg(r), r);
  const neg = L.select(isInt, signed, { c: NaN });
  L.select(negBase, neg, r, r);
  return L.select(L.compare('eq', b, { c: 0 }), { c: 1 }, r, r);
};
