// The counter-based RNG, specified once as source text that both the interpreter (compiled here with
// `new Function`) and every gpu.js kernel (added as helper functions) run, so all backends execute the same
// operations. Every intermediate is an integer below 2^24 held in a float: exact in f32 and f64 alike, with no
// bitwise ops (WebGL1 has none, and gpu.js's wasm backend rounds Math.imul results to f32).
// The generator follows Widynski's "Squares" counter-based RNG scaled to 24 bits: four rounds of
// x = rot12(x^2 + y|z), with 24-bit products done in 12-bit limbs (every partial product < 2^24). Plain
// multiply-rotate hashes were tried first and failed the lag-1 and cross-key correlation tests.
// This is the one definition. The wasm backend emits the same float operations into its module (compiler/wasm/rng.ts),
// held to this source bit for bit over every counter the project uses by test/rng.test.ts.

/** gpu.js-compatible helper functions: the single definition of the RNG. */
export const rngFunctionSources: readonly string[] = [
  `function rngMul24(x, c1, c0) {
    const xh = Math.floor(x / 4096.0);
    const xl = x - xh * 4096.0;
    const lo = xl * c0;
    const loh = Math.floor(lo / 4096.0);
    const m1 = xh * c0;
    const m2 = xl * c1;
    const mid = (m1 - Math.floor(m1 / 4096.0) * 4096.0) + (m2 - Math.floor(m2 / 4096.0) * 4096.0) + loh;
    return (mid - Math.floor(mid / 4096.0) * 4096.0) * 4096.0 + (lo - loh * 4096.0);
  }`,
  `function rngSqr24(x) {
    const h = Math.floor(x / 4096.0);
    const l = x - h * 4096.0;
    const lo = l * l;
    const loh = Math.floor(lo / 4096.0);
    const m = h * l;
    const mid = 2.0 * (m - Math.floor(m / 4096.0) * 4096.0) + loh;
    return (mid - Math.floor(mid / 4096.0) * 4096.0) * 4096.0 + (lo - loh * 4096.0);
  }`,
  `function rngAdd24(a, b) {
    const ah = Math.floor(a / 4096.0);
    const bh = Math.floor(b / 4096.0);
    const l = (a - ah * 4096.0) + (b - bh * 4096.0);
    const c = Math.floor(l / 4096.0);
    const h = ah + bh + c;
    return (h - Math.floor(h / 4096.0) * 4096.0) * 4096.0 + (l - c * 4096.0);
  }`,
  `function rngRot12(x) {
    const h = Math.floor(x / 4096.0);
    return (x - h * 4096.0) * 4096.0 + h;
  }`,
  `function rngBits(key, i) {
    const k = rngAdd24(rngMul24(key, 2531.0, 1913.0), 6017257.0);
    const y = rngAdd24(rngMul24(rngAdd24(i, 1.0), 2047.0, 2869.0), k);
    const z = rngAdd24(y, k);
    let x = rngRot12(rngAdd24(rngSqr24(y), y));
    x = rngRot12(rngAdd24(rngSqr24(x), z));
    x = rngRot12(rngAdd24(rngSqr24(x), y));
    return rngRot12(rngAdd24(rngSqr24(x), z));
  }`,
  `function rngUniform(key, i) {
    return (Math.floor(rngBits(key, i) / 2.0) + 0.5) / 8388608.0;
  }`,
  `function rngNormal(key, i) {
    const u1 = rngUniform(key, 2.0 * i);
    const u2 = rngUniform(key, 2.0 * i + 1.0);
    return Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(6.283185307179586 * u2);
  }`,
  `function rngKey(base, counter) {
    return rngBits(base, counter - Math.floor(counter / 16777216.0) * 16777216.0);
  }`,
  `function rngDraw(base, counter, i, normal) {
    const key = rngKey(base, counter);
    return normal > 0.5 ? rngNormal(key, i) : rngUniform(key, i);
  }`,
];

/** The one function kernels call: element i of a uniform (normal = 0) or normal (normal = 1) draw. */
export const rngEntryPoint = 'rngDraw';

type Fns = {
  rngBits: (key: number, i: number) => number;
  rngAdd24: (a: number, b: number) => number;
  rngUniform: (key: number, i: number) => number;
  rngNormal: (key: number, i: number) => number;
  rngKey: (base: number, counter: number) => number;
};

// The interpreter runs the very same source.
const fns: Fns = new Function(`${rngFunctionSources.join('\n')}\nreturn { rngBits, rngAdd24, rngUniform, rngNormal, rngKey };`)() as Fns;

/** The largest element count of one draw: element indices (2i + 1 for normals) stay below 2^24. */
export const maxRandomElements = { uniform: 1 << 24, normal: 1 << 23 } as const;

/** 24 random bits for element i of the draw with this key. */
export const bits24 = fns.rngBits;

/** The per-(seed, stream) base, computed on the host and baked into kernels as a literal. */
export const randomBase = (seed: number, stream: number): number => {
  const s = ((seed >>> 0) % 16777216) ^ Math.floor((seed >>> 0) / 16777216); // fold 32 bits into 24
  return fns.rngBits(s, (stream >>> 0) % 16777216);
};

/** The key of one draw: hashes the base with the (runtime) counter. */
export const randomKey = (seed: number, stream: number, counter: number): number => fns.rngKey(randomBase(seed, stream), counter);

/** Uniform in the open interval (0, 1): (k + 0.5) / 2^23 for a 23-bit k, exact in float32. */
export const uniformAt = fns.rngUniform;

/** Standard normal by Box-Muller from the uniforms at 2i and 2i+1. */
export const normalAt = fns.rngNormal;
