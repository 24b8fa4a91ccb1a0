// compile: Graph -> Executable. simplify -> fuse -> schedule -> codegen -> gpu.js kernels, run in order.
// On GL backends results stay in textures between kernels (pipeline mode); only requested outputs are read back.
import type { IKernelRunShortcut, Texture } from 'gpu.js';
import type { Graph } from '../core/ir.ts';
import { fuse, mergeOutputs, type FusedProgram, type FusionMode } from './passes/fuse.ts';
import { simplify } from './passes/simplify.ts';
import type { NDArray } from '../core/ndarray.ts';
import { planMemory, type BufferPlan } from './memoryPlan.ts';
import { fmt, sameShape, size, type Shape } from '../core/shape.ts';
import { generateKernel, type KernelSource } from './codegen/kernelSource.ts';
import { gpuFor, isGL, resolveBackend, type BackendName, type BackendRequest } from './backends.ts';

export interface CompileOptions {
  backend?: BackendRequest;
  /** 'unfused' runs one kernel per primitive: the baseline fusion is measured against */
  fusion?: FusionMode;
  /** after every kernel, read its output back and stop at the first non-finite value (slow; for debugging) */
  checkNaN?: boolean;
  /**
   * write outputs of the same shape from one kernel (gpu.js kernel maps) where the backend has them: GL and cpu;
   * gpu.js's webasm would run such a kernel on its cpu fallback, so there the default is off
   */
  multiOutput?: boolean;
  /** accumulate wall time per kernel in `Executable.profile` (GL backends queue work, so only totals are exact there) */
  profile?: boolean;
}

/** A device buffer: a typed array (cpu, webasm) or a texture (GL backends). */
export type DeviceBuffer = Float32Array | Texture;

export interface CompiledKernel {
  readonly index: number;
  readonly root: number;
  /** further nodes written by this (multi-output) kernel */
  readonly extraOutputs?: readonly number[];
  readonly name: string;
  readonly shape: Shape;
  readonly fusedOps: readonly string[];
  readonly source: KernelSource;
}

export interface Executable {
  readonly backend: BackendName;
  readonly backendReason: string;
  readonly program: FusedProgram;
  readonly kernels: readonly CompiledKernel[];
  readonly memory: BufferPlan;
  /** input name -> shape */
  readonly inputs: ReadonlyMap<string, Shape>;
  /** Runs the plan; inputs may be host arrays or device buffers from an earlier run; returns device buffers. */
  runDevice(inputs: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>): Record<string, DeviceBuffer>;
  /**
   * Like runDevice, awaiting each kernel: on webasm, kernels of 4096 or more elements then split across
   * gpu.js's worker pool (threads over shared wasm memory); other backends run as in runDevice.
   */
  runDeviceAsync(inputs: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>): Promise<Record<string, DeviceBuffer>>;
  /** Runs and reads the outputs back to the host. */
  run(inputs: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>, only?: readonly string[]): Record<string, NDArray>;
  /** milliseconds spent in each kernel call, summed over runs (with `profile: true`) */
  readonly profile: Float64Array;
  /** Reads one device buffer back as float32 values. */
  read(buffer: DeviceBuffer, shape: Shape): Float32Array;
}

export class NonFiniteError extends Error {
  constructor(readonly kernel: CompiledKernel, readonly index: number, readonly value: number) {
    super(`kernel ${kernel.index} (${kernel.name}, output ${fmt(kernel.shape)}, fusing ${kernel.fusedOps.join(' ')}) produced ${value} at element ${index}`);
    this.name = 'NonFiniteError';
  }
}

const kernelCache = new Map<string, IKernelRunShortcut>();
let nextPlanId = 0;

/**
 * gpu.js specialises a kernel to its argument sizes, so the cache key holds them with the source. On GL a
 * mutable kernel returns the same texture every call and overwrites it, which is right for intermediates
 * (consumed within the run) but not for outputs that outlive the run (parameters, optimizer state, results):
 * those kernels are immutable, return a fresh texture per call, and their old textures are deleted by the owner.
 */
