// A compiled plan on the wasm backend: every buffer of the fused program (inputs, constants, kernel outputs) has
// a fixed, 16-byte aligned place in one WebAssembly.Memory, and one module holds one function per kernel with
// those places as constants. Nothing is copied between kernels; a run copies the given inputs in and the
// requested outputs out.
import { size } from '../../core/shape.ts';
import type { FusedProgram } from '../passes/fuse.ts';
import { reductionOf, type KernelIR } from '../kernel/ir.ts';
import { unclampGuarded } from '../kernel/unclamp.ts';
import { encodeModule, FunctionBody, type ModuleFunction } from './encoder.ts';
import { callRange, chooseTiling, emitKernel, scratchBytesOf, type Tiling } from './emitKernel.ts';
import { wasmFeatures } from './features.ts';
import { chunksOf, scheduleWaves, splitRange, type KernelTask, type Wave } from './schedule.ts';
import { createThreadPool, MAX_TASKS, threadsSupported, type ThreadPool } from './threads.ts';

const PAGE = 65536;
/** bytes kept free before the first and after the last buffer */
const MARGIN = PAGE;
/** addresses are i32 and kept below 2^31 (signed arithmetic on offsets stays exact) */
export const MAX_PLAN_BYTES = 2 ** 31 - PAGE;

export class WasmPlanError extends Error {
  override readonly name = 'WasmPlanError';
}

export interface WasmPlan {
  readonly memory: WebAssembly.Memory;
  /** byte offset of each materialised node's buffer */
  readonly offsets: ReadonlyMap<number, number>;
  readonly kernelCount: number;
  /** runs kernel i (on every thread of the plan) */
  runKernel(i: number): void;
  /** runs every kernel, a wave of independent kernels at a time (schedule.ts): one meeting of the threads per wave */
  runAll(): void;
  /** the waves runAll runs (the kernel count on one thread) */
  readonly waves: number;
  /** threads that compute a share of each large kernel (1: the calling thread only) */
  readonly threads: number;
  /** waves (or single kernels) shared with the worker threads so far */
  splitCalls(): number;
  readonly tilings: readonly Tiling[];
  /** whether the reduction loops use relaxed SIMD's multiply-add, and why */
  readonly fma: boolean;
  readonly fmaReason: string;
  /** the threads' scratch for packed panels: bytes from `base` (kernels write there besides their outputs) */
  readonly scratch: { readonly base: number; readonly bytes: number };
  /** bytes of the memory the plan uses */
  readonly bytes: number;
  /** a view of node `id`'s buffer (valid until the memory grows; this plan's never does) */
  view(id: number): Float32Array;
  /**
   * copies node `from`'s buffer over node `to`'s (the same size) with the module's memory.copy: a training step's new
   * state over the old, 2.5x faster than a typed array's set on a shared memory (1.8 MB: 0.05 against 0.12 ms here)
   */
  copy(to: number, from: number): void;
  /** stops the worker threads */
  dispose(): void;
}

export interface WasmPlanOptions {
  /** threads to split large kernels over (default 1); more than 1 needs worker_threads or a cross-origin isolated page */
  readonly threads?: number;
  /** sums of products use relaxed SIMD's multiply-add (default: where the engine has it, see features.ts) */
  readonly fma?: boolean;
  /** bytes a packed panel may take (default PANEL_BYTES, about half a core's L2); small values force packing in tests */
  readonly panelBytes?: number;
}

/** Kernels below this many multiply-adds (output elements x reduction length) run on the calling thread alone. */
const PARALLEL_WORK = 1 << 15;

/** multiply-adds of a kernel: output elements x the length of its reduction */
const workOf = (ir: KernelIR): number => {
  const r = reductionOf(ir);
  const red = r ? r.vars.reduce((a, v) => a * ir.vars.get(v)!.extent, 1) : 1;
  return ir.shape.reduce((a, b) => a * b, 1) * red;
};

