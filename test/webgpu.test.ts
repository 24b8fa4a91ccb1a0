// The compiler's own WGSL backend (compiler/webgpu/) in Node, through the webgpu package (Dawn). In CI the adapter is
// SwiftShader (Debian's chromium ships it; scripts/test.sh points the Vulkan loader at it), a CPU implementation: these
// tests judge the generated code and the plan, not a GPU's speed. Every result is compared with the float64
// interpreter, both sides given the inputs rounded to f32: NaN must be NaN, an infinity the same infinity, a finite
// value within 1e-4 (1 + |ref|) as in test/compiled.test.ts. A missing adapter fails under CI=true, never a skip.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test, type TestContext } from 'node:test';
import { compile, isAvailable, prepareWebGPU, probeBackend, shutdownBackends, WgslBackend } from '../compiler/index.ts';
import { gpuContext } from '../compiler/webgpu/gpu.ts';
import { chooseBlock } from '../compiler/webgpu/tune.ts';
import { printWgsl } from '../compiler/webgpu/wgsl.ts';
import { fuse } from '../compiler/passes/fuse.ts';
import { lowerKernel } from '../compiler/kernel/lower.ts';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import * as op from '../dsl/ops.ts';
import { adam } from '../dsl/optim.ts';
import { flattenParams, initNormal, seedFor, type Params, type ParamTensors } from '../dsl/params.ts';
import * as nn from '../dsl/nn.ts';
import { trace } from '../dsl/trace.ts';
import { avgPool2d, mse } from '../dsl/composites.ts';
import { compileStep } from '../train/compileStep.ts';
import { f32, mismatches } from './support/trustExamples.ts';
import {
  assertHardPrograms,
  assertPrimitives,
  assertRandomGraphs,
  checkRun,
  exampleFailures,
  primitiveCount,
  type GraphRunner,
} from './support/graphProperties.ts';

// asked once, before the tests are declared: whether each runs depends on the answer
await prepareWebGPU();
// the device is destroyed at the end: while it exists, Dawn keeps the process running
after(shutdownBackends);

const skip = () => (isAvailable('webgpu') ? false : `no WebGPU adapter here: ${probeBackend('webgpu').reason}`);

test('webgpu: an adapter is found (in CI: SwiftShader, a CPU implementation)', (t: TestContext) => {
  const ctx = gpuContext();
  t.diagnostic(
    ctx ? `${ctx.description}; ${ctx.maxStorageBuffers} storage buffers per shader; via ${ctx.source}` : probeBackend('webgpu').reason,
  );
  if (process.env.CI === 'true') {
    assert.ok(ctx, `CI must run the webgpu backend: ${probeBackend('webgpu').reason}`);
    assert.ok(ctx.software, `CI's adapter is SwiftShader: ${ctx.description}`);
  }
});

/** Compiles and runs a graph on `backend` (the shared webgpu backend by default), disposing the plan. */
const runner =
  (backend: 'webgpu' | WgslBackend = 'webgpu'): GraphRunner =>
  async (graph, args, fusion) => {
    const exe = compile(graph, { backend, fusion });
    try {
      return await exe.runAsync(args);
    } finally {
      exe.dispose();
    }
  };

/** The mismatches of a webgpu run against the interpreter (both given the same f32 inputs), its error, or undefined. */
const onWebGPU = (graph: Graph, args64: Record<string, NDArray>) => checkRun(runner(), graph, args64);

test('webgpu: the no-silent-wrong-answers examples match the interpreter (NaN, infinities, x / 0, NaN * 0)', { skip: skip() }, async () => {
  const failures = await exampleFailures(runner());
  assert.deepEqual(failures, [], `${failures.length} examples fail on webgpu`);
});

test(
  'webgpu: the examples and hard programs with every reduction as a workgroup tree (NaN through the tree)',
  { skip: skip() },
  async () => {
    const tree = new WgslBackend(gpuContext(), { treeOutputsBelow: Infinity, treeMinLength: 1 });
    const failures = await exampleFailures(runner(tree));
    await assertHardPrograms(runner(tree), { numRuns: 20, seed: 31 });
    await tree.dispose();
    assert.deepEqual(failures, []);
  },
);

test('webgpu: hard programs (NaN and +-Infinity inputs, non-finite constants) and their gradients', { skip: skip() }, async () => {
  await assertHardPrograms(runner(), { numRuns: 30, seed: 29 });
});

