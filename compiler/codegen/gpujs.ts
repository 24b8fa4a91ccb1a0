// Kernel IR -> gpu.js kernel source. One thread computes one output element at the flat index this.thread.x;
// its coordinates, every index expression and every value are floats (gpu.js's kernel language has no integers
// on GL), integer division is floor((a + 0.5) / d), exact below 2^21. A reduction becomes nested loops with
// literal bounds (never cut by gpu.js's loopMaxIterations); values that do not depend on an inner loop variable
// are computed outside that loop, and loads that walk a buffer linearly in the innermost variable use a running
// pointer (2-3x faster than recomputing the index on gpu.js's webasm).
import { randomBase, rngEntryPoint } from '../../core/rng.ts';
import { strides } from '../../core/shape.ts';
import { coefficientOf, flattenIx, ixDependsOn, range, substituteIx, varIx, type Atom, type Ix } from '../kernel/indexExpr.ts';
import { scalarLevel, walk, type Cond, type KernelIR, type Scalar } from '../kernel/ir.ts';
import { splitLanes, type LaneKernelIR } from '../kernel/lanes.ts';
import { add, Emitter, lit, mulc } from './emitter.ts';
import { scalarKeys } from '../kernel/keys.ts';
import { COS_POLY, hornerText, PIO2, REMAINDER_CLAMP, SIN_POLY, TWO_OVER_PI } from '../kernel/sincos.ts';

export interface KernelSource {
  /** gpu.js kernel function source */
  readonly source: string;
  /** node ids of the buffers passed as arguments b0, b1, ... */
  readonly args: readonly number[];
  /** gpu.js sub-kernel sources for the extra outputs (keep0 writes extraOutputs[0], ...) */
  readonly subKernels: readonly string[];
  /** outputs per thread: 1, or 4 returned as one texel (gpu.js Array(4)) holding consecutive output elements */
  readonly lanes?: 1 | 4;
}

type Fmt = (x: string, e: Emitter) => string;
const unaryFormat: Record<Extract<Scalar, { k: 'un' }>['op'], Fmt> = {
  neg: (x) => `(-${x})`,
  exp: (x) => `Math.exp(${x})`,
  log: (x) => `Math.log(${x})`,
  sqrt: (x) => `Math.sqrt(${x})`,
  rsqrt: (x) => `(1.0 / Math.sqrt(${x}))`,
  sin: (x) => `Math.sin(${x})`,
  cos: (x) => `Math.cos(${x})`,
  tanh: (x, e) => {
    const c = e.let(`Math.min(Math.max(${x}, -15.0), 15.0)`); // tanh(15) = 1 in f32; keeps exp finite
    const q = e.let(`Math.exp(2.0 * ${c})`);
    return `((${q} - 1.0) / (${q} + 1.0))`;
  },
  sigmoid: (x) => `(1.0 / (1.0 + Math.exp(-${x})))`,
  relu: (x) => `Math.max(${x}, 0.0)`,
  abs: (x) => `Math.abs(${x})`,
  floor: (x) => `Math.floor(${x})`,
};
const binaryFormat: Record<Exclude<Extract<Scalar, { k: 'bin' }>['op'], 'pow'>, (a: string, b: string) => string> = {
  add: (a, b) => `(${a} + ${b})`,
  sub: (a, b) => `(${a} - ${b})`,
  mul: (a, b) => `(${a} * ${b})`,
  div: (a, b) => `(${a} / ${b})`,
  max: (a, b) => `Math.max(${a}, ${b})`,
  min: (a, b) => `Math.min(${a}, ${b})`,
  lt: (a, b) => `(${a} < ${b} ? 1.0 : 0.0)`,
  le: (a, b) => `(${a} <= ${b} ? 1.0 : 0.0)`,
  gt: (a, b) => `(${a} > ${b} ? 1.0 : 0.0)`,
  ge: (a, b) => `(${a} >= ${b} ? 1.0 : 0.0)`,
  eq: (a, b) => `(${a} === ${b} ? 1.0 : 0.0)`,
  ne: (a, b) => `(${a} !== ${b} ? 1.0 : 0.0)`,
};

