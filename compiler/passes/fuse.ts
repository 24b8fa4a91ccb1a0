// fuse: Graph -> Kernel[]. Decides which nodes get a buffer ("materialised"); every other node is computed
// inline, inside the kernel of each materialised node that reads it. One kernel computes one materialised
// node, one output element per thread. Rules (each op's class and cost: fusionClass.ts):
//  - graph inputs, non-splat constants and graph outputs have buffers; splat constants become literals;
//  - reductions, matmul and conv2d ("cores", each a loop) have buffers, except a core whose only use is an
//    elementwise chain over the same elements: it is computed in the kernel of that chain (the epilogue); with
//    plainConvEpilogues (wasm), not a conv2d whose epilogue computes an exp, log, sigmoid, ...;
//  - a kernel holds at most one core, so an expensive producer is never recomputed inside a loop;
//  - matmul/conv2d operands are buffers or pure views of buffers: inlining arithmetic into their loops would
//    repeat it for every output column;
//  - an elementwise node read by several kernels is inlined into each while cheap, else materialised; with
//    shareTranscendentals (wasm), also when it computes a transcendental;
//  - kernels are capped in size (deep backward chains would otherwise build huge shaders).
import type { Graph, Node } from '../../core/ir.ts';
import { isContraction } from '../../core/ir.ts';
import { size, type Shape } from '../../core/shape.ts';
import { fusionClass, fusionRules } from './fusionClass.ts';
import { isSplat } from './splat.ts';

export interface Kernel {
  /** the materialised node this kernel writes */
  readonly root: number;
  /** the reduction, matmul or conv2d computed in this kernel's loop, if any */
  readonly core?: number;
  /** every node computed inline by this kernel (root and core included) */
  readonly fused: readonly number[];
  /** materialised nodes whose buffers it reads */
  readonly reads: readonly number[];
  readonly shape: Shape;
  /** further materialised nodes this kernel also writes (a multi-output kernel, gpu.js's kernel map) */
  readonly extraOutputs?: readonly number[];
}

export interface FusedProgram {
  readonly graph: Graph;
  /** nodes with a buffer: inputs, constants, and kernel outputs */
  readonly materialized: ReadonlySet<number>;
  /** in execution (topological) order */
  readonly kernels: readonly Kernel[];
}

export type FusionMode = 'fused' | 'unfused';

const isCore = (n: Node) => fusionClass(n.op) === 'core';
const isElementwise = (n: Node) => fusionClass(n.op) === 'elementwise';
/** computed inline, and so recomputed by every kernel that reads it unless given a buffer */
const isInlined = (n: Node) => fusionClass(n.op) !== 'source' && fusionClass(n.op) !== 'core';

/** Maximum inlined nodes per kernel before a shared subexpression is given a buffer. */
const KERNEL_CAP = 48;
/** An elementwise node read by several kernels is recomputed while its inlined cost stays below this. */
const SHARE_COST = 6;

export const usersOf = (g: Graph): number[][] => {
  const users: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of n.inputs) users[i].push(n.id);
  return users;
};

export interface FuseOptions {
  /** give a matmul's right operand its own buffer when it is read through a transpose of its last axis */
  readonly contiguousOperands?: boolean;
  /**
   * the most buffers one kernel may read (WebGPU binds each as a storage buffer: 8 per shader stage by default,
   * the output's included); a kernel reading more gets some of its inlined nodes computed in kernels of their own
   */
  readonly maxReads?: number;
  /**
   * a conv2d keeps its buffer when the kernel that would take it as its epilogue computes a transcendental (wasm: an
   * exp after a conv's loop nest cost about 2.5x what it costs in a kernel of its own), or reads one that
   * shareTranscendentals gave a buffer (the UNet's SiLU backward inside its conv's input gradient: 2.7 ms against
   * 1.7 + 0.5 apart); a matmul keeps its epilogue
   */
  readonly plainConvEpilogues?: boolean;
  /**
   * a node computed inline and read by several kernels gets a buffer when it computes a transcendental, however cheap
   * its rule's cost: on wasm a sigmoid is about 40 SIMD instructions a vector, a buffer's store and load two. The
   * MLP's SiLU backward recomputed the forward's sigmoid (the reference step: 5% faster with it; the UNet's: even)
   */
  readonly shareTranscendentals?: boolean;
}

const movesLastAxis = (n: Node): boolean => n.op === 'permute' && n.attrs.perm[n.attrs.perm.length - 1] !== n.attrs.perm.length - 1;

const TRANSCENDENTAL = new Set(['exp', 'log', 'sigmoid', 'tanh', 'sin', 'cos', 'pow']);

