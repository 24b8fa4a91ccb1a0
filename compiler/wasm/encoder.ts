// A small WebAssembly binary encoder: just what the compiler's wasm backend emits (one imported memory, functions
// of i32/f32/v128 locals, structured control flow, scalar and SIMD128 arithmetic). The format is the W3C core spec
// (version 1 plus the fixed-width SIMD proposal, on by default in Node 20 and current browsers).

export type ValType = 'i32' | 'f32' | 'v128';
const valTypeCode: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b };

/** unsigned LEB128 */
export const u32 = (v: number): number[] => {
  const out: number[] = [];
  let x = v >>> 0;
  do {
    let byte = x & 0x7f;
    x >>>= 7;
    if (x !== 0) byte |= 0x80;
    out.push(byte);
  } while (x !== 0);
  return out;
};

/** signed LEB128 of a 32-bit integer */
export const s32 = (v: number): number[] => {
  const out: number[] = [];
  let x = v | 0;
  for (;;) {
    const byte = x & 0x7f;
    x >>= 7;
    const done = (x === 0 && (byte & 0x40) === 0) || (x === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
};

const f32Bytes = (v: number): number[] => [...new Uint8Array(Float32Array.of(v).buffer)];
const utf8 = (s: string): number[] => [...new TextEncoder().encode(s)];
const vec = (items: readonly number[][]): number[] => [...u32(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...u32(body.length), ...body];

/** Opcodes of the scalar instructions the backend emits. */
export const Op = {
  unreachable: 0x00,
  nop: 0x01,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  return: 0x0f,
  drop: 0x1a,
  select: 0x1b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  f32Load: 0x2a,
  i32Store: 0x36,
  f32Store: 0x38,
  i32Const: 0x41,
  f32Const: 0x43,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32Ne: 0x47,
  i32LtS: 0x48,
  i32LtU: 0x49,
  i32GtS: 0x4a,
  i32GtU: 0x4b,
  i32LeS: 0x4c,
  i32GeS: 0x4e,
  i32GeU: 0x4f,
  f32Eq: 0x5b,
  f32Ne: 0x5c,
  f32Lt: 0x5d,
  f32Gt: 0x5e,
  f32Le: 0x5f,
  f32Ge: 0x60,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
  i32DivS: 0x6d,
  i32DivU: 0x6e,
  i32RemS: 0x6f,
  i32RemU: 0x70,
  i32And: 0x71,
  i32Or: 0x72,
  i32Xor: 0x73,
  i32Shl: 0x74,
  i32ShrS: 0x75,
  i32ShrU: 0x76,
  f32Abs: 0x8b,
  f32Neg: 0x8c,
  f32Ceil: 0x8d,
  f32Floor: 0x8e,
  f32Trunc: 0x8f,
  f32Nearest: 0x90,
  f32Sqrt: 0x91,
  f32Add: 0x92,
  f32Sub: 0x93,
  f32Mul: 0x94,
  f32Div: 0x95,
  f32Min: 0x96,
  f32Max: 0x97,
  f32Copysign: 0x98,
  i32TruncF32S: 0xa8,
  f32ConvertI32S: 0xb2,
  f32ConvertI32U: 0xb3,
  i32ReinterpretF32: 0xbc,
  f32ReinterpretI32: 0xbe,
} as const;

/** SIMD128 opcodes (after the 0xfd prefix). */
export const Simd = {
  v128Load: 0x00,
  v128Load32Splat: 0x09,
  v128Store: 0x0b,
  v128Const: 0x0c,
  i8x16Shuffle: 0x0d,
  i32x4Splat: 0x11,
  f32x4Splat: 0x13,
  i32x4ExtractLane: 0x1b,
  i32x4ReplaceLane: 0x1c,
  f32x4ExtractLane: 0x1f,
  f32x4ReplaceLane: 0x20,
  i32x4Eq: 0x37,
  i32x4Ne: 0x38,
  i32x4LtS: 0x39,
  i32x4GtS: 0x3b,
  i32x4LeS: 0x3d,
  i32x4GeS: 0x3f,
  f32x4Eq: 0x41,
  f32x4Ne: 0x42,
  f32x4Lt: 0x43,
  f32x4Gt: 0x44,
  f32x4Le: 0x45,
  f32x4Ge: 0x46,
  v128Not: 0x4d,
  v128And: 0x4e,
  v128AndNot: 0x4f,
  v128Or: 0x50,
  v128Xor: 0x51,
  v128Bitselect: 0x52,
  v128AnyTrue: 0x53,
  f32x4Ceil: 0x67,
  f32x4Floor: 0x68,
  f32x4Trunc: 0x69,
  f32x4Nearest: 0x6a,
  i32x4Shl: 0xab,
  i32x4ShrS: 0xac,
  i32x4ShrU: 0xad,
  i32x4Add: 0xae,
  i32x4Sub: 0xb1,
  i32x4Mul: 0xb5,
  f32x4Abs: 0xe0,
  f32x4Neg: 0xe1,
  f32x4Sqrt: 0xe3,
  f32x4Add: 0xe4,
  f32x4Sub: 0xe5,
  f32x4Mul: 0xe6,
  f32x4Div: 0xe7,
  f32x4Min: 0xe8,
  f32x4Max: 0xe9,
  f32x4Pmin: 0xea,
  f32x4Pmax: 0xeb,
  i32x4TruncSatF32x4S: 0xf8,
  f32x4ConvertI32x4S: 0xfa,
} as const;

/** Block types: no result, or one value. */
export type BlockType = 'void' | ValType;

/**
 * The body of one function: locals are declared as they are needed (`local(type)` returns its index), and
 * instructions are appended with the typed helpers. Memory accesses take a byte offset (immediate) and log2 of
 * the alignment the emitter guarantees.
 */
export class FunctionBody {
  readonly code: number[] = [];
  private readonly extraLocals: ValType[] = [];

  constructor(
    readonly params: readonly ValType[],
    readonly results: readonly ValType[] = [],
  ) {}

  local(type: ValType): number {
    this.extraLocals.push(type);
    return this.params.length + this.extraLocals.length - 1;
  }

  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }

  simd(opcode: number, ...immediates: number[]): this {
    return this.op(0xfd, ...u32(opcode), ...immediates);
  }

  get(i: number): this {
    return this.op(Op.localGet, ...u32(i));
  }
  set(i: number): this {
    return this.op(Op.localSet, ...u32(i));
  }
  tee(i: number): this {
    return this.op(Op.localTee, ...u32(i));
  }
  i32(v: number): this {
    return this.op(Op.i32Const, ...s32(v));
  }
  f32(v: number): this {
    return this.op(Op.f32Const, ...f32Bytes(v));
  }
  /** memory.copy (bulk memory) within memory 0: pops destination, source and length in bytes */
  memoryCopy(): this {
    return this.op(0xfc, ...u32(10), 0x00, 0x00);
  }
  v128f32(lanes: readonly [number, number, number, number]): this {
    return this.simd(Simd.v128Const, ...lanes.flatMap(f32Bytes));
  }
  load(kind: 'f32' | 'i32' | 'v128' | 'splat', offset = 0, alignLog2 = 2): this {
    const mem = [...u32(alignLog2), ...u32(offset)];
    if (kind === 'f32') return this.op(Op.f32Load, ...mem);
    if (kind === 'i32') return this.op(Op.i32Load, ...mem);
    return this.simd(kind === 'v128' ? Simd.v128Load : Simd.v128Load32Splat, ...mem);
  }
  store(kind: 'f32' | 'i32' | 'v128', offset = 0, alignLog2 = 2): this {
    const mem = [...u32(alignLog2), ...u32(offset)];
    if (kind === 'v128') return this.simd(Simd.v128Store, ...mem);
    return this.op(kind === 'f32' ? Op.f32Store : Op.i32Store, ...mem);
  }
  block(type: BlockType = 'void'): this {
    return this.op(Op.block, type === 'void' ? 0x40 : valTypeCode[type]);
  }
  loop(type: BlockType = 'void'): this {
    return this.op(Op.loop, type === 'void' ? 0x40 : valTypeCode[type]);
  }
  if(type: BlockType = 'void'): this {
    return this.op(Op.if, type === 'void' ? 0x40 : valTypeCode[type]);
  }
  end(): this {
    return this.op(Op.end);
  }
  br(depth: number): this {
    return this.op(Op.br, ...u32(depth));
  }
  brIf(depth: number): this {
    return this.op(Op.brIf, ...u32(depth));
  }

  /** `for (i = from; i < to; i += step) body()`, with i32 locals; `to` is a local or a constant. Skips when empty. */
  forRange(i: number, from: number | { local: number }, to: number | { local: number }, step: number, body: () => void): this {
    const push = (v: number | { local: number }) => (typeof v === 'number' ? this.i32(v) : this.get(v.local));
    push(from).set(i);
    this.block();
    push(from);
    push(to);
    this.op(Op.i32GeS).brIf(0);
    this.loop();
    body();
    this.get(i).i32(step).op(Op.i32Add).tee(i);
    push(to);
    this.op(Op.i32LtS).brIf(0);
    this.end();
    this.end();
    return this;
  }

  /** The function's code entry: locals grouped by runs of one type, then the instructions and the final end. */
  encode(): number[] {
    const groups: number[][] = [];
    for (let k = 0; k < this.extraLocals.length;) {
      let n = 1;
      while (this.extraLocals[k + n] === this.extraLocals[k]) n++;
      groups.push([...u32(n), valTypeCode[this.extraLocals[k]]]);
      k += n;
    }
    const body = [...vec(groups), ...this.code, Op.end];
    return [...u32(body.length), ...body];
  }
}

export interface ModuleFunction {
  readonly name: string;
  readonly body: FunctionBody;
}

/**
 * A module importing one memory (`env.memory`, shared when `shared`, so worker threads can run the same code on the
 * same buffers) and exporting each function by name.
 */
export const encodeModule = (
  functions: readonly ModuleFunction[],
  memory: { minPages: number; maxPages: number; shared: boolean },
): Uint8Array<ArrayBuffer> => {
  const sigs: string[] = [];
  const sigOf = (f: FunctionBody) => {
    const key = `${f.params.join(',')}->${f.results.join(',')}`;
    let k = sigs.indexOf(key);
    if (k < 0) k = sigs.push(key) - 1;
    return k;
  };
  const funcTypes = functions.map((f) => sigOf(f.body));
  const typeEntries = sigs.map((key) => {
    const [ps, rs] = key.split('->').map((s) => (s ? (s.split(',') as ValType[]) : []));
    return [0x60, ...vec(ps.map((t) => [valTypeCode[t]])), ...vec(rs.map((t) => [valTypeCode[t]]))];
  });
  const limits = memory.shared
    ? [0x03, ...u32(memory.minPages), ...u32(memory.maxPages)]
    : [0x01, ...u32(memory.minPages), ...u32(memory.maxPages)];
  const name = (s: string) => [...u32(utf8(s).length), ...utf8(s)];
  const importEntry = [...name('env'), ...name('memory'), 0x02, ...limits];
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(typeEntries)),
    ...section(2, vec([importEntry])),
    ...section(3, vec(funcTypes.map((t) => u32(t)))),
    ...section(7, vec(functions.map((f, i) => [...name(f.name), 0x00, ...u32(i)]))),
    ...section(10, vec(functions.map((f) => f.body.encode()))),
  ];
  return new Uint8Array(bytes);
};
