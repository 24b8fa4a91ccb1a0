// The counter-based RNG, specified here once: every backend reproduces these integer steps exactly.
// An element's bits depend only on (seed, stream, counter, element index), so noise is drawn where it is
// used, is the same on every backend, and a resumed run replays it by restoring the counter.
import { ShapeError, fmt } from '../shape.ts';
import type { PrimitiveImpl } from './types.ts';

/** "lowbias32" integer hash (C. Wellons): good avalanche with two multiplies, cheap in GLSL, wasm and JS. */
export const hash32 = (x: number): number => {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
};

// Elements hash (key ^ hash(i)), not (key + i): with a sum, two keys d apart would give the same sequence
// shifted by d; with an xor of a bijective hash, keys collide only at isolated elements.
const bitsAt = (key: number, i: number): number => hash32((key ^ hash32(i >>> 0)) >>> 0);

export const randomKey = (seed: number, stream: number, counter: number): number =>
  hash32((hash32((seed ^ hash32(stream >>> 0)) >>> 0) + (counter >>> 0)) >>> 0);

/** Uniform in the open interval (0, 1) from 23 random bits: (k + 0.5) / 2^23 has 24 significant bits, so it is exact in float32. */
export const uniformAt = (key: number, i: number): number => ((bitsAt(key, i) >>> 9) + 0.5) / 8388608;

/** Standard normal by Box-Muller from the uniforms at 2i and 2i+1. */
export const normalAt = (key: number, i: number): number =>
  Math.sqrt(-2 * Math.log(uniformAt(key, 2 * i))) * Math.cos(2 * Math.PI * uniformAt(key, 2 * i + 1));

export const random: PrimitiveImpl<'random'> = {
  shape: ([counter], { seed, stream }, declared) => {
    if (counter.length !== 0) throw new ShapeError('random', `the counter must be a scalar, got ${fmt(counter)}`);
    if (!Number.isInteger(seed) || !Number.isInteger(stream)) throw new ShapeError('random', `seed and stream must be integers, got ${seed}, ${stream}`);
    if (!declared) throw new ShapeError('random', 'needs an output shape');
    return declared;
  },
  eval: ([counter], { dist, seed, stream }, shape) => {
    const key = randomKey(seed, stream, Math.trunc(counter.data[0]));
    const out = new Float64Array(shape.reduce((a, b) => a * b, 1));
    const draw = dist === 'normal' ? normalAt : uniformAt;
    for (let i = 0; i < out.length; i++) out[i] = draw(key, i);
    return out;
  },
};
