// Three-address arithmetic over locals for one lane (f32) or four lanes (f32x4): the math routines and the kernel
// emitter write each algorithm once, and it runs scalar or SIMD depending on the width it is given.
import { Op, Simd, type FunctionBody } from './encoder.ts';
import { RELAXED_MADD } from './features.ts';

export type Width = 1 | 4;

/** f32 bit patterns used by the routines (exponent and sign masks, 2^23 for integer rounding). */
const F32_SIGN = 0x80000000 | 0;

export class Lanes {
  constructor(
    readonly f: FunctionBody,
    readonly width: Width,
  ) {}

  get type(): 'f32' | 'v128' {
    return this.width === 1 ? 'f32' : 'v128';
  }

  /** A fresh local of the lane type. */
  tmp(): number {
    return this.f.local(this.type);
  }

  /** Pushes a constant (splat across lanes). */
  pushConst(v: number): void {
    if (this.width === 1) this.f.f32(v);
    else this.f.v128f32([v, v, v, v]);
  }

  constLocal(v: number): number {
    const t = this.tmp();
    this.pushConst(v);
    this.f.set(t);
    return t;
  }

  private operand(x: number | { c: number }): void {
    if (typeof x === 'number') this.f.get(x);
    else this.pushConst(x.c);
  }

  private bin(scalar: number, simd: number, a: number | { c: number }, b: number | { c: number }, dst: number): number {
    this.operand(a);
    this.operand(b);
    if (this.width === 1) this.f.op(scalar);
    else this.f.simd(simd);
    this.f.set(dst);
    return dst;
  }

  private un(scalar: number, simd: number, a: number, dst: number): number {
    this.f.get(a);
    if (this.width === 1) this.f.op(scalar);
    else this.f.simd(simd);
    this.f.set(dst);
    return dst;
  }

  add = (a: number | { c: number }, b: number | { c: number }, dst = this.tmp()) => this.bin(Op.f32Add, Simd.f32x4Add, a, b, dst);
  sub = (a: number | { c: number }, b: number | { c: number }, dst = this.tmp()) => this.bin(Op.f32Sub, Simd.f32x4Sub, a, b, dst);
  mul = (a: number | { c: number }, b: number | { c: number }, dst = this.tmp()) => this.bin(Op.f32Mul, Simd.f32x4Mul, a, b, dst);
  div = (a: number | { c: number }, b: number | { c: number }, dst = this.tmp()) => this.bin(Op.f32Div, Simd.f32x4Div, a, b, dst);
  /** IEEE min/max with NaN propagation (wasm's f32.min / f32x4.min) */
  min = (a: number | { c: number }, b: number | { c: number }, dst = this.tmp()) => this.bin(Op.f32Min, Simd.f32x4Min, a, b, dst);
  max = (a: number | { c: number }, b: number | { c: number }, dst = this.tmp()) => this.bin(Op.f32Max, Simd.f32x4Max, a, b, dst);
  neg = (a: number, dst = this.tmp()) => this.un(Op.f32Neg, Simd.f32x4Neg, a, dst);
  abs = (a: number, dst = this.tmp()) => this.un(Op.f32Abs, Simd.f32x4Abs, a, dst);
  sqrt = (a: number, dst = this.tmp()) => this.un(Op.f32Sqrt, Simd.f32x4Sqrt, a, dst);
  floor = (a: number, dst = this.tmp()) => this.un(Op.f32Floor, Simd.f32x4Floor, a, dst);
  /** round half to even */
  nearest = (a: number, dst = this.tmp()) => this.un(Op.f32Nearest, Simd.f32x4Nearest, a, dst);

  /** a*b + c, as two roundings (relaxed-SIMD FMA is not available everywhere). */
  mulAdd(a: number | { c: number }, b: number | { c: number }, c: number | { c: number }, dst = this.tmp()): number {
    // on the stack, so dst may be any of the operands
    this.operand(a);
    this.operand(b);
    if (this.width === 1) this.f.op(Op.f32Mul);
    else this.f.simd(Simd.f32x4Mul);
    this.operand(c);
    if (this.width === 1) this.f.op(Op.f32Add);
    else this.f.simd(Simd.f32x4Add);
    this.f.set(dst);
    return dst;
  }

  /**
   * a*b + c with f32x4.relaxed_madd: one rounding where the CPU has FMA, two where it does not (fixed per host).
   * Only the reduction loops use it; the math routines keep mulAdd so their results do not depend on the host.
   */
  relaxedMulAdd(a: number, b: number, c: number, dst = this.tmp()): number {
    if (this.width === 1) return this.mulAdd(a, b, c, dst);
    this.f.get(a).get(b).get(c).simd(RELAXED_MADD).set(dst);
    return dst;
  }

