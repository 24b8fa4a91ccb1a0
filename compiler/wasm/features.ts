// What this engine's WebAssembly offers beyond SIMD128, detected once per process (or page): relaxed SIMD's
// f32x4.relaxed_madd, which V8 compiles to a hardware fused multiply-add (vfmadd on x86 with FMA3, fmla on ARM) and
// to a multiply and an add where the CPU has no FMA. On by default in Node >= 22 and current Chromium; Node 20 has it
// behind --experimental-wasm-relaxed-simd, which is a process-wide V8 flag that can still be set before the first
// module that uses it is compiled, so it is set here when the engine does not validate the instruction otherwise.
// FUSEDIFF_WASM_FMA=0 turns it off (to compare, or to reproduce a non-FMA host's rounding).

export interface WasmFeatures {
  /** the multiply-add loops use f32x4.relaxed_madd (one rounding where the CPU fuses, two where it does not) */
  readonly fma: boolean;
  /** why: which engine capability or setting decided it */
  readonly fmaReason: string;
}

/** The opcode of f32x4.relaxed_madd after the 0xfd prefix. */
export const RELAXED_MADD = 0x105;

/** (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd) */
const probe = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11,
]);

interface NodeProcess {
  env?: Record<string, string | undefined>;
  getBuiltinModule?: (id: string) => unknown;
}

const detect = (): WasmFeatures => {
  const proc = (globalThis as { process?: NodeProcess }).process;
  if (proc?.env?.FUSEDIFF_WASM_FMA === '0') return { fma: false, fmaReason: 'FUSEDIFF_WASM_FMA=0' };
  if (WebAssembly.validate(probe)) return { fma: true, fmaReason: 'relaxed SIMD on by default in this engine' };
  const v8 = proc?.getBuiltinModule?.('node:v8') as { setFlagsFromString?: (flag: string) => void } | undefined;
  if (v8?.setFlagsFromString) {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    if (WebAssembly.validate(probe)) return { fma: true, fmaReason: 'relaxed SIMD enabled by its V8 flag (Node 20)' };
  }
  return { fma: false, fmaReason: 'this engine has no relaxed SIMD' };
};

let cached: WasmFeatures | undefined;

/** The features of this engine (detected on the first call; a flag it sets is process-wide). */
export const wasmFeatures = (): WasmFeatures => (cached ??= detect());
