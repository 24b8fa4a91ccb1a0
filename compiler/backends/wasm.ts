// The compiler's own WebAssembly backend as a Backend object: plans (one module and one memory each, see
// ../wasm/plan.ts) are what it compiles; buffers are host Float32Arrays (the plan copies them in and out).
import type { KernelIR } from '../kernel/ir.ts';
import type { FusedProgram } from '../passes/fuse.ts';
import { buildWasmPlan, type WasmPlan, type WasmPlanOptions } from '../wasm/plan.ts';
import { machineCores, threadsSupported } from '../wasm/threads.ts';
import type { BackendCounters, DeviceBuffer, KernelInfo, PlanBackend } from '../backend.ts';

/** The cores of this machine (Node) or the browser's hardwareConcurrency; 1 where threads cannot run. */
export const defaultThreads = (): number => (threadsSupported() ? machineCores() : 1);

export class WasmBackend implements PlanBackend {
  readonly kind = 'plans';
  readonly name = 'wasm';
  readonly gl = false;
  readonly threads: number;
  private readonly planOptions: WasmPlanOptions;
  private readonly plans = new Set<WasmPlan>();
  private buffers = 0;
  private isDisposed = false;

  /** threads: default the cores; fma and panelBytes: see WasmPlanOptions (defaults: detected, about half an L2) */
  constructor(options: WasmPlanOptions = {}) {
    this.threads = Math.max(1, Math.floor(options.threads ?? defaultThreads()));
    this.planOptions = { ...options, threads: this.threads };
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  compilePlan(program: FusedProgram, irs: readonly KernelIR[]): WasmPlan {
    if (this.isDisposed) throw new Error('wasm backend: disposed');
    const plan = buildWasmPlan(program, irs, this.planOptions);
    this.plans.add(plan);
    return plan;
  }

  releasePlan(plan: WasmPlan): void {
    if (!this.plans.delete(plan)) return;
    plan.dispose();
  }

  allocate(length: number): DeviceBuffer {
    this.buffers++;
    return new Float32Array(length);
  }

  upload(data: Float32Array): DeviceBuffer {
    this.buffers++;
    return Float32Array.from(data);
  }

  read(buffer: DeviceBuffer, length: number): Float32Array {
    if (!(buffer instanceof Float32Array)) throw new Error('wasm backend: a GL texture cannot be read here');
    return buffer.length === length ? buffer : buffer.subarray(0, length);
  }

  async readAsync(buffer: DeviceBuffer, length: number): Promise<Float32Array> {
    return this.read(buffer, length);
  }

  free(buffer: DeviceBuffer): void {
    if (buffer instanceof Float32Array && this.buffers > 0) this.buffers--;
  }

  counters(): BackendCounters {
    const kernels = [...this.plans].reduce((n, p) => n + p.kernelCount, 0);
    return { kernels, engineKernels: kernels, textures: 0, buffers: this.buffers };
  }

  kernelInfo(): readonly KernelInfo[] {
    return [...this.plans].flatMap((p) => Array.from({ length: p.kernelCount }, () => ({ context: 'wasm', fellBack: false })));
  }

  async dispose(): Promise<void> {
    for (const p of this.plans) p.dispose();
    this.plans.clear();
    this.buffers = 0;
    this.isDisposed = true;
  }
}
