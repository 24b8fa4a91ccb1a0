// The page side of `npm run bench:page` (bench/page/run.ts bundles it): fusediff, TF.js and jax-js on the workloads
// of `npm run bench`, in a cross-origin isolated page where each may use every core: fusediff's wasm backend
// splits its kernels over navigator.hardwareConcurrency threads (the page and Web Workers), TF.js's wasm backend
// loads its threaded-SIMD binary with setThreadsCount(hardwareConcurrency), jax-js's wasm device starts
// hardwareConcurrency Web Workers. The systems are the bench's own classes (bench/fusediff/, bench/peers/), so the
// workloads are the same code as in Node. Every Worker the page starts is counted (the constructor is wrapped), so
// each row says how many were live while it ran and how many were left after its dispose.
// The WebGPU systems (navigator.gpu: SwiftShader's Vulkan here) run the reference MLP step: fusediff's own WGSL
// (`webgpu`), gpu.js's WebGPU path (`gpujs-webgpu`, which cannot run in Node: bench/webgpu.ts), TF.js's webgpu backend and
// jax-js's webgpu device, so that the pair the issue compares (our WGSL against gpu.js's) is measured in one run.
import * as tf from '@tensorflow/tfjs-core';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { backendFor, prepareWebGPU, shutdownBackends, wasmFeatures } from '../../compiler/index.ts';
import { timeRuns } from '../../train/inspectStep.ts';
import { BATCH, CONV, convFlops, eightGaussians, initParams, matmulFlops, probeNoise, referenceLoss } from '../../workloads/reference.ts';
import { FusediffConv } from '../fusediff/conv.ts';
import { FusediffMatmul } from '../fusediff/matmul.ts';
import { FusediffMlp } from '../fusediff/mlpDenoiser.ts';
import { jaxjsConv, jaxjsMatmul, jaxjsMlp } from '../peers/jaxjs.ts';
import { tfjsConv, tfjsMatmul, tfjsMlp } from '../peers/tfjs.ts';
import { tfjsWebgpuMlp } from '../peers/tfjsWebgpu.ts';
import { probeVerdict } from '../peers/probe.ts';
import { WEBGPU_SYSTEMS, type SystemId } from './systems.ts';

/** Web Workers started in this page and not terminated (the page's own Worker, wrapped before anything starts one). */
const liveWorkers = new Set<object>();
let startedWorkers = 0;
{
  const Native = globalThis.Worker;
  globalThis.Worker = class CountedWorker extends Native {
    constructor(url: string | URL, options?: WorkerOptions) {
      super(url, options);
      liveWorkers.add(this);
      startedWorkers++;
    }
    override terminate(): void {
      liveWorkers.delete(this);
      super.terminate();
    }
  };
}

const cores = Math.max(1, navigator.hardwareConcurrency || 1);
// before TF.js's wasm backend initialises: one thread per core. Its threadpool takes min(setThreadsCount, 8,
// hardwareConcurrency / 2) threads (tfjs-backend-wasm's backend.cc assumes two logical cores per physical core), so
// its initialisation also sees twice the cores: see tfjsEveryCore.
tfwasm.setThreadsCount(cores);
let tfjsStarted = false;
/**
 * Runs TF.js's first setup (which initialises its wasm backend) with navigator.hardwareConcurrency reading twice the
 * cores, so that its cap of half the logical cores lets it take every core; the page's own value comes back after.
 */
const tfjsEveryCore = async (setup: () => Promise<void>): Promise<void> => {
  if (tfjsStarted) return setup();
  tfjsStarted = true;
  Object.defineProperty(navigator, 'hardwareConcurrency', { configurable: true, get: () => 2 * cores });
  try {
    await setup();
  } finally {
    delete (navigator as { hardwareConcurrency?: number }).hardwareConcurrency; // the prototype's getter again
  }
};

export { SYSTEMS, WEBGPU_SYSTEMS, type SystemId } from './systems.ts';
/** The workloads of bench/run.ts: the reference MLP step, square matmuls (MATMUL_SIZES), the forward conv (CONV). */
export const WORKLOADS = ['mlp', 'matmul-256', 'matmul-512', 'matmul-1024', 'conv', 'conv-eager'] as const;
export type WorkloadId = (typeof WORKLOADS)[number];

