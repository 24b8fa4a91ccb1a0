// `auto` between the compiler's WGSL (webgpu) and WebAssembly (wasm) by timing: where a hardware WebGPU adapter
// exists, a plan is compiled on both, one step of it timed on each, the faster kept; the choice is cached per plan
// (a hash of its graph) and adapter. A software adapter (SwiftShader, llvmpipe, WARP) is never timed nor chosen.
import type { Graph } from '../core/ir.ts';
import { gpuContext, isAvailable, resolveBackend, type BackendName, type Executable } from '../compiler/index.ts';

/** What `auto` needs to know of the WebGPU adapter: its name, and whether it is a CPU implementation. */
export interface AdapterFacts {
  readonly description: string;
  readonly software: boolean;
}

/** The two backends a timed choice weighs. */
export type TimedBackend = 'webgpu' | 'wasm';

/** A timed choice as it is cached: the winner, both timings (ms per step) and when it was measured. */
export interface TimedChoice {
  readonly backend: TimedBackend;
  readonly msPerStep: Readonly<Record<TimedBackend, number>>;
  readonly adapter: string;
  readonly at: string;
}

/** Where timed choices are kept: by plan key and adapter description. */
export interface ChoiceCache {
  get(planKey: string, adapter: string): TimedChoice | undefined;
  set(planKey: string, choice: TimedChoice): void;
}

/** What a caller (a test) may fix for every timed choice of a command: the adapter, the cache, the ms per run. */
export interface AutoInjection {
  readonly adapter?: AdapterFacts | null;
  readonly cache?: ChoiceCache;
  readonly time?: (backend: TimedBackend) => Promise<number>;
}

/** A cache in memory, for the life of the process or page (the CLI adds a file behind it: runs/autoBackendCache.ts). */
export const memoryChoiceCache = (): ChoiceCache => {
  const m = new Map<string, TimedChoice>();
  return {
    get: (key, adapter) => m.get(`${key}@${adapter}`),
    set: (key, c) => void m.set(`${key}@${c.adapter}`, c),
  };
};

/** The process-wide default cache of compileStepAuto. */
export const sharedChoiceCache: ChoiceCache = memoryChoiceCache();

/** The adapter of the WGSL backend's device (prepareWebGPU() acquires it), or undefined where webgpu cannot run. */
export const currentAdapter = (): AdapterFacts | undefined => {
  const gpu = gpuContext();
  return gpu && isAvailable('webgpu') ? { description: gpu.description, software: gpu.software } : undefined;
};

/**
 * A key for a plan: a 64-bit FNV-1a hash (two 32-bit lanes) of its graph's ops, inputs, shapes, attributes and output
 * names. The same model, batch and optimizer trace to the same graph, so they share a key; any change of shape does not.
 */
export const planKey = (g: Graph): string => {
  let a = 0x811c9dc5,
    b = 0x01000193 ^ 0x5bd1e995;
  const byte = (x: number) => {
    a = Math.imul(a ^ x, 0x01000193) >>> 0;
    b = Math.imul(b ^ x, 0x01000193 + 0x2f) >>> 0;
  };
  const text = (s: string) => {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      byte(c & 255);
      byte(c >>> 8);
    }
    byte(0);
  };
  const value = (v: unknown): void => {
    if (ArrayBuffer.isView(v)) {
      text(v.constructor.name);
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      for (let i = 0; i < bytes.length; i++) byte(bytes[i]);
    } else if (Array.isArray(v)) {
      text('[');
      v.forEach(value);
      text(']');
    } else if (v && typeof v === 'object') {
      for (const k of Object.keys(v).sort()) {
        text(k);
        value((v as Record<string, unknown>)[k]);
      }
    } else text(String(v));
  };
  for (const n of g.nodes) {
    text(n.op);
    text(n.inputs.join(','));
    text(n.shape.join('x'));
    value(n.attrs);
  }
  for (const o of g.outputs) text(`${o.name}=${o.id}`);
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
};

const ms = (x: number): string => (x < 10 ? x.toFixed(2) : x.toFixed(1));

/** The reason of a timed (or cached) choice, e.g. 'auto: webgpu (NVIDIA ..., 0.80 ms/step against wasm 5.10 ms)'. */
export const timedReason = (c: TimedChoice, cached: boolean): string => {
  const other: TimedBackend = c.backend === 'webgpu' ? 'wasm' : 'webgpu';
  const where = c.backend === 'webgpu' ? `${c.adapter}, ` : '';
  const loser = other === 'webgpu' ? ` on ${c.adapter}` : '';
  const when = cached ? `; timed ${c.at}, cached` : '';
  return `auto: ${c.backend} (${where}${ms(c.msPerStep[c.backend])} ms/step against ${other} ${ms(c.msPerStep[other])} ms${loser}${when})`;
};

/** The adapter `auto` weighs: the one given (null: none), else the device prepareWebGPU() acquired. */
export const autoAdapter = (given?: AdapterFacts | null): AdapterFacts | undefined =>
  given === undefined ? currentAdapter() : (given ?? undefined);

