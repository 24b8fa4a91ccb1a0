// compile: Graph -> Executable. simplify -> fuse -> schedule -> codegen (WebAssembly, WGSL or gpu.js kernels) -> run in order.
// On GL backends results stay in textures between kernels (pipeline mode); only requested outputs are read back.
import type { Graph } from '../core/ir.ts';
import { fuse, mergeOutputs, type FusedProgram, type FusionMode } from './passes/fuse.ts';
import { simplify } from './passes/simplify.ts';
import type { NDArray } from '../core/ndarray.ts';
import { planMemory, type BufferPlan } from './memoryPlan.ts';
import { fmt, sameShape, size, type Shape } from '../core/shape.ts';
import { GL_LOOP_LIMIT, printGpuJs } from './codegen/gpujs.ts';
import { padConvInputs } from './passes/padConvInputs.ts';
import { splitReductions } from './passes/splitReductions.ts';
import { indexExtent } from './kernel/ir.ts';
import { glLanes } from './kernel/lanes.ts';
import { lowerKernel } from './kernel/lower.ts';
import { printKernelIR } from './kernel/print.ts';
import { compileOnPlanBackend } from './wasm/executable.ts';
import { compileOnWebGPU } from './webgpu/plan.ts';
import { wgslKernel } from './webgpu/shaders.ts';
import type { Executable } from './plan.ts';
import type { Backend, BackendKernel, DeviceBuffer, KernelBackend, KernelOptions, KernelOutput } from './backend.ts';
import { isGL, isResident, resolveBackend, type BackendName, type BackendRequest } from './backends/names.ts';
import { backendFor } from './backends/registry.ts';
import { isDeleted, isTexture, release } from './buffers.ts';
import { missingInput } from './inputs.ts';
import { checkInto, deliverInto } from './into.ts';
import { BackendError, guard, KernelLimitError, NonFiniteError } from './errors.ts';
import { FallbackWatch, type KernelFallback } from './fallbacks.ts';
import type { CompiledKernel } from './kernel.ts';

/** Options of `compile` (and of `compileStep`, which passes them on): the backend, fusion, debugging and profiling. */
export interface CompileOptions {
  /** a backend name or 'auto' (the shared Backend object of that name), or a Backend object of your own */
  backend?: BackendRequest | Backend;
  /** 'unfused' runs one kernel per primitive: the baseline fusion is measured against */
  fusion?: FusionMode;
  /** after every kernel, read its output back and stop at the first non-finite value (slow; for debugging) */
  checkNaN?: boolean;
  /**
   * write outputs of the same shape from one kernel (gpu.js kernel maps) where the backend has them: GL and cpu;
   * gpu.js's webasm would run such a kernel on its cpu fallback, so there the default is off; webgpu has none
   */
  multiOutput?: boolean;
  /**
   * GL: 4 computes four outputs per thread where lanes share loads (matmul, conv; kernel/lanes.ts), 1 keeps one per
   * thread (the layout before; for comparison)
   */
  glLanes?: 1 | 4;
  /**
   * State that stays on the device between runs: output name -> the input it becomes in the next run (a training
   * step's new parameters -> its parameters). Plan backends (wasm) then keep those inputs in their memory: runDevice
   * does not copy the outputs out, `adoptFeedback()` moves them into place, the inputs may be left out of later runs.
   * Backends of GL textures return them as usual (a texture is already resident).
   */
  feedback?: Readonly<Record<string, string>>;
  /**
   * webgpu: the output whose finiteness decides, on the GPU, whether a run adopts its feedback (a training step's
   * loss; see Executable.runGated). Without it the feedback is adopted after every run.
   */
  feedbackGate?: string;
  /** accumulate wall time per kernel in `Executable.profile` (GL backends queue work, so only totals are exact there) */
  profile?: boolean;
  /** when gpu.js moves a kernel to its CPU path: say so in `backendReason` (default) or throw a BackendError */
  onFallback?: 'report' | 'error';
}