export const fuse = (graph: Graph, mode: FusionMode = 'fused', options: FuseOptions = {}): FusedProgram => {
  const nodes = graph.nodes;
  const users = usersOf(graph);
  /**
   * whether the kernel of root would compute a transcendental (root and its inlined inputs, up to buffers); through:
   * also one that it reads from a buffer made for it (shareTranscendentals), which the kernel used to compute
   */
  const hasTranscendental = (root: number, through = false): boolean => {
    const stack = [root];
    const seen = new Set<number>();
    while (stack.length) {
      const x = stack.pop()!;
      if (seen.has(x)) continue;
      seen.add(x);
      if (TRANSCENDENTAL.has(nodes[x].op)) return true;
      for (const i of nodes[x].inputs) if (!M.has(i) || (through && forTranscendental.has(i))) stack.push(i);
    }
    return false;
  };
  const outputs = new Set(graph.outputs.map((o) => o.id));
  const M = new Set<number>();
  /** nodes given a buffer only because they compute a transcendental (shareTranscendentals) */
  const forTranscendental = new Set<number>();
  const live = new Set<number>();
  for (let k = nodes.length - 1; k >= 0; k--) if (outputs.has(k) || users[k].some((u) => live.has(u))) live.add(k);

  for (const n of nodes) {
    if (!live.has(n.id) && n.op !== 'input') continue;
    if (n.op === 'input' || outputs.has(n.id)) M.add(n.id);
    else if (n.op === 'constant') {
      if (!isSplat(graph, n.id)) M.add(n.id);
    } else if (mode === 'unfused') {
      if (!isSplat(graph, n.id)) M.add(n.id);
    } else if (isCore(n)) M.add(n.id);
  }

  if (mode === 'fused') {
    // operands of matmul/conv2d: buffers, or views of buffers
    for (const n of nodes) {
      if (!live.has(n.id) || !isContraction(n.op)) continue;
      n.inputs.forEach((input, k) => {
        let x = input;
        while (fusionClass(nodes[x].op) === 'view' && !M.has(x)) {
          // a matmul's right operand read through a transpose of its last axis walks memory with a stride along the
          // output's columns; where the backend vectorises them (wasm), the transposed operand gets a buffer of its own
          if (options.contiguousOperands && n.op === 'matmul' && k === 1 && movesLastAxis(nodes[x])) break;
          x = nodes[x].inputs[0];
        }
        if (!isSplat(graph, x)) M.add(x);
      });
    }
    // shared, costly elementwise nodes. A node given a buffer only for its transcendental still counts its cost in
    // its readers', so that they keep the buffers they had (the UNet's SiLU output stays one, and its pad a copy)
    const cost = new Map<number, number>();
    const inlinedCost = (i: number) => (M.has(i) && !forTranscendental.has(i) ? 0 : (cost.get(i) ?? 0));
    for (const n of nodes) {
      if (!live.has(n.id)) continue;
      cost.set(n.id, fusionRules[n.op].cost + n.inputs.reduce((a, i) => a + inlinedCost(i), 0));
      if (M.has(n.id) || !isInlined(n) || users[n.id].filter((u) => live.has(u)).length < 2) continue;
      if (cost.get(n.id)! > SHARE_COST) M.add(n.id);
      else if (options.shareTranscendentals && hasTranscendental(n.id)) {
        M.add(n.id);
        forTranscendental.add(n.id);
      }
    }
    // epilogues: a core read only through same-element ops (elementwise, reshape) by a single kernel is
    // computed in that kernel's loop instead of getting a buffer
    const identityOp = (u: Node, c: Node) => (isElementwise(u) || u.op === 'reshape') && size(u.shape) === size(c.shape);
    for (const c of nodes) {
      if (!live.has(c.id) || !isCore(c) || outputs.has(c.id)) continue;
      const roots = new Set<number>();
      let ok = true;
      const stack = [c.id];
      const seen = new Set<number>();
      while (stack.length && ok) {
        const x = stack.pop()!;
        for (const u of users[x]) {
          if (!live.has(u) || seen.has(u)) continue;
          seen.add(u);
          if (!identityOp(nodes[u], c)) ok = false;
          else if (M.has(u)) roots.add(u);
          else stack.push(u);
        }
      }
      if (!ok || roots.size !== 1) continue;
      const [root] = roots;
      if (options.plainConvEpilogues && c.op === 'conv2d' && hasTranscendental(root, true)) continue;
      M.delete(c.id);
      if (isCore(nodes[root]) || coresOf(root).length > 1) M.add(c.id);
    }
    // cap kernel sizes
    for (let changed = true; changed;) {
      changed = false;
      for (const r of [...M]) {
        const inl = inlined(r);
        if (inl.length <= KERNEL_CAP) continue;
        const victim = inl.filter((i) => i !== r && !isCore(nodes[i])).sort((a, b) => users[b].length - users[a].length || b - a)[0];
        if (victim === undefined) continue;
        M.add(victim);
        changed = true;
      }
    }
  }
  if (options.maxReads !== undefined) capReads(options.maxReads);

  /** The buffers a kernel rooted at `root` reads. */
  function readsOf(root: number): Set<number> {
    const fused = inlined(root);
    const inside = new Set(fused);
    const reads = new Set<number>();
    for (const f of fused) for (const i of nodes[f].inputs) if (M.has(i) && !inside.has(i)) reads.add(i);
    return reads;
  }
  /** Gives a buffer to the inlined node that gathers the most reads, until no kernel reads more than `max`. */
  function capReads(max: number): void {
    for (let changed = true; changed;) {
      changed = false;
      for (const r of [...M]) {
        if (nodes[r].op === 'input' || nodes[r].op === 'constant' || readsOf(r).size <= max) continue;
        const best = inlined(r)
          .filter((i) => i !== r && !isCore(nodes[i]))
          .map((i) => [i, readsOf(i).size] as const)
          .filter(([, n]) => n >= 2)
          .sort((a, b) => b[1] - a[1] || b[0] - a[0])[0];
        if (best === undefined)
          throw new Error(`fuse: kernel ${r} (${nodes[r].op}) reads more than ${max} buffers, and no inlined node gathers two`);
        M.add(best[0]);
        changed = true;
      }
    }
  }

  function inlined(root: number): number[] {
    const out: number[] = [];
    const seen = new Set<number>();
    const visit = (id: number, isRoot: boolean) => {
      if (seen.has(id) || (!isRoot && M.has(id))) return;
      seen.add(id);
      out.push(id);
      for (const i of nodes[id].inputs) visit(i, false);
    };
    visit(root, true);
    return out;
  }
  function coresOf(root: number): number[] {
    return inlined(root).filter((i) => isCore(nodes[i]));
  }

  const kernels: Kernel[] = [];
  for (const n of nodes) {
    if (!M.has(n.id) || n.op === 'input' || n.op === 'constant') continue;
    const fused = inlined(n.id);
    const reads = new Set<number>();
    for (const f of fused) for (const i of nodes[f].inputs) if (M.has(i) && !fused.includes(i)) reads.add(i);
    const cores = fused.filter((i) => isCore(nodes[i]));
    kernels.push({ root: n.id, core: cores[0], fused, reads: [...reads].sort((a, b) => a - b), shape: n.shape });
  }
  return { graph, materialized: M, kernels };
};