/** auto's untimed choice (resolveBackend), with the software reason where the adapter is a CPU implementation. */
export const untimedChoice = (adapter: AdapterFacts | undefined): { name: BackendName; reason: string } => {
  const u = resolveBackend('auto');
  return { name: u.name, reason: adapter ? softwareReason(u.name, adapter, u.reason) : u.reason };
};

/**
 * The plan with `reason` in place of its compile's own 'requested' (what the compile found later, such as gpu.js's
 * CPU fallbacks, still follows it); everything else is the plan's.
 */
export const withBackendReason = (exe: Executable, reason: string): Executable =>
  Object.create(exe, { backendReason: { get: () => `${reason}${exe.backendReason.replace(/^requested/, '')}` } }) as Executable;

/** The reason where the adapter is a CPU implementation: auto takes the untimed choice and says why. */
export const softwareReason = (name: string, adapter: AdapterFacts, untimed: string): string =>
  untimed.includes(adapter.description)
    ? untimed
    : `auto: ${name} (webgpu's adapter is ${adapter.description}, a CPU implementation, which auto never takes)`;

/** A candidate plan of a timed choice: compiled for one backend, timed, then kept or disposed. */
export interface Candidates<T> {
  compile(backend: TimedBackend): T;
  /** ms per step on a candidate (it must be left as it was compiled: the kept one runs for real afterwards) */
  time(backend: TimedBackend, plan: T): Promise<number>;
  dispose(plan: T): void;
}

/**
 * `auto` for anything compiled per backend (a plan, a training step): where there is no adapter or a software one,
 * auto's untimed choice; else chooseByTiming under `key` (a thunk: only a timed choice needs it). `relabel` puts the
 * reason on what is returned.
 */
export const decideAuto = async <T>(
  key: () => string,
  given: { readonly adapter?: AdapterFacts | null; readonly cache?: ChoiceCache },
  c: Omit<Candidates<T>, 'compile'> & { compile(backend: BackendName): T; relabel(plan: T, reason: string): T },
): Promise<T> => {
  const adapter = autoAdapter(given.adapter);
  if (!adapter || adapter.software) {
    const untimed = untimedChoice(adapter);
    return c.relabel(c.compile(untimed.name), untimed.reason);
  }
  const { plan, reason } = await chooseByTiming(key(), adapter, given.cache ?? sharedChoiceCache, c);
  return c.relabel(plan, reason);
};

/**
 * Chooses between webgpu and wasm on a hardware adapter: a cached choice compiles only its winner; otherwise both
 * are compiled and timed, the faster kept and the other disposed, and the choice cached. A candidate that fails to
 * compile or run loses (the reason says why). Returns the kept plan and the reason.
 */
export const chooseByTiming = async <T>(
  key: string,
  adapter: AdapterFacts,
  cache: ChoiceCache,
  c: Candidates<T>,
): Promise<{ plan: T; backend: TimedBackend; reason: string }> => {
  const hit = cache.get(key, adapter.description);
  if (hit) {
    try {
      return { plan: c.compile(hit.backend), backend: hit.backend, reason: timedReason(hit, true) };
    } catch (e) {
      if (hit.backend === 'wasm') throw e;
      return { plan: c.compile('wasm'), backend: 'wasm', reason: failedReason(adapter, e) };
    }
  }
  /** a candidate compiled and timed, or why it failed (a failed candidate is disposed here) */
  const attempt = async (backend: TimedBackend): Promise<{ plan: T; ms: number } | { error: unknown }> => {
    let plan: T | undefined;
    try {
      plan = c.compile(backend);
      return { plan, ms: await c.time(backend, plan) };
    } catch (error) {
      if (plan !== undefined) c.dispose(plan);
      return { error };
    }
  };
  const gpuRun = await attempt('webgpu');
  if ('error' in gpuRun) return { plan: c.compile('wasm'), backend: 'wasm', reason: failedReason(adapter, gpuRun.error) };
  const cpuRun = await attempt('wasm');
  if ('error' in cpuRun) {
    // e.g. a plan over wasm's 2 GiB: the GPU takes it (not cached: the reason is not a timing)
    const why = (cpuRun.error as Error).message.split('\n')[0];
    return { plan: gpuRun.plan, backend: 'webgpu', reason: `auto: webgpu (${adapter.description}; wasm failed: ${why})` };
  }
  const [gpu, gpuMs, cpu, cpuMs] = [gpuRun.plan, gpuRun.ms, cpuRun.plan, cpuRun.ms];
  const choice: TimedChoice = {
    backend: gpuMs < cpuMs ? 'webgpu' : 'wasm',
    msPerStep: { webgpu: gpuMs, wasm: cpuMs },
    adapter: adapter.description,
    at: new Date().toISOString(),
  };
  c.dispose(choice.backend === 'webgpu' ? cpu : gpu);
  cache.set(key, choice);
  return { plan: choice.backend === 'webgpu' ? gpu : cpu, backend: choice.backend, reason: timedReason(choice, false) };
};

const failedReason = (adapter: AdapterFacts, e: unknown): string =>
  `auto: wasm (webgpu on ${adapter.description} failed: ${(e as Error).message.split('\n')[0]})`;
