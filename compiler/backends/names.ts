// The gpu.js backends fusediff can run on, how to tell which are available (and why not), and `auto`'s choice.
import { GPU } from 'gpu.js';
import { webgpuAvailability, webgpuAdapter } from './webgpuAdapter.ts';
import { gpuAvailability, gpuContext } from '../webgpu/gpu.ts';

// wasm: the compiler's own WebAssembly (SIMD, threads); webgpu: the compiler's own WGSL (a GPU through WebGPU, in Node
// through the webgpu package); the others run gpu.js kernels (gpujs-webgpu: gpu.js's WebGPU path, for comparison)
export const backendNames = ['wasm', 'webgpu', 'headlessgl', 'webgl2', 'gpujs-webgpu', 'webasm', 'cpu'] as const;
/** A backend by name: `wasm`, `webgpu`, or one of gpu.js's (`headlessgl`, `webgl2`, `gpujs-webgpu`, `webasm`, `cpu`). */
export type BackendName = (typeof backendNames)[number];
/** A backend name, or `auto`: the best available here (`resolveBackend` says which and why). */
export type BackendRequest = BackendName | 'auto';

export interface Availability {
  readonly available: boolean;
  /** what makes it available, or what is missing */
  readonly reason: string;
}

const hasDisplay = (): boolean => {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return !!env?.DISPLAY;
};

/** Whether a backend is usable in this process, and why (headless-gl needs the `gl` package and an X display). */
export const probeBackend = (b: BackendName): Availability => {
  switch (b) {
    case 'headlessgl':
      if (GPU.isHeadlessGLSupported) return { available: true, reason: 'the gl package created a context' };
      return {
        available: false,
        reason: hasDisplay()
          ? 'the gl package could not create a context (is it built?)'
          : 'no X display (DISPLAY is unset): run under xvfb-run, e.g. sh scripts/with-display.sh',
      };
    case 'webgl2':
      if (!('document' in globalThis))
        return { available: false, reason: 'webgl2 exists only in a browser (no document here); see npm run play for the playground' };
      return GPU.isWebGL2Supported
        ? { available: true, reason: 'this browser created a WebGL2 context' }
        : { available: false, reason: 'this browser could not create a WebGL2 context' };
    case 'webgpu':
      return gpuAvailability();
    case 'gpujs-webgpu':
      return webgpuAvailability();
    case 'webasm':
      return GPU.isWebAssemblySupported
        ? { available: true, reason: 'WebAssembly is supported' }
        : { available: false, reason: 'WebAssembly is not supported here' };
    case 'cpu':
      return { available: true, reason: 'always available' };
    case 'wasm': {
      if (typeof WebAssembly === 'undefined') return { available: false, reason: 'WebAssembly is not supported here' };
      // the smallest module with one f32x4 instruction: validates only where SIMD128 is on
      const simd = Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 17, 11);
      return WebAssembly.validate(simd)
        ? { available: true, reason: 'WebAssembly with SIMD128' }
        : { available: false, reason: 'WebAssembly SIMD128 is not supported here' };
    }
  }
};

export const isAvailable = (b: BackendName): boolean => probeBackend(b).available;

/** The backends usable in this process, in the order of `backendNames` (`probeBackend` says why one is not). */
export const availableBackends = (): BackendName[] => backendNames.filter(isAvailable);

/** GL backends keep results in textures (pipeline mode); the others return typed arrays. */
export const isGL = (b: BackendName): boolean => b === 'headlessgl' || b === 'webgl2';

/** Results stay on the device between kernels and runs (gpu.js pipeline mode): GL textures, WebGPU storage buffers. */
export const isResident = (b: BackendName): boolean => isGL(b) || b === 'gpujs-webgpu';

export interface ResolvedBackend {
  readonly name: BackendName;
  /** why `auto` chose it, or that it was requested */
  readonly reason: string;
}

/**
 * The backend a request names, with the reason: `auto` picks GL on a hardware GPU, else `wasm` (webgpu only by timing a
 * step: compileStepAuto); a named backend that is unknown or unavailable here throws, naming what is available.
 */
export const resolveBackend = (req: BackendRequest = 'auto'): ResolvedBackend => {
  const available = availableBackends();
  if (req === 'auto') return chooseAuto(available);
  if (!(backendNames as readonly string[]).includes(req))
    throw new Error(`unknown backend '${req}'; backends: ${backendNames.join(', ')}, or auto`);
  if (!available.includes(req))
    throw new Error(`backend '${req}' is not available here: ${probeBackend(req).reason}; available: ${available.join(', ')}, or auto`);
  return { name: req, reason: 'requested' };
};

