// Split-K: a kernel with few outputs and a long reduction (a bias's or a weight's gradient) runs as two kernels. The
// partial kernel computes S partial reductions of every output, each over 1/S of one reduction variable, into a
// scratch buffer [S, ...shape]; the combine kernel is the original kernel with its reduction replaced by the sum (or
// max) of the S partials, so its epilogue (bias, activation, optimizer update) and extra outputs stay where they were.
// The partial kernel has S times the outputs of the original, so it fills a GPU the original would leave idle.
//
// A sum is then added in a different order than the unsplit kernel's (each part in order, then the parts in order):
// the results differ from the unsplit kernel's in the last bits of f32, as any change of summation order does. A max
// is the same value.
import { addIx, constIx, flattenIx, scaleIx, substituteIx, varIx, type Ix, type VarInfo } from '../kernel/indexExpr.ts';
import { mapChildren, reductionOf, walk, type Cond, type KernelIR, type Scalar } from '../kernel/ir.ts';
import { chooseBlock, type Tuning } from './tune.ts';
import { WORKGROUP } from './wgsl.ts';

type Reduce = Extract<Scalar, { k: 'reduce' }>;

export interface SplitKernels {
  /** the partial reductions: shape [parts, ...shape], written to the scratch buffer */
  readonly partial: KernelIR;
  /** the original kernel, its reduction replaced by the reduction of the parts read from the scratch buffer */
  readonly combine: KernelIR;
}

/** The buffers a scalar tree loads, in first-use order. */
const loadsOf = (roots: readonly Scalar[]): number[] => {
  const reads: number[] = [];
  const seen = new Set<Scalar>();
  for (const root of roots) walk(root, (s) => void (s.k === 'load' && !reads.includes(s.buf) && reads.push(s.buf)), seen);
  return reads;
};

/** s with every index expression rewritten by f (loads, guards, picks, random draws), shared nodes rewritten once. */
const mapIndices = (s: Scalar, f: (x: Ix) => Ix, memo = new Map<Scalar, Scalar>()): Scalar => {
  const hit = memo.get(s);
  if (hit) return hit;
  const go = (t: Scalar) => mapIndices(t, f, memo);
  const cond = (c: Cond): Cond => ({ ...c, ix: f(c.ix) });
  let out: Scalar;
  switch (s.k) {
    case 'lit':
      out = s;
      break;
    case 'load':
      out = { ...s, at: f(s.at) };
      break;
    case 'un':
      out = { ...s, x: go(s.x) };
      break;
    case 'bin':
      out = { ...s, a: go(s.a), b: go(s.b) };
      break;
    case 'where':
      out = { ...s, c: go(s.c), a: go(s.a), b: go(s.b) };
      break;
    case 'guard':
      out = { ...s, conds: s.conds.map(cond), x: go(s.x) };
      break;
    case 'pick':
      out = { ...s, cond: cond(s.cond), a: go(s.a), b: go(s.b) };
      break;
    case 'random':
      out = { ...s, counter: go(s.counter), at: f(s.at) };
      break;
    case 'reduce':
      out = { ...s, body: go(s.body) };
      break;
  }
  memo.set(s, out);
  return out;
};

/** s with the node `from` replaced by `to` wherever it occurs (shared nodes rebuilt once, so `to` stays one node). */
const replaceNode = (s: Scalar, from: Scalar, to: Scalar, memo = new Map<Scalar, Scalar>()): Scalar => {
  if (s === from) return to;
  const hit = memo.get(s);
  if (hit) return hit;
  const out = mapChildren(s, (t) => replaceNode(t, from, to, memo));
  memo.set(s, out);
  return out;
};

/**
 * The kernel split into `parts` partial reductions and their combination. `axis` picks the reduction variable that is
 * split (its position in the reduction's vars; default the outermost); its extent must be a multiple of `parts`.
 * `scratch` is the buffer id of the partials: no graph node may have it (the caller takes ids past the graph's).
 */
export const splitReduction = (ir: KernelIR, parts: number, scratch: number, axis = 0): SplitKernels => {
  const red = reductionOf(ir);
  if (!red) throw new Error('splitK: the kernel has no reduction');
  const v = red.vars[axis];
  if (v === undefined) throw new Error(`splitK: the reduction has no variable ${axis}`);
  const extent = ir.vars.get(v)!.extent;
  if (!Number.isInteger(parts) || parts < 2 || extent % parts !== 0)
    throw new Error(`splitK: ${parts} parts do not divide the reduction variable's extent ${extent}`);
  if (ir.reads.includes(scratch)) throw new Error(`splitK: the scratch id ${scratch} is a buffer the kernel reads`);
  const size = ir.shape.reduce((a, b) => a * b, 1);
  let next = Math.max(...ir.vars.keys()) + 1;
  const fresh = (extent: number, role: VarInfo['role']): VarInfo => ({ id: next++, extent, role });

  // partial: out variable s (the part) in front; v = s * (extent / parts) + u, u a reduction variable of that extent
  const part = fresh(parts, 'out');
  const inner = fresh(extent / parts, 'red');
  const partialVars = new Map(ir.vars);
  partialVars.delete(v);
  partialVars.set(part.id, part).set(inner.id, inner);
  const at = addIx(scaleIx(varIx(part.id), extent / parts), varIx(inner.id));
  const body = mapIndices(red.body, (x) => substituteIx(x, v, at, partialVars));
  const partialValue: Reduce = { ...red, vars: red.vars.map((w) => (w === v ? inner.id : w)), body };
  const partial: KernelIR = {
    shape: [parts, ...ir.shape],
    outVars: [part.id, ...ir.outVars],
    vars: partialVars,
    value: partialValue,
    extras: [],
    reads: loadsOf([partialValue]),
  };

  // combine: the reduction becomes one over the parts, each read at part * size + (the flat output element)
  const each = fresh(parts, 'red');
  const combineVars = new Map(ir.vars).set(each.id, each);
  const element = ir.shape.length ? flattenIx(ir.outVars.map(varIx), ir.shape) : constIx(0);
  const load: Scalar = { k: 'load', buf: scratch, at: addIx(scaleIx(varIx(each.id), size), element) };
  const combined: Reduce = { k: 'reduce', op: red.op, vars: [each.id], body: load };
  const memo = new Map<Scalar, Scalar>();
  const value = replaceNode(ir.value, red, combined, memo);
  const extras = ir.extras.map((e) => ({ node: e.node, value: replaceNode(e.value, red, combined, memo) }));
  const combine: KernelIR = { ...ir, vars: combineVars, value, extras, reads: loadsOf([value, ...extras.map((e) => e.value)]) };
  return { partial, combine };
};