let nextPlanId = 0;

const toFloat32 = (v: NDArray | ArrayLike<number>): Float32Array =>
  v instanceof Float32Array ? v : Float32Array.from('data' in (v as NDArray) ? (v as NDArray).data : (v as ArrayLike<number>));

/** The Backend object for a compile: the caller's own, or the shared one for the requested name. */
const deviceFor = (req: BackendRequest | Backend | undefined): { device: Backend; reason: string } => {
  if (typeof req === 'object') {
    if (req.disposed) throw new Error(`compile: backend ${req.name} was disposed`);
    return { device: req, reason: 'requested' };
  }
  const { name, reason } = resolveBackend(req);
  return { device: backendFor(name), reason };
};

/**
 * The largest index gpu.js's float index arithmetic computes exactly on each of its backends: floor((x + 0.5) / d)
 * is exact for x < 2^23 under IEEE f32 division (webasm) and, under GLSL's looser division, below 2^21 (GL); the
 * cpu path computes in float64. The wasm backend uses integers and is bounded by its memory instead.
 */
export const exactIndexLimit: Readonly<Record<BackendName, number>> = {
  wasm: 2 ** 31,
  cpu: 2 ** 52,
  webasm: 2 ** 23,
  headlessgl: 2 ** 21,
  webgl2: 2 ** 21,
  // WGSL allows f32 division 2.5 ulp of error, as GLSL does
  'gpujs-webgpu': 2 ** 21,
  // the compiler's own WGSL indexes with i32
  webgpu: 2 ** 31,
};

/**
 * Compiles a graph (a traced function, a gradient, ...) into an `Executable`: simplified, fused into kernels, with a
 * memory plan, for one backend (`auto` by default: `exe.backend` says which, `exe.backendReason` why). Runs take host
 * arrays by input name and return the outputs (float32 on the device, read back as float64 host arrays).
 */
