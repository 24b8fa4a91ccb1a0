// The gpu.js backends fusediff can run on, how to tell which are available (and why not), and `auto`'s choice.
import { GPU } from 'gpu.js';

export const backendNames = ['headlessgl', 'webgl2', 'webasm', 'cpu'] as const;
export type BackendName = (typeof backendNames)[number];
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
      return { available: false, reason: hasDisplay() ? 'the gl package could not create a context (is it built?)' : 'no X display (DISPLAY is unset): run under xvfb-run, e.g. sh scripts/with-display.sh' };
    case 'webgl2':
      if (!('document' in globalThis)) return { available: false, reason: 'not in a browser (no document)' };
      return GPU.isWebGL2Supported ? { available: true, reason: 'this browser created a WebGL2 context' } : { available: false, reason: 'this browser could not create a WebGL2 context' };
    case 'webasm':
      return GPU.isWebAssemblySupported ? { available: true, reason: 'WebAssembly is supported' } : { available: false, reason: 'WebAssembly is not supported here' };
    case 'cpu':
      return { available: true, reason: 'always available' };
  }
};

export const isAvailable = (b: BackendName): boolean => probeBackend(b).available;

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
