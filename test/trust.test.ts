// No silent wrong answers (issue 11): every compiled result equals the float64 interpreter's, or compiling/running
// raises an error that names the kernel and the limit it exceeds. Cases: the examples (negative and
// non-finite literals, NaN through max/relu/tanh/mul, tensors past exact float32 index arithmetic, reductions past
// GL's loop cut, a zero-size tensor) and generators that reach such inputs (transforms/check/: hard programs with
// non-finite inputs and negative/non-finite constants, large size classes, zero-size shapes).
//
// Comparison: both sides see the inputs rounded to float32, as the device does. NaN must be NaN, an infinity must be
// the same infinity, a finite value must be within 1e-4 (1 + |ref|) as in test/compiled.test.ts (the large cases
// hold small integers whose results are exact in float32, so a wrong index or a cut loop is an O(1) error).
// Only the size cases may be refused instead (message /kernel .*(exceeds|limit)/): a backend may be unable to
// index a tensor or run a loop that long, but it can always compute -(-2) or relu(NaN).
//
// Hard programs whose float64 intermediates leave float32's range, or come within rounding of a tie in a comparison,
// max or floor, are discarded (fc.pre): there float32 and float64 legitimately differ.
//
// Runtime (2 cores, today): about 40 s, most of it the [8192,8192] and [8192,4096] cases. The large generated cases
// run on webasm and headlessgl only: gpu.js's cpu backend runs kernels as JavaScript in float64, whose index
// arithmetic is exact far beyond 2^25 and whose loops are not cut (test/loop-limit.test.ts), and it is the slowest
// on large tensors; the large examples still run on every backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compile, isAvailable, isGL, type BackendName } from '../compiler/index.ts';
import { evaluate, evaluateNodes, liveNodes } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { fmt, ShapeError } from '../core/shape.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { valueAndGrad } from '../transforms/grad.ts';
import { zeroSizeShapeArb } from '../transforms/check/arbitraries.ts';
import { describeProgram, hardGraphCaseArb, poolShape, runProgram } from '../transforms/check/graphArbitrary.ts';
import {
  affineCase,
  broadcastAddCase,
  broadcastGradCase,
  largeElementCaseArb,
  longReductionCaseArb,
  matmulCase,
  sumCase,
  transposeCase,
  type SizeCase,
} from '../transforms/check/sizeCases.ts';

/** The backends every case runs on: add the compiler's own 'wasm' backend here when it lands. */
export const trustBackends = ['wasm', 'cpu', 'webasm', 'headlessgl'] as const satisfies readonly BackendName[];
/** The backends whose index arithmetic and loops are the limits the large generated cases probe (see the header). */
const largeCaseBackends: readonly BackendName[] = ['webasm', 'headlessgl'];

const backends = trustBackends.filter((b) => isAvailable(b));
const REFUSAL = /kernel .*(exceeds|limit)/;

test(`backends under test: ${backends.join(', ')} (all of ${trustBackends.join(', ')} in CI)`, () => {
  if (process.env.CI === 'true')
    assert.deepEqual(backends, [...trustBackends], 'every trust backend must run in CI (headlessgl under xvfb-run)');
  assert.ok(backends.includes('cpu') && backends.includes('webasm'));
});

const f32 = (args: Record<string, NDArray>): Record<string, NDArray> =>
  Object.fromEntries(Object.entries(args).map(([k, v]) => [k, { shape: v.shape, data: v.data.map(Math.fround) }]));

const agrees = (got: number, ref: number): boolean =>
  Number.isNaN(ref) ? Number.isNaN(got) : !Number.isFinite(ref) ? got === ref : Math.abs(got - ref) <= 1e-4 * (1 + Math.abs(ref));

const show = (v: number) => (Object.is(v, -0) ? '-0' : String(v));

/** Mismatches between a compiled run and the interpreter: undefined when none, else how many and the first few. */
const mismatches = (ref: Record<string, NDArray>, got: Record<string, NDArray>): string | undefined => {
  const lines: string[] = [];
  let total = 0;
  for (const [name, r] of Object.entries(ref)) {
    const g = got[name];
    if (!g) return `no output '${name}'`;
    for (let i = 0; i < r.data.length; i++)
      if (!agrees(g.data[i], r.data[i])) {
        total++;
        if (lines.length < 4) lines.push(`${name}[${i}]: compiled ${show(g.data[i])}, interpreter ${show(r.data[i])}`);
      }
  }
  return total ? `${total} wrong element${total > 1 ? 's' : ''}: ${lines.join('; ')}${total > lines.length ? '; ...' : ''}` : undefined;
};

