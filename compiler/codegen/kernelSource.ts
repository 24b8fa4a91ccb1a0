// codegen: one Kernel -> gpu.js kernel source. The kernel computes its root node at the flat output index
// this.thread.x; every inlined node becomes a `const` (memoised per node and index), views become index
// arithmetic, and a core (reduction, matmul, conv2d) becomes one loop with a literal bound (never truncated
// by gpu.js's loopMaxIterations). All arithmetic, index arithmetic included, is in floats: integer division
// is floor((a + 0.5) / b), which stays exact under GPUs' approximate division for indices below 2^21.
// This file builds the context for one kernel (buffers, index conversions, memoised values); what each
// primitive emits is its entry in the table of emit/index.ts.
import type { Node, OpName } from '../../core/ir.ts';
import { strides, type Shape } from '../../core/shape.ts';
import type { FusedProgram, Kernel } from '../passes/fuse.ts';
import { isSplat, splatOf } from '../passes/splat.ts';
import { emitters, type Emit, type EmitContext, type Index } from './emit/index.ts';
import { add, Emitter, lit, mulc } from './emitter.ts';

export interface KernelSource {
  /** gpu.js kernel function source */
  readonly source: string;
  /** node ids of the buffers passed as arguments b0, b1, ... */
  readonly args: readonly number[];
  /** gpu.js sub-kernel sources for the extra outputs (keep0 writes extraOutputs[0], ...) */
  readonly subKernels: readonly string[];
}

export const generateKernel = (prog: FusedProgram, kernel: Kernel): KernelSource => {
  const { graph, materialized } = prog;
  const nodes = graph.nodes;
  const e = new Emitter();
  const extras = kernel.extraOutputs ?? [];
  const args: number[] = [];

  const argName = (id: number) => {
    let k = args.indexOf(id);
    if (k < 0) k = args.push(id) - 1;
    return `b${k}`;
  };

  const flatOf = (idx: Index, shape: Shape): string => {
    if (idx.flat !== undefined) return idx.flat;
    const st = strides(shape);
    return idx.multi.reduce((acc, m, d) => (shape[d] === 1 ? acc : add(acc, mulc(m, st[d]))), '0.0');
  };

  /** Coordinates from a flat offset, outermost first: i_d = floor(rest / stride_d), rest -= i_d * stride_d. */
  const multiOf = (idx: Index, shape: Shape): readonly string[] => {
    if (idx.multi) return idx.multi;
    const st = strides(shape);
    let rest = idx.flat;
    return shape.map((d, i) => {
      if (d === 1) return '0.0';
      if (st[i] === 1) return rest;
      const q = e.memo(`div|${rest}|${st[i]}`, () => `Math.floor((${rest} + 0.5) / ${lit(st[i])})`);
      rest = e.memo(`rem|${rest}|${st[i]}`, () => `(${rest} - ${q} * ${lit(st[i])})`);
      return q;
    });
  };

  const keyOf = (idx: Index) => (idx.flat !== undefined ? `f:${idx.flat}` : `m:${idx.multi.join(',')}`);
  const isBuffer = (id: number) => materialized.has(id) && id !== kernel.root && !extras.includes(id);

  const ctx: EmitContext = {
    e,
    nodes,
    isBuffer,
    argName,
    flatOf,
    multiOf,
    splat: (id) => (isSplat(graph, id) ? splatOf(graph, id) : undefined),
    value: (id, idx) => {
      const n = nodes[id];
      if (isSplat(graph, id)) return lit(splatOf(graph, id));
      if (isBuffer(id)) return e.memo(`read|${id}|${keyOf(idx)}`, () => `${argName(id)}[${flatOf(idx, n.shape)}]`);
      return e.memo(`${id}|${keyOf(idx)}`, () => compute(n, idx));
    },
  };
  const compute = (n: Node, idx: Index): string => (emitters[n.op] as Emit<OpName>)(ctx, n, idx); // the table is keyed by op

  e.line('const t = this.thread.x * 1.0;');
  extras.forEach((id, j) => e.line(`keep${j}(${ctx.value(id, { flat: 't' })});`));
  const out = compute(nodes[kernel.root], { flat: 't' });
  e.line(`return ${out};`);
  const params = args.map((_, i) => `b${i}`).join(', ');
  const subKernels = extras.map((_, j) => `function keep${j}(v) { return v; }`);
  return { source: `function (${params}) {\n${e.text()}\n}`, args: [...args], subKernels };
};
