// Kernel IR -> one WGSL compute shader. One invocation computes one output element (and the kernel's extra outputs
// at the same element); a reduction is a loop nest inside the invocation, with every value hoisted to the loop level
// its indices need. Index arithmetic is i32 with exact floor division and remainder (no float indices, so no 2^21 or
// 2^23 limit); shapes and strides are literals of the shader, so the driver folds them.
//
// Numerics are the interpreter's (docs/numerics.md), written into the shader rather than assumed from the driver:
// WGSL lets a compiler assume there is no NaN or infinity (SwiftShader folds x != x to false), so NaN and infinity
// are told by their bits (bitcast), NaN and the infinities are made from bits at run time (a constant NaN is a
// shader-creation error), division by zero is decided by the operands' sign bits, max/min/comparisons/where pass
// NaN as IEEE says, and a product with a literal zero is NaN for a NaN or infinite operand.
import { ixDependsOn, range, type Atom, type Ix } from '../kernel/indexExpr.ts';
import { reductionOf, scalarLevel, walk, type Cond, type KernelIR, type Scalar } from '../kernel/ir.ts';
import { randomBase } from '../../core/rng.ts';
import { Emitter } from '../codegen/emitter.ts';
import { scalarKeys } from '../kernel/keys.ts';
import { COS_POLY, hornerText, PIO2, REMAINDER_CLAMP, SIN_POLY, TWO_OVER_PI } from '../kernel/sincos.ts';
import { GRID, type TilePlan } from './tiles.ts';

/** Invocations per workgroup (one output element each). */
export const WORKGROUP = 64;
/** The most workgroups along one dispatch dimension (WebGPU's default maxComputeWorkgroupsPerDimension). */
export const MAX_GROUPS_X = 65535;

export interface WgslKernel {
  readonly code: string;
  /** graph nodes bound read-only, in binding order (bindings 0 ..) */
  readonly reads: readonly number[];
  /** graph nodes written (the root, then the extra outputs), bound read-write after the reads */
  readonly writes: readonly number[];
  /** output elements: invocations that do work */
  readonly size: number;
  /** workgroups to dispatch: [x, y] */
  readonly groups: readonly [number, number];
  /** outputs per invocation: rows x columns of the last two axes (tune.ts) */
  readonly block: readonly [number, number];
  /** a workgroup per output, its reduction shared and added in a tree */
  readonly tree: boolean;
  /** workgroup-memory tiles (tiles.ts): the workgroup's blocks read the terms it staged together */
  readonly tiles: boolean;
  /** graph nodes bound as array<vec4<f32>> (read and written four aligned floats at a time) */
  readonly vec4: readonly number[];
}

/** An f32 literal: finite values rounded to f32 and printed exactly; NaN and the infinities come from bits. */
export const f32Lit = (v: number): string => {
  if (Number.isNaN(v)) return 'fd_nan';
  const f = Math.fround(v);
  if (f === Infinity) return 'fd_inf';
  if (f === -Infinity) return '(-fd_inf)';
  if (Object.is(f, -0)) return 'fd_negzero'; // a literal -0.0 loses its sign in shader compilers
  const s = String(f);
  const t = /[.e]/.test(s) ? s : `${s}.0`;
  return f < 0 ? `(${t})` : t;
};

const intLit = (v: number): string => {
  if (!Number.isInteger(v) || Math.abs(v) >= 2 ** 31) throw new Error(`wgsl: index constant ${v} is not an i32`);
  return v < 0 ? `(${v})` : String(v);
};

