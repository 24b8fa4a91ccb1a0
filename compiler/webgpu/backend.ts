// The WGSL backend as a Backend object: it owns the GPU objects its plans use (pipelines cached by WGSL text, the
// plans' arenas, a pool of mapped buffers for readback), counts them, and destroys them all on dispose(). Buffers it
// hands to the rest of the project are host Float32Arrays: a plan copies them in and out.
import type { BackendCounters, DeviceBuffer, KernelInfo, WgslPlanBackend } from '../backend.ts';
import { USAGE, gpuContext, type GpuContext } from './gpu.ts';
import type { Tuning } from './tune.ts';

export class WgslBackend implements WgslPlanBackend {
  readonly kind = 'wgsl';
  readonly name = 'webgpu';
  readonly gl = false;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly live = new Set<GPUBuffer>();
  private readonly freeStaging: GPUBuffer[] = [];
  private plans = 0;
  private kernels = 0;
  private hostBuffers = 0;
  private isDisposed = false;

  constructor(
    private readonly ctx: GpuContext | undefined = gpuContext(),
    /** overrides of the tuner's thresholds (tune.ts; by default they follow the adapter) */
    readonly tuning?: Tuning,
  ) {
    if (!ctx) throw new Error('webgpu backend: no GPU device; await prepareWebGPU() first (and check it found an adapter)');
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  context(): GpuContext {
    if (this.isDisposed || !this.ctx) throw new Error('webgpu backend: disposed');
    return this.ctx;
  }

  /** A compute pipeline for this WGSL (one per distinct text); shader errors throw with the compiler's messages. */
  pipeline(code: string): GPUComputePipeline {
    const hit = this.pipelines.get(code);
    if (hit) return hit;
    const { device } = this.context();
    const module = device.createShaderModule({ code });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    this.pipelines.set(code, pipeline);
    return pipeline;
  }

  createBuffer(bytes: number, usage: number): GPUBuffer {
    const b = this.context().device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    this.live.add(b);
    return b;
  }

  destroyBuffer(b: GPUBuffer): void {
    if (!this.live.delete(b)) return;
    b.destroy();
  }

  /** A mapped-read buffer of at least `bytes` from the pool (sizes are powers of two from 256 bytes). */
  staging(bytes: number): GPUBuffer {
    const i = this.freeStaging.findIndex((b) => b.size >= bytes);
    if (i >= 0) return this.freeStaging.splice(i, 1)[0];
    return this.createBuffer(Math.max(256, 2 ** Math.ceil(Math.log2(bytes))), USAGE.MAP_READ | USAGE.COPY_DST);
  }

  returnStaging(b: GPUBuffer): void {
    if (!this.live.has(b)) return;
    // a few are kept for the next runs; the rest are freed
    if (this.freeStaging.length < 8) this.freeStaging.push(b);
    else this.destroyBuffer(b);
  }

  addPlan(kernels: number): void {
    this.plans++;
    this.kernels += kernels;
  }

  releasePlan(kernels: number): void {
    if (this.plans > 0) this.plans--;
    this.kernels = Math.max(0, this.kernels - kernels);
    if (this.plans === 0) for (const b of this.freeStaging.splice(0)) this.destroyBuffer(b);
  }

  /** GPU buffers alive (arenas, flags, pooled readback buffers): 0 once every plan is disposed. */
  gpuBuffers(): number {
    return this.live.size;
  }

  allocate(length: number): DeviceBuffer {
    this.hostBuffers++;
    return new Float32Array(length);
  }

  upload(data: Float32Array): DeviceBuffer {
    this.hostBuffers++;
    return Float32Array.from(data);
  }

  read(buffer: DeviceBuffer, length: number): Float32Array {
    if (!(buffer instanceof Float32Array)) throw new Error('webgpu backend: only the Float32Arrays its plans return can be read');
    return buffer.length === length ? buffer : buffer.subarray(0, length);
  }

  async readAsync(buffer: DeviceBuffer, length: number): Promise<Float32Array> {
    return this.read(buffer, length);
  }

  free(buffer: DeviceBuffer): void {
    if (buffer instanceof Float32Array && this.hostBuffers > 0) this.hostBuffers--;
  }

  counters(): BackendCounters {
    return { kernels: this.kernels, engineKernels: this.pipelines.size, textures: 0, buffers: this.hostBuffers + this.live.size };
  }

  kernelInfo(): readonly KernelInfo[] {
    return Array.from({ length: this.kernels }, () => ({ context: 'webgpu', fellBack: false }));
  }

  async dispose(): Promise<void> {
    if (this.isDisposed) return;
    for (const b of this.live) b.destroy();
    this.live.clear();
    this.freeStaging.length = 0;
    this.pipelines.clear();
    this.plans = 0;
    this.kernels = 0;
    this.isDisposed = true;
  }
}