test('webgpu: random graphs and their gradients match the float64 interpreter', { skip: skip() }, async () => {
  await assertRandomGraphs(runner(), { numRuns: 40, seed: 7 });
});

test('webgpu: every primitive, forward and gradient, fused and unfused, matches the interpreter', { skip: skip() }, async (t) => {
  const graphs = await assertPrimitives(runner(), { numRuns: 4, seed: 11 });
  t.diagnostic(`${graphs} graphs (${primitiveCount} primitives)`);
});

test(
  "webgpu: the counter-based RNG gives the interpreter's uniforms bit for bit, over 2^16 elements and counters to 3 x 2^24",
  {
    skip: skip(),
  },
  async () => {
    const n = 1 << 16;
    // counters are f32 on the device (a step number): every one here is exact in f32, 2^24 and 3 x 2^24 wrap to 0
    for (const counter of [0, 77, 16777215, 16777216, 3 * 16777216, 1 << 20]) {
      const g = trace(() => op.uniform([n], { seed: 1234, stream: 5, counter }), {});
      const ref = evaluate(g, {}).out.data;
      const exe = compile(g, { backend: 'webgpu' });
      const got = (await exe.runAsync({})).out.data;
      exe.dispose();
      const differ = ref.findIndex((v, i) => v !== got[i]);
      assert.equal(differ, -1, `counter ${counter}, uniform ${differ}: webgpu ${got[differ]}, interpreter ${ref[differ]}`);
    }
  },
);

test(
  'webgpu: sin and cos stay finite and in [-1, 1] far beyond the exact reduction (1e5 .. 1e30), and cos is even',
  { skip: skip() },
  async () => {
    const xs = [1e5, -1e5, 3.3e7, -3.3e7, 1e10, -1e10, 1e30, -1e30, 3.0e38, -3.0e38];
    const g = trace(({ x }) => ({ s: op.sin(x), c: op.cos(x), cn: op.cos(op.neg(x)) }), { x: [xs.length] });
    const exe = compile(g, { backend: 'webgpu' });
    const out = await exe.runAsync({ x: { shape: [xs.length], data: Float64Array.from(xs) } });
    exe.dispose();
    for (const k of ['s', 'c', 'cn'])
      for (const [i, v] of out[k].data.entries()) assert.ok(Number.isFinite(v) && Math.abs(v) <= 1, `${k}(${xs[i]}) = ${v}`);
    assert.deepEqual([...out.c.data], [...out.cn.data], 'cos(-x) = cos(x) bit for bit');
  },
);

test(
  'webgpu: indices past f32 exactness are exact (a transpose of [4099, 4097], a broadcast over 9,000,000)',
  { skip: skip() },
  async () => {
    const [r, c] = [4099, 4097];
    const x = { shape: [r, c], data: Float64Array.from({ length: r * c }, (_, i) => i % 1021) };
    const g = trace(({ x }) => op.transpose(x), { x: [r, c] });
    const exe = compile(g, { backend: 'webgpu' });
    const got = (await exe.runAsync({ x })).out.data;
    exe.dispose();
    let wrong = 0;
    for (let i = 0; i < r; i += 7) for (let j = 0; j < c; j++) if (got[j * r + i] !== x.data[i * c + j]) wrong++;
    assert.equal(wrong, 0, `${wrong} wrong elements of the transpose`);
    const b = await onWebGPU(
      trace(({ a, b }) => op.add(a, b), { a: [1, 3000], b: [3000, 1] }),
      {
        a: { shape: [1, 3000], data: Float64Array.from({ length: 3000 }, (_, i) => i) },
        b: { shape: [3000, 1], data: Float64Array.from({ length: 3000 }, (_, i) => 3000 * i) },
      },
    );
    assert.equal(b, undefined);
  },
);