/** x^p for a literal exponent p: the common powers without Math.pow (slow, and NaN for x < 0 on GPUs). */
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

export interface GpuJsTarget {
  /** GLSL through gpu.js: max/min are written to propagate NaN (GLSL's may drop it) */
  readonly gl: boolean;
  /**
   * gpu.js's cpu path computes inline values in float64 but stores buffers in float32: comparisons then round
   * both operands to float32 (Math.fround), or a value recomputed inline never equals its stored copy (the tie
   * mask of a max reduction's gradient came out empty)
   */
  readonly float64?: boolean;
  /** outputs per thread (lanes.ts): 4 returns consecutive elements of the last axis as one Array(4) */
  readonly lanes?: 1 | 4;
  /**
   * gpu.js translates the source to WGSL (webgpu). Dividing by a constant zero is a compile error there, so the
   * infinities, NaN and -0 of `lit` come from a zero computed at run time; and WGSL lets the compiler assume no NaN
   * (measured: SwiftShader folds x != x to false, relu(NaN) gave 0), so NaN is told by its bits (the helper
   * WGSL_NAN_TEST, whose body the backend writes in WGSL), and transcendentals and `where` pass a NaN on explicitly
   */
  readonly wgsl?: boolean;
}

/** The helper every WGSL NaN test calls; gpu.js translates this JS stand-in, the webgpu backend swaps in its body. */
export const WGSL_NAN_TEST = 'fdIsNan';
export const wgslNanStandIn = `function ${WGSL_NAN_TEST}(x) { return 0.0; }`;
/** The WGSL body: an f32 whose exponent bits are all set and whose mantissa is not zero. */
export const wgslNanBody = (name: string): string =>
  `fn ${name}(x : f32) -> f32 { return select(0.0, 1.0, (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u); }`;

/**
 * The most loop iterations one GL shader invocation runs: Mesa's llvmpipe, behind headless-gl, stops after 65,535, counting
 * all loops together (measured: test/loop-limit.test.ts), so compile splits longer reductions before codegen
 * (passes/splitReductions.ts).
 */
export const GL_LOOP_LIMIT = 65535;

