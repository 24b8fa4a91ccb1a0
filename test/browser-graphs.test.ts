// Random graphs compiled for WebGL2 and WebGPU in headless Chromium against the float64 interpreter in Node:
// fast-check's random programs (transforms/check/graphArbitrary.ts) and their gradients are traced, compiled and run
// in the page (test/browser/graphs-entry.ts); Node evaluates the same graphs on the interpreter. Tolerance as in
// test/compiled.test.ts: |gpu - f64| <= 1e-4 (1 + |f64|), both sides seeing the inputs rounded to f32.
// Without Chromium the tests are skipped locally and FAIL in CI (CI=true).
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { Page } from 'playwright-core';
import { valueAndGrad } from '../transforms/grad.ts';
import { describeProgram, graphCaseArb, hardGraphCaseArb, programSpec, runProgram } from '../transforms/check/graphArbitrary.ts';
import { evaluate } from '../core/interpret.ts';
import type { NDArray } from '../core/ndarray.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { serve, type Playground } from '../web/server.ts';
import { browserTestOptions, launch, type Browser } from './browser/chromium.ts';
import type { GraphsApi, WireArray } from './browser/graphs-entry.ts';
import { graphToWire, toWire } from './browser/wire.ts';
import { examples, f32, mismatches, show, withinF32 } from './support/trustExamples.ts';
import { primitiveCases } from '../transforms/check/primitiveCases.ts';
import type { Graph } from '../core/ir.ts';

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

test('WebGPU is available in the page: an adapter on SwiftShader (not a silent skip)', options, async (t: TestContext) => {
  const got = await inPage('webgpu');
  t.diagnostic(`adapter: ${JSON.stringify(got.adapter)}`);
  assert.equal(got.available, true, 'prepareWebGPU() found an adapter (the WebGPU flags are in test/browser/chromium.ts)');
  assert.ok(got.adapter?.software, `SwiftShader's adapter counts as a CPU implementation: ${JSON.stringify(got.adapter)}`);
});

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

for (const backend of ['webgl2', 'gpujs-webgpu'] as const)
  test(`${backend}: the counter-based RNG gives the interpreter's uniforms bit for bit`, options, async () => {
    const n = 4096;
    const got = await inPage('uniforms', n, 1234, 5, 77, backend);
    const ref = evaluate(
      trace(() => op.uniform([n], { seed: 1234, stream: 5, counter: 77 }), {}),
      {},
    ).out.data;
    assert.equal(got.backend, backend);
    const differ = ref.findIndex((v, i) => v !== got.data[i]);
    assert.equal(differ, -1, `uniform ${differ}: ${backend} ${got.data[differ]}, interpreter ${ref[differ]}`);
  });

/** Runs a graph built here in the page on webgpu: its outputs, or the error's message. */
const runOnWebGPU = async (graph: Graph, args: Record<string, NDArray>, fusion: 'fused' | 'unfused' = 'fused') => {
  const wire = Object.fromEntries(Object.entries(args).map(([k, v]) => [k, toWire(v)]));
  const got = await inPage('runGraph', graphToWire(graph), wire, 'gpujs-webgpu', fusion);
  if (got.outputs === undefined) return got.error ?? 'the page returned neither outputs nor an error';
  return Object.fromEntries(Object.entries(got.outputs).map(([k, v]) => [k, { shape: v.shape, data: Float64Array.from(v.data) }]));
};

/** The mismatches of a webgpu run against the interpreter (both given the inputs rounded to f32), or the error. */
const onWebGPU = async (graph: Graph, args64: Record<string, NDArray>, fusion: 'fused' | 'unfused' = 'fused') => {
  const args = f32(args64);
  const got = await runOnWebGPU(graph, args, fusion);
  return typeof got === 'string' ? got : mismatches(evaluate(graph, args), got);
};

// The compiled-versus-interpreter cases of test/trust.test.ts and test/compiled.test.ts, on WebGPU: the issue-11
// examples (NaN must be NaN, an infinity the same infinity, else |x - f64| <= 1e-4 (1 + |f64|)), every primitive
// forward and backward fused and unfused, and a long reduction.
test('gpujs-webgpu: the no-silent-wrong-answers examples match the interpreter (NaN, infinities, negative literals)', options, async () => {
  const failures: string[] = [];
  // no departure is pinned: the printer writes division by zero and products with a literal zero for WGSL as for GL
  for (const ex of examples) {
    try {
      const bad = await onWebGPU(ex.graph(), ex.args);
      if (bad) throw new Error(bad);
    } catch (e) {
      failures.push(`${ex.name}: ${(e as Error).message.split('\n')[0].slice(0, 300)}`);
    }
  }
  assert.ok(failures.length === 0, `${failures.length} of ${examples.length} examples fail on webgpu:\n${failures.join('\n')}`);
});

