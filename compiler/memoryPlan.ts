// schedule: the fused program's kernels in order, with each buffer's lifetime and a memory plan that reuses
// freed buffers of the same size (what a backend that lets us place outputs would allocate).
import type { FusedProgram } from './passes/fuse.ts';
import { size } from '../core/shape.ts';

export interface BufferPlan {
  /** node id -> index of the kernel after which its buffer is dead (Infinity for graph outputs and inputs) */
  readonly lastUse: ReadonlyMap<number, number>;
  /** bytes allocated by the plan with reuse (f32) */
  readonly plannedBytes: number;
  /** bytes for one buffer per graph node (f32), the baseline */
  readonly naiveBytes: number;
  /** distinct buffers the plan allocates */
  readonly buffers: number;
}

export const planMemory = (prog: FusedProgram): BufferPlan => {
  const { graph, kernels } = prog;
  const outputs = new Set(graph.outputs.map((o) => o.id));
  const lastUse = new Map<number, number>();
  kernels.forEach((k, i) => k.reads.forEach((r) => lastUse.set(r, i)));
  for (const o of outputs) lastUse.set(o, Infinity);
  for (const n of graph.nodes) if (n.op === 'input' || n.op === 'constant') lastUse.set(n.id, Infinity);

  const free = new Map<number, number>(); // size -> free buffers of that size
  let planned = 0;
  let buffers = 0;
  for (const n of graph.nodes)
    if (prog.materialized.has(n.id) && (n.op === 'input' || n.op === 'constant')) ((planned += 4 * size(n.shape)), buffers++);
  kernels.forEach((k, i) => {
    const s = size(k.shape);
    const f = free.get(s) ?? 0;
    if (f > 0) free.set(s, f - 1);
    else ((planned += 4 * s), buffers++);
    for (const r of k.reads)
      if (lastUse.get(r) === i && !(graph.nodes[r].op === 'input' || graph.nodes[r].op === 'constant'))
        free.set(size(graph.nodes[r].shape), (free.get(size(graph.nodes[r].shape)) ?? 0) + 1);
  });
  const naive = graph.nodes.reduce((a, n) => a + 4 * size(n.shape), 0);
  return { lastUse, plannedBytes: planned, naiveBytes: naive, buffers };
};
