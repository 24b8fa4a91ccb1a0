// The wasm backend's transcendentals against float64 Math, scalar and f32x4, on random inputs (fast-check, with
// shrinking) and on the special values. Bounds (stated in compiler/wasm/math.ts): exp, log, tanh, sigmoid within
// 4 ulp of the correctly rounded f32 result; sin, cos within 4e-7 absolute for |x| <= 1e4 (near their zeros an ulp
// bound is meaningless: the result is tiny and the reduction's absolute error dominates).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeModule, FunctionBody } from '../compiler/wasm/encoder.ts';
import { Lanes, type Width } from '../compiler/wasm/lanes.ts';
import * as M from '../compiler/wasm/math.ts';

type Routine = (L: Lanes, x: number) => number;
const N = 256; // elements per call

/** A module with one function per (routine, width): out[i] = f(in[i]) for i < N, in at byte 0, out at byte 4N. */
const build = (routines: Record<string, Routine>) => {
  const functions = Object.entries(routines).flatMap(([name, fn]) =>
    ([1, 4] as Width[]).map((width) => {
      const f = new FunctionBody([]);
      const i = f.local('i32');
      const L = new Lanes(f, width);
      const x = L.tmp();
      const kind = width === 1 ? 'f32' : 'v128';
      f.forRange(i, 0, N * 4, width * 4, () => {
        f.get(i).load(kind).set(x);
        const y = fn(L, x);
        f.get(i)
          .get(y)
          .store(kind, N * 4);
      });
      return { name: `${name}${width}`, body: f };
    }),
  );
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(encodeModule(functions, { minPages: 1, maxPages: 1, shared: false })), {
    env: { memory },
  });
  const heap = new Float32Array(memory.buffer);
  return (name: string, width: Width, xs: readonly number[]): Float32Array => {
    heap.fill(0, 0, 2 * N);
    heap.set(xs, 0);
    (instance.exports[`${name}${width}`] as () => void)();
    return heap.slice(N, N + xs.length);
  };
};

const ulps = (a: number, b: number): number => {
  const bits = new Int32Array(new Float32Array([a, b]).buffer);
  const ord = (v: number) => (v < 0 ? -(v & 0x7fffffff) : v);
  return Math.abs(ord(bits[0]) - ord(bits[1]));
};

const sigmoid64 = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const cases: Record<string, { fn: Routine; ref: (x: number) => number; lo: number; hi: number; bound: { ulp: number } | { abs: number } }> =
  {
    exp: { fn: M.exp, ref: Math.exp, lo: -103, hi: 88.7, bound: { ulp: 4 } },
    log: { fn: M.log, ref: Math.log, lo: 1e-38, hi: 3e38, bound: { ulp: 4 } },
    tanh: { fn: M.tanh, ref: Math.tanh, lo: -20, hi: 20, bound: { ulp: 4 } },
    sigmoid: { fn: M.sigmoid, ref: sigmoid64, lo: -80, hi: 80, bound: { ulp: 4 } },
    sin: { fn: M.sin, ref: Math.sin, lo: -1e4, hi: 1e4, bound: { abs: 4e-7 } },
    cos: { fn: M.cos, ref: Math.cos, lo: -1e4, hi: 1e4, bound: { abs: 4e-7 } },
  };
const run = build(Object.fromEntries(Object.entries(cases).map(([k, c]) => [k, c.fn])));

const check = (name: string, width: Width, xs: readonly number[]) => {
  const c = cases[name];
  const got = run(name, width, xs);
  xs.forEach((x, i) => {
    const want = Math.fround(c.ref(Math.fround(x)));
    if (Number.isNaN(want) || !Number.isFinite(want))
      return assert.ok(Object.is(got[i], want), `${name}(${x}) x${width}: ${got[i]}, want ${want}`);
    if ('ulp' in c.bound)
      assert.ok(ulps(got[i], want) <= c.bound.ulp, `${name}(${x}) x${width}: ${got[i]} is ${ulps(got[i], want)} ulp from ${want}`);
    else assert.ok(Math.abs(got[i] - c.ref(Math.fround(x))) <= c.bound.abs, `${name}(${x}) x${width}: ${got[i]} vs ${want}`);
  });
};

for (const name of Object.keys(cases)) {
  test(`wasm ${name}: scalar and f32x4 within the stated bound on random inputs`, () => {
    const { lo, hi } = cases[name];
    const arb = name === 'log' ? fc.double({ min: -87, max: 88, noNaN: true }).map(Math.exp) : fc.double({ min: lo, max: hi, noNaN: true });
    for (const width of [1, 4] as Width[])
      fc.assert(
        fc.property(fc.array(arb, { minLength: 1, maxLength: N }), (xs) => check(name, width, xs)),
        { numRuns: 60 },
      );
  });
}

