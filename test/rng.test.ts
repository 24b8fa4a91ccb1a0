// The counter-based RNG has one definition, core/rng.ts: source text that the float64 interpreter runs (compiled with
// new Function) and every gpu.js kernel includes. The wasm backend emits its own copy of the same float operations
// (compiler/wasm/rng.ts), so the two are held together here, bit for bit, over the whole range of counters anything in
// this repository uses: every counter from 0 to 2^20 (training steps and the tests' explicit counters, the largest
// 12,345, stay far below), and the regions around the wrap at 2^24 and its multiples (counters reach the device as
// float32, so above 2^24 only even ones exist). Checked: the raw 24 bits for fixed keys over element indices 0..2^16
// and for hashed (key, index) pairs over the whole 24-bit range; the uniforms of a draw, bit for bit, for every one of
// those counters (one seed and stream; two more over counters 0..2^16 and the wraps); the normals (Box-Muller's log,
// sqrt and cos run in float32 in the module) within 1e-5. Scalar and f32x4 code alike. Run time: about 4 s.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bits24, maxRandomElements, normalAt, randomBase, randomKey, uniformAt } from '../core/rng.ts';
import { encodeModule, FunctionBody } from '../compiler/wasm/encoder.ts';
import { Lanes, type Width } from '../compiler/wasm/lanes.ts';
import { bits, randomDraw } from '../compiler/wasm/rng.ts';

const N = 1 << 16; // values per call
const A = 0; // first operand (key or counter), then the second (element index), then the result
const B = 4 * N;
const C = 8 * N;
const bases = [
  { seed: 9, stream: 3 },
  { seed: 0, stream: 0 },
  { seed: 0xffffffff, stream: 123456 },
];

type Fill = (L: Lanes, a: number, b: number) => number;