export const printGpuJs = (kernel: KernelIR, target: GpuJsTarget = { gl: false }): KernelSource => {
  const lanes = target.lanes ?? 1;
  /** a NaN test that survives compilers which assume there is none (WGSL), else the IEEE x !== x */
  const nanTest = (x: string) => (target.wgsl ? `${WGSL_NAN_TEST}(${x}) > 0.5` : `${x} !== ${x}`);
  const ir: LaneKernelIR = lanes > 1 ? splitLanes(kernel, lanes) : { ...kernel, values: [kernel.value] };
  const e = new Emitter();
  const args: number[] = [];
  const argName = (id: number) => {
    let k = args.indexOf(id);
    if (k < 0) k = args.push(id) - 1;
    return `b${k}`;
  };
  /** float expression of each variable in scope */
  const varName = new Map<number, string>();
  /** loads (by key) walked by a running pointer in the current innermost loop */
  const pointers = new Map<string, string>();
  const key = scalarKeys(
    (x) => ixKeyOf(x),
    (c) => condKey(c),
  );
  const ixKeyOf = (x: Ix) => [...x.terms.map(([a, c]) => `${c}*${atomStr(a)}`), x.c].join('+');
  const atomStr = (a: Atom): string =>
    a.k === 'var'
      ? `v${a.v}`
      : a.k === 'clamp'
        ? `clamp(${ixKeyOf(a.x)},${a.lo},${a.hi})`
        : `(${ixKeyOf(a.x)})${a.k === 'div' ? '/' : '%'}${a.d}`;
  const condKey = (c: Cond) => `${ixKeyOf(c.ix)}in[${c.lo},${c.hi}]${c.step ? `/${c.step}` : ''}`;

  const atom = (a: Atom): string => {
    switch (a.k) {
      case 'var': {
        const name = varName.get(a.v);
        if (name === undefined) throw new Error(`gpu.js codegen: variable v${a.v} used outside its loop`);
        return name;
      }
      case 'div':
        return e.memo(`div|${atomStr(a)}`, () => `Math.floor((${ix(a.x)} + 0.5) / ${lit(a.d)})`);
      case 'mod': {
        const x = ix(a.x);
        const q = e.memo(`div|${atomStr({ k: 'div', x: a.x, d: a.d })}`, () => `Math.floor((${x} + 0.5) / ${lit(a.d)})`);
        return e.memo(`mod|${atomStr(a)}`, () => `(${x} - ${q} * ${lit(a.d)})`);
      }
      case 'clamp':
        return e.memo(`clamp|${atomStr(a)}`, () => `Math.min(Math.max(${ix(a.x)}, ${lit(a.lo)}), ${lit(a.hi)})`);
    }
  };
  // the flat output index itself is the thread index: no need to rebuild it from the coordinates
  const flatOutKey = ixKeyOf(flattenIx(ir.outVars.map(varIx), ir.shape));
  const ix = (x: Ix): string =>
    ir.shape.length > 0 && ixKeyOf(x) === flatOutKey ? 't' : x.terms.reduce((acc, [a, c]) => add(acc, mulc(atom(a), c)), lit(x.c));

  const cond = (c: Cond): string[] => {
    const [lo, hi] = range(c.ix, ir.vars);
    const x = ix(c.ix);
    const parts: string[] = [];
    if (lo < c.lo) parts.push(`${x} >= ${lit(c.lo)}`);
    if (hi > c.hi) parts.push(`${x} <= ${lit(c.hi)}`);
    if (c.step) parts.push(`${x} - Math.floor((${x} + 0.5) / ${lit(c.step)}) * ${lit(c.step)} === 0.0`);
    return parts;
  };

  const value = (s: Scalar): string => {
    if (s.k === 'lit') return lit(s.v);
    const ptr = pointers.get(key(s));
    if (ptr) return e.memo(`ptr|${ptr}`, () => `${argName((s as Extract<Scalar, { k: 'load' }>).buf)}[${ptr}]`);
    return e.memo(key(s), () => compute(s));
  };

  const isZeroLit = (s: Scalar): boolean => s.k === 'lit' && s.v === 0;
  /**
   * a / b on GL with IEEE results for a zero divisor, whatever the driver does with one at run time (llvmpipe gave
   * NaN on an AMD host and 0 on an Intel host with AVX-512 for x / 0): a zero divisor never reaches the division.
   * x / +-0 is +-Infinity by the signs, 0 / 0 and NaN / 0 are NaN. A literal divisor's sign is known here; a zero
   * computed at run time is taken as +0, since GLSL ES 1.0 cannot read the sign of a zero (docs/numerics.md).
   */
  const glDivide = (sa: Scalar, sb: Scalar): string => {
    const a = e.let(value(sa));
    const zeroSign = sb.k === 'lit' && Object.is(sb.v, -0) ? -1 : 1;
    const signed = `(${a} > 0.0 ? ${lit(zeroSign * Infinity)} : ${lit(-zeroSign * Infinity)})`;
    const byZero = `((${nanTest(a)} || ${a} === 0.0) ? ${lit(NaN)} : ${signed})`;
    if (sb.k === 'lit') return sb.v === 0 ? byZero : `(${a} / ${lit(sb.v)})`;
    const b = e.let(value(sb));
    return `(${b} === 0.0 ? ${byZero} : (${a} / ${b}))`;
  };

  /**
   * sin or cos written out for gpu.js's WGSL: WebGPU lets the built-ins err by 2^-11 absolutely (SwiftShader in
   * Chromium does, 2e-4 in a gradient), so, as the compiler's own WGSL, a three-part Cody-Waite reduction by pi/2 and
   * Cephes' float polynomials (about 1 ulp where |x| is moderate). An infinite x gives NaN.
   */
  const sinCos = (x0: string, cosine: boolean): string => {
    const x = cosine ? e.let(`Math.abs(${x0})`) : x0; // cos is even exactly, also where the reduction is inexact
    const k = e.let(`Math.round(${x} * ${lit(TWO_OVER_PI)})`);
    const d = e.let(`((${x} - ${k} * ${lit(PIO2[0])}) - ${k} * ${lit(PIO2[1])}) - ${k} * ${lit(PIO2[2])}`);
    const r = e.let(`Math.min(Math.max(${d}, ${lit(-REMAINDER_CLAMP)}), ${lit(REMAINDER_CLAMP)})`); // kernel/sincos.ts says why
    const z = e.let(`${r} * ${r}`);
    const sin = e.let(`${r} + ${r} * ${z} * ${hornerText(z, SIN_POLY, lit)}`);
    const cos = e.let(`1.0 - 0.5 * ${z} + ${z} * ${z} * ${hornerText(z, COS_POLY, lit)}`);
    // the quadrant, 0..3 (cos is sin a quadrant on)
    const q = e.let(`${k} + ${cosine ? '1.0' : '0.0'} - 4.0 * Math.floor((${k} + ${cosine ? '1.0' : '0.0'}) * 0.25)`);
    const value = `(${q} < 0.5 ? ${sin} : (${q} < 1.5 ? ${cos} : (${q} < 2.5 ? (0.0 - ${sin}) : (0.0 - ${cos}))))`;
    // the clamp would turn the NaN of an infinite x's reduction into a number: an infinity is NaN here, by test
    return `(Math.abs(${x}) > 3.4028234663852886e38 ? ${lit(NaN)} : ${value})`;
  };

  const compute = (s: Scalar): string => {
    switch (s.k) {
      case 'lit':
        return lit(s.v);
      case 'load':
        return `${argName(s.buf)}[${ix(s.at)}]`;
      case 'un':
        if (target.gl && s.op === 'relu') {
          const x = e.let(value(s.x));
          return `((${x} > 0.0 || ${nanTest(x)}) ? ${x} : 0.0)`;
        }
        // the exp form's tanh(-15) is -0.99999999999991 in float64, not -1: on cpu use Math.tanh, exact at the tails
        if (target.float64 && s.op === 'tanh') return `Math.tanh(${value(s.x)})`;
        if (target.gl && s.op === 'tanh') {
          const x = e.let(value(s.x));
          return `(${nanTest(x)} ? ${x} : ${unaryFormat.tanh(x, e)})`;
        }
        if (target.wgsl && s.op !== 'neg' && s.op !== 'abs') {
          const x = e.let(value(s.x));
          return `(${nanTest(x)} ? ${x} : ${s.op === 'sin' || s.op === 'cos' ? sinCos(x, s.op === 'cos') : unaryFormat[s.op](x, e)})`;
        }
        return unaryFormat[s.op](value(s.x), e);
      case 'bin':
        if (s.op === 'pow') {
          const p = s.b.k === 'lit' ? s.b.v : undefined;
          const x = value(s.a);
          return power(x, p, () => value(s.b));
        }
        if (target.gl && (s.op === 'max' || s.op === 'min')) {
          // GLSL's max/min may return the other operand for a NaN; IEEE (and the interpreter) give NaN
          const a = e.let(value(s.a));
          const b = e.let(value(s.b));
          return `((${a} ${s.op === 'max' ? '>' : '<'} ${b} || ${nanTest(a)}) ? ${a} : ${b})`;
        }
        if (target.gl && s.op === 'div') return glDivide(s.a, s.b);
        if (target.gl && s.op === 'mul' && (isZeroLit(s.a) || isZeroLit(s.b))) {
          // GLSL compilers fold x * 0.0 to 0 (NaN * 0 came out 0): IEEE gives NaN for a NaN or infinite x
          const [z, other] = isZeroLit(s.a) ? [s.a, s.b] : [s.b, s.a];
          const x = e.let(value(other));
          const nonFinite = `${nanTest(x)} || ${x} === ${lit(Infinity)} || ${x} === ${lit(-Infinity)}`;
          return `((${nonFinite}) ? ${lit(NaN)} : (${x} * ${lit((z as { v: number }).v)}))`;
        }
        if (target.gl && s.op === 'sub' && key(s.a) === key(s.b)) {
          // GLSL compilers fold x - x to 0 (NaN - NaN came out 0 on llvmpipe, docs/numerics.md): IEEE gives NaN for a
          // NaN or infinite x (found by the random hard programs of test/trust.test.ts)
          const x = e.let(value(s.a));
          const nonFinite = `${nanTest(x)} || ${x} === ${lit(Infinity)} || ${x} === ${lit(-Infinity)}`;
          return `((${nonFinite}) ? ${lit(NaN)} : 0.0)`;
        }
        if (target.wgsl && s.op === 'ne') {
          // IEEE: NaN != anything; an ordered != says false
          const a = e.let(value(s.a));
          const b = e.let(value(s.b));
          return `((${a} !== ${b} || ${nanTest(a)} || ${nanTest(b)}) ? 1.0 : 0.0)`;
        }
        if (target.float64 && ['lt', 'le', 'gt', 'ge', 'eq', 'ne'].includes(s.op))
          return binaryFormat[s.op](`Math.fround(${value(s.a)})`, `Math.fround(${value(s.b)})`);
        return binaryFormat[s.op](value(s.a), value(s.b));
      case 'where': {
        const c = target.wgsl ? e.let(value(s.c)) : value(s.c);
        return `(${c} !== 0.0${target.wgsl ? ` || ${nanTest(c)}` : ''} ? ${value(s.a)} : ${value(s.b)})`;
      }
      case 'guard': {
        const conds = s.conds.flatMap(cond);
        const x = value(s.x);
        return conds.length ? `((${conds.join(' && ')}) ? ${x} : 0.0)` : x;
      }
      case 'pick': {
        const a = value(s.a);
        const b = value(s.b);
        const c = cond(s.cond);
        return c.length ? `((${c.join(' && ')}) ? ${a} : ${b})` : a;
      }
      case 'random':
        return (
          `${rngEntryPoint}(${lit(randomBase(s.seed, s.stream))}, ` +
          `${value(s.counter)}, ${ix(s.at)}, ${s.dist === 'normal' ? '1.0' : '0.0'})`
        );
      case 'reduce':
        return reduce([s])[0];
    }
  };

  /** 1 + the position (in vars) of the innermost reduction variable s depends on; 0 when it depends on none. */
  const levelOf = (s: Scalar, vars: readonly number[], memo: Map<Scalar, number>): number =>
    scalarLevel(s, (x) => vars.reduce((l, v, i) => (ixDependsOn(x, v) ? i + 1 : l), 0), memo);

  /**
   * Reductions over the same variables (one per lane) in one loop nest, an accumulator each; the values they share
   * (same key) are computed once. Returns the accumulators in the order of rs.
   */
  const reduce = (rs: readonly Extract<Scalar, { k: 'reduce' }>[]): string[] => {
    const unique = new Map<string, Extract<Scalar, { k: 'reduce' }>>();
    for (const r of rs) if (!unique.has(key(r))) unique.set(key(r), r);
    const [first] = unique.values();
    const { op, vars } = first;
    const accs = new Map<string, string>();
    for (const [k, r] of unique) {
      if (r.op !== op || r.vars.join() !== vars.join()) throw new Error('gpu.js codegen: lanes reduce differently');
      const acc = e.fresh('acc');
      e.line(`let ${acc} = ${op === 'sum' ? '0.0' : lit(-Infinity)};`);
      accs.set(k, acc);
    }
    const levels = new Map<Scalar, number>();
    const byLevel: Scalar[][] = vars.map(() => []);
    byLevel.push([]);
    const seen = new Set<Scalar>();
    for (const r of unique.values())
      walk(
        r.body,
        (s) => {
          if (s.k !== 'lit') byLevel[levelOf(s, vars, levels)].push(s);
        },
        seen,
      );
    // values that depend on no loop variable are computed once, before the loops
    for (const s of byLevel[0]) value(s);
    const innermost = vars[vars.length - 1];
    const walked: { name: string; step: number }[] = [];
    vars.forEach((v, i) => {
      const last = i === vars.length - 1;
      if (last)
        for (const s of byLevel[i + 1]) {
          if (s.k !== 'load' || pointers.has(key(s))) continue;
          const step = coefficientOf(s.at, innermost);
          if (step === undefined) continue;
          const name = e.fresh('p');
          e.line(`let ${name} = ${ix(substituteIx(s.at, innermost, 0, ir.vars))};`);
          pointers.set(key(s), name);
          walked.push({ name, step });
        }
      const loop = e.fresh('r');
      e.open(`for (let ${loop} = 0; ${loop} < ${ir.vars.get(v)!.extent}; ${loop}++)`);
      varName.set(v, e.let(`(${loop} * 1.0)`));
      if (!last) for (const s of byLevel[i + 1]) value(s);
    });
    for (const [k, r] of unique) {
      const v = value(r.body);
      const acc = accs.get(k)!;
      if (op === 'sum') e.line(`${acc} = ${acc} + ${v};`);
      else if (target.gl)
        e.line(`${acc} = (${v} > ${acc} || ${nanTest(v)}) ? ${v} : ${acc};`); // GLSL's max drops NaN
      else e.line(`${acc} = Math.max(${acc}, ${v});`);
    }
    for (const w of walked) e.line(`${w.name} = ${w.name} + ${lit(w.step)};`);
    vars.forEach(() => e.close());
    pointers.clear();
    for (const v of vars) varName.delete(v);
    return rs.map((r) => accs.get(key(r))!);
  };

  // output coordinates from the thread index, outermost first (only those the kernel reads)
  e.line('const t = this.thread.x * 1.0;');
  const used = new Set<number>();
  const markIx = (x: Ix): void => x.terms.forEach(([a]) => (a.k === 'var' ? used.add(a.v) : markIx(a.x)));
  for (const root of [...ir.values, ...kernel.extras.map((x) => x.value)])
    walk(root, (s) => {
      if (s.k === 'load' || s.k === 'random') markIx(s.at);
      if (s.k === 'guard') s.conds.forEach((c) => markIx(c.ix));
      if (s.k === 'pick') markIx(s.cond.ix);
    });
  const st = strides(ir.shape);
  let rest = 't';
  ir.outVars.forEach((v, d) => {
    if (ir.shape[d] === 1) return varName.set(v, '0.0');
    if (st[d] === 1) return varName.set(v, rest);
    if (!ir.outVars.slice(d).some((w) => used.has(w))) return;
    const q = e.let(`Math.floor((${rest} + 0.5) / ${lit(st[d])})`);
    varName.set(v, q);
    rest = e.let(`(${rest} - ${q} * ${lit(st[d])})`);
  });

  kernel.extras.forEach((x, j) => e.line(`keep${j}(${value(x.value)});`));
  if (lanes > 1) {
    // the lanes' reductions share one loop nest (computed first, then bound to their keys for the epilogues)
    const rs: Extract<Scalar, { k: 'reduce' }>[] = [];
    for (const v of ir.values) walk(v, (s) => void (s.k === 'reduce' && rs.push(s)));
    if (rs.length > 0) reduce(rs).forEach((acc, i) => e.bind(key(rs[i]), acc));
    e.line(`return [${ir.values.map(value).join(', ')}];`);
  } else e.line(`return ${value(ir.values[0])};`);
  const params = args.map((_, i) => `b${i}`).join(', ');
  const subKernels = kernel.extras.map((_, j) => `function keep${j}(v) { return v; }`);
  const body = target.wgsl
    ? e
        .text()
        .replace(/\/ 0\.0\)/g, '/ (t * 0.0))')
        .replace(/\(-0\.0\)/g, '(-(t * 0.0))')
    : e.text();
  return { source: `function (${params}) {\n${body}\n}`, args: [...args], subKernels, lanes };
};