export const buildWasmPlan = (prog: FusedProgram, irs: readonly KernelIR[], options: WasmPlanOptions = {}): WasmPlan => {
  const threads = Math.max(1, Math.floor(options.threads ?? 1));
  const fma = options.fma ?? wasmFeatures().fma;
  const fmaReason = options.fma === undefined ? wasmFeatures().fmaReason : `fma: ${options.fma} requested`;
  const shared = threads > 1 && threadsSupported();
  const { graph } = prog;
  const offsets = new Map<number, number>();
  // a margin before the first and after the last buffer: a guarded load (a conv2d's padding) may read a little
  // outside its buffer, and the value is discarded, but the address must stay inside the memory
  let end = MARGIN;
  for (const n of graph.nodes) {
    if (!prog.materialized.has(n.id)) continue;
    offsets.set(n.id, end);
    end += Math.ceil((4 * size(n.shape)) / 16) * 16;
  }
  const sizeOf = (id: number) => size(graph.nodes[id].shape);
  const unclamped = irs.map((ir) => unclampGuarded(ir, MARGIN / 4, sizeOf));
  const tilings = unclamped.map((ir) => chooseTiling(ir, options.panelBytes));
  // each thread's scratch for packed panels, after the buffers (a guarded load's overreach may read it: harmless)
  const scratchPerThread = Math.ceil(Math.max(0, ...unclamped.map((ir, i) => scratchBytesOf(ir, tilings[i]))) / 16) * 16;
  const scratch = { base: end, bytesPerThread: scratchPerThread };
  end += threads * scratchPerThread;
  end += MARGIN;
  if (end > MAX_PLAN_BYTES)
    throw new WasmPlanError(
      `the wasm backend cannot hold this plan: its buffers take ${end} bytes, ` +
        `more than the ${MAX_PLAN_BYTES} a 32-bit memory addresses here`,
    );
  const pages = Math.max(1, Math.ceil(end / PAGE));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  const layout = {
    scratch,
    offsetOf: (id: number) => {
      const off = offsets.get(id);
      if (off === undefined) throw new Error(`wasm plan: node %${id} has no buffer`);
      return off;
    },
  };
  const functions: ModuleFunction[] = prog.kernels.map((k, i) => ({
    name: `k${i}`,
    body: emitKernel(unclamped[i], layout, { root: k.root, extras: k.extraOutputs ?? [] }, tilings[i], { fma }),
  }));
  const copyBody = new FunctionBody(['i32', 'i32', 'i32']).get(0).get(1).get(2).memoryCopy();
  const module = new WebAssembly.Module(
    encodeModule([...functions, { name: 'copy', body: copyBody }], { minPages: pages, maxPages: pages, shared }),
  );
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const kernels = functions.map((fn) => instance.exports[fn.name] as (lo: number, hi: number, thread?: number) => void);
  const copyBytes = instance.exports.copy as (to: number, from: number, bytes: number) => void;
  const pool: ThreadPool | undefined = shared ? createThreadPool(threads, module, memory) : undefined;
  const ranges = irs.map((ir, i) => callRange(ir, tilings[i]));
  const extents = ranges.map((r) => r.extent);
  const steps = ranges.map((r) => r.step);
  const parallel = irs.map((ir, i) => pool !== undefined && workOf(ir) >= PARALLEL_WORK && extents[i] >= 2 * steps[i]);
  const tasks: KernelTask[] = prog.kernels.map((k, i) => ({
    reads: irs[i].reads,
    writes: [k.root, ...(k.extraOutputs ?? [])],
    work: workOf(irs[i]),
    extent: extents[i],
    step: steps[i],
    split: parallel[i],
  }));
  const threadCount = pool ? pool.workers + 1 : 1;
  const waves = pool ? scheduleWaves(tasks, threadCount, MAX_TASKS) : [];
  /** each split kernel as a wave of its own (runKernel: profiling, checkNaN), made once */
  const alone = parallel.map((split, i): Wave | undefined =>
    split
      ? splitRange(extents[i], steps[i], chunksOf(tasks[i], threadCount))
          .filter(([lo, hi]) => lo < hi)
          .map(([lo, hi]) => [i, lo, hi] as const)
      : undefined,
  );
  const runItem = (k: number, lo: number, hi: number) => kernels[k](lo, hi, 0);
  /** a wave of one task runs on the calling thread without waking the workers */
  const runWave = (wave: Wave) => (wave.length === 1 ? runItem(...wave[0]) : pool!.runWave(wave, runItem));
  for (const n of graph.nodes)
    if (n.op === 'constant' && offsets.has(n.id)) new Float32Array(memory.buffer, offsets.get(n.id)!, size(n.shape)).set(n.attrs.value);
  return {
    memory,
    offsets,
    kernelCount: kernels.length,
    runKernel: (i) => (alone[i] ? runWave(alone[i]) : runItem(i, 0, extents[i])),
    runAll: () => (pool ? waves.forEach(runWave) : kernels.forEach((_, i) => runItem(i, 0, extents[i]))),
    waves: pool ? waves.length : kernels.length,
    threads: threadCount,
    splitCalls: () => pool?.splitCalls ?? 0,
    tilings,
    fma,
    fmaReason,
    scratch: { base: scratch.base, bytes: threads * scratchPerThread },
    bytes: end,
    view: (id) => new Float32Array(memory.buffer, layout.offsetOf(id), size(graph.nodes[id].shape)),
    copy: (to, from) => {
      const n = size(graph.nodes[to].shape);
      if (n !== size(graph.nodes[from].shape)) throw new Error(`wasm plan: copy of %${from} over %${to}, of different sizes`);
      copyBytes(layout.offsetOf(to), layout.offsetOf(from), 4 * n);
    },
    dispose: () => pool?.dispose(),
  };
};
