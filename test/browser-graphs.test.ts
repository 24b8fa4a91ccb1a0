// Random graphs compiled for WebGL2 and both WebGPU backends in headless Chromium against the float64 interpreter in
// Node: fast-check's random programs (transforms/check/graphArbitrary.ts) and their gradients are traced, compiled and
// run in the page (test/browser/graphs-entry.ts); Node evaluates the same graphs on the interpreter. Tolerance as in
// test/compiled.test.ts: |gpu - f64| <= 1e-4 (1 + |f64|), both sides seeing the inputs rounded to f32; NaN must be NaN.
// WebGPU is SwiftShader's adapter here (a CPU implementation) for gpu.js's WebGPU path (gpujs-webgpu) and for the
// compiler's own WGSL (webgpu, compiler/webgpu/), which gets the suite test/webgpu.test.ts runs in Node: the trust
// examples, hard programs, random graphs, every primitive fused and unfused (test/support/graphProperties.ts), the RNG's
// bits, rollback of resident state, GPU buffers back to none after dispose and a 200-step training run.
// Without Chromium the tests are skipped locally and FAIL in CI (CI=true); so does a page without a WebGPU adapter.
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { Page } from 'playwright-core';
import { valueAndGrad } from '../transforms/grad.ts';
import { describeProgram, graphCaseArb, programSpec, runProgram } from '../transforms/check/graphArbitrary.ts';
import { evaluate } from '../core/interpret.ts';
import type { NDArray } from '../core/ndarray.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { serve, type Playground } from '../web/server.ts';
import { browserTestOptions, launch, type Browser } from './browser/chromium.ts';
import type { GraphsApi, PageBackend, StepBackend, WgslVariant, WireArray } from './browser/graphs-entry.ts';
import { fromWire, graphToWire, toWire } from './browser/wire.ts';
import {
  assertHardPrograms,
  assertPrimitives,
  assertRandomGraphs,
  checkRun,
  exampleFailures,
  primitiveCount,
  type GraphRunner,
} from './support/graphProperties.ts';

const options = browserTestOptions();
const tol = (ref: number) => 1e-4 * (1 + Math.abs(ref));
let server: Playground | undefined;
let browser: Browser | undefined;
let page: Page;

