// gpu.js moves a kernel it cannot build for its backend onto its own CPU path and only logs a warning, so a plan
// meant for the GPU would run, slowly, on the CPU without a word. This asks each kernel after its calls and
// reports the ones that moved (in the plan's backendReason), or refuses them (onFallback: 'error').
import type { BackendKernel } from './backend.ts';
import type { BackendName } from './backends/names.ts';
import { BackendError } from './errors.ts';
import type { CompiledKernel } from './kernel.ts';

export interface KernelFallback {
  readonly kernel: CompiledKernel;
  /** gpu.js's reason, e.g. "kernel maps are not supported on the webasm backend" */
  readonly reason: string;
}

export class FallbackWatch {
  readonly found: KernelFallback[] = [];

  constructor(
    private readonly backend: BackendName,
    private readonly mode: 'report' | 'error',
  ) {}

  /** After a call of `runner` (gpu.js builds, and may fall back, on a kernel's first call or on an argument-type change). */
  check(kernel: CompiledKernel, runner: BackendKernel): void {
    const reason = runner.fallbackReason();
    if (reason === undefined) return;
    if (this.mode === 'error')
      throw new BackendError(kernel, this.backend, new Error(`gpu.js moved it to its CPU path (${reason}) and onFallback is 'error'`));
    if (!this.found.some((f) => f.kernel === kernel)) this.found.push({ kernel, reason });
  }

  /** The plan's backend reason with the kernels that fell back, e.g. "requested (1 kernel fell back to ...: k0_sub: ...)". */
  describe(base: string): string {
    const n = this.found.length;
    if (!n) return base;
    return (
      `${base} (${n} kernel${n === 1 ? '' : 's'} fell back to gpu.js's CPU path: ` +
      `${this.found.map((f) => `${f.kernel.name} (${f.reason})`).join(', ')})`
    );
  }
}
