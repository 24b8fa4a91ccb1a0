// The browser side of test/browser-graphs.test.ts: traces a random program (transforms/check/graphArbitrary.ts) and
// its gradient in the page, compiles it for WebGL2 or WebGPU and returns the outputs; Node compares them with the
// interpreter.
import { valueAndGrad } from '../../transforms/grad.ts';
import { programSpec, runProgram, type Program } from '../../transforms/check/graphArbitrary.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { createBackend, isAvailable, prepareWebGPU, type BackendName } from '../../compiler/index.ts';
import { compile } from '../../compiler/index.ts';
import { compileStep } from '../../train/compileStep.ts';
import { adam } from '../../dsl/optim.ts';
import * as nn from '../../dsl/nn.ts';
import { flattenParams, initNormal, seedFor, type ParamTensors, type Params } from '../../dsl/params.ts';
import * as op from '../../dsl/ops.ts';
import { mse } from '../../dsl/composites.ts';
import { CONV, convInputs } from '../../workloads/reference.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { trace } from '../../dsl/trace.ts';
import { kernelReport } from '../../web/session.ts';

import { timeWgslMatmuls } from './wgslTiles.ts';
import { fromWire as toNd, graphFromWire, toWire, type WireArray, type WireGraph } from './wire.ts';

export type { WireArray };

type PageBackend = Extract<BackendName, 'webgl2' | 'gpujs-webgpu'>;

/** WebGPU buffers created and not yet destroyed in this page (counted by wrapping GPUDevice.createBuffer). */
const liveGpuBuffers = new Set<object>();
{
  type Buffer = { destroy(): void };
  const proto = (globalThis as { GPUDevice?: { prototype: { createBuffer(d: unknown): Buffer } } }).GPUDevice?.prototype;
  const create = proto?.createBuffer;
  if (proto && create)
    proto.createBuffer = function (this: unknown, d: unknown) {
      const b = create.call(this, d);
      liveGpuBuffers.add(b);
      const destroy = b.destroy;
      b.destroy = function (this: Buffer) {
        liveGpuBuffers.delete(b);
        destroy.call(this);
      };
      return b;
    };
}