type Outcome = { readonly kind: 'match' } | { readonly kind: 'refused'; readonly message: string };

/**
 * Compiles and runs `graph` on `backend` and compares with `ref`. Throws on a mismatch (the silent wrong answer this
 * file exists to catch) and on any error, except a refusal naming the kernel and the limit where `mayRefuse`.
 */
const check = (
  graph: Graph,
  args: Record<string, NDArray>,
  ref: Record<string, NDArray>,
  backend: BackendName,
  mayRefuse: boolean,
): Outcome => {
  let got: Record<string, NDArray>;
  try {
    got = compile(graph, { backend }).run(args);
  } catch (e) {
    const message = (e as Error).message;
    if (mayRefuse && REFUSAL.test(message)) return { kind: 'refused', message };
    throw e;
  }
  const bad = mismatches(ref, got);
  if (bad) throw new Error(`${backend}: ${bad}`);
  return { kind: 'match' };
};

// ---- the small examples: negative and non-finite literals, NaN through every op ----------------------------

interface Example {
  readonly name: string;
  readonly graph: () => Graph;
  readonly args: Record<string, NDArray>;
}

const S = [2, 3] as const;
const xs = (...v: number[]): NDArray => ({ shape: [v.length], data: Float64Array.from(v) });
const grid = (f: (i: number) => number): NDArray => ({ shape: S, data: Float64Array.from({ length: 6 }, (_, i) => f(i)) });
const smooth = grid((i) => Math.sin(i + 1));

const examples: Example[] = [
  {
    name: 'valueAndGrad of -sum(neg(x))',
    graph: () =>
      valueAndGrad(
        trace(({ x }) => op.neg(op.sum(op.neg(x))), { x: S }),
        ['x'],
      ),
    args: { x: smooth },
  },
  {
    name: 'valueAndGrad of sum(neg(x) * -2)',
    graph: () =>
      valueAndGrad(
        trace(({ x }) => op.sum(op.mul(op.neg(x), -2)), { x: S }),
        ['x'],
      ),
    args: { x: smooth },
  },
  { name: 'neg(full(s, -2))', graph: () => trace(() => op.neg(op.full(S, -2)), {}), args: {} },
  { name: 'sigmoid(full(s, -2))', graph: () => trace(() => op.sigmoid(op.full(S, -2)), {}), args: {} },
  {
    name: 'x - (-1.3) and -(x * -1.3)',
    graph: () => trace(({ x }) => ({ a: op.sub(x, -1.3), b: op.neg(op.mul(x, -1.3)) }), { x: S }),
    args: { x: smooth },
  },
  {
    name: 'eq(x, Infinity) at x = Inf',
    graph: () => trace(({ x }) => op.eq(x, Infinity), { x: [4] }),
    args: { x: xs(Infinity, 1, -Infinity, NaN) },
  },
  {
    name: 'eq(x, -Infinity) at x = -Inf',
    graph: () => trace(({ x }) => op.eq(x, -Infinity), { x: [4] }),
    args: { x: xs(-Infinity, 1, Infinity, NaN) },
  },
  {
    name: '(x + Inf) - Inf is NaN',
    graph: () => trace(({ x }) => op.sub(op.add(x, Infinity), Infinity), { x: [3] }),
    args: { x: xs(1, -2, 0) },
  },
  {
    name: 'x / 0 and x / -0 are signed infinities',
    graph: () => trace(({ x }) => ({ pos: op.div(x, 0), neg: op.div(x, -0) }), { x: [2] }),
    args: { x: xs(1, -2) },
  },
  { name: 'max(NaN, 0) is NaN', graph: () => trace(({ x }) => op.maximum(x, 0), { x: [3] }), args: { x: xs(NaN, 1, -1) } },
  { name: 'min(NaN, 0) is NaN', graph: () => trace(({ x }) => op.minimum(x, 0), { x: [3] }), args: { x: xs(NaN, 1, -1) } },
  { name: 'relu(NaN) is NaN', graph: () => trace(({ x }) => op.relu(x), { x: [3] }), args: { x: xs(NaN, 1, -1) } },
  { name: 'tanh(NaN) is NaN', graph: () => trace(({ x }) => op.tanh(x), { x: [3] }), args: { x: xs(NaN, 1, -1) } },
  {
    name: 'sigmoid(NaN) is NaN, sigmoid(+-Inf) is 1 and 0',
    graph: () => trace(({ x }) => op.sigmoid(x), { x: [3] }),
    args: { x: xs(NaN, Infinity, -Infinity) },
  },
  { name: 'NaN * 0 is NaN', graph: () => trace(({ x }) => op.mul(x, 0), { x: [2] }), args: { x: xs(NaN, 1) } },
  { name: 'where(NaN, a, b) is a', graph: () => trace(({ x }) => op.where(x, 1, 2), { x: [3] }), args: { x: xs(NaN, 0, 1) } },
  {
    name: 'max of [-Inf, -Inf] is -Inf (the reduction starts below every finite value)',
    graph: () => trace(({ x }) => op.max(x), { x: [2] }),
    args: { x: xs(-Infinity, -Infinity) },
  },
  {
    name: 'max of a vector holding a NaN is NaN',
    graph: () => trace(({ x }) => op.max(x), { x: [4] }),
    args: { x: xs(1, NaN, 3, -Infinity) },
  },
  {
    name: 'a NaN input makes the loss and its gradient NaN through relu, max and tanh',
    graph: () =>
      valueAndGrad(
        trace(({ x }) => op.sum(op.add(op.add(op.relu(x), op.maximum(x, 0)), op.tanh(x))), { x: S }),
        ['x'],
      ),
    args: { x: grid((i) => (i === 4 ? NaN : i - 2.5)) },
  },
];

