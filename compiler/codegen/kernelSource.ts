// codegen: one Kernel -> gpu.js kernel source. The kernel computes its root node at the flat output index
// this.thread.x; every inlined node becomes a `const` (memoised per node and index), views become index
// arithmetic, and a core (reduction, matmul, conv2d) becomes one loop with a literal bound (never truncated
// by gpu.js's loopMaxIterations). All arithmetic, index arithmetic included, is in floats: integer division
// is floor((a + 0.5) / b), which stays exact under GPUs' approximate division for indices below 2^21.
import type { Graph, Node, NodeOf } from '../../core/ir.ts';
import { randomBase, rngEntryPoint } from '../../core/rng.ts';
import { strides, type Shape } from '../../core/shape.ts';
import type { FusedProgram, Kernel } from '../passes/fuse.ts';
import { isSplat } from '../passes/fuse.ts';
import { splatValue } from '../passes/simplify.ts';
import { Emitter, lit } from './emitter.ts';

export interface KernelSource {
  /** gpu.js kernel function source */
  readonly source: string;
  /** node ids of the buffers passed as arguments b0, b1, ... */
  readonly args: readonly number[];
  /** gpu.js sub-kernel sources for the extra outputs (keep0 writes extraOutputs[0], ...) */
  readonly subKernels: readonly string[];
}

/** An index into a tensor: its flat offset, or its per-axis coordinates (expressions). */
type Index = { flat: string; multi?: undefined } | { multi: readonly string[]; flat?: undefined };

