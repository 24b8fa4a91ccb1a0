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
import { compile, isAvailable, type BackendName } from '../compiler/index.ts';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { fmt, ShapeError } from '../core/shape.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { zeroSizeShapeArb } from '../transforms/check/arbitraries.ts';
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
import { mismatches } from './support/trustExamples.ts';
import { assertHardPrograms, exampleFailures, type GraphRunner } from './support/graphProperties.ts';
import { ciWithout } from './support/backends.ts';

/** The backends every case runs on: add the compiler's own 'wasm' backend here when it lands. */
export const trustBackends = ['wasm', 'cpu', 'webasm', 'headlessgl'] as const satisfies readonly BackendName[];
/** The backends whose index arithmetic and loops are the limits the large generated cases probe (see the header). */
const largeCaseBackends: readonly BackendName[] = ['webasm', 'headlessgl'];

const backends = trustBackends.filter((b) => isAvailable(b));
const REFUSAL = /kernel .*(exceeds|limit)/;

test(`backends under test: ${backends.join(', ')} (all of ${trustBackends.join(', ')} in CI)`, () => {
  if (process.env.CI === 'true')
    assert.deepEqual(
      backends,
      trustBackends.filter((b) => !ciWithout().includes(b)),
      'every trust backend must run in CI (headlessgl under xvfb-run), but those FUSEDIFF_CI_WITHOUT names',
    );
  assert.ok(backends.includes('cpu') && backends.includes('webasm'));
});

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

// the small examples: test/support/trustExamples.ts; the comparison and the properties over them:
// test/support/graphProperties.ts (test/webgpu.test.ts and the browser tests run them too)

/** Compiles and runs a graph on `backend`: here every error is a failure (only the size cases below may refuse). */
const runOn =
  (backend: BackendName): GraphRunner =>
  (graph, args) =>
    compile(graph, { backend }).run(args);

for (const backend of backends)
  test(`${backend}: the issue's small examples match the interpreter`, async () => {
    // GL included: no departure is pinned to one driver's answer (x / 0 and NaN * 0 are written by the printer)
    const failures = await exampleFailures(runOn(backend));
    assert.deepEqual(failures, [], `${failures.length} examples fail on ${backend}`);
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

// withinF32 (which hard programs are compared): test/support/trustExamples.ts

for (const backend of backends)
  test(
    `${backend}: hard programs (NaN and +-Infinity inputs, ` +
      `negative and non-finite constants) and their gradients match the interpreter`,
    async () => {
      await assertHardPrograms(runOn(backend), { numRuns: 20, seed: 29 });
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