before(async () => {
  if (options.skip) return;
  server = await serve({
    port: 0,
    entries: { '/graphs.js': 'test/browser/graphs-entry.ts' },
    pages: { '/': '<!doctype html><meta charset="utf-8"><title>fusediff graphs</title><script type="module" src="/graphs.js"></script>' },
  });
  browser = await launch();
  page = await browser.context.newPage();
  await page.goto(server.url);
  await page.waitForFunction(() => (window as unknown as { fusediffGraphs?: unknown }).fusediffGraphs !== undefined, null, {
    timeout: 30_000,
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const inPage = <K extends keyof GraphsApi>(name: K, ...args: Parameters<Extract<GraphsApi[K], (...a: never[]) => unknown>>) =>
  page.evaluate(
    ([n, a]) => {
      const api = (window as unknown as { fusediffGraphs: Record<string, unknown> }).fusediffGraphs;
      const f = api[n as string];
      return (typeof f === 'function' ? (f as (...x: unknown[]) => unknown)(...(a as unknown[])) : f) as never;
    },
    [name, args] as const,
  ) as Promise<ReturnType<Extract<GraphsApi[K], (...a: never[]) => unknown>>>;

test('WebGL2 is available in the page (not a silent fallback)', options, async () => {
  assert.equal(await page.evaluate(() => (window as unknown as { fusediffGraphs: GraphsApi }).fusediffGraphs.webgl2), true);
});

test(
  'WebGPU is available in the page: an adapter on SwiftShader for both backends (not a silent skip)',
  options,
  async (t: TestContext) => {
    const got = await inPage('webgpu');
    t.diagnostic(`adapter: ${JSON.stringify(got.adapter)}; the WGSL backend's device: ${JSON.stringify(got.wgsl)}`);
    assert.equal(got.available, true, 'prepareWebGPU() found an adapter (the WebGPU flags are in test/browser/chromium.ts)');
    assert.ok(got.adapter?.software, `SwiftShader's adapter counts as a CPU implementation: ${JSON.stringify(got.adapter)}`);
    assert.ok(got.wgsl.available, `the compiler's own WGSL backend has a device: ${JSON.stringify(got.wgsl)}`);
    assert.ok('software' in got.wgsl && got.wgsl.software, `its adapter is SwiftShader's: ${JSON.stringify(got.wgsl)}`);
  },
);

for (const backend of ['webgl2', 'gpujs-webgpu'] as const)
  test(`${backend}: random graphs and their gradients match the float64 interpreter`, options, async (t: TestContext) => {
    let cases = 0,
      kernels = 0,
      worst = 0,
      worstAt = '';
    const t0 = performance.now();
    await fc.assert(
      fc.asyncProperty(graphCaseArb(6), async (c) => {
        const args = Object.fromEntries(
          Object.entries(c.args).map(([k, v]) => [k, { shape: [...v.shape], data: Array.from(v.data, Math.fround) }]),
        ) as Record<string, WireArray>;
        const spec = programSpec(args);
        const graph = valueAndGrad(
          trace((a) => runProgram(c.program, a as Record<string, Tensor>), spec),
          Object.keys(args),
        );
        const ref = evaluate(
          graph,
          Object.fromEntries(
            Object.entries(args).map(([k, v]) => [k, { shape: v.shape, data: Float64Array.from(v.data) } satisfies NDArray]),
          ),
        );
        const got = await inPage('run', c.program, args, backend);
        assert.equal(got.backend, backend);
        // gpu.js names its own modes: gpujs-webgpu is its 'webgpu'
        const mode = backend === 'gpujs-webgpu' ? 'webgpu' : backend;
        assert.ok(got.contexts.length > 0 && got.contexts.every((c) => c === mode), `gpu.js built: ${got.contexts.join(', ')}`);
        cases++;
        kernels += got.kernels;
        for (const [name, r] of Object.entries(ref)) {
          const g = got.outputs[name];
          assert.ok(g, `the page returned no output '${name}'`);
          for (let i = 0; i < r.data.length; i++) {
            const err = Math.abs(g.data[i] - r.data[i]);
            if (err / (1 + Math.abs(r.data[i])) > worst)
              [worst, worstAt] = [err / (1 + Math.abs(r.data[i])), `${name}[${i}] in ${describeProgram(c.program).replaceAll('\n', '; ')}`];
            if (!(err <= tol(r.data[i])))
              throw new Error(`${name}[${i}]: ${backend} ${g.data[i]}, interpreter ${r.data[i]}\n${describeProgram(c.program)}`);
          }
        }
      }),
      { numRuns: 25, seed: 7 },
    );
    const report = await inPage('kernels', backend);
    t.diagnostic(
      `${cases} graphs, ${kernels} kernels in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
        `worst |err|/(1+|ref|) = ${worst.toExponential(2)} (${worstAt}); gpu.js: ${JSON.stringify(report)}`,
    );
    // each case's plan is disposed after it ran (its kernels' contexts checked above)
    assert.equal(report.cpuFallbacks, 0, 'no kernel fell back to the CPU');
  });

test('webgpu: random graphs and their gradients match the float64 interpreter', options, async () => {
  await assertRandomGraphs(pageRunner('webgpu'), { numRuns: 25, seed: 7 });
});

for (const backend of ['webgl2', 'gpujs-webgpu', 'webgpu'] as const)
  test(`${backend}: the counter-based RNG gives the interpreter's uniforms bit for bit`, options, async () => {
    // the compiler's own WGSL over 2^16 elements and counters to 3 x 2^24 (f32 on the device: 2^24 and 3 x 2^24 wrap to 0)
    const [n, counters] = backend === 'webgpu' ? [1 << 16, [0, 77, 16777215, 16777216, 3 * 16777216, 1 << 20]] : [4096, [77]];
    for (const counter of counters) {
      const got = await inPage('uniforms', n, 1234, 5, counter, backend);
      const ref = evaluate(
        trace(() => op.uniform([n], { seed: 1234, stream: 5, counter }), {}),
        {},
      ).out.data;
      assert.equal(got.backend, backend);
      const data = new Float32Array(Uint8Array.from(Buffer.from(got.base64, 'base64')).buffer);
      assert.equal(data.length, n);
      const differ = ref.findIndex((v, i) => v !== data[i]);
      assert.equal(differ, -1, `counter ${counter}, uniform ${differ}: ${backend} ${data[differ]}, interpreter ${ref[differ]}`);
    }
  });

/**
 * Runs graphs built here in the page on `backend` (webgpu: with the tuner forced onto `variant`'s path): the outputs,
 * or the page's error. `seen.kernels` counts the kernels that took the variant's path.
 */
const pageRunner =
  (backend: PageBackend, variant: WgslVariant = 'default', seen = { kernels: 0 }): GraphRunner =>
  async (graph, args, fusion) => {
    const wire = Object.fromEntries(Object.entries(args).map(([k, v]) => [k, toWire(v)]));
    const got = await inPage('runGraph', graphToWire(graph), wire, backend, fusion, variant);
    if (got.outputs === undefined) return got.error ?? 'the page returned neither outputs nor an error';
    if (got.backend !== backend) return `ran on ${got.backend}, not ${backend}`;
    seen.kernels += got.variantKernels;
    return Object.fromEntries(Object.entries(got.outputs).map(([k, v]) => [k, fromWire(v)]));
  };

// The compiled-versus-interpreter cases of test/trust.test.ts, test/compiled.test.ts and test/webgpu.test.ts on both
// WebGPU backends (test/support/graphProperties.ts): the issue-11 examples (NaN must be NaN, an infinity the same
// infinity, else |x - f64| <= 1e-4 (1 + |f64|)), hard programs, every primitive forward and backward fused and
// unfused, and a long reduction. No departure is pinned: division by zero and products with a literal zero are
// written for WGSL as for GL.
for (const backend of ['gpujs-webgpu', 'webgpu'] as const) {
  test(`${backend}: the no-silent-wrong-answers examples match the interpreter (NaN, infinities, negative literals)`, options, async () => {
    const failures = await exampleFailures(pageRunner(backend));
    assert.deepEqual(failures, [], `${failures.length} examples fail on ${backend}`);
  });

  test(
    `${backend}: hard programs (NaN and +-Infinity inputs, negative and non-finite constants) and their gradients`,
    options,
    async () => {
      await assertHardPrograms(pageRunner(backend), { numRuns: 20, seed: 29 });
    },
  );

  test(`${backend}: every primitive, forward and gradient, fused and unfused, matches the interpreter`, options, async (t) => {
    const graphs = await assertPrimitives(pageRunner(backend), { numRuns: 3, seed: 11 });
    t.diagnostic(`${graphs} graphs (${primitiveCount} primitives)`);
  });

  test(`${backend}: a reduction over 5000 elements is not truncated`, options, async () => {
    const n = 5000;
    const x = { shape: [n], data: Float64Array.from({ length: n }, (_, i) => ((i % 7) - 3) / 4 + 1) };
    // exact sums of small multiples of 1/4 in f32 and f64 alike; a loop cut at 1000 would lose 80%
    assert.equal(
      await checkRun(
        pageRunner(backend),
        trace(({ x }) => op.sum(x), { x: [n] }),
        { x },
      ),
      undefined,
    );
  });
}

// the tuner's other paths, which SwiftShader's defaults leave to large shapes (compiler/webgpu/tune.ts), on small ones
test('webgpu: the examples and hard programs with every reduction as a workgroup tree (NaN through the tree)', options, async (t) => {
  const seen = { kernels: 0 };
  const tree = pageRunner('webgpu', 'tree', seen);
  const failures = await exampleFailures(tree);
  await assertHardPrograms(tree, { numRuns: 10, seed: 31 });
  t.diagnostic(`${seen.kernels} kernels ran as workgroup trees`);
  assert.deepEqual(failures, []);
  assert.ok(seen.kernels >= 10, `the tree variant ran (${seen.kernels} kernels)`);
});

test('webgpu: matmul and conv2d and their gradients with a block of outputs per invocation (vec4 columns too)', options, async (t) => {
  const seen = { kernels: 0 };
  const blocked = pageRunner('webgpu', 'blocked', seen);
  const arr = (shape: number[], seed: number): NDArray => ({
    shape,
    data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(seed * 7.3 + i * 1.7)),
  });
  const failures: string[] = [];
  const check = async (name: string, f: (a: Record<string, Tensor>) => Tensor, args: Record<string, NDArray>) => {
    const spec = Object.fromEntries(Object.entries(args).map(([k, v]) => [k, v.shape]));
    const g = valueAndGrad(
      trace((a) => op.sum(op.mul(f(a as Record<string, Tensor>), 0.5)), spec),
      Object.keys(args),
    );
    const bad = await checkRun(blocked, g, args);
    if (bad) failures.push(`${name}: ${bad.slice(0, 200)}`);
  };
  // even extents, so that blocks of 2 and 4 fit; 4, 8 and 12 columns take vec4 loads
  for (const [m, n] of [
    [2, 4],
    [6, 8],
    [4, 12],
    [3, 20],
  ])
    await check(`matmul [${m}, 7] x [7, ${n}]`, ({ a, b }) => op.matmul(a, b), { a: arr([m, 7], 1), b: arr([7, n], 2) });
  for (const size of [4, 6])
    await check(`conv2d ${size}x${size}`, ({ x, w }) => op.conv2d(x, w, { padding: 1 }), {
      x: arr([2, 3, size, size], 7),
      w: arr([4, 3, 3, 3], 8),
    });
  t.diagnostic(`${seen.kernels} kernels ran blocked`);
  assert.deepEqual(failures, []);
  assert.ok(seen.kernels >= 6, `the blocked variant ran (${seen.kernels} kernels)`);
});

// ---- training steps on both WebGPU backends: resident state, rollback, buffers, dispose ----------------------------

for (const backend of ['gpujs-webgpu', 'webgpu'] as const satisfies readonly StepBackend[])
  test(
    `${backend}: overlapped training steps give the sequential losses; a non-finite loss rolls back its update and the later ones`,
    options,
    async (t: TestContext) => {
      const got = await inPage('overlappedSteps', backend);
      t.diagnostic(JSON.stringify(got.settled));
      const [first, second, third, fourth] = got.settled;
      assert.deepEqual([first, second], got.sequential.slice(0, 2), 'steps 1 and 2 overlapped: the sequential losses, bit for bit');
      assert.match(String(third), /NonFiniteLossError: step 3: the loss is NaN/);
      assert.match(String(fourth), /discarded/);
      assert.ok(got.sameParams, 'the parameters are those after step 2: neither step 3 nor step 4 was applied');
      assert.ok(got.sameState, "the optimizer's state is that after step 2");
      assert.ok(got.sameEma, 'the EMA is that after step 2');
      assert.equal(got.stepAfter, 3, 'the counter is back at step 3');
      assert.equal(got.next, got.sequential[2], 'the next step from there is the sequential step 3');
    },
  );

test(
  'gpujs-webgpu: a training step holds a steady number of GPU buffers and, after a rollback too, frees them all on dispose',
  options,
  async (t: TestContext) => {
    const got = await inPage('trainingRun', 'gpujs-webgpu', 15);
    t.diagnostic(JSON.stringify({ ...got, losses: undefined }));
    assert.ok(got.warm > got.before, 'the step made buffers (the count sees them)');
    // the loss kernel's staging pool for overlapped reads grows to at most 3 (gpu.js); nothing else may grow per step
    assert.ok(got.steady - got.warm <= 2, `12 overlapped steps: ${got.warm} -> ${got.steady} live buffers`);
    assert.match(String(got.settled[0]), /NonFiniteLossError: step 16: the loss is NaN/);
    assert.equal(got.disposed, got.before, 'dispose frees every buffer the step made');
  },
);

test(
  'webgpu: 200 steps lower the loss; GPU buffers stay steady, a NaN batch rolls back, and dispose frees every buffer',
  options,
  async (t: TestContext) => {
    const steps = 200;
    const got = await inPage('trainingRun', 'webgpu', steps);
    const { losses, ...counts } = got;
    t.diagnostic(`loss ${losses[0]} -> ${losses[steps - 1]}; ${JSON.stringify(counts)}`);
    assert.equal(losses.length, steps);
    assert.ok(losses.every(Number.isFinite), 'every loss is finite');
    assert.ok(losses[steps - 1] < losses[0] / 4, `the loss falls: ${losses[0]} -> ${losses[steps - 1]}`);
    assert.ok(got.warm > got.before, 'the step made buffers (the count sees them)');
    assert.ok(got.steady <= got.warm + 8, `${steps - 3} overlapped steps: ${got.warm} -> ${got.steady} GPU buffers`);
    assert.match(String(got.settled[0]), new RegExp(`NonFiniteLossError: step ${steps + 1}: the loss is NaN`));
    assert.match(String(got.settled[1]), /discarded/);
    assert.equal(got.stepAfter, steps + 1, 'the counter is back at the step of the NaN batch');
    assert.equal(got.ownBuffers, 0, "dispose frees every GPU buffer of the plan and its backend's readback pool");
    assert.equal(got.disposed, got.before, 'no GPU buffer the step made is alive in the page');
    assert.match(got.afterDispose, /disposed/, 'a run after dispose is refused');
  },
);

test('webgpu (SwiftShader): a 256 matmul by gpu.js against hand-written WGSL, plain and tiled (timings printed)', options, async (t) => {
  const got = await inPage('webgpuMatmul', 5);
  t.diagnostic(`gpu.js (kernel IR -> gpu.js -> WGSL; with uploads and readback): ${got.gpujsMs.toFixed(1)} ms`);
  for (const w of got.wgsl) {
    t.diagnostic(`${w.name}: ${w.ms.toFixed(1)} ms, max |difference| from gpu.js's ${w.maxDiff.toExponential(1)}`);
    // 256 products of values in [-0.5, 0.5] summed in f32 in other orders: differences of a few ulp of ~5
    assert.ok(w.maxDiff < 1e-4, `${w.name} computes the same matmul`);
  }
});

test(
  'wasm in the page: Web Workers split the kernels (the page is cross-origin isolated) and the bits match one thread',
  options,
  async (t: TestContext) => {
    const got = await inPage('wasmThreads', [1, 3]);
    assert.equal(got.crossOriginIsolated, true, 'the server sends COOP and COEP');
    const [one, three] = got.runs;
    t.diagnostic(`${three.reason}; kernel calls split over workers: ${three.splitCalls}`);
    assert.match(three.reason, /3 threads/);
    assert.ok(three.splitCalls > 0, 'some kernels ran on the workers');
    assert.equal(one.splitCalls, 0);
    assert.deepEqual(three.losses, one.losses);
    assert.ok(one.losses[4] < one.losses[0], `the loss falls: ${one.losses.join(', ')}`);
    assert.equal(three.params.length, one.params.length);
    assert.ok(
      three.params.every((v, i) => Object.is(v, one.params[i])),
      'parameters after 5 steps: bit for bit',
    );
  },
);

test('webgl2 (SwiftShader): four outputs per thread against one, the same bits (timings printed)', options, async (t: TestContext) => {
  const rows = await inPage('glLanes', 3);
  for (const r of rows) {
    t.diagnostic(`${r.name}: 1/thread ${r.oneMs.toFixed(1)} ms, 4/thread ${r.fourMs.toFixed(1)} ms, ${(r.oneMs / r.fourMs).toFixed(2)}x`);
    assert.deepEqual(r.lanes, [1, 4], `${r.name}: the kernel took 4 lanes only when asked`);
    assert.ok(r.sameBits, `${r.name}: the same bits with 4 lanes`);
  }
});
