// One kernel of a compiled plan as the rest of the project sees it: what it computes, where, and from which ops.
import type { Shape } from '../core/shape.ts';
import type { KernelSource } from './codegen/gpujs.ts';

export interface CompiledKernel {
  readonly index: number;
  readonly root: number;
  /** further nodes written by this (multi-output) kernel */
  readonly extraOutputs?: readonly number[];
  readonly name: string;
  readonly shape: Shape;
  readonly fusedOps: readonly string[];
  readonly source: KernelSource;
}
