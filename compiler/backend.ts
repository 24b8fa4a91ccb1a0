// What a backend is to the compiler: an object that compiles kernels, moves buffers to and from the device, counts
// what it holds, and frees all of it on dispose(). Plans (Executables) borrow its kernels and give them back.
import type { Texture } from 'gpu.js';
import type { KernelSource } from './codegen/gpujs.ts';
import type { BackendName } from './backends/names.ts';
import type { FusedProgram } from './passes/fuse.ts';
import type { KernelIR } from './kernel/ir.ts';
import type { WasmPlan } from './wasm/plan.ts';
import type { GpuContext } from './webgpu/gpu.ts';
import type { Tuning } from './webgpu/tune.ts';

/** A device buffer: a typed array (cpu, webasm) or a texture (GL backends; on webgpu gpu.js's storage-buffer handle). */
export type DeviceBuffer = Float32Array | Texture;

/** What a kernel call returns: its output, or for a multi-output kernel { result, 0: first extra output, ... }. */
export type KernelOutput = DeviceBuffer | { readonly result: DeviceBuffer; readonly [extra: number]: DeviceBuffer };

export interface KernelOptions {
  /** output elements */
  readonly size: number;
  /** elements of each argument (gpu.js specialises a kernel to them) */
  readonly argSizes: readonly number[];
  /** on GL, return a fresh texture per call (for results that outlive the run) instead of overwriting one */
  readonly immutable: boolean;
  /** calls return promises; on webasm large kernels then split across gpu.js's worker pool */
  readonly asyncMode?: boolean;
  /** on GL a kernel owns its output texture, so kernels of different owners (plan positions) are never shared */
  readonly owner: string;
}

export interface BackendKernel {
  run(args: readonly DeviceBuffer[]): KernelOutput;
  /** for kernels compiled with asyncMode */
  runAsync(args: readonly DeviceBuffer[]): Promise<KernelOutput>;
  /** Why gpu.js moved this kernel to its CPU path, if it did; known once the kernel has run (it builds on first call). */
  fallbackReason(): string | undefined;
}

/** What a backend holds now (`Backend.counters()`): kernels, gpu.js kernel objects, GL textures and buffers. */
export interface BackendCounters {
  /** kernels compiled and not yet released by every plan that uses them */
  readonly kernels: number;
  /** gpu.js's own kernel objects (a kernel whose argument types change gets another one) */
  readonly engineKernels: number;
  /** GL textures alive in this backend's context (0 off GL) */
  readonly textures: number;
  /** buffers from allocate/upload not yet freed */
  readonly buffers: number;
}

/** One gpu.js kernel object as the page's diagnostics show it. */
export interface KernelInfo {
  /** 'webgl2' when it runs in a WebGL2 context, else gpu.js's mode for it ('headlessgl', 'webgl', 'webasm', 'cpu') */
  readonly context: string;
  readonly fellBack: boolean;
}

/** What every backend does: move buffers, count what it holds, free it all. */
export interface BackendBase {
  readonly name: BackendName;
  /** results stay on the device in textures (pipeline mode) */
  readonly gl: boolean;
  readonly disposed: boolean;
  /** A zero-filled device buffer of `length` values. */
  allocate(length: number): DeviceBuffer;
  /** A device buffer holding a copy of `data`. */
  upload(data: Float32Array): DeviceBuffer;
  /** The first `length` values of a device buffer (throws on webgpu, which reads only asynchronously). */
  read(buffer: DeviceBuffer, length: number): Float32Array;
  /** The same without blocking: on webgpu a mapAsync copy, elsewhere read(). */
  readAsync(buffer: DeviceBuffer, length: number): Promise<Float32Array>;
  /** Frees a device buffer (deletes a texture; typed arrays are left to the GC). */
  free(buffer: DeviceBuffer): void;
  counters(): BackendCounters;
  kernelInfo(): readonly KernelInfo[];
  /** Destroys every kernel, buffer and context this backend holds; plans compiled on it cannot run afterwards. */
  dispose(): Promise<void>;
}

/** A backend that runs gpu.js kernels, one per fused kernel, compiled from gpu.js source. */
export interface KernelBackend extends BackendBase {
  readonly kind: 'kernels';
  /** A kernel for this source and sizes; identical requests share one, counted per use until released. */
  compileKernel(source: KernelSource, options: KernelOptions): BackendKernel;
  /** Ends one use of a kernel; the last use destroys it with its GL resources (or worker pool). */
  releaseKernel(kernel: BackendKernel): void;
}

/** A backend that compiles a whole plan at once from the kernels' IR (the compiler's own WebAssembly). */
export interface PlanBackend extends BackendBase {
  readonly kind: 'plans';
  /** threads a plan's large kernels are split over */
  readonly threads: number;
  compilePlan(program: FusedProgram, irs: readonly KernelIR[]): WasmPlan;
  /** Frees a plan (its worker threads; its memory goes with the last reference). */
  releasePlan(plan: WasmPlan): void;
}

/** The compiler's own WGSL backend (./webgpu/): compile() prints and runs its plans itself; the backend owns the GPU objects. */
export interface WgslPlanBackend extends BackendBase {
  readonly kind: 'wgsl';
  /** overrides of the tuner's thresholds (./webgpu/tune.ts; tests force every path on small shapes) */
  readonly tuning?: Tuning | undefined;
  /** the device and its limits (throws once disposed) */
  context(): GpuContext;
  /** a compute pipeline for this WGSL text (cached by the text) */
  pipeline(code: string): GPUComputePipeline;
  createBuffer(bytes: number, usage: number): GPUBuffer;
  destroyBuffer(buffer: GPUBuffer): void;
  /** a mapped-read buffer of at least `bytes` from the backend's pool, and its return */
  staging(bytes: number): GPUBuffer;
  returnStaging(buffer: GPUBuffer): void;
  /** a plan of `kernels` kernels was compiled / disposed */
  addPlan(kernels: number): void;
  releasePlan(kernels: number): void;
}

/**
 * A backend object: it owns its kernels or plans and its device memory, and `dispose()` frees them. gpu.js backends
 * compile one kernel per fused kernel; `wasm` and `webgpu` compile whole plans.
 */
export type Backend = KernelBackend | PlanBackend | WgslPlanBackend;
