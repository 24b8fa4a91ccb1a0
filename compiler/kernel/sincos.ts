// sin and cos as every backend computes them in float32 (the wasm module, the compiler's WGSL, gpu.js's WGSL): x
// reduced by the nearest multiple q of pi/2 in three parts (Cody-Waite), the remainder clamped just past pi/4 (where
// the parts of q pi/2 stop being exact, |x| > 1e4, r could be anything), then Cephes' float polynomials on it.

/** 2/pi, and pi/2 in three parts whose products with q are exact in float32 while |q| < 2^15. */
export const TWO_OVER_PI = 2 / Math.PI;
export const PIO2 = [1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8] as const;
/** |r| is clamped to this: past pi/4 (0.785), never active below |x| = 1e5, keeps the result in [-1, 1]. */
export const REMAINDER_CLAMP = 0.85;
/** sin(r) = r + r z P(z) and cos(r) = 1 - z/2 + z^2 Q(z), z = r^2 (Cephes sinf, cosf). */
export const SIN_POLY = [-1.6666654611e-1, 8.3321608736e-3, -1.9515295891e-4] as const;
export const COS_POLY = [4.166664568298827e-2, -1.388731625493765e-3, 2.443315711809948e-5] as const;

/** c0 + z (c1 + z (c2 + ...)) as source text, each coefficient written by the target's `lit`. */
export const hornerText = (z: string, cs: readonly number[], lit: (c: number) => string): string =>
  cs.reduceRight((acc, c) => (acc === '' ? lit(c) : `(${lit(c)} + ${z} * ${acc})`), '');