  /** Horner: c[0] + x (c[1] + x (c[2] + ...)). */
  poly(x: number, coeffs: readonly number[], dst = this.tmp()): number {
    this.pushConst(coeffs[coeffs.length - 1]);
    this.f.set(dst);
    for (let i = coeffs.length - 2; i >= 0; i--) this.mulAdd(dst, x, { c: coeffs[i] }, dst);
    return dst;
  }

  /**
   * Comparison to a mask: all-ones lanes where true. Scalar masks are i32 0 / -1 kept in an f32 local by bit
   * reinterpretation, so `select` below works the same at both widths.
   */
  compare(kind: 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne', a: number | { c: number }, b: number | { c: number }, dst = this.tmp()): number {
    this.operand(a);
    this.operand(b);
    if (this.width === 4) {
      const op = { lt: Simd.f32x4Lt, le: Simd.f32x4Le, gt: Simd.f32x4Gt, ge: Simd.f32x4Ge, eq: Simd.f32x4Eq, ne: Simd.f32x4Ne }[kind];
      this.f.simd(op).set(dst);
      return dst;
    }
    const op = { lt: Op.f32Lt, le: Op.f32Le, gt: Op.f32Gt, ge: Op.f32Ge, eq: Op.f32Eq, ne: Op.f32Ne }[kind];
    this.f.op(op).i32(-1).op(Op.i32Mul).op(Op.f32ReinterpretI32).set(dst); // 1 -> -1 (all ones), 0 -> 0
    return dst;
  }

  /** mask ? a : b, lane by lane. */
  select(mask: number, a: number | { c: number }, b: number | { c: number }, dst = this.tmp()): number {
    if (this.width === 4) {
      this.operand(a);
      this.operand(b);
      this.f.get(mask).simd(Simd.v128Bitselect).set(dst);
      return dst;
    }
    this.operand(a);
    this.operand(b);
    this.f.get(mask).op(Op.i32ReinterpretF32).op(Op.select).set(dst);
    return dst;
  }

  /** 1.0 where mask, else 0.0 (comparison results of the DSL are numbers). */
  maskToFloat(mask: number, dst = this.tmp()): number {
    return this.select(mask, { c: 1 }, { c: 0 }, dst);
  }

  /** 2^n for integer-valued n in [-126, 127], built from the exponent bits. */
  pow2i(n: number, dst = this.tmp()): number {
    this.f.get(n);
    if (this.width === 1)
      this.f
        .op(0xfc, 0x00)
        .i32(127) // i32.trunc_sat_f32_s: NaN -> 0, no trap
        .op(Op.i32Add)
        .i32(23)
        .op(Op.i32Shl)
        .op(Op.f32ReinterpretI32);
    else this.f.simd(Simd.i32x4TruncSatF32x4S).i32(127).simd(Simd.i32x4Splat).simd(Simd.i32x4Add).i32(23).simd(Simd.i32x4Shl);
    this.f.set(dst);
    return dst;
  }

  /** Splits x > 0 (normal) into mantissa m in [1, 2) and exponent e: x = m 2^e. */
  frexp(x: number, m = this.tmp(), e = this.tmp()): { m: number; e: number } {
    if (this.width === 1) {
      this.f.get(x).op(Op.i32ReinterpretF32).i32(23).op(Op.i32ShrU).i32(127).op(Op.i32Sub).op(Op.f32ConvertI32S).set(e);
      this.f.get(x).op(Op.i32ReinterpretF32).i32(0x007fffff).op(Op.i32And).i32(0x3f800000).op(Op.i32Or).op(Op.f32ReinterpretI32).set(m);
    } else {
      this.f.get(x).i32(23).simd(Simd.i32x4ShrU).i32(127).simd(Simd.i32x4Splat).simd(Simd.i32x4Sub).simd(Simd.f32x4ConvertI32x4S).set(e);
      this.f.get(x).i32(0x007fffff).simd(Simd.i32x4Splat).simd(Simd.v128And).i32(0x3f800000).simd(Simd.i32x4Splat).simd(Simd.v128Or).set(m);
    }
    return { m, e };
  }

  /** Copies the sign of `s` onto |x|. */
  copySign(x: number, s: number, dst = this.tmp()): number {
    if (this.width === 1) {
      this.f.get(x).get(s).op(Op.f32Copysign).set(dst);
      return dst;
    }
    const sign = this.f.local('v128');
    this.f.get(s).i32(F32_SIGN).simd(Simd.i32x4Splat).simd(Simd.v128And).set(sign);
    this.f.get(x).i32(0x7fffffff).simd(Simd.i32x4Splat).simd(Simd.v128And).get(sign).simd(Simd.v128Or).set(dst);
    return dst;
  }
}