export interface Timing {
  /** tinybench's time budget per row, ms */
  readonly time: number;
  /** at least so many timed runs */
  readonly iterations: number;
  /** untimed runs first */
  readonly warmup: number;
  /** ms to yield after setup, so that every system's workers have started before the clock runs */
  readonly settle: number;
}

export interface PageRow {
  /** e.g. 'fusediff', 'TensorFlow.js 4.22.0', 'jax-js 0.1.25' */
  system: string;
  systemId: SystemId;
  /** what ran, with its threads */
  backend: string;
  workload: WorkloadId;
  unit: 'samples/s' | 'GFLOP/s';
  /** the rate at the median time of one run (the number the tables compare) */
  value: number;
  /** the rate at the mean time */
  valueAtMean: number;
  medianMs: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  rmePercent: number;
  runs: number;
  /** the MLP step's loss after the timed runs (a sanity value) */
  loss?: number;
  /** the MLP step's probe loss at the initial parameters against the float64 reference, checked before timing */
  probeRelErr?: number;
  /** Web Workers live in the page after the timed runs, before dispose() */
  workersWhileRunning: number;
  /** Web Workers live after the row's dispose() */
  workersAfterDispose: number;
}

interface Runner {
  /** the bench object: its system and backend (each peer fills its backend in at setup) and dispose */
  readonly peer: { readonly system: string; readonly backend: string; dispose(): Promise<void> };
  setup(): Promise<void>;
  run(): Promise<void>;
  loss?(): Promise<number>;
  /** the MLP step's loss on the probe batch at its current parameters (checked before timing, as bench/peers/check.ts) */
  evalLoss?(eps: Float32Array, t: Int32Array): Promise<number>;
}

const probe = probeNoise();
let reference: number | undefined;

const threadWords = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;

/** A WebGPU system's MLP step: fusediff on its WGSL or on gpu.js's WebGPU path, TF.js webgpu, jax-js webgpu. */
const webgpuMlp = (system: SystemId) =>
  system === 'fusediff-webgpu'
    ? new FusediffMlp('webgpu')
    : system === 'gpujs-webgpu'
      ? new FusediffMlp('gpujs-webgpu')
      : system === 'tfjs-webgpu'
        ? tfjsWebgpuMlp()
        : jaxjsMlp('webgpu');

const runnerFor = (system: SystemId, workload: WorkloadId): { runner: Runner; unit: PageRow['unit']; flops: number } => {
  if (WEBGPU_SYSTEMS.includes(system)) {
    if (workload !== 'mlp') throw new Error(`bench page: ${system} runs the mlp workload only`);
    const s = webgpuMlp(system);
    const setup = async () => {
      if (!(await prepareWebGPU())) throw new Error('bench page: no WebGPU adapter in this page (navigator.gpu found none)');
      await s.setup();
    };
    const runner = { peer: s, setup, run: () => s.step(), loss: () => s.loss(), evalLoss: s.evalLoss.bind(s) };
    return { runner, unit: 'samples/s', flops: 0 };
  }
  if (workload === 'mlp') {
    const s = system === 'fusediff' ? new FusediffMlp('wasm') : system === 'tfjs' ? tfjsMlp('wasm') : jaxjsMlp('wasm');
    const runner = { peer: s, setup: () => s.setup(), run: () => s.step(), loss: () => s.loss(), evalLoss: s.evalLoss.bind(s) };
    return { runner, unit: 'samples/s', flops: 0 };
  }
  if (workload.startsWith('matmul-')) {
    const n = Number(workload.slice('matmul-'.length));
    const m = system === 'fusediff' ? new FusediffMatmul('wasm') : system === 'tfjs' ? tfjsMatmul('wasm') : jaxjsMatmul('wasm');
    return { runner: { peer: m, setup: () => m.setup(n), run: () => m.run() }, unit: 'GFLOP/s', flops: matmulFlops(n) };
  }
  if (workload === 'conv-eager' && system !== 'jaxjs') throw new Error(`bench page: ${workload} is jax-js's eager conv only`);
  const c =
    system === 'fusediff'
      ? new FusediffConv('wasm')
      : system === 'tfjs'
        ? tfjsConv('wasm')
        : jaxjsConv(workload === 'conv-eager' ? 'eager' : 'jit');
  return { runner: { peer: c, setup: () => c.setup(CONV), run: () => c.run() }, unit: 'GFLOP/s', flops: convFlops(CONV) };
};

