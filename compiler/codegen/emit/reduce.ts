// A reduction is one loop with a literal bound over the reduced elements, counted flat and split into coordinates.
import type { OpsIn } from '../../../core/ir.ts';
import { lit } from '../emitter.ts';
import type { Emit, EmitTable } from './types.ts';

const reduce: Emit<OpsIn<'reduction'>> = (c, n, idx) => {
  const { e } = c;
  const src = c.nodes[n.inputs[0]].shape;
  const axes = n.attrs.axes;
  const m = c.multiOf(idx, n.shape);
  const count = axes.reduce((a, d) => a * src[d], 1);
  const acc = e.fresh('acc');
  e.line(`let ${acc} = ${n.op === 'sum' ? '0.0' : lit(-Infinity)};`);
  const r = e.fresh('r');
  e.open(`for (let ${r} = 0; ${r} < ${count}; ${r}++)`);
  const rs = e.let(`(${r} * 1.0)`);
  const reducedShape = axes.map((d) => src[d]);
  const rm = c.multiOf({ flat: rs }, reducedShape);
  const inner = src.map((_, d) => (axes.includes(d) ? rm[axes.indexOf(d)] : m[d]));
  const v = c.value(n.inputs[0], { multi: inner });
  e.line(n.op === 'sum' ? `${acc} = ${acc} + ${v};` : `${acc} = Math.max(${acc}, ${v});`);
  e.close();
  return acc;
};

export const reductionEmitters: EmitTable<OpsIn<'reduction'>> = { sum: reduce, reduceMax: reduce };