test(
  'webgpu: matmul, conv2d, reductions and elementwise over edge extents (1 .. 100), blocked, as trees and plain, match the interpreter',
  {
    skip: skip(),
  },
  async (t) => {
    const extents = [1, 3, 5, 8, 12, 20, 36, 100];
    const rows = [1, 2, 6];
    const arr = (shape: number[], seed: number): NDArray => ({
      shape,
      data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(seed * 7.3 + i * 1.7)),
    });
    // the tuner blocks outputs only where a kernel keeps enough invocations: a backend that keeps 1 blocks every
    // kernel whose loads share an axis, at these small sizes too
    const blockedBackend = new WgslBackend(gpuContext(), { minInvocations: 1 });
    // and one that reduces every reduction with a workgroup tree
    const treeBackend = new WgslBackend(gpuContext(), { treeOutputsBelow: Infinity, treeMinLength: 1 });
    let treeKernels = 0;
    let blockedKernels = 0;
    const failures: string[] = [];
    const check = async (name: string, g: Graph, args64: Record<string, NDArray>) => {
      const bad = await onWebGPU(g, args64);
      if (bad) failures.push(`${name}: ${bad.slice(0, 200)}`);
      const args = f32(args64);
      const exe = compile(g, { backend: blockedBackend });
      blockedKernels += exe.kernels.filter((k) => /outputs per invocation: loads shared/.test(k.source.source)).length;
      const badBlocked = mismatches(evaluate(g, args), await exe.runAsync(args));
      exe.dispose();
      if (badBlocked) failures.push(`${name} blocked: ${badBlocked.slice(0, 200)}`);
      const treed = compile(g, { backend: treeBackend });
      treeKernels += treed.kernels.filter((k) => /a workgroup per output/.test(k.source.source)).length;
      const badTree = mismatches(evaluate(g, args), await treed.runAsync(args));
      treed.dispose();
      if (badTree) failures.push(`${name} tree: ${badTree.slice(0, 200)}`);
    };
    for (const n of extents)
      for (const m of rows) {
        await check(
          `matmul [${m}, ${n}]`,
          trace(({ a, b }) => op.matmul(a, b), { a: [m, 7], b: [7, n] }),
          { a: arr([m, 7], 1), b: arr([7, n], 2) },
        );
        await check(
          `sum rows [${m}, ${n}]`,
          trace(({ a }) => op.sum(op.exp(a), [1]), { a: [m, n] }),
          { a: arr([m, n], 3) },
        );
        await check(
          `max rows [${m}, ${n}]`,
          trace(({ a }) => op.max(a, [1]), { a: [m, n] }),
          { a: arr([m, n], 4) },
        );
        await check(
          `tanh(a) * b + 1 [${m}, ${n}]`,
          trace(({ a, b }) => op.add(op.mul(op.tanh(a), b), 1), { a: [m, n], b: [m, n] }),
          { a: arr([m, n], 5), b: arr([m, n], 6) },
        );
      }
    for (const size of [3, 5, 12])
      await check(
        `conv2d ${size}x${size}`,
        trace(({ x, w }) => op.conv2d(x, w, { padding: 1 }), { x: [2, 3, size, size], w: [4, 3, 3, 3] }),
        { x: arr([2, 3, size, size], 7), w: arr([4, 3, 3, 3], 8) },
      );
    await blockedBackend.dispose();
    await treeBackend.dispose();
    t.diagnostic(`${blockedKernels} kernels ran blocked, ${treeKernels} as workgroup trees`);
    assert.ok(blockedKernels >= 20, `the blocked variants ran (${blockedKernels} kernels)`);
    assert.ok(treeKernels >= 40, `the tree variants ran (${treeKernels} kernels)`);
    assert.deepEqual(failures, []);
  },
);

// ---- training steps: resident state, one submission per step, rollback, dispose -----------------------------------

const mlpParams = () => ({ l1: nn.linear.init(seedFor(3, 'l1'), 4, 16), l2: nn.linear.init(seedFor(3, 'l2'), 16, 4) });
type MLP = ReturnType<typeof mlpParams>;
const mlpStep = (backend: 'webgpu' | 'wasm', params: MLP = mlpParams(), lr = 0.01) =>
  compileStep(
    ({ params: p, x: xs }) => {
      const q = p as unknown as ParamTensors<MLP>;
      return mse(nn.linear.apply(q.l2, op.tanh(nn.linear.apply(q.l1, xs))), xs);
    },
    { params, optimizer: adam({ lr }), data: { x: [8, 4] }, backend, emaDecay: 0.9 },
  );
const flat = (p: Params) => flattenParams(p).flatMap(([, v]) => Array.from(v.data));
const closeArrays = (a: number[], b: number[], tol: number) =>
  a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= tol * (1 + Math.abs(b[i])));

