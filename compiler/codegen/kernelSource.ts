// codegen for gpu.js: one fused kernel -> its kernel IR (../kernel/lower.ts, one lowering rule per primitive) ->
// gpu.js kernel source (./gpujs.ts).
import type { FusedProgram, Kernel } from '../passes/fuse.ts';
import { lowerKernel } from '../kernel/lower.ts';
import { printGpuJs, type KernelSource } from './gpujs.ts';

export type { KernelSource } from './gpujs.ts';

export const generateKernel = (prog: FusedProgram, kernel: Kernel): KernelSource => printGpuJs(lowerKernel(prog, kernel));
