// The gpu.js backends fusediff can run on, how to tell which are available, and `auto`'s choice.
import { GPU } from 'gpu.js';
import { rngEntryPoint, rngFunctionSources } from '../core/rng.ts';

export const backendNames = ['headlessgl', 'webgl2', 'webasm', 'cpu'] as const;
export type BackendName = (typeof backendNames)[number];
export type BackendRequest = BackendName | 'auto';

/** Whether a backend is usable in this process (headless-gl needs the `gl` package and an X display). */
export const isAvailable = (b: BackendName): boolean => {
  switch (b) {
    case 'headlessgl':
      return GPU.isHeadlessGLSupported;
    case 'webgl2':
      return GPU.isWebGL2Supported && 'document' in globalThis;
    case 'webasm':
      return GPU.isWebAssemblySupported;
    case 'cpu':
      return true;
  }
};

export const availableBackends = (): BackendName[] => backendNames.filter(isAvailable);

/** GL backends keep results in textures (pipeline mode); the others return typed arrays. */
export const isGL = (b: BackendName): boolean => b === 'headlessgl' || b === 'webgl2';

export interface ResolvedBackend {
  readonly name: BackendName;
  /** why `auto` chose it, or that it was requested */
  readonly reason: string;
}

export const resolveBackend = (req: BackendRequest = 'auto'): ResolvedBackend => {
  const available = availableBackends();
  if (req === 'auto') {
    const name = available[0];
    const skipped = backendNames.filter((b) => !available.includes(b));
    return { name, reason: skipped.length ? `auto: ${name} (unavailable here: ${skipped.join(', ')})` : `auto: ${name}` };
  }
  if (!(backendNames as readonly string[]).includes(req))
    throw new Error(`unknown backend '${req}'; backends: ${backendNames.join(', ')}, or auto`);
  if (!available.includes(req))
    throw new Error(`backend '${req}' is not available here; available: ${available.join(', ')} (headlessgl needs the gl package built and an X display, e.g. xvfb-run)`);
  return { name: req, reason: 'requested' };
};

/** The RNG's JS helper source as GLSL: every value is a float, Math.f is the built-in f. */
export const toGLSL = (src: string): string =>
  src
    .replace(/function (\w+)\(([^)]*)\)/, (_, name: string, params: string) => `float ${name}(${params.split(',').map((p) => `float ${p.trim()}`).join(', ')})`)
    .replace(/\b(const|let) /g, 'float ')
    .replace(/Math\.(\w+)/g, '$1');

const instances = new Map<BackendName, GPU>();

/** Destroys the gpu.js instances (and webasm's worker pool, which would otherwise keep the process alive). */
export const shutdownBackends = async (): Promise<void> => {
  for (const gpu of instances.values()) await gpu.destroy();
  instances.clear();
};

/** One gpu.js instance per backend, with the RNG helpers added once. */
export const gpuFor = (b: BackendName): GPU => {
  let gpu = instances.get(b);
  if (!gpu) {
    gpu = new GPU({ mode: b === 'webgl2' ? 'webgl2' : b });
    // On GL the helpers go in as GLSL, in dependency order (gpu.js's own translation emits callers before
    // callees, which GLSL rejects); the GLSL is a mechanical rewrite of the same source text.
    if (isGL(b)) gpu.addNativeFunction(rngEntryPoint, rngFunctionSources.map(toGLSL).join('\n'));
    else for (const src of rngFunctionSources) gpu.addFunction(src as never);
    instances.set(b, gpu);
  }
  return gpu;
};