test(
  'gpujs-webgpu: hard programs (NaN and +-Infinity inputs, negative and non-finite constants) and their gradients',
  options,
  async () => {
    // as test/trust.test.ts: programs whose float64 values leave float32's range or come near a tie are discarded
    await fc.assert(
      fc.asyncProperty(hardGraphCaseArb(5), async (c) => {
        const spec = programSpec(c.args);
        const graph = valueAndGrad(
          trace((a) => runProgram(c.program, a as Record<string, Tensor>), spec),
          Object.keys(c.args),
        );
        const args = f32(c.args);
        fc.pre(withinF32(graph, args));
        const bad = await onWebGPU(graph, args);
        if (bad) {
          const inputs = Object.entries(args)
            .map(([k, v]) => `${k} = [${[...v.data].map(show).join(', ')}]`)
            .join('; ');
          throw new Error(`${bad.split('\n')[0].slice(0, 400)}\n${describeProgram(c.program)}\n${inputs}`);
        }
      }),
      { numRuns: 20, seed: 29, maxSkipsPerRun: 10, includeErrorInReport: true },
    );
  },
);

test('gpujs-webgpu: every primitive, forward and gradient, fused and unfused, matches the interpreter', options, async (t: TestContext) => {
  let graphs = 0;
  for (const [name, arb] of Object.entries(primitiveCases)) {
    await fc.assert(
      fc.asyncProperty(arb, async (c) => {
        const spec = Object.fromEntries(Object.entries(c.args).map(([k, v]) => [k, v.shape]));
        const g = valueAndGrad(
          trace((a) => op.sum(op.mul(c.fn(a as Record<string, Tensor>), 0.5)), spec),
          c.wrt ?? Object.keys(c.args),
        );
        for (const fusion of ['fused', 'unfused'] as const) {
          const bad = await onWebGPU(g, c.args as Record<string, NDArray>, fusion);
          graphs++;
          if (bad) throw new Error(`${name} (${fusion}) ${c.describe}: ${bad}`);
        }
      }),
      { numRuns: 3, seed: 11 },
    );
  }
  t.diagnostic(`${graphs} graphs (${Object.keys(primitiveCases).length} primitives)`);
});

test('gpujs-webgpu: a reduction over 5000 elements is not truncated', options, async () => {
  const n = 5000;
  const x = { shape: [n], data: Float64Array.from({ length: n }, (_, i) => ((i % 7) - 3) / 4 + 1) };
  // exact sums of small multiples of 1/4 in f32 and f64 alike; a loop cut at 1000 would lose 80%
  assert.equal(
    await onWebGPU(
      trace(({ x }) => op.sum(x), { x: [n] }),
      { x },
    ),
    undefined,
  );
});

test(
  'webgpu: overlapped training steps give the sequential losses; a non-finite loss keeps its update and the later ones out',
  options,
  async (t: TestContext) => {
    const got = await inPage('overlappedSteps');
    t.diagnostic(JSON.stringify(got.settled));
    const [first, second, third, fourth] = got.settled;
    assert.deepEqual([first, second], got.sequential.slice(0, 2), 'steps 1 and 2 overlapped: the sequential losses, bit for bit');
    assert.match(String(third), /NonFiniteLossError: step 3: the loss is NaN/);
    assert.match(String(fourth), /discarded/);
    assert.ok(got.sameParams, 'the parameters are those after step 2: neither step 3 nor step 4 was applied');
    assert.equal(got.stepAfter, 3, 'the counter is back at step 3');
    assert.equal(got.next, got.sequential[2], 'the next step from there is the sequential step 3');
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
  'webgpu: a training step holds a steady number of GPU buffers and, after a rollback too, frees them all on dispose',
  options,
  async (t: TestContext) => {
    const got = await inPage('webgpuBuffers');
    t.diagnostic(JSON.stringify(got));
    assert.ok(got.warm > got.before, 'the step made buffers (the count sees them)');
    // the loss kernel's staging pool for overlapped reads grows to at most 3 (gpu.js); nothing else may grow per step
    assert.ok(got.steady - got.warm <= 2, `12 overlapped steps: ${got.warm} -> ${got.steady} live buffers`);
    assert.equal(got.disposed, got.before, 'dispose frees every buffer the step made');
  },
);

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
