// conv2d as nested literal-bound loops over input channel, kernel row and kernel column (no index division per
// iteration); the row and column bounds checks of the padding are hoisted to their loops, and operands that are
// affine views of buffers are read through precomputed offsets.
import { lit, mulc } from '../emitter.ts';
import { affine, affineBase } from './affine.ts';
import type { Emit } from './types.ts';

export const conv2d: Emit<'conv2d'> = (c, n, idx) => {
  const { e } = c;
  const [, C, H, W] = c.nodes[n.inputs[0]].shape;
  const [, , KH, KW] = c.nodes[n.inputs[1]].shape;
  const [sh, sw] = n.attrs.stride;
  const [pt, , pl] = n.attrs.padding;
  const [bn, o, p, q] = c.multiOf(idx, n.shape);
  const fx = affine(c, n.inputs[0]);
  const fw = affine(c, n.inputs[1]);
  const acc = e.fresh('acc');
  e.line(`let ${acc} = 0.0;`);
  const [ci, i, j] = [e.fresh('c'), e.fresh('i'), e.fresh('j')];
  const y0 = e.let(`(${mulc(p, sh)} - ${lit(pt)})`);
  const x0 = e.let(`(${mulc(q, sw)} - ${lit(pl)})`);
  const xBase = fx ? e.let(affineBase(fx, [bn, '0.0', '0.0', '0.0'])) : '';
  const wBase = fw ? e.let(affineBase(fw, [o, '0.0', '0.0', '0.0'])) : '';
  e.open(`for (let ${ci} = 0; ${ci} < ${C}; ${ci}++)`);
  const cf = e.let(`(${ci} * 1.0)`);
  e.open(`for (let ${i} = 0; ${i} < ${KH}; ${i}++)`);
  const y = e.let(`(${y0} + ${i})`);
  const yOk = e.let(`(${y} >= 0.0 && ${y} <= ${lit(H - 1)} ? 1.0 : 0.0)`);
  const yc = e.let(`Math.min(Math.max(${y}, 0.0), ${lit(H - 1)})`);
  const xRow = fx ? e.let(`(${xBase} + ${mulc(cf, fx.strides[1])} + ${mulc(yc, fx.strides[2])})`) : '';
  const wRow = fw ? e.let(`(${wBase} + ${mulc(cf, fw.strides[1])} + ${mulc(`(${i} * 1.0)`, fw.strides[2])})`) : '';
  e.open(`for (let ${j} = 0; ${j} < ${KW}; ${j}++)`);
  const jf = e.let(`(${j} * 1.0)`);
  const x = e.let(`(${x0} + ${jf})`);
  const xc = e.let(`Math.min(Math.max(${x}, 0.0), ${lit(W - 1)})`);
  const xv = fx ? `${c.argName(fx.buf)}[${xRow} + ${mulc(xc, fx.strides[3])}]` : c.value(n.inputs[0], { multi: [bn, cf, yc, xc] });
  const wv = fw ? `${c.argName(fw.buf)}[${wRow} + ${mulc(jf, fw.strides[3])}]` : c.value(n.inputs[1], { multi: [o, cf, e.let(`(${i} * 1.0)`), jf] });
  e.line(`${acc} = ${acc} + ((${yOk} > 0.5 && ${x} >= 0.0 && ${x} <= ${lit(W - 1)}) ? ${xv} * ${wv} : 0.0);`);
  e.close();
  e.close();
  e.close();
  return acc;
};
