// The gpu.js backends as Backend objects. Each owns one gpu.js GPU: its kernels (cached by source and sizes and
// counted per use), its GL context and the textures in it, and webasm's worker pools; dispose() frees them all.
// On webgpu gpu.js compiles the same kernel source to WGSL compute shaders over storage buffers; its kernels run
// only asynchronously (their first call builds the pipeline, reading back needs mapAsync).
import { GPU, type IKernelRunShortcut, type Texture } from 'gpu.js';
import { rngEntryPoint, rngFunctionSources } from '../../core/rng.ts';
import { wgslNanStandIn, type KernelSource } from '../codegen/gpujs.ts';
import type { KernelBackend, BackendCounters, BackendKernel, DeviceBuffer, KernelInfo, KernelOptions, KernelOutput } from '../backend.ts';
import { countTextures, type TextureCount } from './glTextures.ts';
import { isGL, isResident, probeBackend, type Availability, type BackendName } from './names.ts';
import { useNanTest } from './webgpuKernel.ts';

/** The parts of gpu.js's kernel objects (outside its typings) that ownership and fallback detection read. */
interface EngineKernel {
  fallbackRequested?: boolean;
  fallbackReason?: string | null;
  /** set by GPU.createKernel, shared by every kernel object one shortcut switches between */
  onRequestSwitchKernel?: unknown;
  context?: unknown;
  readonly constructor: { readonly mode?: string };
  destroy(removeCanvasReferences?: boolean): void;
}
interface Shortcut {
  (...args: unknown[]): unknown;
  readonly kernel: EngineKernel;
}
interface Engine {
  readonly kernels: EngineKernel[];
  readonly context: object | null;
  readonly Kernel: { destroyContext?(context: object): void } | null;
}

/** The RNG's JS helper source as GLSL: every value is a float, Math.f is the built-in f. */
export const toGLSL = (src: string): string =>
  src
    .replace(
      /function (\w+)\(([^)]*)\)/,
      (_, name: string, params: string) =>
        `float ${name}(${params
          .split(',')
          .map((p) => `float ${p.trim()}`)
          .join(', ')})`,
    )
    .replace(/\b(const|let) /g, 'float ')
    .replace(/Math\.(\w+)/g, '$1');

const isTexture = (b: DeviceBuffer): b is Texture => !(b instanceof Float32Array);

class GpuJsKernel implements BackendKernel {
  /** the kernel object gpu.js built first; a fallback or an argument-type switch replaces shortcut.kernel */
  readonly first: EngineKernel;
  refs = 1;

  constructor(
    readonly key: string,
    readonly shortcut: Shortcut,
    private readonly mode: BackendName,
  ) {
    this.first = shortcut.kernel;
  }

  run(args: readonly DeviceBuffer[]): KernelOutput {
    return this.shortcut(...args) as KernelOutput;
  }

  runAsync(args: readonly DeviceBuffer[]): Promise<KernelOutput> {
    return this.shortcut(...args) as Promise<KernelOutput>;
  }

  fallbackReason(): string | undefined {
    const now = this.shortcut.kernel;
    const fell = this.first.fallbackRequested || now.fallbackRequested || (this.mode !== 'cpu' && now.constructor.mode === 'cpu');
    return fell ? (now.fallbackReason ?? this.first.fallbackReason ?? 'gpu.js gave no reason') : undefined;
  }

  /** Destroys every gpu.js kernel object this kernel used and takes them out of the GPU's list. */
  destroy(engine: Engine): void {
    const hook = this.first.onRequestSwitchKernel;
    const mine = new Set([
      this.first,
      ...engine.kernels.filter((k) => hook !== undefined && k.onRequestSwitchKernel === hook),
      this.shortcut.kernel,
    ]);
    // newest first: a later kernel holds textures made by an earlier one, and deleting a texture asks its maker,
    // which skips the delete once its own context reference is gone
    for (const k of [...mine].reverse()) k.destroy();
    // the cpu kernel's destroy() leaves itself in the list; the GL and webasm ones splice themselves out
    for (let i = engine.kernels.length - 1; i >= 0; i--) if (mine.has(engine.kernels[i])) engine.kernels.splice(i, 1);
  }
}

/**
 * A kernel computing four outputs per thread (KernelSource.lanes): it writes one RGBA texel per thread, and an
 * unpack kernel copies the texels into the one-value-per-texel layout every other kernel reads. The packed texture
 * is overwritten each call (it is consumed at once); the unpacked one follows the kernel's options.
 */
class LanedKernel implements BackendKernel {
  refs = 1;
  constructor(
    readonly key: string,
    private readonly packed: GpuJsKernel,
    private readonly unpack: GpuJsKernel,
  ) {}

  run(args: readonly DeviceBuffer[]): KernelOutput {
    return this.unpack.run([this.packed.run(args) as DeviceBuffer]);
  }