/**
 * Multi-output kernels, for backends with gpu.js kernel maps: a loop-free kernel S whose output has K's shape and
 * is read by a later kernel K only elementwise (same element, e.g. Adam's m' and v' read by the p' update) is
 * computed inside K, which then writes both. S's other readers must run after K. One level: a kernel that
 * absorbs others is not itself absorbed.
 */
export const mergeOutputs = (prog: FusedProgram): FusedProgram => {
  const { graph, kernels } = prog;
  const nodes = graph.nodes;
  const users = usersOf(graph);
  const index = new Map(kernels.map((k, i) => [k.root, i]));
  const absorbed = new Set<number>(); // kernel indices merged into another
  const absorbers = new Set<number>();
  const extras = new Map<number, number[]>(); // absorber index -> absorbed kernel indices
  kernels.forEach((k, ki) => {
    if (absorbed.has(ki)) return;
    for (const s of k.reads) {
      const si = index.get(s);
      if (si === undefined || absorbed.has(si) || absorbers.has(si) || si >= ki) continue;
      const S = kernels[si];
      if (S.core !== undefined || S.shape.length !== k.shape.length || S.shape.some((d, i) => d !== k.shape[i])) continue;
      const inK = new Set(k.fused);
      const elementwiseInK = users[s]
        .filter((u) => inK.has(u))
        .every((u) => isElementwise(nodes[u]) && nodes[u].shape.every((d, i) => d === S.shape[i]));
      const othersLater = kernels.every((kk, i) => i === ki || !kk.reads.includes(s) || i > ki);
      if (!elementwiseInK || !othersLater) continue;
      absorbed.add(si);
      absorbers.add(ki);
      extras.set(ki, [...(extras.get(ki) ?? []), si]);
    }
  });
  if (!absorbed.size) return prog;
  const merged: Kernel[] = [];
  kernels.forEach((k, ki) => {
    if (absorbed.has(ki)) return;
    const ex = (extras.get(ki) ?? []).map((i) => kernels[i]);
    if (!ex.length) return merged.push(k);
    const outs = new Set([k.root, ...ex.map((e) => e.root)]);
    const fused = [...new Set([...k.fused, ...ex.flatMap((e) => e.fused)])];
    const reads = [...new Set([...k.reads, ...ex.flatMap((e) => e.reads)])].filter((r) => !outs.has(r)).sort((a, b) => a - b);
    merged.push({ ...k, fused, reads, extraOutputs: ex.map((e) => e.root) });
  });
  return { ...prog, kernels: merged };
};