/** The helpers every shader may call (unused ones cost nothing: the driver drops them). */
const HELPERS = `
var<private> fd_nan : f32;
var<private> fd_inf : f32;
var<private> fd_negzero : f32;
fn fd_isnan(x : f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn fd_isinf(x : f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }
fn fd_signinf(s : u32) -> f32 { return bitcast<f32>(bitcast<u32>(fd_inf) | (s & 0x80000000u)); }
fn fd_div(a : f32, b : f32) -> f32 {
  if ((bitcast<u32>(b) & 0x7fffffffu) == 0u) {
    if (fd_isnan(a) || (bitcast<u32>(a) & 0x7fffffffu) == 0u) { return fd_nan; }
    return fd_signinf(bitcast<u32>(a) ^ bitcast<u32>(b));
  }
  if (fd_isinf(b)) {
    if (fd_isnan(a) || fd_isinf(a)) { return fd_nan; }
    return bitcast<f32>((bitcast<u32>(a) ^ bitcast<u32>(b)) & 0x80000000u);
  }
  if (fd_isnan(a) || fd_isnan(b)) { return fd_nan; }
  if (fd_isinf(a)) { return fd_signinf(bitcast<u32>(a) ^ bitcast<u32>(b)); }
  return a / b;
}
fn fd_mul0(x : f32, z : f32) -> f32 {
  if (fd_isnan(x) || fd_isinf(x)) { return fd_nan; }
  return bitcast<f32>((bitcast<u32>(x) ^ bitcast<u32>(z)) & 0x80000000u);
}
fn fd_exp(x : f32) -> f32 {
  if (fd_isnan(x)) { return x; }
  if (x > 88.72283) { return fd_inf; }
  return exp(max(x, -104.0));
}
fn fd_log(x : f32) -> f32 {
  if (fd_isnan(x) || x < 0.0) { return fd_nan; }
  if (x == 0.0) { return -fd_inf; }
  if (fd_isinf(x)) { return x; }
  return log(x);
}
fn fd_sqrt(x : f32) -> f32 {
  if (fd_isnan(x) || x < 0.0) { return fd_nan; }
  if (fd_isinf(x) || x == 0.0) { return x; }
  return sqrt(x);
}
fn fd_rsqrt(x : f32) -> f32 { return fd_div(1.0, fd_sqrt(x)); }
// sin and cos to about 1 ulp (WGSL promises only 2^-11 absolute, and SwiftShader's cos(0.1) was 3e-4 off): the
// argument reduced by multiples of pi/2 in three parts (Cody-Waite), then minimax polynomials on [-pi/4, pi/4]
fn fd_sincos(x0 : f32, cosine : bool) -> f32 {
  if (fd_isnan(x0) || fd_isinf(x0)) { return fd_nan; }
  let x = select(x0, abs(x0), cosine); // cos is even exactly, also where the reduction is inexact
  let k = round(x * ${f32Lit(TWO_OVER_PI)});
  let d = ((x - k * ${f32Lit(PIO2[0])}) - k * ${f32Lit(PIO2[1])}) - k * ${f32Lit(PIO2[2])};
  let r = clamp(d, ${f32Lit(-REMAINDER_CLAMP)}, ${f32Lit(REMAINDER_CLAMP)}); // compiler/kernel/sincos.ts says why
  let z = r * r;
  let s = r + r * z * ${hornerText('z', SIN_POLY, f32Lit)};
  let c = 1.0 - 0.5 * z + z * z * ${hornerText('z', COS_POLY, f32Lit)};
  let q = (i32(k - 4.0 * floor(k * 0.25)) + select(0, 1, cosine)) & 3;
  if (q == 0) { return s; }
  if (q == 1) { return c; }
  if (q == 2) { return -s; }
  return -c;
}
fn fd_sin(x : f32) -> f32 { return fd_sincos(x, false); }
fn fd_cos(x : f32) -> f32 { return fd_sincos(x, true); }
fn fd_tanh(x : f32) -> f32 {
  if (fd_isnan(x)) { return x; }
  let c = clamp(x, -15.0, 15.0);
  if (abs(c) < 0.0004) { return c; }
  let q = exp(2.0 * c);
  return (q - 1.0) / (q + 1.0);
}
fn fd_sigmoid(x : f32) -> f32 {
  if (fd_isnan(x)) { return x; }
  return 1.0 / (1.0 + fd_exp(-x));
}
fn fd_floor(x : f32) -> f32 {
  if (fd_isnan(x) || fd_isinf(x)) { return x; }
  return floor(x);
}
fn fd_max(a : f32, b : f32) -> f32 { return select(b, a, (a > b) | fd_isnan(a) | ((a == b) & !fd_isnan(b))); }
fn fd_min(a : f32, b : f32) -> f32 { return select(b, a, (a < b) | fd_isnan(a) | ((a == b) & !fd_isnan(b))); }
fn fd_ord(a : f32, b : f32) -> bool { return !fd_isnan(a) & !fd_isnan(b); }
fn fd_odd(y : f32) -> bool { return (abs(y) < 16777216.0) & ((y - 2.0 * floor(y * 0.5)) == 1.0); }
fn fd_pow(x : f32, y : f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (fd_isnan(x) || fd_isnan(y)) { return fd_nan; }
  let ax = abs(x);
  if (fd_isinf(y)) {
    if (ax == 1.0) { return fd_nan; }
    return select(0.0, fd_inf, (ax > 1.0) == (y > 0.0));
  }
  let integer = floor(y) == y;
  if (x < 0.0 && !integer) { return fd_nan; }
  var r : f32;
  if (ax == 0.0) { r = select(fd_inf, 0.0, y > 0.0); }
  else if (fd_isinf(ax)) { r = select(0.0, fd_inf, y > 0.0); }
  else { r = exp2(y * log2(ax)); }
  let negative = ((bitcast<u32>(x) & 0x80000000u) != 0u) & fd_odd(y);
  return select(r, -r, negative);
}
fn fd_fdiv(x : i32, d : i32) -> i32 { let q = x / d; return select(q, q - 1, ((x % d) != 0) & (x < 0)); }
fn rng_mul24(x : u32, c1 : u32, c0 : u32) -> u32 {
  let xh = x >> 12u; let xl = x & 4095u;
  let lo = xl * c0; let loh = lo >> 12u;
  let mid = ((xh * c0) & 4095u) + ((xl * c1) & 4095u) + loh;
  return ((mid & 4095u) << 12u) + (lo & 4095u);
}
fn rng_sqr24(x : u32) -> u32 {
  let h = x >> 12u; let l = x & 4095u;
  let lo = l * l; let loh = lo >> 12u;
  let mid = 2u * ((h * l) & 4095u) + loh;
  return ((mid & 4095u) << 12u) + (lo & 4095u);
}
fn rng_add24(a : u32, b : u32) -> u32 { return (a + b) & 16777215u; }
fn rng_rot12(x : u32) -> u32 { return ((x & 4095u) << 12u) + (x >> 12u); }
fn rng_bits(key : u32, i : u32) -> u32 {
  let k = rng_add24(rng_mul24(key, 2531u, 1913u), 6017257u);
  let y = rng_add24(rng_mul24(rng_add24(i, 1u), 2047u, 2869u), k);
  let z = rng_add24(y, k);
  var x = rng_rot12(rng_add24(rng_sqr24(y), y));
  x = rng_rot12(rng_add24(rng_sqr24(x), z));
  x = rng_rot12(rng_add24(rng_sqr24(x), y));
  return rng_rot12(rng_add24(rng_sqr24(x), z));
}
fn rng_uniform(key : u32, i : u32) -> f32 { return (f32(rng_bits(key, i) >> 1u) + 0.5) / 8388608.0; }
fn rng_draw(base : u32, counter : f32, i : u32, normal : bool) -> f32 {
  let wrapped = counter - floor(counter / 16777216.0) * 16777216.0;
  let key = rng_bits(base, u32(wrapped));
  if (!normal) { return rng_uniform(key, i); }
  let u1 = rng_uniform(key, 2u * i);
  let u2 = rng_uniform(key, 2u * i + 1u);
  return sqrt(-2.0 * log(u1)) * fd_cos(6.283185307179586 * u2);
}
`;