export const compile = (graph: Graph, options: CompileOptions = {}): Executable => {
  const { device, reason } = deviceFor(options.backend);
  const backend = device.name;
  const simplified = simplify(graph);
  // GL cuts long loops: reductions longer than its limit become two passes
  const lowered = isGL(backend)
    ? simplify(splitReductions(simplified, GL_LOOP_LIMIT))
    : device.kind === 'plans' || device.kind === 'wgsl'
      ? padConvInputs(simplified)
      : simplified;
  const fused = fuse(lowered, options.fusion ?? 'fused', {
    // the compiler's own backends read matmul and conv operands contiguous: a permuted or flipped weight is
    // materialised once instead of recomputing its index in the inner loop of every output
    contiguousOperands: device.kind === 'plans' || device.kind === 'wgsl',
    plainConvEpilogues: device.kind === 'plans',
    shareTranscendentals: device.kind === 'plans',
    // WebGPU's default limit: 8 storage buffers per shader stage, one of them the output (gpu.js asks for no more)
    // the WGSL backend binds every read and every output: as many storage buffers as the adapter allows
    maxReads: backend === 'gpujs-webgpu' ? 7 : device.kind === 'wgsl' ? device.context().maxStorageBuffers - 1 : undefined,
  });
  const multiOutput = (options.multiOutput ?? backend !== 'webasm') && options.fusion !== 'unfused' && backend !== 'gpujs-webgpu';
  const merged = multiOutput ? mergeOutputs(fused) : fused;
  // on webgpu a merged kernel must still bind within the adapter's limit, else the outputs stay apart
  const bindsWithin = (p: FusedProgram) =>
    device.kind !== 'wgsl' ||
    p.kernels.every((k) => lowerKernel(p, k).reads.length + 1 + (k.extraOutputs ?? []).length <= device.context().maxStorageBuffers);
  const program = merged === fused || bindsWithin(merged) ? merged : fused;
  const g = program.graph;
  const irs = program.kernels.map((k) => lowerKernel(program, k));
  const named = program.kernels.map((k, index) => ({
    index,
    root: k.root,
    extraOutputs: k.extraOutputs ?? [],
    name: `k${index}_${g.nodes[k.root].op}`,
    shape: k.shape,
    fusedOps: k.fused.map((id) => g.nodes[id].op).reverse(),
  }));
  if (device.kind === 'plans') {
    const kernels = named.map((k, i) => ({ ...k, source: { source: printKernelIR(irs[i]), args: irs[i].reads, subKernels: [] } }));
    return compileOnPlanBackend(device, reason, program, kernels, irs, options);
  }
  if (device.kind === 'wgsl') {
    const software = device.context().software;
    // a split kernel's scratch buffer takes an id past the graph's nodes, one per kernel
    const maxBindings = device.context().maxStorageBuffers;
    const shaders = irs.map((ir, i) =>
      wgslKernel(ir, named[i].name, [named[i].root, ...named[i].extraOutputs], {
        software,
        tuning: device.tuning,
        scratchId: g.nodes.length + i,
        maxBindings,
      }),
    );
    const kernels = named.map((k, i) => ({ ...k, source: { source: shaders[i].code, args: shaders[i].reads, subKernels: [] } }));
    return compileOnWebGPU(device, reason, program, kernels, shaders, options);
  }
  const kernels: CompiledKernel[] = named.map((k, i) => {
    const extent = indexExtent(irs[i]);
    if (extent > exactIndexLimit[backend])
      throw new KernelLimitError(
        k,
        backend,
        `its indices reach ${extent}, which exceeds the limit of ${exactIndexLimit[backend]} below which ` +
          `gpu.js's float index arithmetic on ${backend} is exact; the wasm backend indexes it exactly`,
      );
    const lanes = isGL(backend) && (options.glLanes ?? 4) === 4 ? glLanes(irs[i]) : 1;
    // WGSL, like GLSL, leaves max/min of a NaN undefined: webgpu takes the GL forms that propagate it
    const gl = isGL(backend) || backend === 'gpujs-webgpu';
    return { ...k, source: printGpuJs(irs[i], { gl, float64: backend === 'cpu', lanes, wgsl: backend === 'gpujs-webgpu' }) };
  });
  return compileOnKernelBackend(device, reason, program, kernels, options);
};