const api = {
  webgl2: isAvailable('webgl2'),
  /** The WebGPU adapter the page got (requested once; undefined where there is none) and why not. */
  async webgpu() {
    const adapter = await prepareWebGPU();
    return { adapter, available: isAvailable('gpujs-webgpu') };
  },
  /** The program's value and gradient wrt every input, compiled for WebGL2 or WebGPU. */
  async run(program: Program, args: Record<string, WireArray>, backend: PageBackend = 'webgl2') {
    const spec = programSpec(args);
    const graph = valueAndGrad(
      trace((a) => runProgram(program, a as Record<string, Tensor>), spec),
      Object.keys(args),
    );
    const exe = compile(graph, { backend });
    const out = await exe.runAsync(Object.fromEntries(Object.entries(args).map(([k, v]) => [k, toNd(v)])));
    // what gpu.js built the plan's kernels as ('webgl2' for a WebGL2 context, else its mode), before they are freed
    const contexts = exe.device.kernelInfo().map((k) => (k.fellBack ? 'cpu fallback' : k.context));
    exe.dispose();
    return {
      contexts,
      backend: exe.backend,
      kernels: exe.kernels.length,
      outputs: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, toWire(v)])),
    };
  },
  /** A graph built in Node (test/browser/wire.ts), compiled and run here; the outputs, or the error's message. */
  async runGraph(wire: WireGraph, args: Record<string, WireArray>, backend: PageBackend, fusion: 'fused' | 'unfused' = 'fused') {
    try {
      const exe = compile(graphFromWire(wire), { backend, fusion });
      const out = await exe.runAsync(Object.fromEntries(Object.entries(args).map(([k, v]) => [k, toNd(v)])));
      exe.dispose();
      return { outputs: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, toWire(v)])) };
    } catch (e) {
      return { error: (e as Error).message };
    }
  },
  /** n uniforms from the counter-based RNG, drawn in a WebGL2 or WebGPU kernel. */
  async uniforms(n: number, seed: number, stream: number, counter: number, backend: PageBackend = 'webgl2') {
    const exe = compile(
      trace(() => op.uniform([n], { seed, stream, counter }), {}),
      { backend },
    );
    const data = Array.from((await exe.runAsync({})).out.data);
    exe.dispose();
    return { backend: exe.backend, data };
  },
  kernels: (backend: PageBackend = 'webgl2') => kernelReport(backend),
  /**
   * WebGL2 (SwiftShader here) with four outputs per thread against one: ms per run of a 256 matmul and of the
   * reference conv, alternating, and whether both layouts give the same bits.
   */
  glLanes(reps: number) {
    const n = 256;
    const pad = (CONV.kernel - 1) / 2;
    const work = [
      {
        name: 'matmul 256',
        graph: trace(({ a, b }) => op.matmul(a, b), { a: [n, n], b: [n, n] }),
        args: {
          a: Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5),
          b: Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5),
        } as Record<string, Float32Array>,
      },
      {
        name: 'conv2d (reference)',
        graph: trace(({ x, w }) => op.conv2d(x, w, { padding: [pad, pad, pad, pad] }), {
          x: [CONV.batch, CONV.inChannels, CONV.size, CONV.size],
          w: [CONV.outChannels, CONV.inChannels, CONV.kernel, CONV.kernel],
        }),
        args: convInputs(CONV) as Record<string, Float32Array>,
      },
    ];
    return work.map(({ name, graph, args }) => {
      const exes = ([1, 4] as const).map((glLanes) => compile(graph, { backend: 'webgl2', glLanes }));
      const outs = exes.map((e) => e.run(args).out.data);
      const ms = [0, 0];
      for (let r = 0; r < reps; r++)
        exes.forEach((e, i) => {
          const t0 = performance.now();
          e.read(e.runDevice(args).out, []);
          ms[i] += (performance.now() - t0) / reps;
        });
      const lanes = exes.map((e) => Math.max(...e.kernels.map((k) => k.source.lanes ?? 1)));
      exes.forEach((e) => e.dispose());
      return { name, oneMs: ms[0], fourMs: ms[1], lanes, sameBits: outs[0].every((v, i) => Object.is(v, outs[1][i])) };
    });
  },
  /**
   * A 256 matmul on webgpu: gpu.js's kernel (from the kernel IR, as every fusediff kernel) against hand-written WGSL
   * with one output per thread and with workgroup-shared tiles (wgslTiles.ts): ms per run, and the largest
   * difference of each WGSL result from gpu.js's.
   */
  async webgpuMatmul(reps: number) {
    const n = 256;
    const a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    const b = Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
    const exe = compile(
      trace(({ a, b }) => op.matmul(a, b), { a: [n, n], b: [n, n] }),
      { backend: 'gpujs-webgpu' },
    );
    const ref = (await exe.runAsync({ a, b })).out.data;
    const t0 = performance.now();
    // each run uploads a and b and reads c back (256 KB each way): the way a plan runs on given host arrays
    for (let r = 0; r < reps; r++) await exe.readAsync((await exe.runDeviceAsync({ a, b })).out, [n, n]);
    const gpujsMs = (performance.now() - t0) / reps;
    exe.dispose();
    const wgsl = await timeWgslMatmuls(a, b, reps);
    return {
      gpujsMs,
      wgsl: wgsl.map(({ name, ms, out }) => ({ name, ms, maxDiff: Math.max(...Array.from(out, (v, i) => Math.abs(v - ref[i]))) })),
    };
  },
  /**
   * compileStep's overlapped steps on webgpu: four submitted at once, the third with a NaN in its batch. Returns what
   * each call settled to, whether the parameters afterwards are bit for bit those after two sequential steps, and
   * the losses of a fifth step from there and of the sequential third.
   */
  /**
   * Live WebGPU buffers around a training step's life: before compiling, after 3 steps, after 12 more submitted at
   * once and a NaN batch (rolled back) with 2 behind it, and after dispose.
   */
  async webgpuBuffers() {
    const params = { l1: nn.linear.init(seedFor(3, 'l1'), 4, 16), l2: nn.linear.init(seedFor(3, 'l2'), 16, 4) };
    const x = initNormal([8, 4], 1, 9);
    const bad = { shape: x.shape, data: x.data.map((v, i) => (i === 0 ? NaN : v)) };
    const before = liveGpuBuffers.size;
    const s = compileStep(
      ({ params: p, x: xs }) => {
        const q = p as unknown as ParamTensors<typeof params>;
        return mse(nn.linear.apply(q.l2, op.tanh(nn.linear.apply(q.l1, xs))), xs);
      },
      { params, optimizer: adam({ lr: 0.01 }), data: { x: [8, 4] }, backend: 'gpujs-webgpu' },
    );
    for (let i = 0; i < 3; i++) await s.runAsync({ x });
    const warm = liveGpuBuffers.size;
    await Promise.all(Array.from({ length: 12 }, () => s.runAsync({ x })));
    const steady = liveGpuBuffers.size;
    await Promise.allSettled([s.runAsync({ x: bad }), s.runAsync({ x }), s.runAsync({ x })]);
    const rolledBack = liveGpuBuffers.size;
    s.dispose();
    return { before, warm, steady, rolledBack, disposed: liveGpuBuffers.size };
  },
  async overlappedSteps() {
    const params = { l1: nn.linear.init(seedFor(3, 'l1'), 4, 16), l2: nn.linear.init(seedFor(3, 'l2'), 16, 4) };
    const x = initNormal([8, 4], 1, 9);
    const bad = { shape: x.shape, data: x.data.map((v, i) => (i === 0 ? NaN : v)) };
    const make = () =>
      compileStep(
        ({ params: p, x: xs }) => {
          const q = p as unknown as ParamTensors<typeof params>;
          return mse(nn.linear.apply(q.l2, op.tanh(nn.linear.apply(q.l1, xs))), xs);
        },
        { params, optimizer: adam({ lr: 0.01 }), data: { x: [8, 4] }, backend: 'gpujs-webgpu' },
      );
    const flat = (p: Params) => flattenParams(p).flatMap(([, v]) => Array.from(v.data));
    const ref = make();
    const sequential = [await ref.runAsync({ x }), await ref.runAsync({ x })];
    const refParams = flat((await ref.readAsync()).params);
    sequential.push(await ref.runAsync({ x }));
    ref.dispose();
    const s = make();
    const settled = await Promise.allSettled([s.runAsync({ x }), s.runAsync({ x }), s.runAsync({ x: bad }), s.runAsync({ x })]);
    const after = flat((await s.readAsync()).params);
    const stepAfter = s.step;
    const next = await s.runAsync({ x });
    s.dispose();
    return {
      sequential,
      settled: settled.map((r) => (r.status === 'fulfilled' ? r.value : `${(r.reason as Error).name}: ${(r.reason as Error).message}`)),
      sameParams: after.length === refParams.length && after.every((v, i) => Object.is(v, refParams[i])),
      stepAfter,
      next,
    };
  },
  /**
   * Five steps of a small MLP's training on the wasm backend with each thread count: the losses, the parameters
   * after them, and how many kernel calls were split over Web Workers (the page is cross-origin isolated).
   */
  async wasmThreads(counts: number[]) {
    const params = { l1: nn.linear.init(seedFor(3, 'l1'), 64, 128), l2: nn.linear.init(seedFor(3, 'l2'), 128, 64) };
    const x = initNormal([256, 64], 1, 9);
    const runs = [];
    for (const threads of counts) {
      const backend = createBackend('wasm', { threads });
      const step = compileStep(
        ({ params: p, x: xs }) => {
          const q = p as unknown as ParamTensors<typeof params>;
          return mse(nn.linear.apply(q.l2, op.tanh(nn.linear.apply(q.l1, xs))), xs);
        },
        { params, optimizer: adam({ lr: 0.01 }), data: { x: [256, 64] }, backend },
      );
      await new Promise((r) => setTimeout(r, 200)); // the workers start once this script yields
      const losses = [];
      for (let i = 0; i < 5; i++) losses.push(step.run({ x }));
      const flat = flattenParams(step.params() as Params);
      runs.push({
        threads,
        reason: step.executable.backendReason,
        splitCalls: step.executable.splitKernelCalls?.() ?? 0,
        losses,
        params: flat.flatMap(([, v]) => Array.from(v.data)),
      });
      step.dispose();
      await backend.dispose();
    }
    return { crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true, runs };
  },
};

export type GraphsApi = typeof api;
await prepareWebGPU(); // before the API appears, so every test may compile for webgpu
(window as unknown as { fusediffGraphs: GraphsApi }).fusediffGraphs = api;
