// gpu.js's WebGPU kernel with one change: the NaN test helper (codegen/gpujs.ts WGSL_NAN_TEST) gets a WGSL body
// that reads the float's bits, which gpu.js's kernel language cannot express (it has no bitcast), in place of the
// body gpu.js translated from the JS stand-in. Set per GPU instance (its `Kernel`), so other gpu.js users are untouched.
import * as gpujs from 'gpu.js';
import { WGSL_NAN_TEST, wgslNanBody } from '../codegen/gpujs.ts';

type WebGPUKernelClass = new (...args: never[]) => { assembleWGSL(): string };

// gpu.js prefixes user functions (fn_fdIsNan); calls are renamed with them
const standIn = new RegExp(`fn (\\w*${WGSL_NAN_TEST})\\([^)]*\\)[^{]*\\{[^}]*\\}`);

/** The assembled WGSL with the NaN test's body swapped in; a module that calls it without the stand-in is refused. */
export const withNanTest = (wgsl: string): string => {
  if (!wgsl.includes(`${WGSL_NAN_TEST}(`)) return wgsl;
  if (!standIn.test(wgsl)) throw new Error(`webgpu: gpu.js's WGSL calls ${WGSL_NAN_TEST} but has no stand-in to replace`);
  return wgsl.replace(standIn, (_, name: string) => wgslNanBody(name));
};

/** Makes a webgpu-mode GPU build its kernels with withNanTest (gpu.js creates kernels from `gpu.Kernel`). */
export const useNanTest = (gpu: object): void => {
  const Base = (gpujs as unknown as { WebGPUKernel?: WebGPUKernelClass }).WebGPUKernel;
  if (!Base) throw new Error('webgpu: this gpu.js build has no WebGPUKernel');
  class NanTestKernel extends Base {
    override assembleWGSL(): string {
      return withNanTest(super.assembleWGSL());
    }
  }
  (gpu as { Kernel: unknown }).Kernel = NanTestKernel;
};
