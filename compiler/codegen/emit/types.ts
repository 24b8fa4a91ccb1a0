// What a per-op emitter is given and returns. Emitters are small functions of a context, one per primitive
// (emit/index.ts gathers them); generateKernel (../kernelSource.ts) builds the context for one kernel.
import type { Node, NodeOf, OpName } from '../../../core/ir.ts';
import type { Shape } from '../../../core/shape.ts';
import type { Emitter } from '../emitter.ts';

/** An index into a tensor: its flat offset, or its per-axis coordinates (expressions). */
export type Index = { flat: string; multi?: undefined } | { multi: readonly string[]; flat?: undefined };

export interface EmitContext {
  /** where statements go (loops, consts); an emitter returns only its value's expression */
  readonly e: Emitter;
  readonly nodes: readonly Node[];
  /** node `id` at `idx`: a literal (splat), a buffer read, or its own emitter's result, memoised per node and index */
  value(id: number, idx: Index): string;
  /** true for a node this kernel reads from its buffer rather than computes */
  isBuffer(id: number): boolean;
  /** the buffer argument (b0, b1, ...) of a materialised node */
  argName(id: number): string;
  /** the value of a splat node (all elements equal: a literal in the kernel), else undefined */
  splat(id: number): number | undefined;
  flatOf(idx: Index, shape: Shape): string;
  /** coordinates from a flat offset (memoised divisions), or the coordinates themselves */
  multiOf(idx: Index, shape: Shape): readonly string[];
}

/** Emits node n (of op P) at idx and returns its value as an expression. */
export type Emit<P extends OpName> = (c: EmitContext, n: NodeOf<P>, idx: Index) => string;

/** One emitter per op of Ops (OpName, a group's ops, or in test/optable.types.test.ts OpName plus a hypothetical op). */
export type EmitTable<Ops extends string = OpName> = { readonly [P in Ops]: Emit<P & OpName> };
