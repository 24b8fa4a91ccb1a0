// The compiler's public surface: compile a Graph into an Executable on a backend. Everything above the compiler
// (train/, models/, eval/, the CLI, the page) imports it from here; the passes behind it are internal.
export { compile, release, BackendError, NonFiniteError, compiledKernelCount, guard } from './executable.ts';
export type { CompileOptions, CompiledKernel, DeviceBuffer, Executable } from './executable.ts';
export { availableBackends, backendNames, gpuFor, isAvailable, isGL, resolveBackend, shutdownBackends } from './backends.ts';
export type { BackendName, BackendRequest, ResolvedBackend } from './backends.ts';
export type { FusionMode, FusedProgram, Kernel } from './passes/fuse.ts';
export type { BufferPlan } from './memoryPlan.ts';
export type { KernelSource } from './codegen/kernelSource.ts';
