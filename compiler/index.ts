// The compiler's public surface: compile a Graph into an Executable on a backend. Everything above the compiler
// (train/, models/, eval/, the CLI, the page) imports it from here; the passes behind it are internal.
export { compile } from './executable.ts';
export type { CompileOptions } from './executable.ts';
export type { Executable, RunDeviceOptions } from './plan.ts';
export type { CompiledKernel } from './kernel.ts';
export { BackendError, KernelLimitError, NonFiniteError, guard } from './errors.ts';
export { exactIndexLimit } from './executable.ts';
export type { KernelFallback } from './fallbacks.ts';
export { release } from './buffers.ts';
export {
  availableBackends,
  backendNames,
  glRenderer,
  isAvailable,
  isGL,
  isResident,
  isSoftwareRenderer,
  probeBackend,
  resolveBackend,
} from './backends/names.ts';
export type { Availability, BackendName, BackendRequest, ResolvedBackend } from './backends/names.ts';
export { prepareWebGPU, webgpuAdapter } from './backends/webgpuAdapter.ts';
export type { WebGPUAdapter } from './backends/webgpuAdapter.ts';
export type { Backend, BackendCounters, BackendKernel, DeviceBuffer, KernelInfo, KernelOptions, KernelOutput } from './backend.ts';
export { GpuJsBackend } from './backends/gpujs.ts';
export { WasmBackend } from './backends/wasm.ts';
export { MAX_PLAN_BYTES, WasmPlanError } from './wasm/plan.ts';
export { wasmFeatures, type WasmFeatures } from './wasm/features.ts';
export { WgslBackend } from './webgpu/backend.ts';
export { acquireGpu, gpuContext, releaseGpu } from './webgpu/gpu.ts';
export type { GpuContext } from './webgpu/gpu.ts';
export { WebGPUPlanError } from './webgpu/plan.ts';
export { backendFor, compiledKernelCount, createBackend, sharedBackends, shutdownBackends } from './backends/registry.ts';
export type { FusionMode, FusedProgram, Kernel } from './passes/fuse.ts';
export type { BufferPlan } from './memoryPlan.ts';
export type { KernelSource } from './codegen/gpujs.ts';
