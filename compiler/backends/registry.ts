// The shared backends: one Backend object per name for plans compiled without one of their own. Explicit and
// disposable: backendFor creates on first use, shutdownBackends disposes them all (a later backendFor starts afresh).
import type { Backend } from '../backend.ts';
import { GpuJsBackend } from './gpujs.ts';
import { WasmBackend } from './wasm.ts';
import { WgslBackend } from '../webgpu/backend.ts';
import { releaseGpu } from '../webgpu/gpu.ts';
import type { BackendName } from './names.ts';

const shared = new Map<BackendName, Backend>();

/** A new Backend object that owns its own gpu.js instance; dispose() it when done. */
export const createBackend = (name: BackendName, options: { threads?: number } = {}): Backend =>
  name === 'wasm' ? new WasmBackend(options) : name === 'webgpu' ? new WgslBackend() : new GpuJsBackend(name);

/** The shared Backend for a name (created on first use). */
export const backendFor = (name: BackendName): Backend => {
  let b = shared.get(name);
  if (!b || b.disposed) shared.set(name, (b = createBackend(name)));
  return b;
};

export const sharedBackends = (): readonly Backend[] => [...shared.values()];

/** Disposes the shared backends (and webasm's worker pools, which would otherwise keep the process alive). */
export const shutdownBackends = async (): Promise<void> => {
  const all = [...shared.values()];
  shared.clear();
  for (const b of all) await b.dispose();
  releaseGpu(); // the WGSL backend's device: while it exists, Dawn keeps the process running
};

/**
 * Live kernels on one backend, or on all shared ones: a recompile per step shows here as growth; a disposed plan's
 * kernels no longer count.
 */
export const compiledKernelCount = (backend?: Backend): number =>
  (backend ? [backend] : sharedBackends()).reduce((n, b) => n + b.counters().kernels, 0);