/**
 * GL's two measured departures from IEEE that a code generator cannot write around (docs/numerics.md): Mesa's
 * llvmpipe returns NaN for x / 0 at run time, and GLSL compilers fold x * 0.0 to 0 (so NaN * 0 is 0). On GL those two
 * examples must give exactly what was measured, so a change in the driver or in codegen shows here.
 */
const glDepartures: Record<string, (graph: Graph, args: Record<string, NDArray>, got: Record<string, NDArray>) => void> = {
  'x / 0 and x / -0 are signed infinities': (_g, _a, got) =>
    assert.ok(
      [...got.pos.data, ...got.neg.data].every((v) => !Number.isFinite(v)),
      'x / 0 stays non-finite on GL (NaN on llvmpipe)',
    ),
  'NaN * 0 is NaN': (_g, _a, got) =>
    assert.deepEqual([...got.out.data], [0, 0], 'GLSL folds x * 0.0 to 0 (measured); if this changes, update docs/numerics.md'),
};

for (const backend of backends)
  test(`${backend}: the issue's small examples match the interpreter`, () => {
    const failures: string[] = [];
    for (const ex of examples) {
      try {
        const graph = ex.graph();
        const args = f32(ex.args);
        const departure = isGL(backend) ? glDepartures[ex.name] : undefined;
        if (departure) {
          const exe = compile(graph, { backend });
          departure(graph, args, exe.run(args));
          exe.dispose();
        } else check(graph, args, evaluate(graph, args), backend, false);
      } catch (e) {
        failures.push(`${ex.name}: ${(e as Error).message.split('\n')[0].slice(0, 300)}`);
      }
    }
    assert.ok(failures.length === 0, `${failures.length} of ${examples.length} examples fail on ${backend}:\n${failures.join('\n')}`);
  });

// ---- zero-size tensors: refused at trace time, before any backend sees them --------------------------------------

test('a [0,3] tensor is refused at trace time, naming the input and the shape', () => {
  assert.throws(
    () => trace(({ x }) => op.add(x, 1), { x: [0, 3] }),
    (e: Error) => e instanceof ShapeError && /^input: input 'x' has shape \[0,3\]/.test(e.message),
  );
});

test('every shape with a zero dimension is refused at trace time, as an input and as a full()', () => {
  fc.assert(
    fc.property(zeroSizeShapeArb, (shape) => {
      const refused = (f: () => unknown) =>
        assert.throws(f, (e: Error) => e instanceof ShapeError && e.message.includes(fmt(shape)) && /zero-size/.test(e.message));
      refused(() => trace(({ x }) => op.exp(x), { x: shape }));
      refused(() => trace(() => op.full(shape, 1), {}));
    }),
    { numRuns: 50, seed: 3 },
  );
});

// ---- hard programs: non-finite inputs, negative and non-finite constants -----------------------------------------

/**
 * The interpreter's value of every live node of `graph`, or undefined where one leaves float32's range (a finite value
 * above 1e30 or a non-zero one below 1e-30 in magnitude): there float32 overflows or flushes where float64 does not,
 * and the two legitimately differ. Such programs are discarded (fc.pre), not compared.
 */
const near = (a: number, b: number) =>
  a !== b && Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) <= 1e-5 * (1 + Math.abs(a) + Math.abs(b));