const unaryCall: Record<Extract<Scalar, { k: 'un' }>['op'], (x: string) => string> = {
  neg: (x) => `(-${x})`,
  exp: (x) => `fd_exp(${x})`,
  log: (x) => `fd_log(${x})`,
  sqrt: (x) => `fd_sqrt(${x})`,
  rsqrt: (x) => `fd_rsqrt(${x})`,
  sin: (x) => `fd_sin(${x})`,
  cos: (x) => `fd_cos(${x})`,
  tanh: (x) => `fd_tanh(${x})`,
  sigmoid: (x) => `fd_sigmoid(${x})`,
  relu: (x) => `select(0.0, ${x}, (${x} > 0.0) | fd_isnan(${x}))`,
  abs: (x) => `abs(${x})`,
  floor: (x) => `fd_floor(${x})`,
};

const compare: Record<string, string> = { lt: '<', le: '<=', gt: '>', ge: '>=', eq: '==' };

// Conditions are joined with WGSL's non-short-circuit & and | (each operand parenthesised, as WGSL's grammar asks):
// && and || are branches, and SwiftShader's compiler grew without bound on a block of 16 outputs with 32 of them in
// one loop (an avgpool of relu: > 17 GB and no pipeline; with & and |, 56 ms). The operands have no side effects.
const both = (conds: readonly string[]): string => conds.map((c) => `(${c})`).join(' & ');

/** The rows of a 2-D dispatch: WebGPU caps each dimension at 65,535 workgroups. */
export const dispatchOf = (size: number): [number, number] => {
  const groups = Math.max(1, Math.ceil(size / WORKGROUP));
  if (groups <= MAX_GROUPS_X) return [groups, 1];
  const y = Math.ceil(groups / MAX_GROUPS_X);
  return [Math.ceil(groups / y), y];
};

/**
 * `tree`: a workgroup per output element; its invocations split the reduction (element q, q + 64, ...), then add
 * their partial results in a tree in workgroup memory. For outputs too few to fill a GPU whose reductions are long (a
 * weight's or a bias's gradient): the tuner chooses it (tune.ts).
 */
export const printWgsl = (
  ir: KernelIR,
  outputs: readonly number[],
  block: readonly [number, number] = [1, 1],
  tree = false,
  vectors = false,
  rowAxis = ir.shape.length - 2,
  tiles?: TilePlan,
): WgslKernel => {
  // a buffer is bound as vec4 only when every load of it is four-aligned: print, and print again without the buffers
  // that had a load that was not (at most once per buffer)
  const scalar = new Set<number>();
  for (;;) {
    const { kernel, unaligned } = printOnce(ir, outputs, block, tree, vectors, scalar, rowAxis, tiles);
    if (unaligned.size === 0) return kernel;
    for (const b of unaligned) scalar.add(b);
  }
};

/** Where a variable of the block stands: `base + offset` with a literal offset; `quarter` is base / 4 where base is a multiple of 4. */
interface Lane {
  readonly base: string;
  readonly offset: number;
  readonly quarter?: string | undefined;
}