test(
  "webgpu: a training step gives the wasm backend's losses, parameters, optimizer state and EMA (f32 tolerance)",
  { skip: skip() },
  async () => {
    const x = initNormal([8, 4], 1, 9);
    const gpu = mlpStep('webgpu');
    const cpu = mlpStep('wasm');
    const lg: number[] = [];
    const lc: number[] = [];
    for (let i = 0; i < 5; i++) {
      lg.push(await gpu.runAsync({ x }));
      lc.push(await cpu.runAsync({ x }));
    }
    const g = await gpu.readAsync();
    const c = await cpu.readAsync();
    gpu.dispose();
    cpu.dispose();
    // five Adam steps of an f32 program on two backends: reassociated sums differ by a few ulp, and Adam's first
    // steps divide by sqrt(v) ~ |g|, which keeps those differences at their size (1e-4 relative is far above them)
    assert.ok(closeArrays(lg, lc, 1e-4), `losses: ${lg} vs ${lc}`);
    assert.ok(closeArrays(flat(g.params), flat(c.params), 1e-4), 'parameters');
    assert.ok(closeArrays(flat(g.state), flat(c.state), 1e-4), 'optimizer state');
    assert.ok(closeArrays(flat(g.ema), flat(c.ema), 1e-4), 'EMA');
  },
);

test(
  'webgpu: overlapped steps give the sequential losses; a non-finite loss rolls back its update and the later ones',
  { skip: skip() },
  async () => {
    const x = initNormal([8, 4], 1, 9);
    const bad = { shape: x.shape, data: x.data.map((v, i) => (i === 0 ? NaN : v)) };
    const ref = mlpStep('webgpu');
    const sequential = [await ref.runAsync({ x }), await ref.runAsync({ x })];
    const refState = await ref.readAsync();
    sequential.push(await ref.runAsync({ x }));
    ref.dispose();
    const s = mlpStep('webgpu');
    const settled = await Promise.allSettled([s.runAsync({ x }), s.runAsync({ x }), s.runAsync({ x: bad }), s.runAsync({ x })]);
    const shown = settled.map((r) => (r.status === 'fulfilled' ? r.value : `${(r.reason as Error).name}: ${(r.reason as Error).message}`));
    assert.deepEqual(shown.slice(0, 2), sequential.slice(0, 2), 'steps 1 and 2 overlapped: the sequential losses, bit for bit');
    assert.match(String(shown[2]), /NonFiniteLossError: step 3: the loss is NaN/);
    assert.match(String(shown[3]), /discarded/);
    const after = await s.readAsync();
    for (const part of ['params', 'state', 'ema'] as const)
      assert.deepEqual(flat(after[part]), flat(refState[part]), `${part}: those after step 2 (neither step 3 nor 4 applied)`);
    assert.equal(s.step, 3, 'the counter is back at step 3');
    assert.equal(await s.runAsync({ x }), sequential[2], 'the next step from there is the sequential step 3, bit for bit');
    s.dispose();
  },
);

test('webgpu: 200 steps lower the loss; GPU buffers stay steady and are all freed on dispose', { skip: skip() }, async () => {
  const backend = new WgslBackend();
  const x = initNormal([8, 4], 1, 9);
  const params = mlpParams();
  const step = compileStep(
    ({ params: p, x: xs }) => {
      const q = p as unknown as ParamTensors<MLP>;
      return mse(nn.linear.apply(q.l2, op.tanh(nn.linear.apply(q.l1, xs))), xs);
    },
    { params, optimizer: adam({ lr: 0.01 }), data: { x: [8, 4] }, backend },
  );
  const losses: Promise<number>[] = [];
  for (let i = 0; i < 200; i++) {
    losses.push(step.runAsync({ x }));
    if (i === 20) await losses[i];
  }
  const warm = backend.gpuBuffers();
  const all = await Promise.all(losses);
  const steady = backend.gpuBuffers();
  assert.ok(all[199] < all[0] / 4, `the loss falls: ${all[0]} -> ${all[199]}`);
  assert.ok(steady <= warm + 8, `200 overlapped steps: ${warm} -> ${steady} GPU buffers`);
  step.dispose();
  assert.equal(backend.gpuBuffers(), 0, 'dispose frees every GPU buffer of the plan and its readback pool');
  await assert.rejects(step.runAsync({ x }), /disposed/);
  await backend.dispose();
});