/**
 * Every special value is asserted for every routine, beyond the random inputs' ranges too: NaN gives NaN; an infinite
 * or zero result is exactly that value (the sign of a zero included); any other result of exp, log, tanh and sigmoid is
 * within their 4 ulp at every input; sin and cos are within 4e-7 for |x| <= 1e4 and, beyond, the stated weaker promise
 * of compiler/wasm/math.ts: finite and in [-1, 1]. sin and tanh are odd and cos even, exactly, at every one of them.
 */
const specials = [
  ...[NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-40, 1.1754943508222875e-38, -1.1754943508222875e-38, 1, -1, 0.625, -0.625],
  ...[20, -20, 44.5, -44.5, 80, -80, 88.72, -88.72, 88.7228, 89, -89, -87.5, -103, -104, 1e4, -1e4, 3e4, 16777216, -16777216],
  ...[1e30, -1e30, 3.4028234663852886e38, -3.4028234663852886e38],
];
const odd = new Set(['sin', 'tanh']);

for (const name of Object.keys(cases))
  test(`wasm ${name}: IEEE special values and inputs beyond the random range, every one asserted`, () => {
    const c = cases[name];
    for (const width of [1, 4] as Width[]) {
      const got = run(name, width, specials);
      specials.forEach((x, i) => {
        const g = got[i];
        const exact = c.ref(Math.fround(x));
        const want = Math.fround(exact);
        const what = `${name}(${x}) x${width} = ${g}, want ${want}`;
        if (Number.isNaN(want)) assert.ok(Number.isNaN(g), what);
        else if (!Number.isFinite(want) || want === 0) assert.ok(Object.is(g, want), what);
        else if ('ulp' in c.bound) assert.ok(ulps(g, want) <= c.bound.ulp, `${what} (${ulps(g, want)} ulp)`);
        else if (Math.abs(x) <= c.hi) assert.ok(Math.abs(g - exact) <= c.bound.abs, what);
        else assert.ok(Number.isFinite(g) && Math.abs(g) <= 1, `${what}: beyond |x| = ${c.hi} only finite and in [-1, 1] is promised`);
        const j = specials.findIndex((y) => Object.is(y, -x)); // -0 and 0 too, which a Map would merge
        const mirror = got[j];
        if (j >= 0 && !Number.isNaN(g) && (odd.has(name) || name === 'cos'))
          assert.ok(Object.is(mirror, odd.has(name) ? -g : g), `${name}(${-x}) x${width} = ${mirror}, ${name}(${x}) = ${g}`);
      });
    }
  });

test('wasm pow: signs of negative bases, zero exponents and the exp-log error', () => {
  const f = new FunctionBody(['f32', 'f32'], ['f32']);
  const L = new Lanes(f, 1);
  f.get(M.pow(L, 0, 1));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const pow = new WebAssembly.Instance(
    new WebAssembly.Module(encodeModule([{ name: 'pow', body: f }], { minPages: 1, maxPages: 1, shared: false })),
    { env: { memory } },
  ).exports.pow as (a: number, b: number) => number;
  for (const [a, b] of [
    [-2, 3],
    [-2, 2],
    [-2, 0.5],
    [0, 2],
    [0, -1],
    [0, 0],
    [NaN, 0],
    [2, NaN],
    [1.5, -2.5],
    [10, 7],
    [0.3, 1.7],
    // infinities and overflow, as Math.pow gives them (pow(1, Infinity) is NaN in JavaScript, and so in the interpreter)
    [Infinity, 2],
    [Infinity, -1],
    [-Infinity, 3],
    [-Infinity, 2],
    [2, Infinity],
    [0.5, Infinity],
    [2, -Infinity],
    [1, Infinity],
    [-8, 1 / 3],
    [1e30, 2],
    [1e-30, 2],
    [-1e30, 3],
  ]) {
    const want = Math.fround(Math.pow(a, b));
    const got = pow(a, b);
    if (!Number.isFinite(want)) assert.ok(Object.is(got, want), `pow(${a}, ${b}) = ${got}, want ${want}`);
    // exp(b log a) amplifies log's error by |b log a|: a few ulp for these magnitudes
    else assert.ok(ulps(got, want) <= 16, `pow(${a}, ${b}) = ${got}, want ${want} (${ulps(got, want)} ulp)`);
  }
});
