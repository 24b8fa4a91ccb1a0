// An IR transformation for backends whose loads may stray a little outside a buffer (the wasm plan keeps a margin
// around its buffers): inside guard(conds, x), a clamp(e, lo, hi) in a load's index is the identity wherever the
// guard holds when a condition bounds e within [lo, hi], and where it does not hold x is discarded (selected to 0)
// anyway. Dropping such clamps makes the padded reads of conv2d and pad affine again, so they vectorise as plain
// loads. A clamp is kept when the unclamped index could reach further than `slack` elements outside the buffer.
import { constIx, ixKey, range, scaleIx, sumIx, type Atom, type Ix } from './indexExpr.ts';
import { mapChildren, type Cond, type KernelIR, type Scalar } from './ir.ts';

export const unclampGuarded = (ir: KernelIR, slack: number, sizeOf: (buf: number) => number): KernelIR => {
  const memo = new Map<Scalar, Scalar>();
  const rewrite = (s: Scalar, conds: readonly Cond[]): Scalar => {
    const hit = conds.length === 0 ? memo.get(s) : undefined;
    if (hit) return hit;
    let out: Scalar;
    if (s.k === 'load') {
      const at = conds.length ? dropClamps(s.at, conds) : s.at;
      const [lo, hi] = range(at, ir.vars);
      out = at !== s.at && lo >= -slack && hi < sizeOf(s.buf) + slack ? { ...s, at } : s;
    } else if (s.k === 'guard') out = { ...s, x: rewrite(s.x, [...conds, ...s.conds]) };
    else out = mapChildren(s, (c) => rewrite(c, conds));
    if (conds.length === 0) memo.set(s, out);
    return out;
  };
  /** x with every clamp that the conditions make the identity replaced by its operand */
  const dropClamps = (x: Ix, conds: readonly Cond[]): Ix => {
    const bounded = (a: Atom) =>
      a.k === 'clamp' && conds.some((c) => !c.step && ixKey(c.ix) === ixKey(a.x) && c.lo >= a.lo && c.hi <= a.hi);
    if (!x.terms.some(([a]) => bounded(a))) return x;
    return sumIx([constIx(x.c), ...x.terms.map(([a, c]) => scaleIx(bounded(a) && a.k === 'clamp' ? a.x : { terms: [[a, 1]], c: 0 }, c))]);
  };
  return { ...ir, value: rewrite(ir.value, []), extras: ir.extras.map((e) => ({ ...e, value: rewrite(e.value, []) })) };
};
