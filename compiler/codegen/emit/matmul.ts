// matmul: one loop over the shared dimension K with a literal bound.
import { lit } from '../emitter.ts';
import { affine, affineBase } from './affine.ts';
import type { Emit } from './types.ts';

export const matmul: Emit<'matmul'> = (c, n, idx) => {
  const { e } = c;
  const r = n.shape.length;
  const K = c.nodes[n.inputs[0]].shape[r - 1];
  const m = c.multiOf(idx, n.shape);
  const batch = m.slice(0, r - 2);
  const fa = affine(c, n.inputs[0]);
  const fb = affine(c, n.inputs[1]);
  if (fa && fb) {
    // running pointers: measured 2-3x faster than per-iteration index arithmetic on webasm
    const acc = e.fresh('acc');
    const pa = e.fresh('pa');
    const pb = e.fresh('pb');
    e.line(`let ${acc} = 0.0;`);
    e.line(`let ${pa} = ${affineBase(fa, [...batch, m[r - 2], '0.0'])};`);
    e.line(`let ${pb} = ${affineBase(fb, [...batch, '0.0', m[r - 1]])};`);
    const k = e.fresh('k');
    e.open(`for (let ${k} = 0; ${k} < ${K}; ${k}++)`);
    e.line(`${acc} = ${acc} + ${c.argName(fa.buf)}[${pa}] * ${c.argName(fb.buf)}[${pb}];`);
    e.line(`${pa} = ${pa} + ${lit(fa.strides[r - 1])};`);
    e.line(`${pb} = ${pb} + ${lit(fb.strides[r - 2])};`);
    e.close();
    return acc;
  }
  const acc = e.fresh('acc');
  e.line(`let ${acc} = 0.0;`);
  const k = e.fresh('k');
  e.open(`for (let ${k} = 0; ${k} < ${K}; ${k}++)`);
  const kf = e.let(`(${k} * 1.0)`);
  const a = c.value(n.inputs[0], { multi: [...batch, m[r - 2], kf] });
  const b = c.value(n.inputs[1], { multi: [...batch, kf, m[r - 1]] });
  e.line(`${acc} = ${acc} + ${a} * ${b};`);
  e.close();
  return acc;
};