const add = (a: string, b: string) => (a === '0.0' ? b : b === '0.0' ? a : `(${a} + ${b})`);
const mulc = (a: string, c: number) => (c === 0 || a === '0.0' ? '0.0' : c === 1 ? a : `(${a} * ${lit(c)})`);

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

  /** The value of node `id` at `idx`, as an expression (a variable or a literal). */
  const value = (id: number, idx: Index): string => {
    const n = nodes[id];
    if (isSplat(graph, id)) return lit(splatOf(graph, id));
    if (materialized.has(id) && id !== kernel.root && !extras.includes(id)) return e.memo(`read|${id}|${keyOf(idx)}`, () => `${argName(id)}[${flatOf(idx, n.shape)}]`);
    return e.memo(`${id}|${keyOf(idx)}`, () => compute(n, idx));
  };

  const compute = (n: Node, idx: Index): string => {
    const at = (i: number, j: Index = idx) => value(n.inputs[i], j);
    switch (n.op) {
      case 'input':
      case 'constant':
        throw new Error(`codegen: ${n.op} %${n.id} must be materialised`);
      case 'stopGradient':
        return at(0);
      case 'neg': return `(-${at(0)})`;
      case 'exp': return `Math.exp(${at(0)})`;
      case 'log': return `Math.log(${at(0)})`;
      case 'sqrt': return `Math.sqrt(${at(0)})`;
      case 'rsqrt': return `(1.0 / Math.sqrt(${at(0)}))`;
      case 'sin': return `Math.sin(${at(0)})`;
      case 'cos': return `Math.cos(${at(0)})`;
      case 'tanh': {
        const x = e.let(`Math.min(Math.max(${at(0)}, -15.0), 15.0)`); // tanh(15) = 1 in f32; keeps exp finite
        const q = e.let(`Math.exp(2.0 * ${x})`);
        return `((${q} - 1.0) / (${q} + 1.0))`;
      }
      case 'sigmoid': return `(1.0 / (1.0 + Math.exp(-${at(0)})))`;
      case 'relu': return `Math.max(${at(0)}, 0.0)`;
      case 'abs': return `Math.abs(${at(0)})`;
      case 'floor': return `Math.floor(${at(0)})`;
      case 'add': return `(${at(0)} + ${at(1)})`;
      case 'sub': return `(${at(0)} - ${at(1)})`;
      case 'mul': return `(${at(0)} * ${at(1)})`;
      case 'div': return `(${at(0)} / ${at(1)})`;
      case 'pow': return power(at(0), isSplat(graph, n.inputs[1]) ? splatOf(graph, n.inputs[1]) : undefined, () => at(1));
      case 'max': return `Math.max(${at(0)}, ${at(1)})`;
      case 'min': return `Math.min(${at(0)}, ${at(1)})`;
      case 'lt': return `(${at(0)} < ${at(1)} ? 1.0 : 0.0)`;
      case 'le': return `(${at(0)} <= ${at(1)} ? 1.0 : 0.0)`;
      case 'gt': return `(${at(0)} > ${at(1)} ? 1.0 : 0.0)`;
      case 'ge': return `(${at(0)} >= ${at(1)} ? 1.0 : 0.0)`;
      case 'eq': return `(${at(0)} === ${at(1)} ? 1.0 : 0.0)`;
      case 'ne': return `(${at(0)} !== ${at(1)} ? 1.0 : 0.0)`;
      case 'where': return `(${at(0)} !== 0.0 ? ${at(1)} : ${at(2)})`;
      case 'random': {
        return `${rngEntryPoint}(${lit(randomBase(n.attrs.seed, n.attrs.stream))}, ${at(0, { flat: '0.0' })}, ${flatOf(idx, n.shape)}, ${n.attrs.dist === 'normal' ? '1.0' : '0.0'})`;
      }
      case 'reshape':
        return at(0, { flat: flatOf(idx, n.shape) });
      case 'broadcast': {
        const src = nodes[n.inputs[0]].shape;
        const m = multiOf(idx, n.shape);
        const off = n.shape.length - src.length;
        return at(0, { multi: src.map((d, i) => (d === 1 ? '0.0' : m[i + off])) });
      }
      case 'permute': {
        const m = multiOf(idx, n.shape);
        const inner = new Array<string>(m.length);
        n.attrs.perm.forEach((p, d) => (inner[p] = m[d]));
        return at(0, { multi: inner });
      }
      case 'slice': {
        const m = multiOf(idx, n.shape);
        return at(0, { multi: m.map((x, d) => add(lit(n.attrs.start[d]), mulc(x, n.attrs.step[d]))) });
      }
      case 'flip': {
        const m = multiOf(idx, n.shape);
        return at(0, { multi: m.map((x, d) => (n.attrs.axes.includes(d) ? `(${lit(n.shape[d] - 1)} - ${x})` : x)) });
      }
      case 'pad': return pad(n, idx);
      case 'concat': return concat(n, idx);
      case 'sum':
      case 'reduceMax': return reduce(n, idx);
      case 'matmul': return matmul(n, idx);
      case 'conv2d': return conv(n, idx);
    }
  };

  const power = (x: string, p: number | undefined, y: () => string): string => {
    if (p === 1) return x;
    if (p === 2) return `(${x} * ${x})`;
    if (p === 3) return `(${x} * ${x} * ${x})`;
    if (p === 0.5) return `Math.sqrt(${x})`;
    if (p === -0.5) return `(1.0 / Math.sqrt(${x}))`;
    if (p === -1) return `(1.0 / ${x})`;
    if (p === 1.5) return `(${x} * Math.sqrt(${x}))`;
    if (p === 0) return '1.0';
    return `Math.pow(${x}, ${y()})`;
  };

  /** Reads outside the source are clamped, then masked: every backend reads in bounds. */
  const clamp = (x: string, hi: number) => (hi === 0 ? '0.0' : `Math.min(Math.max(${x}, 0.0), ${lit(hi)})`);

  const pad = (n: NodeOf<'pad'>, idx: Index): string => {
    const src = nodes[n.inputs[0]].shape;
    const m = multiOf(idx, n.shape);
    const conds: string[] = [];
    const inner = m.map((x, d) => {
      const { lo, interior } = { lo: n.attrs.lo[d], interior: n.attrs.interior[d] };
      if (lo === 0 && interior === 0 && n.attrs.hi[d] === 0) return x;
      const j = e.let(`(${x} - ${lit(lo)})`);
      const span = (src[d] - 1) * (interior + 1);
      conds.push(`${j} >= 0.0`, `${j} <= ${lit(span)}`);
      if (interior === 0) return clamp(j, src[d] - 1);
      const q = e.let(`Math.floor((${j} + 0.5) / ${lit(interior + 1)})`);
      conds.push(`${j} - ${q} * ${lit(interior + 1)} === 0.0`);
      return clamp(q, src[d] - 1);
    });
    const v = value(n.inputs[0], { multi: inner.map((x) => e.let(x)) });
    return conds.length ? `((${conds.join(' && ')}) ? ${v} : 0.0)` : v;
  };

  const concat = (n: NodeOf<'concat'>, idx: Index): string => {
    const ax = n.attrs.axis;
    const m = multiOf(idx, n.shape);
    let offset = 0;
    const parts = n.inputs.map((id) => {
      const d = nodes[id].shape[ax];
      const local = e.let(clamp(`(${m[ax]} - ${lit(offset)})`, d - 1));
      const v = value(id, { multi: m.map((x, a) => (a === ax ? local : x)) });
      offset += d;
      return { end: offset, v };
    });
    return parts.slice(0, -1).reduceRight((acc, p) => `(${m[ax]} < ${lit(p.end)} ? ${p.v} : ${acc})`, parts[parts.length - 1].v);
  };

  const reduce = (n: NodeOf<'sum' | 'reduceMax'>, idx: Index): string => {
    const src = nodes[n.inputs[0]].shape;
    const axes = n.attrs.axes;
    const m = multiOf(idx, n.shape);
    const count = axes.reduce((a, d) => a * src[d], 1);
    const acc = e.fresh('acc');
    e.line(`let ${acc} = ${n.op === 'sum' ? '0.0' : lit(-Infinity)};`);
    const r = e.fresh('r');
    e.open(`for (let ${r} = 0; ${r} < ${count}; ${r}++)`);
    const rs = e.let(`(${r} * 1.0)`);
    const reducedShape = axes.map((d) => src[d]);
    const rm = multiOf({ flat: rs }, reducedShape);
    const inner = src.map((_, d) => (axes.includes(d) ? rm[axes.indexOf(d)] : m[d]));
    const v = value(n.inputs[0], { multi: inner });
    e.line(n.op === 'sum' ? `${acc} = ${acc} + ${v};` : `${acc} = Math.max(${acc}, ${v});`);
    e.close();
    return acc;
  };

  /**
   * A view chain (permute, broadcast, slice) over a buffer is an affine map: element offset = offset + sum idx*stride.
   * Then a loop can walk it with a running pointer instead of recomputing the index each iteration.
   */
  const affine = (id: number): { buf: number; offset: number; strides: number[] } | undefined => {
    const n = nodes[id];
    if (isSplat(graph, id)) return undefined;
    if ((materialized.has(id) && id !== kernel.root && !extras.includes(id)) || n.op === 'input') return { buf: id, offset: 0, strides: strides(n.shape) };
    const src = n.inputs.length ? affine(n.inputs[0]) : undefined;
    if (!src) return undefined;
    switch (n.op) {
      case 'stopGradient':
        return src;
      case 'reshape': {
        // a reshape of a contiguous view is contiguous in the new shape
        const inShape = nodes[n.inputs[0]].shape;
        const contiguous = strides(inShape).every((s, d) => inShape[d] === 1 || src.strides[d] === s);
        return contiguous ? { buf: src.buf, offset: src.offset, strides: strides(n.shape) } : undefined;
      }
      case 'permute':
        return { ...src, strides: n.attrs.perm.map((p) => src.strides[p]) };
      case 'broadcast': {
        const inShape = nodes[n.inputs[0]].shape;
        const off = n.shape.length - inShape.length;
        return { ...src, strides: n.shape.map((_, d) => (d < off || inShape[d - off] === 1 ? 0 : src.strides[d - off])) };
      }
      case 'slice':
        return { buf: src.buf, offset: src.offset + n.attrs.start.reduce((a, s, d) => a + s * src.strides[d], 0), strides: src.strides.map((s, d) => s * n.attrs.step[d]) };
      case 'flip':
        return {
          buf: src.buf,
          offset: src.offset + n.attrs.axes.reduce((a, d) => a + (n.shape[d] - 1) * src.strides[d], 0),
          strides: src.strides.map((s, d) => (n.attrs.axes.includes(d) ? -s : s)),
        };
      default:
        return undefined;
    }
  };

  const affineBase = (a: { offset: number; strides: number[] }, m: readonly string[]) =>
    m.reduce((acc, x, d) => (a.strides[d] === 0 ? acc : add(acc, mulc(x, a.strides[d]))), lit(a.offset));

  const matmul = (n: NodeOf<'matmul'>, idx: Index): string => {
    const r = n.shape.length;
    const K = nodes[n.inputs[0]].shape[r - 1];
    const m = multiOf(idx, n.shape);
    const batch = m.slice(0, r - 2);
    const fa = affine(n.inputs[0]);
    const fb = affine(n.inputs[1]);
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
      e.line(`${acc} = ${acc} + ${argName(fa.buf)}[${pa}] * ${argName(fb.buf)}[${pb}];`);
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
    const a = value(n.inputs[0], { multi: [...batch, m[r - 2], kf] });
    const b = value(n.inputs[1], { multi: [...batch, kf, m[r - 1]] });
    e.line(`${acc} = ${acc} + ${a} * ${b};`);
    e.close();
    return acc;
  };

  /**
   * conv2d as nested literal-bound loops over input channel, kernel row and kernel column (no index division per
   * iteration); the row and column bounds checks of the padding are hoisted to their loops, and operands that are
   * affine views of buffers are read through precomputed offsets.
   */
  const conv = (n: NodeOf<'conv2d'>, idx: Index): string => {
    const [, C, H, W] = nodes[n.inputs[0]].shape;
    const [, , KH, KW] = nodes[n.inputs[1]].shape;
    const [sh, sw] = n.attrs.stride;
    const [pt, , pl] = n.attrs.padding;
    const [bn, o, p, q] = multiOf(idx, n.shape);
    const fx = affine(n.inputs[0]);
    const fw = affine(n.inputs[1]);
    const acc = e.fresh('acc');
    e.line(`let ${acc} = 0.0;`);
    const [c, i, j] = [e.fresh('c'), e.fresh('i'), e.fresh('j')];
    const y0 = e.let(`(${mulc(p, sh)} - ${lit(pt)})`);
    const x0 = e.let(`(${mulc(q, sw)} - ${lit(pl)})`);
    const xBase = fx ? e.let(affineBase(fx, [bn, '0.0', '0.0', '0.0'])) : '';
    const wBase = fw ? e.let(affineBase(fw, [o, '0.0', '0.0', '0.0'])) : '';
    e.open(`for (let ${c} = 0; ${c} < ${C}; ${c}++)`);
    const cf = e.let(`(${c} * 1.0)`);
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
    const xv = fx ? `${argName(fx.buf)}[${xRow} + ${mulc(xc, fx.strides[3])}]` : value(n.inputs[0], { multi: [bn, cf, yc, xc] });
    const wv = fw ? `${argName(fw.buf)}[${wRow} + ${mulc(jf, fw.strides[3])}]` : value(n.inputs[1], { multi: [o, cf, e.let(`(${i} * 1.0)`), jf] });
    e.line(`${acc} = ${acc} + ((${yOk} > 0.5 && ${x} >= 0.0 && ${x} <= ${lit(W - 1)}) ? ${xv} * ${wv} : 0.0);`);
    e.close();
    e.close();
    e.close();
    return acc;
  };

  e.line('const t = this.thread.x * 1.0;');
  extras.forEach((id, j) => e.line(`keep${j}(${value(id, { flat: 't' })});`));
  const out = compute(nodes[kernel.root], { flat: 't' });
  e.line(`return ${out};`);
  const params = args.map((_, i) => `b${i}`).join(', ');
  const subKernels = extras.map((_, j) => `function keep${j}(v) { return v; }`);
  return { source: `function (${params}) {\n${e.text()}\n}`, args: [...args], subKernels };
};

export const splatOf = (g: Graph, id: number): number => {
  const n = g.nodes[id];
  return n.op === 'constant' ? splatValue(n)! : splatOf(g, n.inputs[0]);
};