/** Whether and how a kernel is split: `parts` partial reductions of reduction variable `axis`, or none. */
export interface SplitChoice {
  readonly parts: number;
  readonly axis: number;
  /** why, in words (shown in the kernel's source and by inspect) */
  readonly reason: string;
}

// A reduction of at least 2048 terms is split where the kernel as chooseBlock makes it would have fewer invocations
// than a target, into enough parts of at least 256 terms (at most 64) to reach the target.
// On a GPU the target is 8192, unmeasured on one (this project has SwiftShader only): TF.js's WebGPU matmul splits K
// when the output is a few 32 x 32 tiles and K >= 2000.
// On a software adapter it is 2048, measured on SwiftShader (2 cores, process CPU time per run, inputs uploaded in
// each): weight gradients x^T dy over a batch of 2048 (16 x 16 outputs) 8.5 -> 4.6 ms, 4096 (64 x 64) 55 -> 22 ms,
// 8192 (32 x 10) 38 -> 25 ms, 16384 (8 x 8) 17 -> 6.4 ms, and a bias gradient over 8192 rows of 64 11.4 -> 6.5 ms: the
// partial kernel has outputs enough to take a block of them per invocation, and more workgroups for the threads.
const MIN_LENGTH = 2048;
const GPU_INVOCATIONS = 8192;
const SOFTWARE_INVOCATIONS = 2048;
const MIN_PART = 256;
const MAX_PARTS = 64;

/** The largest divisor of n in [2, most], or 1. */
const divisorUpTo = (n: number, most: number): number => {
  for (let d = Math.min(n, Math.floor(most)); d >= 2; d--) if (n % d === 0) return d;
  return 1;
};

/**
 * How many parts to split the kernel's reduction into, or none (parts 1). `tuning.splitK` forces a part count (the
 * largest divisor of a reduction variable's extent up to it); otherwise a reduction of at least `splitMinLength`
 * terms is split where the kernel would have fewer than `splitInvocations` invocations.
 */
export const chooseSplit = (ir: KernelIR, software: boolean, tuning: Tuning = {}): SplitChoice => {
  const none = (reason: string): SplitChoice => ({ parts: 1, axis: 0, reason });
  const red = reductionOf(ir);
  if (!red) return none('no reduction');
  const extents = red.vars.map((v) => ir.vars.get(v)!.extent);
  const length = extents.reduce((a, b) => a * b, 1);
  const size = ir.shape.reduce((a, b) => a * b, 1);
  /** the variable that takes the most parts up to `want` (the outermost of equals), and its part count */
  const best = (want: number) =>
    extents.reduce(
      (b, e, axis) => {
        const parts = divisorUpTo(e, want);
        return parts > b.parts ? { parts, axis } : b;
      },
      { parts: 1, axis: 0 },
    );
  if (tuning.splitK !== undefined) {
    const { parts, axis } = best(tuning.splitK);
    if (parts < 2) return none(`split-K forced to ${tuning.splitK} parts, but no reduction variable (${extents.join(', ')}) divides`);
    return { parts, axis, reason: `split-K forced: ${parts} parts of ${length / parts} terms, ${size} outputs` };
  }
  const minLength = tuning.splitMinLength ?? MIN_LENGTH;
  if (length < minLength) return none(`a reduction of ${length} terms, fewer than ${minLength}`);
  const block = chooseBlock(ir, software, tuning);
  const invocations = block.tree ? size * WORKGROUP : size / (block.block[0] * block.block[1]);
  const target = tuning.splitInvocations ?? (software ? SOFTWARE_INVOCATIONS : GPU_INVOCATIONS);
  if (invocations >= target) return none(`${invocations} invocations unsplit, at least ${target}`);
  const { parts, axis } = best(Math.min(MAX_PARTS, Math.ceil(target / invocations), length / MIN_PART));
  if (parts < 2) return none(`no reduction variable (${extents.join(', ')}) splits into parts of at least ${MIN_PART} terms`);
  return {
    parts,
    axis,
    reason: `split-K: ${parts} parts of ${length / parts} terms, as ${size} outputs would take only ${invocations} invocations`,
  };
};
