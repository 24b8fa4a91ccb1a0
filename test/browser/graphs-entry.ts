// The browser side of test/browser-graphs.test.ts: traces a random program (transforms/check/graphArbitrary.ts) and
// its gradient in the page, or takes a graph traced in Node (wire.ts), compiles it for WebGL2, gpu.js's WebGPU path or
// the compiler's own WGSL (webgpu) and returns the outputs; Node compares them with the interpreter. Training steps on
// both WebGPU backends (rollback, GPU buffer counts) run here whole and return what the test asserts.
import { valueAndGrad } from '../../transforms/grad.ts';
import { programSpec, runProgram, type Program } from '../../transforms/check/graphArbitrary.ts';
import {
  compile,
  createBackend,
  gpuContext,
  isAvailable,
  prepareWebGPU,
  probeBackend,
  WgslBackend,
  type BackendName,
} from '../../compiler/index.ts';
import type { Tuning } from '../../compiler/webgpu/tune.ts';
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

export type PageBackend = Extract<BackendName, 'webgl2' | 'gpujs-webgpu' | 'webgpu'>;
/** webgpu with the tuner forced onto a path SwiftShader's defaults never take on small shapes (tune.ts) */
export type WgslVariant = 'default' | 'tree' | 'blocked';
const variantTuning: Record<Exclude<WgslVariant, 'default'>, Tuning> = {
  // every reduction as a workgroup tree
  tree: { treeOutputsBelow: Infinity, treeMinLength: 1 },
  // a block of outputs per invocation wherever loads share an axis
  blocked: { minInvocations: 1 },
};
const variantBackends = new Map<WgslVariant, WgslBackend>();
/** The backend a compile uses: the name (its shared backend) or, for a webgpu variant, one WgslBackend kept per variant. */
const backendOf = (backend: PageBackend, variant: WgslVariant) => {
  if (backend !== 'webgpu' || variant === 'default') return backend;
  let b = variantBackends.get(variant);
  if (!b) variantBackends.set(variant, (b = new WgslBackend(gpuContext(), variantTuning[variant])));
  return b;
};

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

export type StepBackend = Extract<PageBackend, 'gpujs-webgpu' | 'webgpu'>;
const mlpParams = () => ({ l1: nn.linear.init(seedFor(3, 'l1'), 4, 16), l2: nn.linear.init(seedFor(3, 'l2'), 16, 4) });
/** The small MLP's training step of the Node tests (test/webgpu.test.ts): Adam, EMA, a batch of 8. */
const mlpStep = (backend: StepBackend | WgslBackend) =>
  compileStep(
    ({ params: p, x: xs }) => {
      const q = p as unknown as ParamTensors<ReturnType<typeof mlpParams>>;
      return mse(nn.linear.apply(q.l2, op.tanh(nn.linear.apply(q.l1, xs))), xs);
    },
    { params: mlpParams(), optimizer: adam({ lr: 0.01 }), data: { x: [8, 4] }, backend, emaDecay: 0.9 },
  );
/** A settled run as the test prints it: the loss, or the error's name and message. */
const shown = (r: PromiseSettledResult<number>) =>
  r.status === 'fulfilled' ? r.value : `${(r.reason as Error).name}: ${(r.reason as Error).message}`;