const printOnce = (
  ir: KernelIR,
  outputs: readonly number[],
  block: readonly [number, number],
  tree: boolean,
  vectorsWanted: boolean,
  scalar: ReadonlySet<number>,
  rowAxis: number,
  tiles: TilePlan | undefined,
): { kernel: WgslKernel; unaligned: Set<number> } => {
  // tiled kernels read and write scalars: their global loads are the staging's, one element per invocation
  const vectors = vectorsWanted && !tree && !tiles;
  const size = ir.shape.reduce((a, b) => a * b, 1);
  if (tree && (block[0] !== 1 || block[1] !== 1)) throw new Error('wgsl: a tree reduction computes one output per workgroup');
  if (tree && !reductionOf(ir)) throw new Error('wgsl: a tree needs a reduction');
  if (tree && tiles) throw new Error('wgsl: a kernel is a tree or tiled, not both');
  const invocations = tree ? size * WORKGROUP : size / (block[0] * block[1]);
  /** workgroups of a tiled kernel: each computes GRID x GRID blocks */
  const tileGroups = invocations / WORKGROUP;
  const groups = dispatchOf(invocations);
  const e = new Emitter('let');
  const reads: number[] = [];
  const bufferName = (id: number) => {
    let k = reads.indexOf(id);
    if (k < 0) k = reads.push(id) - 1;
    return `b${k}`;
  };
  /** i32 expression of each variable in scope */
  const varName = new Map<number, string>();
  /** the variables that stand at a literal offset from a base (block elements, the unrolled reduction's copies) */
  const laneOf = new Map<number, Lane>();
  // keys name variables by their current binding, so a load shared by the block's elements (A[i, k] across the
  // columns of a matmul block) has one key and is loaded once; rebinding a variable starts a fresh cache
  const bindVar = (v: number, name: string, lane?: Lane) => {
    varName.set(v, name);
    if (lane) laneOf.set(v, lane);
    else laneOf.delete(v);
    key = scalarKeys(ixKey, condKey);
  };
  /** buffers read as vec4, and those with a load that is not four-aligned (printed again as f32) */
  const vec4Reads = new Set<number>();
  const unaligned = new Set<number>();
  /**
   * A load as one lane of an aligned vec4 load, or undefined: the index is split into literal offsets (the lanes'
   * and the constant) and terms that are multiples of 4, so the four elements of a block row (or four unrolled
   * reduction steps) share one vec4 load and the driver makes one memory access of it.
   */
  const vec4Load = (buf: number, x: Ix): string | undefined => {
    let offset = x.c;
    const quarters: string[] = [];
    for (const [a, c] of x.terms) {
      const lane = a.k === 'var' ? laneOf.get(a.v) : undefined;
      if (lane) {
        offset += c * lane.offset;
        if (c % 4 === 0) quarters.push(c === 4 ? lane.base : `${lane.base} * ${intLit(c / 4)}`);
        else if (lane.quarter !== undefined) quarters.push(c === 1 ? lane.quarter : `${lane.quarter} * ${intLit(c)}`);
        else return undefined;
      } else if (c % 4 === 0) quarters.push(c === 4 ? atom(a) : `${atom(a)} * ${intLit(c / 4)}`);
      else return undefined;
    }
    const lane = ((offset % 4) + 4) % 4;
    const whole = (offset - lane) / 4;
    if (whole !== 0 || quarters.length === 0) quarters.push(intLit(whole));
    const at = quarters.join(' + ');
    const vec = e.memo(`v4|${buf}|${at}`, () => `${bufferName(buf)}[${at}]`);
    return `${vec}.${'xyzw'[lane]}`;
  };

  const ixKey = (x: Ix): string => [...x.terms.map(([a, c]) => `${c}*${atomKey(a)}`), x.c].join('+');
  const atomKey = (a: Atom): string =>
    a.k === 'var'
      ? `v${a.v}=${varName.get(a.v) ?? '?'}`
      : a.k === 'clamp'
        ? `clamp(${ixKey(a.x)},${a.lo},${a.hi})`
        : `(${ixKey(a.x)})${a.k === 'div' ? '/' : '%'}${a.d}`;
  const condKey = (c: Cond) => `${ixKey(c.ix)}in${c.lo}..${c.hi}/${c.step ?? 1}`;
  let key = scalarKeys(ixKey, condKey);

  /** i32 value of an index expression (memoised per scope) */
  const ix = (x: Ix): string => {
    if (x.terms.length === 0) return intLit(x.c);
    return e.memo(`ix|${ixKey(x)}`, () => {
      const parts = x.terms.map(([a, c]) => {
        const v = atom(a);
        return c === 1 ? v : `${v} * ${intLit(c)}`;
      });
      if (x.c !== 0) parts.push(intLit(x.c));
      return parts.join(' + ');
    });
  };
  const atom = (a: Atom): string => {
    if (a.k === 'var') {
      const name = varName.get(a.v);
      if (name === undefined) throw new Error(`wgsl: variable v${a.v} used outside its loop`);
      return name;
    }
    const x = ix(a.x);
    const [lo] = range(a.x, ir.vars);
    switch (a.k) {
      case 'div':
        return e.memo(`div|${atomKey(a)}`, () => (lo >= 0 ? `(${x} / ${intLit(a.d)})` : `fd_fdiv(${x}, ${intLit(a.d)})`));
      case 'mod':
        return e.memo(`mod|${atomKey(a)}`, () =>
          lo >= 0 ? `(${x} % ${intLit(a.d)})` : `(${x} - fd_fdiv(${x}, ${intLit(a.d)}) * ${intLit(a.d)})`,
        );
      case 'clamp':
        return e.memo(`clamp|${atomKey(a)}`, () => `clamp(${x}, ${intLit(a.lo)}, ${intLit(a.hi)})`);
    }
  };

  const cond = (c: Cond): string[] => {
    const [lo, hi] = range(c.ix, ir.vars);
    const x = ix(c.ix);
    const parts: string[] = [];
    if (lo < c.lo) parts.push(`${x} >= ${intLit(c.lo)}`);
    if (hi > c.hi) parts.push(`${x} <= ${intLit(c.hi)}`);
    if (c.step) parts.push(`(${x} - fd_fdiv(${x}, ${intLit(c.step)}) * ${intLit(c.step)}) == 0`);
    return parts;
  };

  const value = (s: Scalar): string => (s.k === 'lit' ? f32Lit(s.v) : e.memo(key(s), () => compute(s)));

  const isZero = (s: Scalar) => s.k === 'lit' && s.v === 0;

  const compute = (s: Scalar): string => {
    switch (s.k) {
      case 'lit':
        return f32Lit(s.v);
      case 'load': {
        if (vectors && !scalar.has(s.buf)) {
          const v = vec4Load(s.buf, s.at);
          if (v !== undefined) {
            vec4Reads.add(s.buf);
            return v;
          }
          unaligned.add(s.buf);
        }
        return `${bufferName(s.buf)}[${ix(s.at)}]`;
      }
      case 'un': {
        const x = s.op === 'neg' || s.op === 'abs' ? value(s.x) : e.let(value(s.x));
        return unaryCall[s.op](x);
      }
      case 'bin': {
        if (s.op === 'pow' && s.b.k === 'lit') {
          const p = s.b.v;
          const x = e.let(value(s.a));
          if (p === 1) return x;
          if (p === 2) return `(${x} * ${x})`;
          if (p === 3) return `(${x} * ${x} * ${x})`;
          if (p === 0.5) return `fd_sqrt(${x})`;
          if (p === -0.5) return `fd_rsqrt(${x})`;
          if (p === -1) return `fd_div(1.0, ${x})`;
        }
        if (s.op === 'mul' && (isZero(s.a) || isZero(s.b))) {
          const [z, other] = isZero(s.a) ? [s.a, s.b] : [s.b, s.a];
          return `fd_mul0(${value(other)}, ${f32Lit((z as { v: number }).v)})`;
        }
        const a = e.let(value(s.a));
        const b = e.let(value(s.b));
        switch (s.op) {
          case 'add':
            return `(${a} + ${b})`;
          case 'sub':
            return `(${a} - ${b})`;
          case 'mul':
            return `(${a} * ${b})`;
          case 'div':
            return `fd_div(${a}, ${b})`;
          case 'pow':
            return `fd_pow(${a}, ${b})`;
          case 'max':
            return `fd_max(${a}, ${b})`;
          case 'min':
            return `fd_min(${a}, ${b})`;
          case 'ne':
            return `select(0.0, 1.0, !(${a} == ${b}) | !fd_ord(${a}, ${b}))`;
          default:
            return `select(0.0, 1.0, (${a} ${compare[s.op]} ${b}) & fd_ord(${a}, ${b}))`;
        }
      }
      case 'where': {
        const c = e.let(value(s.c));
        const a = value(s.a);
        const b = value(s.b);
        return `select(${b}, ${a}, (${c} != 0.0) | fd_isnan(${c}))`;
      }
      case 'guard': {
        const conds = s.conds.flatMap(cond);
        const x = value(s.x);
        return conds.length ? `select(0.0, ${x}, ${both(conds)})` : x;
      }
      case 'pick': {
        const a = value(s.a);
        const b = value(s.b);
        const c = cond(s.cond);
        return c.length ? `select(${b}, ${a}, ${both(c)})` : a;
      }
      case 'random':
        return `rng_draw(${randomBase(s.seed, s.stream)}u, ${value(s.counter)}, u32(${ix(s.at)}), ${s.dist === 'normal'})`;
      case 'reduce':
        return reduce(s);
    }
  };

  const levelOf = (s: Scalar, vars: readonly number[], memo: Map<Scalar, number>): number =>
    scalarLevel(s, (x) => vars.reduce((l, v, i) => (ixDependsOn(x, v) ? i + 1 : l), 0), memo);

  /**
   * One loop nest for the reductions of every element of the block (an accumulator each); values are computed at the
   * shallowest loop level their indices allow, once per distinct key, so loads shared by elements are loaded once.
   */
  const reduceBlock = (rs: readonly Extract<Scalar, { k: 'reduce' }>[], elements: readonly (() => void)[]): string[] => {
    const { op: kind, vars } = rs[0];
    const accs = rs.map(() => e.fresh('acc'));
    for (const acc of accs) e.line(`var ${acc} : f32 = ${kind === 'sum' ? '0.0' : '(-fd_inf)'};`);
    const levels = new Map<Scalar, number>();
    const byLevel: Scalar[][] = vars.map(() => []);
    byLevel.push([]);
    const seen = new Set<Scalar>();
    for (const r of rs)
      walk(
        r.body,
        (s) => {
          if (s.k !== 'lit') byLevel[levelOf(s, vars, levels)].push(s);
        },
        seen,
      );
    const atLevel = (l: number) =>
      elements.forEach((enter) => {
        enter();
        for (const s of byLevel[l]) value(s);
      });
    atLevel(0);
    // the innermost loop is unrolled by 4 where its extent allows (as jax-js does), and a loop of at most 4 steps (a
    // conv's taps) is written out with no loop at all (on SwiftShader each iteration costs lane-mask work): the terms
    // are still added in order, so the sums are the same bits as without unrolling
    const innermost = vars.length ? ir.vars.get(vars[vars.length - 1])!.extent : 1;
    const whole = innermost <= 4;
    const unroll = whole ? innermost : innermost >= 8 && innermost % 4 === 0 ? 4 : 1;
    let innerLoop = '';
    let loops = 0;
    vars.forEach((v, i) => {
      const last = i === vars.length - 1;
      if (last && whole) return;
      const loop = e.fresh('r');
      e.open(`for (var ${loop} : i32 = 0; ${loop} < ${ir.vars.get(v)!.extent}; ${loop} += ${last ? unroll : 1})`);
      loops++;
      bindVar(v, loop);
      if (last) innerLoop = loop;
      else atLevel(i + 1);
    });
    const innerVar = vars[vars.length - 1];
    for (let u = 0; u < unroll; u++) {
      // the copies stand at offsets 0..3 from the loop variable (or from 0), a multiple of 4: their loads may share
      // a vec4
      if (whole) bindVar(innerVar, intLit(u), { base: '0', offset: u, quarter: '0' });
      else if (unroll > 1)
        bindVar(innerVar, u === 0 ? innerLoop : e.let(`${innerLoop} + ${u}`), {
          base: innerLoop,
          offset: u,
          quarter: vectors ? e.memo(`q|${innerLoop}`, () => `${innerLoop} >> 2`) : undefined,
        });
      rs.forEach((r, j) => {
        elements[j]();
        const v = value(r.body);
        const acc = accs[j];
        if (kind === 'sum') e.line(`${acc} = ${acc} + ${v};`);
        else e.line(`${acc} = select(${acc}, ${v}, (${v} > ${acc}) | fd_isnan(${v}));`);
      });
    }
    for (let l = 0; l < loops; l++) e.close();
    for (const v of vars) varName.delete(v);
    key = scalarKeys(ixKey, condKey);
    return accs;
  };
  /** The workgroup's invocations share the reduction's terms, then add their partials in a tree (workgroup memory). */
  const reduceTree = (r: Extract<Scalar, { k: 'reduce' }>): string => {
    const extents = r.vars.map((v) => ir.vars.get(v)!.extent);
    const total = extents.reduce((a, b) => a * b, 1);
    const acc = e.fresh('acc');
    e.line(`var ${acc} : f32 = ${r.op === 'sum' ? '0.0' : '(-fd_inf)'};`);
    const q = e.fresh('q');
    e.open(`for (var ${q} : i32 = i32(lid); ${q} < ${total}; ${q} += ${WORKGROUP})`);
    let stride = total;
    r.vars.forEach((v, i) => {
      stride /= extents[i];
      const div = stride === 1 ? q : `(${q} / ${stride})`;
      bindVar(v, e.let(i === 0 ? div : `${div} % ${extents[i]}`));
    });
    const v = value(r.body);
    const combine = (a: string, b: string) => (r.op === 'sum' ? `${a} + ${b}` : `select(${a}, ${b}, (${b} > ${a}) | fd_isnan(${b}))`);
    e.line(`${acc} = ${combine(acc, v)};`);
    e.close();
    for (const v of r.vars) varName.delete(v);
    key = scalarKeys(ixKey, condKey);
    e.line(`fd_partial[lid] = ${acc};`);
    e.line('workgroupBarrier();');
    e.open(`for (var s : u32 = ${WORKGROUP / 2}u; s > 0u; s = s >> 1u)`);
    e.line(`if (lid < s) { fd_partial[lid] = ${combine('fd_partial[lid]', 'fd_partial[lid + s]')}; }`);
    e.line('workgroupBarrier();');
    e.close();
    return e.let('fd_partial[0]');
  };
  const reduce = (r: Extract<Scalar, { k: 'reduce' }>): string => (tree ? reduceTree(r) : reduceBlock([r], [() => {}])[0]);

  /** i32 names of the reduction's variables at flattened term `q` (outermost first, as the loop nest runs). */
  const bindFlat = (vars: readonly number[], q: string) => {
    const extents = vars.map((v) => ir.vars.get(v)!.extent);
    let stride = extents.reduce((a, b) => a * b, 1);
    vars.forEach((v, i) => {
      stride /= extents[i];
      const div = stride === 1 ? q : `(${q} / ${stride})`;
      bindVar(v, e.let(i === 0 ? div : `${div} % ${extents[i]}`));
    });
  };
  const unbind = (vars: readonly (number | undefined)[]) => {
    for (const v of vars) if (v !== undefined) varName.delete(v);
    key = scalarKeys(ixKey, condKey);
  };
  /** the workgroup memory of staged term i of a side, and the tile's extent along that side */
  const tileArrays: string[] = [];
  /**
   * The block's reductions through workgroup memory (tiles.ts): per step of the flattened reduction, the workgroup
   * computes every staged term for all its rows and all its columns (each invocation a share, neighbouring invocations
   * neighbouring terms), waits at a barrier, and each element of each block adds its terms read from there in order.
   */
  const reduceTiles = (
    plan: TilePlan,
    rs: readonly Extract<Scalar, { k: 'reduce' }>[],
    elements: readonly (() => void)[],
    at: readonly [number, number][],
    rowStart: string,
    colStart: string,
    rowLocal: readonly string[],
    colLocal: readonly string[],
  ): string[] => {
    const { op: kind, vars } = rs[0];
    const accs = rs.map(() => e.fresh('acc'));
    for (const acc of accs) e.line(`var ${acc} : f32 = ${kind === 'sum' ? '0.0' : '(-fd_inf)'};`);
    const [br, bc] = block;
    const width = { row: GRID * br, col: GRID * bc };
    const names = {
      row: plan.rowTerms.map((_, i) => `fd_tr${i}`),
      col: plan.colTerms.map((_, i) => `fd_tc${i}`),
    };
    for (const side of ['row', 'col'] as const)
      for (const name of names[side]) tileArrays.push(`var<workgroup> ${name} : array<f32, ${width[side] * plan.step}>;`);
    const q0 = e.fresh('q');
    e.open(`for (var ${q0} : i32 = 0; ${q0} < ${plan.length}; ${q0} += ${plan.step})`);
    for (const side of ['row', 'col'] as const) {
      const terms = side === 'row' ? plan.rowTerms : plan.colTerms;
      const outVar = side === 'row' ? rowVar! : colVar!;
      const m = e.fresh('m');
      e.open(`for (var ${m} : i32 = 0; ${m} < ${(width[side] * plan.step) / WORKGROUP}; ${m}++)`);
      const entry = e.let(`i32(lid) + ${m} * ${WORKGROUP}`);
      // rows: entry = local row * step + term (consecutive invocations, consecutive terms of one row); columns:
      // entry = term * width + local column (consecutive columns)
      const [local, term] =
        side === 'row'
          ? [e.let(`${entry} / ${plan.step}`), e.let(`${entry} % ${plan.step}`)]
          : [e.let(`${entry} % ${width.col}`), e.let(`${entry} / ${width.col}`)];
      bindVar(outVar, e.let(`${side === 'row' ? rowStart : colStart} + ${local}`));
      bindFlat(vars, e.let(`${q0} + ${term}`));
      terms.forEach((t, i) => e.line(`${names[side][i]}[${entry}] = ${value(t)};`));
      e.close();
      unbind([outVar, ...vars]);
    }
    e.line('workgroupBarrier();');
    const qq = e.fresh('q');
    e.open(`for (var ${qq} : i32 = 0; ${qq} < ${plan.step}; ${qq}++)`);
    rs.forEach((r, j) => {
      elements[j]();
      const [row, col] = at[j];
      // the staged terms stand for themselves at this element: value(body) finds them by key
      plan.rowTerms.forEach((t, i) => e.memo(key(t), () => `${names.row[i]}[${rowLocal[row]} * ${plan.step} + ${qq}]`));
      plan.colTerms.forEach((t, i) => e.memo(key(t), () => `${names.col[i]}[${qq} * ${width.col} + ${colLocal[col]}]`));
      const v = value(r.body);
      const acc = accs[j];
      if (kind === 'sum') e.line(`${acc} = ${acc} + ${v};`);
      else e.line(`${acc} = select(${acc}, ${v}, (${v} > ${acc}) | fd_isnan(${v}));`);
    });
    e.close();
    // the next step overwrites the tiles only once every invocation has read them
    e.line('workgroupBarrier();');
    e.close();
    key = scalarKeys(ixKey, condKey);
    return accs;
  };

  // the block of this invocation, then its coordinates (outermost first), as i32
  const [br, bc] = block;
  const n = ir.shape.length;
  if (br > 1 && (rowAxis < 0 || rowAxis >= n - 1)) throw new Error(`wgsl: block rows along axis ${rowAxis} of ${n}`);
  // a tiled kernel's workgroup covers GRID blocks along its rows and GRID along its columns
  const span = tiles ? GRID : 1;
  const blocked = ir.shape.map((d, i) => (i === n - 1 ? d / (bc * span) : i === rowAxis ? d / (br * span) : d));
  if (tiles) {
    // the workgroup's tile: uniform across it, so its early return keeps the barriers in uniform control flow
    e.line(`let t : i32 = i32(wid.x + wid.y * ${groups[0]}u);`);
    e.line(`if (t >= ${tileGroups}) { return; }`);
  } else if (tree) {
    // the workgroup's output element: uniform across it, so its early return keeps the barriers in uniform control flow
    e.line(`let t : i32 = i32(wid.x + wid.y * ${groups[0]}u);`);
    e.line(`if (t >= ${size}) { return; }`);
  } else {
    e.line(`let t : i32 = i32(gid.x + gid.y * ${groups[0] * WORKGROUP}u);`);
    e.line(`if (t >= ${invocations}) { return; }`);
  }
  e.line('fd_nan = bitcast<f32>(0x7fc00000u | (gid.z & 1u));');
  e.line('fd_inf = bitcast<f32>(0x7f800000u | (gid.z & 1u));');
  e.line('fd_negzero = bitcast<f32>(0x80000000u | (gid.z & 1u));');
  let stride = tree ? size : tiles ? tileGroups : invocations;
  let rest = 't';
  const coord: string[] = [];
  ir.outVars.forEach((_, d) => {
    stride /= blocked[d];
    if (blocked[d] === 1) return coord.push('0');
    if (stride === 1) return coord.push(rest);
    const q = e.let(`${rest} / ${stride}`);
    coord.push(q);
    rest = e.let(`${rest} - ${q} * ${stride}`);
  });
  // element (r, c) of the block: the last two coordinates scaled by the block and offset
  const rowVar = n >= 2 && rowAxis >= 0 ? ir.outVars[rowAxis] : undefined;
  const colVar = n >= 1 ? ir.outVars[n - 1] : undefined;
  ir.outVars.forEach((v, d) => {
    if (v !== rowVar && v !== colVar) bindVar(v, coord[d]);
  });
  // element (r, c) stands at offset r (c) from the block's first row (column): its lane, for vec4 loads
  const quarterOf = (q: string, b: number) => (b % 4 === 0 ? (b === 4 ? q : e.let(`${q} * ${b / 4}`)) : undefined);
  const rowBase =
    rowVar === undefined || br === 1 ? undefined : { base: e.let(`${coord[rowAxis]} * ${br}`), quarter: quarterOf(coord[rowAxis], br) };
  const rowLanes: (Lane | undefined)[] = Array.from({ length: br }, (_, r) => rowBase && { ...rowBase, offset: r });
  // in a tile, invocation (ti, tj) of the workgroup's grid computes rows ti, ti + GRID, ... of the tile and columns
  // tj, tj + GRID, ...: neighbouring invocations read neighbouring staged terms and store neighbouring outputs
  const tile = tiles && {
    rowStart: e.let(`${coord[rowAxis]} * ${GRID * br}`),
    colStart: e.let(`${coord[n - 1]} * ${GRID * bc}`),
    rowLocal: Array.from({ length: br }, (_, r) => e.let(r === 0 ? `i32(lid) / ${GRID}` : `i32(lid) / ${GRID} + ${r * GRID}`)),
    colLocal: Array.from({ length: bc }, (_, c) => e.let(c === 0 ? `i32(lid) % ${GRID}` : `i32(lid) % ${GRID} + ${c * GRID}`)),
  };
  const rowNames = tile
    ? tile.rowLocal.map((l) => e.let(`${tile.rowStart} + ${l}`))
    : Array.from({ length: br }, (_, r) =>
        rowVar === undefined ? '0' : br === 1 ? coord[rowAxis] : r === 0 ? rowLanes[r]!.base : e.let(`${rowLanes[r]!.base} + ${r}`),
      );
  // a block's columns are contiguous where vectors are on and the block is a multiple of 4 wide (one vec4 per four
  // columns: neighbouring invocations read neighbouring 16-byte vectors); otherwise strided by the columns / bc
  // blocks, so neighbouring invocations read neighbouring addresses rather than addresses bc apart
  const contiguous = vectors && bc % 4 === 0 && colVar !== undefined;
  const colBase = contiguous ? { base: e.let(`${coord[n - 1]} * ${bc}`), quarter: quarterOf(coord[n - 1], bc) } : undefined;
  const colLanes: (Lane | undefined)[] = Array.from({ length: bc }, (_, c) => colBase && { ...colBase, offset: c });
  const colNames = tile
    ? tile.colLocal.map((l) => e.let(`${tile.colStart} + ${l}`))
    : Array.from({ length: bc }, (_, c) =>
        colVar === undefined
          ? '0'
          : bc === 1
            ? coord[n - 1]
            : contiguous
              ? c === 0
                ? colLanes[c]!.base
                : e.let(`${colLanes[c]!.base} + ${c}`)
              : c === 0
                ? coord[n - 1]
                : e.let(`${coord[n - 1]} + ${(c * ir.shape[n - 1]) / bc}`),
      );
  const elementList: [number, number][] = [];
  for (let r = 0; r < br; r++) for (let c = 0; c < bc; c++) elementList.push([r, c]);
  const enter =
    ([r, c]: [number, number]) =>
    () => {
      if (rowVar !== undefined) bindVar(rowVar, rowNames[r], rowLanes[r]);
      if (colVar !== undefined) bindVar(colVar, colNames[c], colLanes[c]);
    };
  const elements = elementList.map(enter);
  const roots = [ir.value, ...ir.extras.map((x) => x.value)];
  // the block's reductions share one loop nest; their accumulators stand for them in the epilogues
  const red = reductionOf(ir);
  const accs =
    red && tile
      ? reduceTiles(
          tiles!,
          elements.map(() => red),
          elements,
          elementList,
          tile.rowStart,
          tile.colStart,
          tile.rowLocal,
          tile.colLocal,
        )
      : red && elements.length > 1
        ? reduceBlock(
            elements.map(() => red),
            elements,
          )
        : [];
  const stores: string[] = [];
  // contiguous columns are stored four at a time: element (r, c0..c0+3) is one vec4 of each output
  const vec4Stores = contiguous && !tree;
  const row4 = roots.map((): string[] => []);
  const storeVec4 = (c0: number) => {
    const at = e.let(
      ir.outVars
        .map((v, d) => {
          if (v === colVar) return c0 === 0 ? colLanes[c0]!.quarter! : `${colLanes[0]!.quarter!} + ${c0 / 4}`;
          return `${varName.get(v)} * ${ir.shape.slice(d + 1).reduce((a, b) => a * b, 1) / 4}`;
        })
        .join(' + '),
    );
    roots.forEach((_, o) => stores.push(`o${o}[${at}] = vec4<f32>(${row4[o].splice(0).join(', ')});`));
  };
  elements.forEach((enterElement, j) => {
    enterElement();
    if (red && accs.length) e.bind(key(red), accs[j]);
    if (vec4Stores) {
      const c = elementList[j][1];
      roots.forEach((root, o) => row4[o].push(value(root)));
      if (c % 4 === 3) storeVec4(c - 3);
      return;
    }
    // the flat output element of (r, c) in the row-major output
    const flat =
      elements.length === 1 && br === 1 && bc === 1 && n > 0 && !tiles
        ? null
        : e.let(
            ir.outVars
              .map((v, d) => {
                const strideD = ir.shape.slice(d + 1).reduce((a, b) => a * b, 1);
                return `${varName.get(v)} * ${strideD}`;
              })
              .join(' + ') || '0',
          );
    roots.forEach((root, o) => stores.push(`o${o}[${flat ?? 't'}] = ${value(root)};`));
  });
  // bindings: the reads first (known only now), then the outputs
  // every binding is read_write: they are ranges of one buffer (the plan's arena), and WebGPU refuses a buffer bound
  // read-only and writable in one dispatch, ranges apart or not
  const typeOf = (vec4: boolean) => (vec4 ? 'vec4<f32>' : 'f32');
  const readDecls = reads.map((id, i) => `@group(0) @binding(${i}) var<storage, read_write> b${i} : array<${typeOf(vec4Reads.has(id))}>;`);
  const writeDecls = outputs.map(
    (_, j) => `@group(0) @binding(${reads.length + j}) var<storage, read_write> o${j} : array<${typeOf(vec4Stores)}>;`,
  );
  if (tree) e.open('if (lid == 0u)');
  for (const line of stores) e.line(line);
  if (tree) e.close();
  const code = [
    ...readDecls,
    ...writeDecls,
    HELPERS,
    ...(tree ? [`var<workgroup> fd_partial : array<f32, ${WORKGROUP}>;`] : []),
    ...tileArrays,
    `@compute @workgroup_size(${WORKGROUP})`,
    'fn main(@builtin(global_invocation_id) gid : vec3<u32>, @builtin(workgroup_id) wid : vec3<u32>, ' +
      '@builtin(local_invocation_index) lid : u32) {',
    e.text(),
    '}',
  ].join('\n');
  const vec4 = [...reads.filter((id) => vec4Reads.has(id)), ...(vec4Stores ? outputs : [])];
  return { kernel: { code, reads, writes: outputs, size, groups, block, tree, tiles: !!tiles, vec4 }, unaligned };
};
