// The GPUDevice the WGSL backend runs on: the page's navigator.gpu, or in Node the `webgpu` package (Dawn). Asking
// is async, backend probes are sync: acquireGpu() is awaited once (prepareWebGPU does it), then gpuContext() answers.

export interface AdapterLike {
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  readonly isFallbackAdapter?: boolean;
}

const softwareName = /swiftshader|lavapipe|llvmpipe|softpipe|software|basic render|warp/i;

/** What an adapter says of itself, and whether it is a CPU implementation. */
export const describeAdapter = (a: AdapterLike): { description: string; software: boolean } => {
  const info = a.info ?? {};
  const description = [info.vendor, info.architecture, info.device, info.description].filter((s) => !!s).join(' ') || 'an unnamed adapter';
  return { description, software: !!(info.isFallbackAdapter ?? a.isFallbackAdapter) || softwareName.test(description) };
};

export interface GpuContext {
  readonly device: GPUDevice;
  /** the adapter as it describes itself, e.g. 'google swiftshader ...' or 'nvidia ...' */
  readonly description: string;
  /** a CPU implementation (SwiftShader, lavapipe, llvmpipe, WARP) */
  readonly software: boolean;
  /** storage buffers one shader may bind (the adapter's maximum, requested for the device) */
  readonly maxStorageBuffers: number;
  /** bytes one storage binding may span */
  readonly maxBindingBytes: number;
  /** bytes one buffer may hold */
  readonly maxBufferBytes: number;
  /** required alignment of a binding's offset */
  readonly offsetAlignment: number;
  /** where it came from: 'navigator.gpu' or 'the webgpu package (Dawn)' */
  readonly source: string;
}

// WebGPU's flag values (the spec's numbers; Node has no GPUBufferUsage global unless the package installs it)
export const USAGE = { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, STORAGE: 128 } as const;
export const MAP_READ = 1;

type State = { kind: 'unasked' } | { kind: 'none'; reason: string } | { kind: 'ready'; context: GpuContext };
let state: State = { kind: 'unasked' };
let asking: Promise<GpuContext | undefined> | undefined;
/** Dawn's GPU object: if the GC collects it, Dawn aborts the process, so it is held for the life of the module */
let dawnKeepAlive: unknown;

const isNode = (): boolean => typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

const findGpu = async (): Promise<{ gpu: GPU; source: string } | string> => {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, source: 'navigator.gpu' };
  if (!isNode()) return 'this browser has no WebGPU (navigator.gpu is missing)';
  try {
    // a variable specifier: bundlers for the page must not try to resolve the Node-only package
    const name = 'webgpu';
    const mod = (await import(/* @vite-ignore */ name)) as { create(flags: string[]): GPU };
    const gpu = mod.create([]);
    dawnKeepAlive = gpu;
    return { gpu, source: 'the webgpu package (Dawn)' };
  } catch (e) {
    return `the webgpu package did not load: ${(e as Error).message.split('\n')[0]}`;
  }
};

/**
 * Mesa's Vulkan drivers print `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` twice while Dawn
 * probes the adapters of a headless machine (the CLI's stderr showed it under `auto`); for the probe only, the
 * variable points at the temp folder where it is unset, and is unset again after.
 */
const quietProbe = async <T>(probe: () => Promise<T>): Promise<T> => {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (!isNode() || !env || env.XDG_RUNTIME_DIR !== undefined) return probe();
  env.XDG_RUNTIME_DIR = env.TMPDIR ?? '/tmp';
  try {
    return await probe();
  } finally {
    delete env.XDG_RUNTIME_DIR;
  }
};

/** Asks for an adapter and a device once (later calls share the answer); undefined where there is none. */
export const acquireGpu = (): Promise<GpuContext | undefined> =>
  (asking ??= (async () => {
    const found = await findGpu();
    if (typeof found === 'string') {
      state = { kind: 'none', reason: found };
      return undefined;
    }
    try {
      const adapter = await quietProbe(() => found.gpu.requestAdapter({ powerPreference: 'high-performance' }));
      if (!adapter) {
        state = { kind: 'none', reason: `requestAdapter() found no adapter through ${found.source} (no Vulkan, Metal or D3D12 driver?)` };
        return undefined;
      }
      const l = adapter.limits;
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
          maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
          maxBufferSize: l.maxBufferSize,
          maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        },
      });
      const { description, software } = describeAdapter(adapter as AdapterLike);
      const context: GpuContext = {
        device,
        description,
        software,
        maxStorageBuffers: device.limits.maxStorageBuffersPerShaderStage,
        maxBindingBytes: device.limits.maxStorageBufferBindingSize,
        maxBufferBytes: device.limits.maxBufferSize,
        offsetAlignment: device.limits.minStorageBufferOffsetAlignment,
        source: found.source,
      };
      void device.lost.then((info) => {
        if (state.kind === 'ready' && state.context === context)
          state = { kind: 'none', reason: `the GPU device was lost: ${info.message}` };
      });
      state = { kind: 'ready', context };
      return context;
    } catch (e) {
      state = { kind: 'none', reason: `requesting a WebGPU device failed: ${(e as Error).message}` };
      return undefined;
    }
  })());

/**
 * Destroys the device (its buffers and pipelines go with it) and forgets it: Dawn keeps a Node process alive, and busy,
 * while a device exists. A later acquireGpu() asks again. Plans compiled on it cannot run afterwards.
 */
export const releaseGpu = (): void => {
  if (state.kind === 'ready') state.context.device.destroy();
  state = { kind: 'unasked' };
  asking = undefined;
};

/** The device acquireGpu() found, or undefined (none, or not asked yet). */
export const gpuContext = (): GpuContext | undefined => (state.kind === 'ready' ? state.context : undefined);

/** Whether the WGSL backend can run here, and why (not). */
export const gpuAvailability = (): { available: boolean; reason: string } => {
  switch (state.kind) {
    case 'ready':
      return { available: true, reason: `WebGPU adapter: ${state.context.description} (${state.context.source})` };
    case 'none':
      return { available: false, reason: state.reason };
    case 'unasked':
      return { available: false, reason: 'its device has not been requested yet: await prepareWebGPU() first' };
  }
};
