// An Executable on a plan backend (wasm): the whole fused program is one module over one memory. A run copies the
// given inputs into their places, runs the kernels in order (large ones split over the backend's threads) and
// returns copies of the outputs, so a result stays valid whatever runs next: fresh arrays, or the caller's own
// (`into`), written only by the run they are given to. Feedback outputs (a training step's
// new parameters) are the exception: they stay in the memory until adoptFeedback() copies them into their inputs'
// places, so state never leaves the module between steps.
import type { NDArray } from '../../core/ndarray.ts';
import { sameShape, size, type Shape } from '../../core/shape.ts';
import type { DeviceBuffer, PlanBackend } from '../backend.ts';
import { BackendError, NonFiniteError } from '../errors.ts';
import type { Executable } from '../plan.ts';
import type { CompiledKernel } from '../kernel.ts';
import type { KernelIR } from '../kernel/ir.ts';
import { describeTiling } from './emitKernel.ts';
import { planMemory } from '../memoryPlan.ts';
import { hostInput } from '../inputs.ts';
import { checkInto, type Into } from '../into.ts';
import type { FusedProgram } from '../passes/fuse.ts';

type Given = Readonly<Record<string, DeviceBuffer | NDArray | ArrayLike<number>>>;

export interface PlanCompileOptions {
  readonly checkNaN?: boolean;
  readonly profile?: boolean;
  /** output name -> input name it becomes in the next run */
  readonly feedback?: Readonly<Record<string, string>>;
}

export const compileOnPlanBackend = (
  device: PlanBackend,
  reason: string,
  program: FusedProgram,
  lowered: readonly CompiledKernel[],
  irs: readonly KernelIR[],
  options: PlanCompileOptions,
): Executable => {
  const g = program.graph;
  let plan;
  try {
    plan = device.compilePlan(program, irs);
  } catch (e) {
    throw new BackendError(lowered[0], device.name, e);
  }
  const compiled = plan;
  // inspect shows each kernel's register tile and packing under its loops
  const kernels = lowered.map((k, i) => ({
    ...k,
    source: { ...k.source, source: `${k.source.source}\n// wasm: ${describeTiling(compiled.tilings[i], compiled.fma)}` },
  }));
  const inputs = new Map(g.nodes.flatMap((n) => (n.op === 'input' ? [[n.attrs.name, n.shape] as const] : [])));
  const inputNodes = g.nodes.filter((n) => n.op === 'input');
  const profile = new Float64Array(kernels.length);
  let disposed = false;
  const outputId = new Map(g.outputs.map((o) => [o.name, o.id]));
  const inputId = new Map(inputNodes.map((n) => [n.op === 'input' ? n.attrs.name : '', n.id]));
  const feedback = Object.entries(options.feedback ?? {}).map(([out, inp]) => {
    const from = outputId.get(out);
    const to = inputId.get(inp);
    if (from === undefined || to === undefined || !sameShape(g.nodes[from].shape, g.nodes[to].shape))
      throw new Error(`compile: feedback '${out}' -> '${inp}' needs an output and an input of one shape`);
    return { from, to };
  });
  const fedBack = new Set(Object.keys(options.feedback ?? {}));
  const returned = g.outputs.filter((o) => !fedBack.has(o.name));
  const outputShapes = new Map(returned.map((o) => [o.name, g.nodes[o.id].shape]));
  const resident = new Set(Object.values(options.feedback ?? {}));

  const live = (what: string) => {
    if (disposed) throw new Error(`${what}: this plan was disposed (its module and memory are freed); compile the graph again`);
    if (device.disposed) throw new Error(`${what}: backend wasm was disposed after this plan was compiled; compile the graph again`);
  };

  const bind = (given: Given) => {
    for (const n of inputNodes) {
      const data = hostInput(n, given, resident, inputs, 'wasm');
      if (data) compiled.view(n.id).set(data);
    }
  };

  /** binds the inputs and runs every kernel; the outputs are then in the plan's memory */
  const execute = (given: Given) => {
    live('run');
    bind(given);
    if (!options.profile && !options.checkNaN) {
      // the usual run: a wave of independent kernels at a time, the threads meeting once per wave
      try {
        compiled.runAll();
      } catch (e) {
        throw new BackendError(kernels[0], device.name, e);
      }
      return;
    }
    kernels.forEach((k, i) => {
      const start = options.profile ? performance.now() : 0;
      try {
        compiled.runKernel(i);
      } catch (e) {
        throw new BackendError(k, device.name, e);
      }
      if (options.profile) profile[i] += performance.now() - start;
      if (options.checkNaN) {
        const data = compiled.view(k.root);
        const bad = data.findIndex((x) => !Number.isFinite(x));
        if (bad >= 0) throw new NonFiniteError(k, bad, data[bad]);
      }
    });
  };
  // set into an existing array is a plain copy; slice allocates fresh pages on every run, which costs several times more
  const outputsOf = (into: Into | undefined) =>
    Object.fromEntries(
      returned.map((o) => {
        const mine = into?.[o.name];
        return [o.name, mine ? (mine.set(compiled.view(o.id)), mine) : compiled.view(o.id).slice()];
      }),
    );
  const runDevice: Executable['runDevice'] = (given, runOptions) => {
    const into = runOptions?.into;
    checkInto(into, outputShapes, fedBack);
    execute(given);
    return outputsOf(into);
  };

  /** run, runAsync: float64 host arrays (from a float32 copy: V8 converts out of a shared memory slowly) */
  const hostRun = (given: Given, only?: readonly string[]) => {
    execute(given);
    return Object.fromEntries(
      returned
        .filter((o) => !only || only.includes(o.name))
        .map((o) => [o.name, { shape: g.nodes[o.id].shape, data: Float64Array.from(compiled.view(o.id).slice()) }]),
    );
  };

  return {
    backend: device.name,
    device,
    backendReason:
      `${reason} (${device.threads} thread${device.threads === 1 ? '' : 's'}` +
      `${compiled.threads < device.threads ? `, ${compiled.threads} used: no worker threads here` : ''}` +
      `, ${compiled.fma ? 'fused multiply-add' : 'multiply then add'}: ${compiled.fmaReason})`,
    fallbacks: [],
    program,
    kernels,
    memory: planMemory(program),
    inputs,
    profile,
    runDevice,
    runDeviceAsync: async (given, runOptions) => runDevice(given, runOptions),
    read: (buffer: DeviceBuffer, shape: Shape) => {
      live('read');
      return device.read(buffer, size(shape));
    },
    readAsync: async (buffer: DeviceBuffer, shape: Shape) => {
      live('read');
      return device.read(buffer, size(shape));
    },
    run: hostRun,
    runAsync: async (given, only) => hostRun(given, only),
    adoptFeedback: () => {
      live('adoptFeedback');
      for (const { from, to } of feedback) compiled.copy(to, from);
    },
    readInput: (name) => {
      live('readInput');
      const id = inputId.get(name);
      if (id === undefined) throw new Error(`readInput: no input '${name}'; inputs: ${[...inputs.keys()].join(', ')}`);
      return compiled.view(id).slice();
    },
    splitKernelCalls: () => compiled.splitCalls(),
    heldBuffers: () => 0,
    get disposed() {
      return disposed;
    },
    dispose: () => {
      if (disposed) return;
      disposed = true;
      device.releasePlan(compiled);
    },
  };
};
