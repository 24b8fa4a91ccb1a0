// Errors a compiled plan raises, each naming the kernel (and its fused ops) that caused it.
import { fmt } from '../core/shape.ts';
import type { BackendName } from './backends/names.ts';
import type { CompiledKernel } from './kernel.ts';

export class NonFiniteError extends Error {
  constructor(
    readonly kernel: CompiledKernel,
    readonly index: number,
    readonly value: number,
  ) {
    super(
      `kernel ${kernel.index} (${kernel.name}, output ${fmt(kernel.shape)}, ` +
        `fusing ${kernel.fusedOps.join(' ')}) produced ${value} at element ${index}`,
    );
    this.name = 'NonFiniteError';
  }
}

export class BackendError extends Error {
  constructor(
    readonly kernel: CompiledKernel,
    readonly backend: BackendName,
    override readonly cause: unknown,
  ) {
    super(
      `backend ${backend} cannot run kernel ${kernel.index} (${kernel.name}: ${kernel.fusedOps.join(' ')}, ` +
        `output [${kernel.shape.join(',')}]): ${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}`,
    );
    this.name = 'BackendError';
  }
}

/** Runs one kernel call; a failure of the backend (shader compile, texture size, wasm trap) names the kernel's ops. */
export const guard = <T>(kernel: CompiledKernel, backend: BackendName, call: () => T): T => {
  try {
    return call();
  } catch (e) {
    throw new BackendError(kernel, backend, e);
  }
};

/** A kernel a backend cannot compute exactly (indices, sizes): refused at compile time instead of computed wrong. */
export class KernelLimitError extends Error {
  constructor(
    readonly kernel: Omit<CompiledKernel, 'source'>,
    readonly backend: BackendName,
    readonly detail: string,
  ) {
    super(
      `backend ${backend} cannot compute kernel ${kernel.index} (${kernel.name}: ${kernel.fusedOps.join(' ')}, ` +
        `output ${fmt(kernel.shape)}) exactly: ${detail}`,
    );
    this.name = 'KernelLimitError';
  }
}