  async runAsync(args: readonly DeviceBuffer[]): Promise<KernelOutput> {
    return this.unpack.runAsync([(await this.packed.runAsync(args)) as DeviceBuffer]);
  }

  fallbackReason(): string | undefined {
    return this.packed.fallbackReason() ?? this.unpack.fallbackReason();
  }

  destroy(engine: Engine): void {
    this.unpack.destroy(engine);
    this.packed.destroy(engine);
  }
}

/** texel floor(t / 4), component t mod 4 (GLSL indexes a vector by constants only, so the component is chosen) */
const UNPACK =
  'function (a) { const t = this.thread.x * 1.0; const q = Math.floor((t + 0.5) / 4.0); const c = t - q * 4.0; const v = a[q]; ' +
  'return c < 0.5 ? v[0] : (c < 1.5 ? v[1] : (c < 2.5 ? v[2] : v[3])); }';

const UPLOAD: KernelSource = { source: 'function (a) { return a[this.thread.x]; }', args: [], subKernels: [] };
const kernelKey = (gl: boolean, src: KernelSource, o: KernelOptions): string =>
  [gl ? o.owner : '', o.size, o.argSizes, o.immutable, o.asyncMode ?? false, src.lanes ?? 1, src.source, ...src.subKernels].join('|');
const uploadKey = (length: number): string =>
  kernelKey(true, UPLOAD, { size: length, argSizes: [length], immutable: true, owner: `upload:${length}` });
const outputLength = (b: DeviceBuffer): number => (b instanceof Float32Array ? b.length : (b as unknown as { output: number[] }).output[0]);

export class GpuJsBackend implements KernelBackend {
  readonly kind = 'kernels';
  static probe(name: BackendName): Availability {
    return probeBackend(name);
  }

  readonly gl: boolean;
  /** results stay on the device (GL textures, WebGPU storage buffers: gpu.js pipeline mode) */
  readonly resident: boolean;
  private readonly gpu: GPU;
  private readonly cache = new Map<string, GpuJsKernel | LanedKernel>();
  /** buffers from allocate/upload that free() has not seen (textures deleted elsewhere drop out when counted) */
  private readonly uploads = new Set<DeviceBuffer>();
  private textures?: TextureCount;
  private isDisposed = false;