const compileOnKernelBackend = (
  device: KernelBackend,
  reason: string,
  program: FusedProgram,
  kernels: readonly CompiledKernel[],
  options: CompileOptions,
): Executable => {
  const backend = device.name;
  const g = program.graph;
  const outputIds = new Set(g.outputs.map((o) => o.id));
  const gl = isResident(backend);
  const planId = nextPlanId++;
  const kernelOptions = (k: CompiledKernel, immutable: boolean, owner: string, asyncMode = false): KernelOptions => ({
    size: Math.max(1, size(k.shape)),
    argSizes: k.source.args.map((id) => size(g.nodes[id].shape)),
    immutable,
    owner,
    asyncMode,
  });
  const immutable = kernels.map((k) => gl && [k.root, ...(k.extraOutputs ?? [])].some((id) => outputIds.has(id)));
  const runners = kernels.map((k) => device.compileKernel(k.source, kernelOptions(k, immutable[k.index], `${planId}:${k.index}`)));
  // an immutable kernel returns a fresh texture for each of its results; those that are not outputs of the plan
  // are consumed within the run and released at its end (else each run would leave them behind)
  // On webgpu a mutable kernel's every call hands out one more reference to its one output buffer (gpu.js counts
  // them; the kernel keeps its own), so those handles are released at the end of the run too, or the buffer would
  // outlive the kernel. On GL releasing one would delete the texture the kernel reuses.
  const transient = kernels.flatMap((k) =>
    immutable[k.index] || backend === 'gpujs-webgpu' ? [k.root, ...(k.extraOutputs ?? [])].filter((id) => !outputIds.has(id)) : [],
  );
  const produced = new Set(kernels.flatMap((k) => [k.root, ...(k.extraOutputs ?? [])]));
  const inputs = new Map(g.nodes.flatMap((n) => (n.op === 'input' ? [[n.attrs.name, n.shape] as const] : [])));
  const constants = new Map<number, Float32Array>();
  for (const n of g.nodes) if (n.op === 'constant' && program.materialized.has(n.id)) constants.set(n.id, Float32Array.from(n.attrs.value));
  const profile = new Float64Array(kernels.length);
  const watch = new FallbackWatch(backend, options.onFallback ?? 'report');
  /** textures this plan's runs handed out, until released (pruned each run) */
  const held = new Set<DeviceBuffer>();
  let asyncRunners: BackendKernel[] | undefined;
  let disposed = false;

  const live = (what: string) => {
    if (disposed) throw new Error(`${what}: this plan was disposed (its kernels and buffers are freed); compile the graph again`);
    if (device.disposed)
      throw new Error(
        `${what}: backend ${backend} was disposed (shutdownBackends or Backend.dispose) ` +
          `after this plan was compiled; compile the graph again`,
      );
  };

  const read = (buffer: DeviceBuffer, shape: Shape): Float32Array => {
    live('read');
    return device.read(buffer, size(shape));
  };

  const readAsync = async (buffer: DeviceBuffer, shape: Shape): Promise<Float32Array> => {
    live('read');
    return device.readAsync(buffer, size(shape));
  };

  const bindInputs = (given: Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>): Map<number, DeviceBuffer> => {
    const values = new Map<number, DeviceBuffer>();
    for (const n of g.nodes) {
      if (n.op !== 'input') continue;
      const v = given[n.attrs.name];
      if (v === undefined) throw new Error(missingInput(n.attrs.name, n.shape, given, inputs));
      if (typeof v === 'object' && v !== null && 'shape' in v && 'data' in v && !sameShape((v as NDArray).shape, n.shape))
        throw new Error(`run: input '${n.attrs.name}' has shape ${fmt((v as NDArray).shape)}, the plan expects ${fmt(n.shape)}`);
      const arr = isTexture(v) ? v : toFloat32(v as NDArray);
      if (arr instanceof Float32Array && arr.length !== size(n.shape))
        throw new Error(`run: input '${n.attrs.name}' has ${arr.length} values, the plan expects ${fmt(n.shape)} (${size(n.shape)})`);
      values.set(n.id, arr);
    }
    for (const [id, c] of constants) values.set(id, c);
    return values;
  };

  const afterKernel = (k: CompiledKernel, result: KernelOutput, values: Map<number, DeviceBuffer>) => {
    // a kernel map returns { result, 0: first extra output, 1: ... }
    const mapped = k.extraOutputs?.length ? (result as Exclude<KernelOutput, DeviceBuffer>) : undefined;
    const out = mapped ? mapped.result : (result as DeviceBuffer);
    values.set(k.root, out);
    k.extraOutputs?.forEach((id, j) => values.set(id, mapped![j]));
    if (options.checkNaN) {
      const data = read(out, k.shape);
      const bad = data.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new NonFiniteError(k, bad, data[bad]);
    }
  };

  const outputsOf = (values: Map<number, DeviceBuffer>) => {
    for (const id of transient) release(values.get(id)!);
    for (const b of held) if (isDeleted(b)) held.delete(b);
    for (const o of g.outputs) if (produced.has(o.id) && isTexture(values.get(o.id))) held.add(values.get(o.id)!);
    return Object.fromEntries(g.outputs.map((o) => [o.name, values.get(o.id)!]));
  };

  const outputShapes = new Map(g.outputs.map((o) => [o.name, g.nodes[o.id].shape]));
  const readInto = (name: string, b: DeviceBuffer) => read(b, outputShapes.get(name)!);

  const runDevice: Executable['runDevice'] = (given, runOptions) => {
    live('run');
    if (backend === 'gpujs-webgpu') throw new Error('run: webgpu kernels run only asynchronously; use runAsync or runDeviceAsync');
    checkInto(runOptions?.into, outputShapes);
    const values = bindInputs(given);
    kernels.forEach((k, i) => {
      const args = k.source.args.map((id) => values.get(id)!);
      const start = options.profile ? performance.now() : 0;
      const out = guard(k, backend, () => runners[i].run(args));
      if (options.profile) profile[i] += performance.now() - start;
      watch.check(k, runners[i]);
      afterKernel(k, out, values);
    });
    return deliverInto(outputsOf(values), runOptions?.into, readInto, release);
  };

  // webasm: separate kernels in gpu.js's async mode (worker threads); webgpu: the plan's own, which are always async
  // (each call queues its pass and resolves at once, after the first, which builds the pipeline)
  const runDeviceAsync: Executable['runDeviceAsync'] = async (given, runOptions) => {
    if (backend !== 'webasm' && backend !== 'gpujs-webgpu') return runDevice(given, runOptions);
    live('run');
    checkInto(runOptions?.into, outputShapes);
    const async =
      backend === 'gpujs-webgpu'
        ? runners
        : (asyncRunners ??= kernels.map((k) => device.compileKernel(k.source, kernelOptions(k, false, '', true))));
    const values = bindInputs(given);
    for (const k of kernels) {
      const args = k.source.args.map((id) => values.get(id)!);
      const start = options.profile ? performance.now() : 0;
      let out: KernelOutput;
      try {
        out = await async[k.index].runAsync(args);
      } catch (e) {
        throw new BackendError(k, backend, e);
      }
      if (options.profile) profile[k.index] += performance.now() - start;
      watch.check(k, async[k.index]);
      afterKernel(k, out, values);
    }
    const out = outputsOf(values);
    const host = new Map<string, Float32Array>();
    for (const name of Object.keys(runOptions?.into ?? {})) host.set(name, await readAsync(out[name], outputShapes.get(name)!));
    return deliverInto(out, runOptions?.into, (name) => host.get(name)!, release);
  };

  return {
    backend,
    device,
    get backendReason() {
      return watch.describe(reason);
    },
    get fallbacks() {
      return watch.found;
    },
    program,
    kernels,
    memory: planMemory(program),
    inputs,
    profile,
    runDevice,
    runDeviceAsync,
    read,
    readAsync,
    runAsync: async (given, only) => {
      const out = await runDeviceAsync(given);
      const result: Record<string, NDArray> = {};
      for (const o of g.outputs.filter((o) => !only || only.includes(o.name))) {
        const shape = g.nodes[o.id].shape;
        result[o.name] = { shape, data: Float64Array.from(await readAsync(out[o.name], shape)) };
      }
      for (const b of new Set(Object.values(out))) release(b);
      return result;
    },
    run: (given, only) => {
      const out = runDevice(given);
      const result = Object.fromEntries(
        g.outputs
          .filter((o) => !only || only.includes(o.name))
          .map((o) => {
            const shape = g.nodes[o.id].shape;
            return [o.name, { shape, data: Float64Array.from(read(out[o.name], shape)) }];
          }),
      );
      for (const b of new Set(Object.values(out))) release(b);
      return result;
    },
    heldBuffers: () => {
      for (const b of held) if (isDeleted(b)) held.delete(b);
      return held.size;
    },
    get disposed() {
      return disposed;
    },
    dispose: () => {
      if (disposed) return;
      disposed = true;
      // textures first: deleting one asks the kernel that made it, which must still have its context
      for (const b of held) release(b);
      held.clear();
      for (const r of [...runners, ...(asyncRunners ?? [])]) device.releaseKernel(r);
    },
  };
};