const withinF32 = (graph: Graph, args: Record<string, NDArray>): boolean => {
  const values = evaluateNodes(
    graph,
    args,
    liveNodes(
      graph,
      graph.outputs.map((o) => o.id),
    ),
  );
  for (const v of values.values())
    for (const e of v.data) if (Number.isFinite(e) && e !== 0 && (Math.abs(e) > 1e30 || Math.abs(e) < 1e-30)) return false;
  // near-ties: float32 rounding can make two values that differ in float64 equal (or swap them), which changes a
  // comparison, a max (and where its gradient goes) or a floor; such programs are discarded too
  for (const n of graph.nodes) {
    if (!values.has(n.id)) continue;
    const ins = n.inputs.map((i) => values.get(i)!.data);
    if (['max', 'min', 'lt', 'le', 'gt', 'ge', 'eq', 'ne'].includes(n.op) && ins[0].some((a, i) => near(a, ins[1][i]))) return false;
    if (n.op === 'floor' && ins[0].some((a) => near(a, Math.round(a)))) return false;
    if (n.op === 'reduceMax') {
      const out = values.get(n.id)!;
      const x = values.get(n.inputs[0])!;
      // a near-tie with the maximum of its group: compare every element with every group maximum (small graphs only)
      if (x.data.some((e) => out.data.some((m) => near(e, m)))) return false;
    }
  }
  return true;
};

for (const backend of backends)
  test(
    `${backend}: hard programs (NaN and +-Infinity inputs, ` +
      `negative and non-finite constants) and their gradients match the interpreter`,
    () => {
      fc.assert(
        fc.property(hardGraphCaseArb(5), (c) => {
          const spec = Object.fromEntries(Object.keys(c.args).map((k) => [k, poolShape]));
          const graph = valueAndGrad(
            trace((a) => runProgram(c.program, a as Record<string, Tensor>), spec),
            Object.keys(c.args),
          );
          const args = f32(c.args);
          fc.pre(withinF32(graph, args));
          try {
            check(graph, args, evaluate(graph, args), backend, false);
          } catch (e) {
            const inputs = Object.entries(args)
              .map(([k, v]) => `${k} = [${[...v.data].map(show).join(', ')}]`)
              .join('; ');
            throw new Error(`${(e as Error).message.split('\n')[0].slice(0, 400)}\n${describeProgram(c.program)}\n${inputs}`);
          }
        }),
        { numRuns: 20, seed: 29, maxSkipsPerRun: 10, includeErrorInReport: true },
      );
    },
  );

// ---- the size class: past exact float32 indices and GL's loop cut -----------------------------------------------

/**
 * Runs a size case on the given backends: one interpreter evaluation, shared, then one subtest per backend. A backend
 * may refuse with an error naming the kernel and the limit; it may not return a wrong element.
 */
const sizeTest = (c: SizeCase, on: readonly BackendName[]) =>
  test(
    `${c.name} (${c.size.toLocaleString('en-US')}): ` +
      `each backend matches the interpreter or refuses, ` +
      `naming the kernel and the limit`,
    async (t) => {
      let built: { graph: Graph; args: Record<string, NDArray>; ref: Record<string, NDArray> } | undefined = (() => {
        const { graph, args } = c.build();
        return { graph, args, ref: evaluate(graph, args) };
      })();
      for (const backend of on)
        await t.test(backend, (st) => {
          const outcome = check(built!.graph, built!.args, built!.ref, backend, true);
          if (outcome.kind === 'refused') st.diagnostic(`refused: ${outcome.message}`);
        });
      built = undefined; // the next case allocates its own hundreds of MB
    },
  );

// the large examples, on every backend
sizeTest(transposeCase([4096, 4096]), backends);
sizeTest(broadcastAddCase([3000, 3000]), backends);
sizeTest(affineCase([8192, 8192]), backends);
sizeTest(sumCase(100_000, true), backends);
sizeTest(matmulCase(70_000), backends);
sizeTest(broadcastGradCase([300, 500]), backends);

// generated ones: a fixed sample of the size-class arbitraries, two past an index limit and three past the loop cut
// (a sample, not fc.assert: a large case does not shrink to anything smaller that still crosses its limit)
const sampled = [...fc.sample(largeElementCaseArb, { numRuns: 2, seed: 17 }), ...fc.sample(longReductionCaseArb, { numRuns: 3, seed: 18 })];
for (const c of sampled)
  sizeTest(
    c,
    backends.filter((b) => largeCaseBackends.includes(b)),
  );