/** The GL renderer's name (e.g. 'llvmpipe (LLVM 15.0.6, 256 bits)', 'SwiftShader', a GPU's), or undefined. */
export const glRenderer = (b: 'headlessgl' | 'webgl2'): string | undefined => {
  try {
    let gl: WebGLRenderingContext | WebGL2RenderingContext | null = null;
    const node = (id: string): unknown =>
      (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.(id);
    if (b === 'webgl2') gl = document.createElement('canvas').getContext('webgl2');
    else {
      const nodeModule = node('node:module') as { createRequire(url: string): (id: string) => unknown } | undefined;
      const create = nodeModule?.createRequire(import.meta.url)('gl') as
        ((w: number, h: number) => WebGLRenderingContext | null) | undefined;
      gl = create?.(1, 1) ?? null;
    }
    if (!gl) return undefined;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    // headless-gl's RENDERER says only 'ANGLE'; its _getParameterDirect asks ANGLE, which names the driver under it
    // ('ANGLE (Mesa/X.org llvmpipe (LLVM 15.0.6, 256 bits) ...)'); failing that, the GL library the context loaded
    const direct = (gl as { _getParameterDirect?: (p: number) => unknown })._getParameterDirect;
    const name =
      b === 'headlessgl' && !info
        ? typeof direct === 'function'
          ? String(direct.call(gl, gl.RENDERER))
          : withDriver(String(gl.getParameter(gl.RENDERER)), glDriverOfProcess(node('node:fs') as FsLike | undefined))
        : String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return name;
  } catch {
    return undefined;
  }
};

const withDriver = (name: string, driver: string | undefined): string | undefined => (driver ? `${name} on ${driver}` : undefined);

interface FsLike {
  readFileSync(path: string, encoding: 'utf8'): string;
}

/**
 * The GL driver loaded into this process, from the shared objects in /proc/self/maps (Linux): NVIDIA's GL core, or
 * a Mesa driver by name (swrast_dri.so is Mesa's software rasterizer: llvmpipe, or softpipe when GALLIUM_DRIVER says
 * so). Undefined where it cannot be told (no /proc, or a Mesa build with all its drivers in one libgallium).
 */
export const glDriverOfProcess = (fs: FsLike | undefined, maps?: string): string | undefined => {
  let text = maps;
  try {
    text ??= fs?.readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  if (/libnvidia-glcore|libGLX_nvidia/.test(text)) return "NVIDIA's GL driver (libnvidia-glcore)";
  const dri = /\/(\w+)_dri\.so/.exec(text)?.[1];
  if (dri === 'swrast' || dri === 'kms_swrast') {
    const gallium = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.GALLIUM_DRIVER;
    return `Mesa ${dri}_dri.so (${gallium ?? 'llvmpipe'})`;
  }
  return dri ? `Mesa ${dri}_dri.so` : undefined;
};

/** A CPU rasterizer behind a GL context: GL kernels then run on the CPU, slower than the wasm backend. */
export const isSoftwareRenderer = (renderer: string): boolean => /llvmpipe|softpipe|swiftshader|software|swrast/i.test(renderer);

/**
 * `auto` without timing: a GL backend on a hardware GPU (WebGL2 in a browser, headless-gl in Node), else the wasm
 * backend, else whatever gpu.js path is available. The compiler's WGSL (webgpu) on a hardware adapter is taken only
 * where a timed step beats wasm (compileStepAuto, train/autoChoice.ts); a software adapter never. The reason says
 * what was found.
 */
const chooseAuto = (available: readonly BackendName[]): ResolvedBackend => {
  const notes: string[] = [];
  const gpu = gpuContext();
  const hardwareWgsl = available.includes('webgpu') && gpu && !gpu.software;
  if (hardwareWgsl) notes.push(`webgpu's adapter is ${gpu.description}, taken only where a timed step beats wasm (compileStepAuto)`);
  const adapter = webgpuAdapter();
  // gpu.js's WebGPU path stands in only where the compiler's own WGSL cannot run
  if (!hardwareWgsl && available.includes('gpujs-webgpu') && adapter && !adapter.software)
    return { name: 'gpujs-webgpu', reason: `auto: webgpu (GPU: ${adapter.description})` };
  if (gpu?.software) notes.push(`webgpu's adapter is ${gpu.description}, a CPU implementation`);
  else if (!gpu && adapter) notes.push(`webgpu's adapter is ${adapter.description}, a CPU implementation`);
  for (const gl of ['webgl2', 'headlessgl'] as const) {
    if (!available.includes(gl)) continue;
    const renderer = glRenderer(gl);
    if (renderer && !isSoftwareRenderer(renderer)) return { name: gl, reason: `auto: ${gl} (GPU: ${renderer})` };
    notes.push(`${gl} renders on ${renderer ?? 'an unknown renderer'}, a CPU rasterizer`);
  }
  // a backend of the other platform is not news: headless-gl in a page, WebGL2 in Node
  const inNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  const elsewhere = inNode ? 'webgl2' : 'headlessgl';
  const unavailable = backendNames.filter((b) => !available.includes(b) && b !== elsewhere);
  if (unavailable.length) notes.push(`unavailable here: ${unavailable.join(', ')}`);
  const name = available.includes('wasm') ? 'wasm' : available[0];
  return { name, reason: `auto: ${name}${notes.length ? ` (${notes.join('; ')})` : ''}` };
};