/**
 * fusediff's row label: the wasm backend's multiply-add (fused where this engine has relaxed SIMD, as the Node rows
 * say) and its thread count in this page (the shared backend the bench classes compile for)
 */
const fusediffBackend = (): string => {
  const threads = (backendFor('wasm') as { threads?: number }).threads ?? 1;
  const madd = wasmFeatures().fma ? 'fused multiply-add' : 'multiply then add';
  return `wasm (SIMD, ${madd}, ${threadWords(threads)}: the page + ${threads - 1} Web Worker${threads === 2 ? '' : 's'})`;
};

const api = {
  cores,
  /** the page's WebGPU adapter as the compiler describes it, or why there is none */
  async webgpuAdapter(): Promise<string> {
    const a = await prepareWebGPU();
    return a ? `${a.description}${a.software ? ' (a CPU implementation)' : ''}` : 'none: navigator.gpu found no adapter';
  },
  crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
  userAgent: navigator.userAgent,
  /** Web Workers live now, and started since the page loaded */
  workers: () => ({ live: liveWorkers.size, started: startedWorkers }),
  /** One row: setup, a pause for the workers to start, tinybench's timed runs, dispose. */
  async measure(system: SystemId, workload: WorkloadId, timing: Timing): Promise<PageRow> {
    const { runner, unit, flops } = runnerFor(system, workload);
    await (system === 'tfjs' ? tfjsEveryCore(() => runner.setup()) : runner.setup());
    let probeRelErr: number | undefined;
    if (runner.evalLoss) {
      // a system that computes another function reports no speed: the run records it as failed
      reference ??= referenceLoss(initParams(), eightGaussians(), probe.eps, probe.t);
      const got = await runner.evalLoss(probe.eps, probe.t);
      const verdict = probeVerdict({ before: got, reference });
      probeRelErr = verdict.relErr;
      if (!verdict.ok) {
        await runner.peer.dispose();
        throw new Error(`wrong results: ${verdict.reason}`);
      }
    }
    await new Promise((r) => setTimeout(r, timing.settle)); // a page's workers start only once its script yields
    const stats = await timeRuns(() => runner.run(), {
      time: timing.time,
      iterations: timing.iterations,
      warmup: timing.warmup,
      name: `${system} ${workload}`,
    });
    const rate = (ms: number) => (unit === 'samples/s' ? (1000 / ms) * BATCH : flops / ms / 1e6);
    const loss = runner.loss ? await runner.loss() : undefined;
    const workersWhileRunning = liveWorkers.size;
    const backend =
      system === 'fusediff'
        ? fusediffBackend()
        : system === 'gpujs-webgpu'
          ? "gpujs-webgpu (gpu.js's WebGPU path)"
          : system === 'tfjs' && (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'))
            ? `${runner.peer.backend}, threaded-SIMD binary`
            : runner.peer.backend;
    await runner.peer.dispose();
    return {
      system: runner.peer.system,
      systemId: system,
      backend: system === 'jaxjs' ? `${backend}, ${cores} Web Workers` : backend,
      workload,
      unit,
      value: rate(stats.p50Ms),
      valueAtMean: rate(stats.meanMs),
      medianMs: stats.p50Ms,
      meanMs: stats.meanMs,
      minMs: stats.minMs,
      maxMs: stats.maxMs,
      rmePercent: stats.rmePercent,
      runs: stats.runs,
      ...(loss !== undefined ? { loss } : {}),
      ...(probeRelErr !== undefined ? { probeRelErr } : {}),
      workersWhileRunning,
      workersAfterDispose: liveWorkers.size,
    };
  },
  /** fusediff's shutdownBackends(); the Web Workers live after it */
  async shutdown() {
    await shutdownBackends();
    return liveWorkers.size;
  },
};

export type BenchPageApi = typeof api;
(window as unknown as { fusediffBenchPage: BenchPageApi }).fusediffBenchPage = api;
