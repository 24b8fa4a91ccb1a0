// Whether this page has a WebGPU adapter for gpu.js's WebGPU path (gpujs-webgpu), and which. Asking is async
// (navigator.gpu.requestAdapter), while backend probes are sync, so a page awaits prepareWebGPU() once; until then
// both WebGPU backends count as unavailable. It also acquires the device of the compiler's own WGSL backend.
import { acquireGpu, describeAdapter, type AdapterLike } from '../webgpu/gpu.ts';

export { describeAdapter };

export interface WebGPUAdapter {
  /** vendor, architecture and description as the adapter reports them, e.g. 'google swiftshader' */
  readonly description: string;
  /** a CPU implementation (SwiftShader, lavapipe, llvmpipe, WARP) or what the browser marks a fallback adapter */
  readonly software: boolean;
}

type State = { kind: 'unasked' } | { kind: 'none'; reason: string } | { kind: 'ready'; adapter: WebGPUAdapter };
let state: State = { kind: 'unasked' };
let asking: Promise<WebGPUAdapter | undefined> | undefined;

interface NavigatorGpu {
  requestAdapter(): Promise<AdapterLike | null>;
}

/** Asks the browser for an adapter (once; later calls share the answer). Resolves undefined where there is none. */
export const prepareWebGPU = async (): Promise<WebGPUAdapter | undefined> => {
  await acquireGpu(); // the WGSL backend's device (in Node through the webgpu package)
  return askAdapter();
};

const askAdapter = (): Promise<WebGPUAdapter | undefined> =>
  (asking ??= (async () => {
    const gpu = (globalThis as { navigator?: { gpu?: NavigatorGpu } }).navigator?.gpu;
    if (!gpu) {
      state = { kind: 'none', reason: 'this browser has no WebGPU (navigator.gpu is missing)' };
      return undefined;
    }
    try {
      const adapter = await gpu.requestAdapter();
      if (!adapter) {
        state = { kind: 'none', reason: 'navigator.gpu.requestAdapter() found no adapter (WebGPU disabled, or no usable GPU)' };
        return undefined;
      }
      state = { kind: 'ready', adapter: describeAdapter(adapter) };
      return state.adapter;
    } catch (e) {
      state = { kind: 'none', reason: `navigator.gpu.requestAdapter() failed: ${(e as Error).message}` };
      return undefined;
    }
  })());

/** The adapter prepareWebGPU() found, or undefined (none, or not asked yet). */
export const webgpuAdapter = (): WebGPUAdapter | undefined => (state.kind === 'ready' ? state.adapter : undefined);

export const webgpuAvailability = (): { available: boolean; reason: string } => {
  switch (state.kind) {
    case 'ready':
      return { available: true, reason: `WebGPU adapter: ${state.adapter.description}` };
    case 'none':
      return { available: false, reason: state.reason };
    case 'unasked':
      return {
        available: false,
        reason:
          'navigator' in globalThis && 'gpu' in (globalThis as { navigator: object }).navigator
            ? 'its adapter has not been requested yet: await prepareWebGPU() first'
            : 'webgpu exists only in a browser with WebGPU (navigator.gpu); Node has none here',
      };
  }
};
