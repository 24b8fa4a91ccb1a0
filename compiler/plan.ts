// What a compiled plan offers its users, whichever backend runs it: run it (on device buffers or to the host), read
// buffers back, inspect its kernels and memory, and free it.
import type { NDArray } from '../core/ndarray.ts';
import type { Shape } from '../core/shape.ts';
import type { Backend, DeviceBuffer } from './backend.ts';
import type { BackendName } from './backends/names.ts';
import type { KernelFallback } from './fallbacks.ts';
import type { CompiledKernel } from './kernel.ts';
import type { BufferPlan } from './memoryPlan.ts';
import type { FusedProgram } from './passes/fuse.ts';

/** Options of one `runDevice` / `runDeviceAsync` call. */
export interface RunDeviceOptions {
  /**
   * Output name -> a Float32Array of the caller's, of exactly the output's size, that receives the output; the run
   * returns that array in the output's place. On wasm this skips making a fresh copy of the output on every run (for
   * a large output, a copy costs more than its kernel may). The plan writes the array only during the calls it is
   * given to, so its values stay valid until the caller passes it again. Checked before the run: an unknown or
   * fed-back output, another array type or another length throws an Error naming the output.
   */
  readonly into?: Readonly<Record<string, Float32Array>>;
}

/**
 * A compiled plan (`compile`): run it on host arrays or device buffers, read buffers back, inspect its kernels and
 * memory plan, `dispose()` it.
 */
export interface Executable {
  readonly backend: BackendName;
  /** the Backend object whose kernels this plan uses */
  readonly device: Backend;
  /** why this backend (requested, or auto's choice), and which kernels gpu.js moved to its CPU path once they ran */
  readonly backendReason: string;
  /** kernels gpu.js moved to its CPU path (known once they have run) */
  readonly fallbacks: readonly KernelFallback[];
  readonly program: FusedProgram;
  readonly kernels: readonly CompiledKernel[];
  readonly memory: BufferPlan;
  /** input name -> shape */
  readonly inputs: ReadonlyMap<string, Shape>;
  /**
   * Runs the plan; inputs may be host arrays or device buffers from an earlier run; returns device buffers (on wasm,
   * fresh Float32Array copies, or the caller's own arrays with `options.into`).
   */
  runDevice(
    inputs: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>,
    options?: RunDeviceOptions,
  ): Record<string, DeviceBuffer>;
  /**
   * Like runDevice, awaiting each kernel: on webasm, kernels of 4096 or more elements then split across
   * gpu.js's worker pool (threads over shared wasm memory); other backends run as in runDevice.
   */
  runDeviceAsync(
    inputs: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>,
    options?: RunDeviceOptions,
  ): Promise<Record<string, DeviceBuffer>>;
  /** Runs and reads the outputs back to the host (throws on webgpu: use runAsync). */
  run(inputs: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>, only?: readonly string[]): Record<string, NDArray>;
  /** milliseconds spent in each kernel call, summed over runs (with `profile: true`) */
  readonly profile: Float64Array;
  /** runDeviceAsync, then reads the outputs back without blocking (the only way on webgpu). */
  runAsync(
    inputs: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>,
    only?: readonly string[],
  ): Promise<Record<string, NDArray>>;
  /** Reads one device buffer back as float32 values (throws on webgpu: use readAsync). */
  read(buffer: DeviceBuffer, shape: Shape): Float32Array;
  /** Reads one device buffer back without blocking (a mapAsync copy on webgpu). */
  readAsync(buffer: DeviceBuffer, shape: Shape): Promise<Float32Array>;
  /**
   * Plan backends (wasm) with `feedback` outputs (CompileOptions): moves each feedback output into its input's place
   * in the plan's memory, for the next run (a copy within the memory; runDevice left those outputs there and returned
   * none of them). Absent on backends that return every output.
   */
  adoptFeedback?(): void;
  /**
   * webgpu: runs with these inputs and, in the same submission, adopts the feedback outputs on the GPU when output
   * `gate` is finite and no earlier gated run failed since the last resetGate(); resolves with the gate's value. Runs
   * may overlap: each is submitted at once, and its value is read back while later runs proceed.
   */
  runGated?(inputs: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>, gate: string): Promise<number>;
  /** webgpu: after a gated run with a non-finite gate, lets later runs adopt their feedback again. */
  resetGate?(): void;
  /** webgpu: a copy of an input's current value, read without blocking (the feedback inputs hold the state). */
  readInputAsync?(name: string): Promise<Float32Array>;
  /** Plan backends: kernel calls so far that were split over worker threads (0 while a page's workers start) */
  splitKernelCalls?(): number;
  /** Plan backends: a copy of an input's current value (the feedback inputs hold the state between runs). */
  readInput?(name: string): Float32Array;
  /** Textures returned by this plan's runs and not yet released (0 off GL). */
  heldBuffers(): number;
  readonly disposed: boolean;
  /**
   * Frees the plan: the textures its runs returned that are still alive (they cannot be read without its kernels),
   * then its kernels (a kernel shared with another plan lives on until that one is disposed too). Runs then throw.
   */
  dispose(): void;
}
