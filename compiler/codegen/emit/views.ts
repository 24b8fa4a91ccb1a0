// Views are index arithmetic: the output index is mapped to an index into the input, which is then read.
// pad and concat also select: reads outside a source are clamped into it and the value masked.
import type { OpsIn } from '../../../core/ir.ts';
import { add, clamp, lit, mulc } from '../emitter.ts';
import type { Emit, EmitTable } from './types.ts';

const pad: Emit<'pad'> = (c, n, idx) => {
  const src = c.nodes[n.inputs[0]].shape;
  const m = c.multiOf(idx, n.shape);
  const conds: string[] = [];
  const inner = m.map((x, d) => {
    const { lo, interior } = { lo: n.attrs.lo[d], interior: n.attrs.interior[d] };
    if (lo === 0 && interior === 0 && n.attrs.hi[d] === 0) return x;
    const j = c.e.let(`(${x} - ${lit(lo)})`);
    const span = (src[d] - 1) * (interior + 1);
    conds.push(`${j} >= 0.0`, `${j} <= ${lit(span)}`);
    if (interior === 0) return clamp(j, src[d] - 1);
    const q = c.e.let(`Math.floor((${j} + 0.5) / ${lit(interior + 1)})`);
    conds.push(`${j} - ${q} * ${lit(interior + 1)} === 0.0`);
    return clamp(q, src[d] - 1);
  });
  const v = c.value(n.inputs[0], { multi: inner.map((x) => c.e.let(x)) });
  return conds.length ? `((${conds.join(' && ')}) ? ${v} : 0.0)` : v;
};

const concat: Emit<'concat'> = (c, n, idx) => {
  const ax = n.attrs.axis;
  const m = c.multiOf(idx, n.shape);
  let offset = 0;
  const parts = n.inputs.map((id) => {
    const d = c.nodes[id].shape[ax];
    const local = c.e.let(clamp(`(${m[ax]} - ${lit(offset)})`, d - 1));
    const v = c.value(id, { multi: m.map((x, a) => (a === ax ? local : x)) });
    offset += d;
    return { end: offset, v };
  });
  return parts.slice(0, -1).reduceRight((acc, p) => `(${m[ax]} < ${lit(p.end)} ? ${p.v} : ${acc})`, parts[parts.length - 1].v);
};

export const viewEmitters: EmitTable<OpsIn<'view'>> = {
  reshape: (c, n, idx) => c.value(n.inputs[0], { flat: c.flatOf(idx, n.shape) }),
  broadcast: (c, n, idx) => {
    const src = c.nodes[n.inputs[0]].shape;
    const m = c.multiOf(idx, n.shape);
    const off = n.shape.length - src.length;
    return c.value(n.inputs[0], { multi: src.map((d, i) => (d === 1 ? '0.0' : m[i + off])) });
  },
  permute: (c, n, idx) => {
    const m = c.multiOf(idx, n.shape);
    const inner = new Array<string>(m.length);
    n.attrs.perm.forEach((p, d) => (inner[p] = m[d]));
    return c.value(n.inputs[0], { multi: inner });
  },
  slice: (c, n, idx) => {
    const m = c.multiOf(idx, n.shape);
    return c.value(n.inputs[0], { multi: m.map((x, d) => add(lit(n.attrs.start[d]), mulc(x, n.attrs.step[d]))) });
  },
  flip: (c, n, idx) => {
    const m = c.multiOf(idx, n.shape);
    return c.value(n.inputs[0], { multi: m.map((x, d) => (n.attrs.axes.includes(d) ? `(${lit(n.shape[d] - 1)} - ${x})` : x)) });
  },
  pad,
  concat,
};