test(
  "webgpu: `fusediff train --backend webgpu` trains and saves a checkpoint, and its losses are the wasm run's (f32)",
  { skip: skip() },
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-webgpu-cli-'));
    const bin = fileURLToPath(new URL('../bin/fusediff.js', import.meta.url));
    const train = (backend: string) => {
      const args = ['train', '--dataset', 'eightGaussians', '--backend', backend, '--steps', '20', '--batch-size', '64'];
      const r = spawnSync(process.execPath, [bin, ...args, '--set', 'model.hidden=32', '--out', path.join(dir, backend), '--json'], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { backend: string; meanLossLast50: number; checkpoint: string };
    };
    try {
      const gpu = train('webgpu');
      const cpu = train('wasm');
      assert.equal(gpu.backend, 'webgpu');
      assert.ok(fs.existsSync(gpu.checkpoint), 'the checkpoint was written (read back asynchronously)');
      // 20 Adam steps of an f32 program on two backends: sums in other orders differ by ulps (see the step test above)
      const [a, b] = [gpu.meanLossLast50, cpu.meanLossLast50];
      assert.ok(Math.abs(a - b) <= 1e-4 * (1 + Math.abs(b)), `mean loss: webgpu ${a}, wasm ${b}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'webgpu: an average pool of relu in blocks of 4 x 4 compiles and is exact (conditions are not branches)',
  { skip: skip(), timeout: 120_000 },
  async () => {
    // the evaluation classifier's pooling kernel: 16 outputs per invocation, 32 relus in one loop. With the relu's
    // NaN test joined by a short-circuit || (a branch each), SwiftShader's compiler grew past 17 GB and never returned
    const graph = trace(({ x, bias }) => ({ out: avgPool2d(op.relu(op.add(x, op.reshape(bias, [8, 1, 1]))), 2) }), {
      x: [2, 8, 8, 8],
      bias: [8],
    });
    const quarters = (n: number, k: number) => Float64Array.from({ length: n }, (_, i) => (((i * k) % 9) - 4) / 4);
    const args = { x: { shape: [2, 8, 8, 8], data: quarters(1024, 7) }, bias: { shape: [8], data: quarters(8, 5) } };
    // the shaders' text is checked before any is compiled: compiling the bad one would hang the process
    const fused = fuse(graph);
    for (const k of fused.kernels) {
      const ir = lowerKernel(fused, k);
      const c = chooseBlock(ir, true, { minInvocations: 1 });
      const { code } = printWgsl(ir, [k.root], c.block, c.tree, c.vectors, c.rowAxis, c.tiles);
      assert.ok(!/\|\||&&/.test(code.slice(code.indexOf('@compute'))), 'no short-circuit condition in the shader');
    }
    const backend = new WgslBackend(gpuContext(), { minInvocations: 1 });
    try {
      const exe = compile(graph, { backend });
      assert.ok(
        exe.kernels.some((k) => /4 x 4 outputs per invocation/.test(k.source.source)),
        'the pool took a block of 16',
      );
      const got = await exe.runAsync(args);
      // sums of four quarters, then / 4: exact in f32
      assert.deepEqual([...got.out.data], [...Float32Array.from(evaluate(graph, args).out.data)]);
      exe.dispose();
    } finally {
      await backend.dispose();
    }
  },
);

test('webgpu: acquiring the device in Node prints no XDG_RUNTIME_DIR error and leaves the variable as it was', () => {
  // Mesa's Vulkan drivers print that error twice while Dawn probes adapters on a headless machine (the CLI's stderr
  // under auto); gpu.ts points the variable at the temp folder for the probe only
  const gpuModule = fileURLToPath(new URL('../compiler/webgpu/gpu.ts', import.meta.url));
  const script =
    `import { acquireGpu, releaseGpu } from ${JSON.stringify(gpuModule)};` +
    'const ctx = await acquireGpu();' +
    'console.log(JSON.stringify({ adapter: !!ctx, xdg: process.env.XDG_RUNTIME_DIR ?? null }));' +
    'releaseGpu();';
  const env = { ...process.env };
  delete env.XDG_RUNTIME_DIR;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /XDG_RUNTIME_DIR/);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { adapter: boolean; xdg: string | null };
  assert.equal(out.xdg, null, 'the variable is unset again after the probe');
  if (process.env.CI === 'true') assert.ok(out.adapter, 'CI has an adapter (SwiftShader)');
});