const makeKernel = (backend: BackendName, src: KernelSource, n: number, argSizes: readonly number[], immutable: boolean, owner: string, asyncMode = false): IKernelRunShortcut => {
  // a GL kernel owns its output texture, so on GL each plan position gets its own instance
  const key = `${isGL(backend) ? owner : ''}|${backend}|${n}|${argSizes}|${immutable}|${asyncMode}|${src.source}`;
  let k = kernelCache.get(key);
  if (!k) {
    const settings = {
      output: [n],
      precision: 'single',
      tactic: 'precision',
      pipeline: isGL(backend),
      immutable,
      asyncMode,
      loopMaxIterations: 1 << 30, // loops carry literal bounds; this only guards against gpu.js's default cap
    } as never;
    const gpu = gpuFor(backend);
    k = src.subKernels.length ? (gpu.createKernelMap([...src.subKernels] as never, src.source as never, settings) as unknown as IKernelRunShortcut) : gpu.createKernel(src.source as never, settings);
    kernelCache.set(key, k);
  }
  return k;
};

/** Number of kernels created so far in this process (the kernel cache): a recompile per step shows here. */
export const compiledKernelCount = (): number => kernelCache.size;

const toFloat32 = (v: NDArray | ArrayLike<number>): Float32Array =>
  v instanceof Float32Array ? v : Float32Array.from('data' in (v as NDArray) ? (v as NDArray).data : (v as ArrayLike<number>));

