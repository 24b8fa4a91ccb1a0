// The shaders of one fused kernel on the WGSL backend: one, or two where the kernel is split (splitK.ts: the partial
// reductions, then their combination), each printed with the variant the tuner chose for it (tune.ts). The first
// comment line of each shader says why, and `inspect` prints the source: both shaders of a split kernel.
import { reductionOf, type KernelIR } from '../kernel/ir.ts';
import { chooseSplit, splitReduction } from './splitK.ts';
import { chooseBlock, type Tuning } from './tune.ts';
import { printWgsl, type WgslKernel } from './wgsl.ts';

export interface WgslKernelPlan {
  /** the kernel's source as inspect shows it: each shader after a comment line with its reason */
  readonly code: string;
  /** graph nodes the kernel reads (not the scratch buffer) */
  readonly reads: readonly number[];
  /** the dispatches, in order: one, or the partial reductions then their combination */
  readonly shaders: readonly WgslKernel[];
  /** a split kernel's scratch buffer (an id past the graph's nodes) and its floats */
  readonly scratch?: { readonly id: number; readonly size: number };
}

export interface WgslKernelOptions {
  readonly software: boolean;
  readonly tuning?: Tuning | undefined;
  /** the buffer id of the scratch of a split (no graph node has it) */
  readonly scratchId: number;
  /** storage buffers a shader may bind (a split whose combine would bind more is not made) */
  readonly maxBindings: number;
}

/** One shader of a kernel, printed with the block the tuner chooses for its IR, after a comment line of both choices. */
const shader = (ir: KernelIR, outputs: readonly number[], title: string, split: string, o: WgslKernelOptions) => {
  const { block, rowAxis, tree, vectors, reason, tiles } = chooseBlock(ir, o.software, o.tuning);
  const k = printWgsl(ir, outputs, block, tree, vectors, rowAxis, tiles);
  const why = split ? `${reason}; ${split} (compiler/webgpu/tune.ts, splitK.ts)` : `${reason} (compiler/webgpu/tune.ts)`;
  return { ...k, code: `// ${title}: ${why}\n${k.code}` };
};

export const wgslKernel = (ir: KernelIR, name: string, outputs: readonly number[], o: WgslKernelOptions): WgslKernelPlan => {
  const split = chooseSplit(ir, o.software, o.tuning);
  const whole = (why: string): WgslKernelPlan => {
    const k = shader(ir, outputs, name, reductionOf(ir) ? `not split: ${why}` : '', o);
    return { code: k.code, reads: k.reads, shaders: [k] };
  };
  if (split.parts < 2) return whole(split.reason);
  const { partial, combine } = splitReduction(ir, split.parts, o.scratchId, split.axis);
  const first = shader(partial, [o.scratchId], `${name} (1/2, partial)`, split.reason, o);
  const second = shader(
    combine,
    outputs,
    `${name} (2/2, combine)`,
    `the ${split.parts} parts of split-K combined (${reductionOf(ir)!.op})`,
    o,
  );
  if (second.reads.length + second.writes.length > o.maxBindings)
    return whole(`${split.reason}, but the combine would bind more than ${o.maxBindings} storage buffers`);
  const reads = [...new Set([...first.reads, ...second.reads])].filter((id) => id !== o.scratchId);
  return {
    code: `${first.code}\n${second.code}`,
    reads,
    shaders: [first, second],
    scratch: { id: o.scratchId, size: partial.shape.reduce((a, b) => a * b, 1) },
  };
};
