// compilePlanAuto: compile() for a plan that is run many times without state of its own (a sampler's denoising step,
// a classifier's forward pass), where `auto` on a hardware WebGPU adapter times one run of the plan on webgpu and on
// wasm and keeps the faster (train/autoChoice.ts: the same chooser and cache as the training step's).
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { size } from '../core/shape.ts';
import { compile, release, type BackendRequest, type Executable } from '../compiler/index.ts';
import { decideAuto, planKey, withBackendReason, type AdapterFacts, type ChoiceCache, type TimedBackend } from './autoChoice.ts';

type PlanInputs = Readonly<Record<string, NDArray | ArrayLike<number>>>;

/** How compilePlanAuto decides `auto`; every field has a default (tests inject the adapter, the timer, the cache). */
export interface PlanAutoOptions {
  /** the WebGPU adapter (default: the device prepareWebGPU() acquired); null: none */
  adapter?: AdapterFacts | null;
  /** where choices are kept (default: one in memory for the process, shared with compileStepAuto) */
  cache?: ChoiceCache;
  /** ms per run of a candidate (default: timePlan on `inputs`, `runs` runs after a warm-up) */
  time?: (backend: TimedBackend, plan: Executable) => Promise<number>;
  /** runs timed per candidate (default 3) */
  runs?: number;
  /** the inputs the runs are timed on (default: zeros of the plan's input shapes); missing ones are zeros */
  inputs?: PlanInputs;
  /** told the reason once the choice is made (e.g. a line on stderr) */
  log?: (reason: string) => void;
}

/** Zeros for every input of `exe` that `given` lacks, as float32 (what a compiled plan reads). */
const inputsFor = (exe: Executable, given: PlanInputs = {}): PlanInputs => {
  const all: Record<string, NDArray | ArrayLike<number>> = { ...given };
  for (const [name, shape] of exe.inputs) all[name] ??= new Float32Array(size(shape));
  return all;
};

/** One run to the host: runDeviceAsync, every output read back (the read waits for a GPU's queue), buffers freed. */
const runOnce = async (exe: Executable, inputs: PlanInputs): Promise<void> => {
  const out = await exe.runDeviceAsync(inputs);
  for (const o of exe.program.graph.outputs) await exe.readAsync(out[o.name], exe.program.graph.nodes[o.id].shape);
  for (const b of new Set(Object.values(out))) release(b);
};

/** Milliseconds per run of a stateless plan over `runs` runs after one warm-up (a run changes nothing in the plan). */
export const timePlan = async (exe: Executable, inputs: PlanInputs = {}, runs = 3): Promise<number> => {
  const all = inputsFor(exe, inputs);
  await runOnce(exe, all);
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await runOnce(exe, all);
  return (performance.now() - t0) / runs;
};

/**
 * compile(graph, { backend: request }), where `request` 'auto' on a hardware WebGPU adapter compiles the plan on
 * webgpu and on wasm, times a few runs of each, keeps the faster and disposes the other; the choice is cached per plan
 * graph and adapter (the cache the training step uses), and `backendReason` says which and why. A software adapter is
 * never timed: auto's untimed choice stands. Only for plans without feedback state (a run must change nothing).
 */
export const compilePlanAuto = async (graph: Graph, request: BackendRequest = 'auto', auto: PlanAutoOptions = {}): Promise<Executable> => {
  const chosen = await choosePlan(graph, request, auto);
  if (request === 'auto') auto.log?.(chosen.backendReason);
  return chosen;
};

const choosePlan = async (graph: Graph, request: BackendRequest, auto: PlanAutoOptions): Promise<Executable> =>
  request !== 'auto'
    ? compile(graph, { backend: request })
    : decideAuto(() => planKey(graph), auto, {
        compile: (backend) => compile(graph, { backend }),
        time: (backend, exe) => (auto.time ? auto.time(backend, exe) : timePlan(exe, auto.inputs, auto.runs ?? 3)),
        dispose: (exe) => exe.dispose(),
        relabel: withBackendReason,
      });
