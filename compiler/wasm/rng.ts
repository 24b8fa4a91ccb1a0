// The counter-based RNG of core/rng.ts, emitted into the module: the same float operations on integers below
// 2^24 (exact in f32), so the 24-bit draws are bit-identical to the interpreter's and every other backend's; the
// normal transform (log, cos, sqrt) is computed in f32 like every other transcendental here. A copy, so
// test/rng.test.ts compares it with core/rng.ts (the definition) bit for bit; change the two together.
import type { Lanes } from './lanes.ts';
import { cos, log } from './math.ts';

type V = number | { c: number };
const C = 4096;

/** floor(x / 4096) and x - 4096 floor(x / 4096), the 12-bit limbs of a 24-bit integer. */
const split = (L: Lanes, x: V): [number, number] => {
  const h = L.floor(L.mul(x, { c: 1 / C }));
  return [h, L.sub(x, L.mul(h, { c: C }))];
};
/** x mod 4096 */
const low12 = (L: Lanes, x: V): number => split(L, x)[1];

const mul24 = (L: Lanes, x: number, c1: number, c0: number): number => {
  const [xh, xl] = split(L, x);
  const lo = L.mul(xl, { c: c0 });
  const loh = L.floor(L.mul(lo, { c: 1 / C }));
  const m1 = L.mul(xh, { c: c0 });
  const m2 = L.mul(xl, { c: c1 });
  const mid = L.add(L.add(low12(L, m1), low12(L, m2)), loh);
  return L.add(L.mul(low12(L, mid), { c: C }), L.sub(lo, L.mul(loh, { c: C })));
};

const sqr24 = (L: Lanes, x: number): number => {
  const [h, l] = split(L, x);
  const lo = L.mul(l, l);
  const loh = L.floor(L.mul(lo, { c: 1 / C }));
  const m = L.mul(h, l);
  const mid = L.add(L.mul(low12(L, m), { c: 2 }), loh);
  return L.add(L.mul(low12(L, mid), { c: C }), L.sub(lo, L.mul(loh, { c: C })));
};

const add24 = (L: Lanes, a: V, b: V): number => {
  const [ah, al] = split(L, a);
  const [bh, bl] = split(L, b);
  const l = L.add(al, bl);
  const c = L.floor(L.mul(l, { c: 1 / C }));
  const h = L.add(L.add(ah, bh), c);
  return L.add(L.mul(low12(L, h), { c: C }), L.sub(l, L.mul(c, { c: C })));
};

const rot12 = (L: Lanes, x: number): number => {
  const [h, l] = split(L, x);
  return L.add(L.mul(l, { c: C }), h);
};

/** rngBits(key, i) of core/rng.ts: 24 random bits for element i of the draw with this key (exported for its test). */
export const bits = (L: Lanes, key: number, i: number): number => {
  const k = add24(L, mul24(L, key, 2531, 1913), { c: 6017257 });
  const y = add24(L, mul24(L, add24(L, i, { c: 1 }), 2047, 2869), k);
  const z = add24(L, y, k);
  let x = rot12(L, add24(L, sqr24(L, y), y));
  x = rot12(L, add24(L, sqr24(L, x), z));
  x = rot12(L, add24(L, sqr24(L, x), y));
  return rot12(L, add24(L, sqr24(L, x), z));
};

const uniform = (L: Lanes, key: number, i: number): number =>
  L.mul(L.add(L.floor(L.mul(bits(L, key, i), { c: 0.5 })), { c: 0.5 }), { c: 1 / 8388608 });

/** rngDraw(base, counter, i, normal): element i of the draw keyed by (base, counter); counter and i are lane values. */
export const randomDraw = (L: Lanes, base: number, counter: number, i: number, normal: boolean): number => {
  const wrapped = L.sub(counter, L.mul(L.floor(L.mul(counter, { c: 1 / 16777216 })), { c: 16777216 }));
  const key = bits(L, L.constLocal(base), wrapped);
  if (!normal) return uniform(L, key, i);
  const i2 = L.mul(i, { c: 2 });
  const u1 = uniform(L, key, i2);
  const u2 = uniform(L, key, L.add(i2, { c: 1 }));
  return L.mul(L.sqrt(L.mul(log(L, u1), { c: -2 })), cos(L, L.mul(u2, { c: 6.283185307179586 })));
};