export const compile = (graph: Graph, options: CompileOptions = {}): Executable => {
  const { name: backend, reason } = resolveBackend(options.backend);
  const fused = fuse(simplify(graph), options.fusion ?? 'fused');
  const multiOutput = (options.multiOutput ?? backend !== 'webasm') && options.fusion !== 'unfused';
  const program = multiOutput ? mergeOutputs(fused) : fused;
  const g = program.graph;
  const kernels: CompiledKernel[] = program.kernels.map((k, index) => {
    const ops = k.fused.map((id) => g.nodes[id].op).reverse();
    return { index, root: k.root, extraOutputs: k.extraOutputs ?? [], name: `k${index}_${g.nodes[k.root].op}`, shape: k.shape, fusedOps: ops, source: generateKernel(program, k) };
  });
  const outputIds = new Set(g.outputs.map((o) => o.id));
  const planId = nextPlanId++;
  const runners = kernels.map((k) =>
    makeKernel(
      backend,
      k.source,
      Math.max(1, size(k.shape)),
      k.source.args.map((id) => size(g.nodes[id].shape)),
      isGL(backend) && [k.root, ...(k.extraOutputs ?? [])].some((id) => outputIds.has(id)),
      `${planId}:${k.index}`,
    ),
  );
  const inputs = new Map(g.nodes.flatMap((n) => (n.op === 'input' ? [[n.attrs.name, n.shape] as const] : [])));
  const constants = new Map<number, Float32Array>();
  for (const n of g.nodes) if (n.op === 'constant' && program.materialized.has(n.id)) constants.set(n.id, Float32Array.from(n.attrs.value));
  const gl = isGL(backend);
  const profile = new Float64Array(kernels.length);

  const read = (buffer: DeviceBuffer, shape: Shape): Float32Array => {
    if (buffer instanceof Float32Array) return buffer;
    const arr = (buffer as Texture).toArray() as unknown as Float32Array;
    return arr.length === size(shape) ? arr : arr.subarray(0, size(shape));
  };

  const bindInputs = (given: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>): Map<number, DeviceBuffer> => {
    const values = new Map<number, DeviceBuffer>();
    for (const n of g.nodes) {
      if (n.op !== 'input') continue;
      const v = given[n.attrs.name];
      if (v === undefined) throw new Error(`run: missing input '${n.attrs.name}' of shape ${fmt(n.shape)}; inputs: ${[...inputs.keys()].join(', ')}`);
      if (typeof v === 'object' && v !== null && 'shape' in v && 'data' in v && !sameShape((v as NDArray).shape, n.shape))
        throw new Error(`run: input '${n.attrs.name}' has shape ${fmt((v as NDArray).shape)}, the plan expects ${fmt(n.shape)}`);
      const arr = isTexture(v) ? (v as DeviceBuffer) : toFloat32(v as NDArray);
      if (arr instanceof Float32Array && arr.length !== size(n.shape))
        throw new Error(`run: input '${n.attrs.name}' has ${arr.length} values, the plan expects ${fmt(n.shape)} (${size(n.shape)})`);
      values.set(n.id, arr);
    }
    for (const [id, c] of constants) values.set(id, c);
    return values;
  };

  const afterKernel = (k: CompiledKernel, result: DeviceBuffer, values: Map<number, DeviceBuffer>) => {
    // a kernel map returns { result, 0: first extra output, 1: ... }
    const mapped = k.extraOutputs?.length ? (result as unknown as Record<string, DeviceBuffer>) : undefined;
    const out = mapped ? mapped.result : result;
    values.set(k.root, out);
    k.extraOutputs?.forEach((id, j) => values.set(id, mapped![j]));
    if (options.checkNaN) {
      const data = read(out, k.shape);
      const bad = data.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new NonFiniteError(k, bad, data[bad]);
    }
  };

  const outputsOf = (values: Map<number, DeviceBuffer>) => Object.fromEntries(g.outputs.map((o) => [o.name, values.get(o.id)!]));

  const runDevice: Executable['runDevice'] = (given) => {
    const values = bindInputs(given);
    kernels.forEach((k, i) => {
      const args = k.source.args.map((id) => values.get(id)!);
      const start = options.profile ? performance.now() : 0;
      const out = guard(k, backend, () => runners[i](...(args as never[])) as unknown as DeviceBuffer);
      if (options.profile) profile[i] += performance.now() - start;
      afterKernel(k, out, values);
    });
    return outputsOf(values);
  };

  let asyncRunners: IKernelRunShortcut[] | undefined;
  const runDeviceAsync: Executable['runDeviceAsync'] = async (given) => {
    if (backend !== 'webasm') return runDevice(given);
    asyncRunners ??= kernels.map((k) => makeKernel(backend, k.source, Math.max(1, size(k.shape)), k.source.args.map((id) => size(g.nodes[id].shape)), false, '', true));
    const values = bindInputs(given);
    for (const k of kernels) {
      const args = k.source.args.map((id) => values.get(id)!);
      const start = options.profile ? performance.now() : 0;
      let out: DeviceBuffer;
      try {
        out = (await (asyncRunners[k.index](...(args as never[])) as unknown as Promise<DeviceBuffer>)) as DeviceBuffer;
      } catch (e) {
        throw new BackendError(k, backend, e);
      }
      if (options.profile) profile[k.index] += performance.now() - start;
      afterKernel(k, out, values);
    }
    return outputsOf(values);
  };

  return {
    backend,
    backendReason: reason,
    program,
    kernels,
    memory: planMemory(program),
    inputs,
    profile,
    runDevice,
    runDeviceAsync,
    read,
    run: (given, only) => {
      const out = runDevice(given);
      const result = Object.fromEntries(
        g.outputs.filter((o) => !only || only.includes(o.name)).map((o) => {
          const shape = g.nodes[o.id].shape;
          return [o.name, { shape, data: Float64Array.from(read(out[o.name], shape)) }];
        }),
      );
      for (const b of new Set(Object.values(out))) release(b);
      return result;
    },
  };
};

export class BackendError extends Error {
  constructor(readonly kernel: CompiledKernel, readonly backend: BackendName, override readonly cause: unknown) {
    super(`backend ${backend} cannot run kernel ${kernel.index} (${kernel.name}: ${kernel.fusedOps.join(' ')}, output [${kernel.shape.join(',')}]): ${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}`);
    this.name = 'BackendError';
  }
}

/** Runs one kernel call; a failure of the backend (shader compile, texture size, wasm trap) names the kernel's ops. */
export const guard = <T>(kernel: CompiledKernel, backend: BackendName, call: () => T): T => {
  try {
    return call();
  } catch (e) {
    throw new BackendError(kernel, backend, e);
  }
};

/** Frees a texture returned by an immutable kernel (a no-op for typed arrays, which the GC frees). */
export const release = (b: DeviceBuffer): void => {
  if (!(b instanceof Float32Array) && isTexture(b)) (b as Texture).delete();
};

const isTexture = (v: unknown): boolean => typeof v === 'object' && v !== null && typeof (v as Texture).toArray === 'function' && !(v instanceof Float32Array);