const api = {
  webgl2: isAvailable('webgl2'),
  /** The WebGPU adapter the page got (requested once; undefined where there is none) and why not. */
  async webgpu() {
    const adapter = await prepareWebGPU();
    const ctx = gpuContext();
    return {
      adapter,
      available: isAvailable('gpujs-webgpu'),
      /** the compiler's own WGSL backend's device (the same adapter, its own device) */
      wgsl: ctx
        ? {
            available: isAvailable('webgpu'),
            description: ctx.description,
            software: ctx.software,
            maxStorageBuffers: ctx.maxStorageBuffers,
          }
        : { available: false, reason: probeBackend('webgpu').reason },
    };
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
  /**
   * A graph built in Node (test/browser/wire.ts), compiled and run here: the outputs and the backend that ran them,
   * or the error's message; how many of the plan's kernels took the variant's path (webgpu only).
   */
  async runGraph(
    wire: WireGraph,
    args: Record<string, WireArray>,
    backend: PageBackend,
    fusion: 'fused' | 'unfused' = 'fused',
    variant: WgslVariant = 'default',
  ) {
    try {
      const exe = compile(graphFromWire(wire), { backend: backendOf(backend, variant), fusion });
      try {
        const out = await exe.runAsync(Object.fromEntries(Object.entries(args).map(([k, v]) => [k, toNd(v)])));
        const path = variant === 'tree' ? /a workgroup per output/ : /outputs per invocation: loads shared/;
        return {
          backend: exe.backend,
          variantKernels: variant === 'default' ? 0 : exe.kernels.filter((k) => path.test(k.source.source)).length,
          outputs: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, toWire(v)])),
        };
      } finally {
        exe.dispose();
      }
    } catch (e) {
      return { error: (e as Error).message };
    }
  },
  /**
   * n uniforms from the counter-based RNG, drawn in a WebGL2 or WebGPU kernel: their float32 bytes in base64 (2^16 of
   * them cross to Node in a fraction of the time an array of numbers takes).
   */
  async uniforms(n: number, seed: number, stream: number, counter: number, backend: PageBackend = 'webgl2') {
    const exe = compile(
      trace(() => op.uniform([n], { seed, stream, counter }), {}),
      { backend },
    );
    const bytes = new Uint8Array(Float32Array.from((await exe.runAsync({})).out.data).buffer);
    exe.dispose();
    let text = '';
    for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
    return { backend: exe.backend, base64: btoa(text) };
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
   * A training run on a WebGPU backend (webgpu on a WgslBackend of its own, so its count is this plan's): live GPU
   * buffers in the page (every device's) before compiling, after 3 steps, after the rest of `steps` submitted at once,
   * after a NaN batch (rolled back) with 2 behind it, and after dispose; the first and last losses, what the NaN batch
   * and the 2 behind it settled to, the step counter then, and whether a run after dispose is refused.
   */
  async trainingRun(backend: StepBackend, steps: number) {
    const own = backend === 'webgpu' ? new WgslBackend() : undefined;
    const x = initNormal([8, 4], 1, 9);
    const bad = { shape: x.shape, data: x.data.map((v, i) => (i === 0 ? NaN : v)) };
    const before = liveGpuBuffers.size;
    const s = mlpStep(own ?? backend);
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) losses.push(await s.runAsync({ x }));
    const warm = liveGpuBuffers.size;
    losses.push(...(await Promise.all(Array.from({ length: steps - 3 }, () => s.runAsync({ x })))));
    const steady = liveGpuBuffers.size;
    const settled = await Promise.allSettled([s.runAsync({ x: bad }), s.runAsync({ x }), s.runAsync({ x })]);
    const rolledBack = liveGpuBuffers.size;
    const stepAfter = s.step;
    s.dispose();
    const disposed = liveGpuBuffers.size;
    const ownBuffers = own?.gpuBuffers();
    const afterDispose = await s.runAsync({ x }).then(
      () => 'ran',
      (e: Error) => e.message,
    );
    await own?.dispose();
    return { before, warm, steady, rolledBack, disposed, ownBuffers, losses, settled: settled.map(shown), stepAfter, afterDispose };
  },
  /**
   * compileStep's overlapped steps on a WebGPU backend: four submitted at once, the third with a NaN in its batch.
   * Returns what each call settled to, whether the parameters, optimizer state and EMA afterwards are bit for bit
   * those after two sequential steps, and the losses of a fifth step from there and of the sequential third.
   */
  async overlappedSteps(backend: StepBackend) {
    const x = initNormal([8, 4], 1, 9);
    const bad = { shape: x.shape, data: x.data.map((v, i) => (i === 0 ? NaN : v)) };
    const flat = (p: Params) => flattenParams(p).flatMap(([, v]) => Array.from(v.data));
    const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
    const ref = mlpStep(backend);
    const sequential = [await ref.runAsync({ x }), await ref.runAsync({ x })];
    const refState = await ref.readAsync();
    sequential.push(await ref.runAsync({ x }));
    ref.dispose();
    const s = mlpStep(backend);
    const settled = await Promise.allSettled([s.runAsync({ x }), s.runAsync({ x }), s.runAsync({ x: bad }), s.runAsync({ x })]);
    const after = await s.readAsync();
    const stepAfter = s.step;
    const next = await s.runAsync({ x });
    s.dispose();
    return {
      sequential,
      settled: settled.map(shown),
      sameParams: same(flat(after.params), flat(refState.params)),
      sameState: same(flat(after.state), flat(refState.state)),
      sameEma: same(flat(after.ema), flat(refState.ema)),
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