  constructor(readonly name: Exclude<BackendName, 'wasm' | 'webgpu'>) {
    const { available, reason } = probeBackend(name);
    if (!available) throw new Error(`backend '${name}' is not available here: ${reason}`);
    this.gl = isGL(name);
    this.resident = isResident(name);
    // gpujs-webgpu is gpu.js's own 'webgpu' mode
    this.gpu = new GPU({ mode: name === 'gpujs-webgpu' ? 'webgpu' : name });
    // On GL the helpers go in as GLSL, in dependency order (gpu.js's own translation emits callers before
    // callees, which GLSL rejects); the GLSL is a mechanical rewrite of the same source text. gpu.js translates
    // the JS helpers to WGSL itself (webgpu has no native functions).
    if (this.gl) this.gpu.addNativeFunction(rngEntryPoint, rngFunctionSources.map(toGLSL).join('\n'));
    else for (const src of rngFunctionSources) this.gpu.addFunction(src as never);
    if (name === 'gpujs-webgpu') {
      this.gpu.addFunction(wgslNanStandIn as never);
      useNanTest(this.gpu);
    }
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  private get engine(): Engine {
    return this.gpu as unknown as Engine;
  }

  /**
   * gpu.js specialises a kernel to its argument sizes, so the cache key holds them with the source. On GL a
   * mutable kernel returns the same texture every call and overwrites it, which is right for intermediates
   * (consumed within the run) but not for outputs that outlive the run (parameters, optimizer state, results):
   * those kernels are immutable, return a fresh texture per call, and their old textures are deleted by the owner.
   */
  compileKernel(src: KernelSource, o: KernelOptions): BackendKernel {
    if (this.isDisposed) throw new Error(`backend ${this.name} was disposed; create another to compile on it`);
    const asyncMode = o.asyncMode ?? false;
    const key = kernelKey(this.resident, src, o);
    const cached = this.cache.get(key);
    if (cached) {
      cached.refs++;
      return cached;
    }
    const lanes = src.lanes ?? 1;
    if (lanes > 1 && (!this.gl || src.subKernels.length > 0 || o.size % lanes !== 0))
      throw new Error(`backend ${this.name}: a kernel of ${lanes} lanes needs GL, one output and a size divisible by ${lanes}`);
    const common = {
      precision: 'single',
      tactic: 'precision',
      pipeline: this.resident,
      asyncMode,
      loopMaxIterations: 1 << 30, // loops carry literal bounds; this only guards against gpu.js's default cap
    };
    const settings = {
      ...common,
      output: [o.size / lanes],
      immutable: o.immutable,
      ...(lanes > 1 ? { returnType: 'Array(4)', immutable: false } : {}),
    } as never;
    const run = src.subKernels.length
      ? (this.gpu.createKernelMap([...src.subKernels] as never, src.source as never, settings) as unknown as IKernelRunShortcut)
      : this.gpu.createKernel(src.source as never, settings);
    // the GPU's context exists once its first kernel does, and no texture is made before a kernel first runs
    if (this.gl && !this.textures && this.engine.context) this.textures = countTextures(this.engine.context);
    let kernel: GpuJsKernel | LanedKernel = new GpuJsKernel(key, run as unknown as Shortcut, this.name);
    if (lanes > 1) {
      const unpack = this.gpu.createKernel(UNPACK as never, { ...common, output: [o.size], immutable: o.immutable } as never);
      kernel = new LanedKernel(key, kernel, new GpuJsKernel(`${key}|unpack`, unpack as unknown as Shortcut, this.name));
    }
    this.cache.set(key, kernel);
    return kernel;
  }

  releaseKernel(kernel: BackendKernel): void {
    const k = kernel as GpuJsKernel | LanedKernel;
    if (this.isDisposed || this.cache.get(k.key) !== k || --k.refs > 0) return;
    this.cache.delete(k.key);
    k.destroy(this.engine);
  }

  allocate(length: number): DeviceBuffer {
    return this.upload(new Float32Array(length));
  }

  /**
   * Off GL a copy of the array; on GL the texture an identity kernel (one per size, kept while its buffers live)
   * writes. On webgpu a copy too: its kernels take host arrays and upload them per call (a kernel there runs only
   * asynchronously, and upload is sync).
   */
  upload(data: Float32Array): DeviceBuffer {
    if (this.isDisposed) throw new Error(`backend ${this.name} was disposed; create another to upload to it`);
    const buffer = this.gl ? (this.uploader(data.length).run([data]) as DeviceBuffer) : Float32Array.from(data);
    this.uploads.add(buffer);
    return buffer;
  }

  private uploader(length: number): BackendKernel {
    return (
      this.cache.get(uploadKey(length)) ??
      this.compileKernel(UPLOAD, { size: length, argSizes: [length], immutable: true, owner: `upload:${length}` })
    );
  }

  read(buffer: DeviceBuffer, length: number): Float32Array {
    if (!isTexture(buffer)) return buffer.length === length ? buffer : buffer.subarray(0, length);
    if (this.name === 'gpujs-webgpu') throw new Error('webgpu reads device buffers only asynchronously: use readAsync');
    const arr = buffer.toArray() as unknown as Float32Array;
    return arr.length === length ? arr : arr.subarray(0, length);
  }

  /** On webgpu a copy through mapAsync, which waits for the work queued before it; elsewhere as read(). */
  async readAsync(buffer: DeviceBuffer, length: number): Promise<Float32Array> {
    if (!isTexture(buffer) || this.name !== 'gpujs-webgpu') return this.read(buffer, length);
    const arr = (await (buffer.toArray() as unknown as Promise<Float32Array>)) as Float32Array;
    return arr.length === length ? arr : arr.subarray(0, length);
  }

  free(buffer: DeviceBuffer): void {
    if (isTexture(buffer)) buffer.delete();
    if (!this.uploads.delete(buffer) || !this.gl) return;
    // the last buffer of its size gone: its upload kernel (and the texture it keeps) goes too
    const length = outputLength(buffer);
    const up = this.cache.get(uploadKey(length));
    if (up && ![...this.uploads].some((b) => outputLength(b) === length)) this.releaseKernel(up);
  }

  counters(): BackendCounters {
    for (const b of this.uploads) if (isTexture(b) && (b as unknown as { _deleted?: boolean })._deleted) this.uploads.delete(b);
    return {
      kernels: this.cache.size,
      engineKernels: this.engine.kernels.length,
      textures: this.isDisposed ? 0 : (this.textures?.live() ?? 0),
      buffers: this.uploads.size,
    };
  }

  kernelInfo(): readonly KernelInfo[] {
    const gl2 = typeof WebGL2RenderingContext === 'function';
    return this.engine.kernels.map((k) => ({
      context: gl2 && k.context instanceof WebGL2RenderingContext ? 'webgl2' : (k.constructor.mode ?? this.name),
      fellBack: !!k.fallbackRequested,
    }));
  }

  async dispose(): Promise<void> {
    if (this.isDisposed) return;
    this.isDisposed = true;
    for (const b of this.uploads) if (isTexture(b)) b.delete();
    this.uploads.clear();
    for (const k of this.cache.values()) k.destroy(this.engine);
    this.cache.clear();
    const { context, Kernel } = this.engine;
    const emptied = this.engine.kernels.length === 0;
    await this.gpu.destroy(); // what is left (kernels gpu.js made on its own), and webasm's worker pools
    // gpu.destroy() releases the GL context only through a kernel it still lists; with none left, it is ours to do
    if (emptied && context && Kernel?.destroyContext) Kernel.destroyContext(context);
  }
}