/** One module, a function per routine and width: out[k] = f(a[k], b[k]) for k < N. */
const build = (routines: Record<string, Fill>) => {
  const functions = Object.entries(routines).flatMap(([name, fn]) =>
    ([1, 4] as Width[]).map((width) => {
      const f = new FunctionBody([]);
      const k = f.local('i32');
      const L = new Lanes(f, width);
      const a = L.tmp();
      const b = L.tmp();
      const kind = width === 1 ? 'f32' : 'v128';
      f.forRange(k, 0, 4 * N, 4 * width, () => {
        f.get(k).load(kind, A).set(a);
        f.get(k).load(kind, B).set(b);
        const y = fn(L, a, b);
        f.get(k).get(y).store(kind, C);
      });
      return { name: `${name}${width}`, body: f };
    }),
  );
  const pages = Math.ceil((12 * N) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const instance = new WebAssembly.Instance(
    new WebAssembly.Module(encodeModule(functions, { minPages: pages, maxPages: pages, shared: false })),
    {
      env: { memory },
    },
  );
  const heap = new Float32Array(memory.buffer);
  return (name: string, width: Width, a: ArrayLike<number>, b: ArrayLike<number>): Float32Array => {
    heap.fill(0);
    heap.set(a, A / 4);
    heap.set(b, B / 4);
    (instance.exports[`${name}${width}`] as () => void)();
    return heap.slice(C / 4, C / 4 + a.length);
  };
};

const routines: Record<string, Fill> = { bits: (L, key, i) => bits(L, key, i) };
bases.forEach(({ seed, stream }, j) => {
  routines[`uniform${j}`] = (L, counter, i) => randomDraw(L, randomBase(seed, stream), counter, i, false);
  routines[`normal${j}`] = (L, counter, i) => randomDraw(L, randomBase(seed, stream), counter, i, true);
});
const run = build(routines);

/** Runs `name` over all pairs in chunks of N, both widths; returns the first mismatches (at most 5), as text. */
const compareAll = (
  name: string,
  pairs: { a: Float64Array; b: Float64Array },
  want: (a: number, b: number) => number,
  ok: (got: number, want: number) => boolean,
): string[] => {
  const bad: string[] = [];
  for (let from = 0; from < pairs.a.length && bad.length < 5; from += N) {
    const a = pairs.a.subarray(from, from + N);
    const b = pairs.b.subarray(from, from + N);
    const w = a.map((x, k) => want(x, b[k])); // once for both widths: the float64 side is the slow one
    for (const width of [1, 4] as Width[]) {
      const got = run(name, width, a, b);
      for (let k = 0; k < a.length && bad.length < 5; k++)
        if (!ok(got[k], w[k])) bad.push(`${name} x${width} (${a[k]}, ${b[k]}): wasm ${got[k]}, core/rng.ts ${w[k]}`);
    }
  }
  return bad;
};
const same = (g: number, w: number) => Object.is(g, Math.fround(w)) && Math.fround(w) === w; // exact, and exact in f32
const hash = (k: number, salt: number) => (Math.imul(k + salt, 0x9e3779b1) >>> 8) % 16777216; // 24 bits

test('rngBits: the wasm copy gives the 24 bits of core/rng.ts for every index below 2^16 of fixed keys and for hashed pairs', () => {
  const keys = [0, 1, 16777215, ...bases.map(({ seed, stream }) => randomBase(seed, stream))];
  const idx = Float64Array.from({ length: N }, (_, i) => i);
  const bad = keys.flatMap((key) => compareAll('bits', { a: new Float64Array(N).fill(key), b: idx }, bits24, same));
  // anywhere in the 24-bit square, keys and indices near 2^24 included
  const M = 4 * N;
  const pairs = { a: Float64Array.from({ length: M }, (_, k) => hash(k, 1)), b: Float64Array.from({ length: M }, (_, k) => hash(k, 2)) };
  pairs.a[0] = pairs.b[0] = 16777215;
  bad.push(...compareAll('bits', pairs, bits24, same));
  assert.deepEqual(bad, []);
});

/** Every counter 0..2^20, then f32-representable counters around 2^24 (where the key wraps) and its multiples. */
const counters = (() => {
  const cs: number[] = [];
  for (let c = 0; c < 2 ** 20; c++) cs.push(c);
  for (let c = 2 ** 24 - 4096; c < 2 ** 24; c++) cs.push(c);
  for (let c = 2 ** 24; c < 2 ** 24 + 8192; c += 2) cs.push(c);
  for (const m of [2, 3, 7]) for (let c = m * 2 ** 24 - 256; c < m * 2 ** 24 + 256; c++) if (Math.fround(c) === c) cs.push(c);
  return Float64Array.from(cs);
})();

bases.forEach(({ seed, stream }, j) =>
  test(`uniform draws of (seed ${seed}, stream ${stream}): bit for bit, counters 0..2^${j === 0 ? 20 : 16} and the 2^24 wraps`, () => {
    const base = randomBase(seed, stream);
    // the first base over every counter, the others over the first 2^16 (the float64 side takes ~1 s per 2^20), and wraps
    const cs = j === 0 ? counters : Float64Array.from([...counters.subarray(0, N), ...counters.filter((c) => c >= 2 ** 24 - 4096)]);
    // each counter with an element index that moves through 0..2^16 and the largest index a draw may have
    const idx = cs.map((c, k) => (k % 97 === 0 ? maxRandomElements.uniform - 1 - (k % 5) : (c * 7919) % N));
    const bad = compareAll(`uniform${j}`, { a: cs, b: idx }, (c, i) => uniformAt(randomKey(seed, stream, c), i), same);
    // the key really depends on the counter here (a wasm copy that ignored it would differ from the first counters on)
    assert.notEqual(randomKey(seed, stream, 1), randomKey(seed, stream, 2));
    assert.equal(randomKey(seed, stream, 2 ** 24 + 6), randomKey(seed, stream, 6), 'the counter wraps at 2^24');
    assert.ok(base >= 0);
    assert.deepEqual(bad, []);
  }),
);

test('normal draws: within 1e-5 of core/rng.ts (float32 log, sqrt and cos) for counters 0..2^16, every base', () => {
  const cs = counters.subarray(0, N);
  const idx = cs.map((c) => (c * 31) % 4096);
  const bad = bases.flatMap(({ seed, stream }, j) =>
    compareAll(
      `normal${j}`,
      { a: cs, b: idx },
      (c, i) => normalAt(randomKey(seed, stream, c), i),
      // |n| < 5.8; log within 4 ulp, cos within 4e-7 absolute: the product is within a few 1e-6
      (g, w) => Math.abs(g - w) <= 1e-5,
    ),
  );
  assert.deepEqual(bad, []);
});
