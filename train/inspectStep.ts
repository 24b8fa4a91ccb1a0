// Your own step, inspected and benchmarked: the compiled plan of a training step or executable as data (kernels,
// their sources, the memory plan), a per-kernel profile over N runs, a tinybench benchmark, and the printers of the
// tables `fusediff inspect` and `fusediff bench` print. The CLI's built-in examples go through the same functions
// (cli/inspect.ts), and so does a module of the user's (a StepSource; docs/your-step.md describes its shape).
import type { NDArray } from '../core/ndarray.ts';
import { isGL, type BackendRequest, type Executable, type FusionMode } from '../compiler/index.ts';
import type { TrainStep } from './compileStep.ts';

/** The inputs of one run: a training step's data, or every input of an executable. */
export type StepInputs = Readonly<Record<string, NDArray | ArrayLike<number>>>;

/** A compiled step with inputs to run it on. */
export interface StepSpec {
  /** a compileStep result, or a compiled executable (run with `runAsync`, every output read back) */
  readonly step: TrainStep | Executable;
  readonly inputs: StepInputs;
  /** samples per step: the benchmark reports samples/s with it */
  readonly batchSize?: number;
  /** the step's name in the tables (default: the module's file name) */
  readonly name?: string;
  /** one line about the step, printed above the plan */
  readonly describe?: string;
}

/**
 * What the CLI (or inspectStep) passes to a step factory: spread it into compileStep's or compile's options, so that
 * `--backend`, `--profile` and the unfused kernel count apply to your step.
 */
export interface StepContext {
  readonly backend: BackendRequest;
  readonly fusion: FusionMode;
  readonly profile: boolean;
}

/** Builds a step for a context; may be async. */
export type StepFactory = (ctx: StepContext) => StepSpec | Promise<StepSpec>;

/** What a step module exports: a StepSpec, or (better) a StepFactory. */
export type StepSource = StepSpec | StepFactory;

/** Types a step module's export: `export default defineStep((ctx) => ({ step, inputs, batchSize }))`. */
export const defineStep = <S extends StepSource>(source: S): S => source;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isExecutable = (v: unknown): v is Executable =>
  isObject(v) && Array.isArray(v.kernels) && isObject(v.program) && isObject(v.memory) && typeof v.runAsync === 'function';
const isTrainStep = (v: unknown): v is TrainStep => isObject(v) && isExecutable(v.executable) && typeof v.runAsync === 'function';

/** The executable of a step. */
export const executableOf = (step: TrainStep | Executable): Executable => ('executable' in step ? step.executable : step);

/** Checks that `v` is a StepSpec; `where` names it in the error. */
export const checkStepSpec = (v: unknown, where: string): StepSpec => {
  if (!isObject(v)) throw new Error(`${where}: expected { step, inputs, batchSize? }, got ${v === null ? 'null' : typeof v}`);
  if (!isTrainStep(v.step) && !isExecutable(v.step))
    throw new Error(`${where}: 'step' must be a compiled step (compileStep) or executable (compile), got ${describeValue(v.step)}`);
  if (!isObject(v.inputs)) throw new Error(`${where}: 'inputs' must be an object of input name -> values, got ${describeValue(v.inputs)}`);
  if (v.batchSize !== undefined && !(typeof v.batchSize === 'number' && v.batchSize > 0 && Number.isFinite(v.batchSize)))
    throw new Error(`${where}: 'batchSize' must be a positive number, got ${String(v.batchSize)}`);
  for (const k of ['name', 'describe'] as const)
    if (v[k] !== undefined && typeof v[k] !== 'string') throw new Error(`${where}: '${k}' must be a string, got ${describeValue(v[k])}`);
  return v as unknown as StepSpec;
};

const describeValue = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

/**
 * The step source of an imported module: its default export, else its named export `step` when that is a factory,
 * else the module itself as a StepSpec (named exports `step`, `inputs`, `batchSize`). A CommonJS module's exports
 * (as a .ts file outside an ESM package loads) are unwrapped first.
 */
export const stepSourceOf = (module: Readonly<Record<string, unknown>>, where: string): StepSource => {
  const ns = isObject(module.default) && module.default.__esModule === true ? module.default : module;
  const source = ns.default ?? (typeof ns.step === 'function' ? ns.step : ns);
  if (typeof source === 'function') return source as StepFactory;
  if (source === ns && !('step' in ns))
    throw new Error(
      `${where}: exports neither a default step (a function of { backend, fusion, profile } or { step, inputs }) ` +
        `nor named exports step and inputs; see docs/your-step.md`,
    );
  return checkStepSpec(source, where);
};

/** The spec of a source: a factory is called with the context (defaults: backend auto, fused, no profiling). */
export const buildStep = async (source: StepSource, ctx: Partial<StepContext> = {}, where = 'buildStep'): Promise<StepSpec> => {
  if (typeof source !== 'function') return checkStepSpec(source, where);
  const full: StepContext = { backend: ctx.backend ?? 'auto', fusion: ctx.fusion ?? 'fused', profile: ctx.profile ?? false };
  return checkStepSpec(await source(full), `${where} (the function's result)`);
};

/** Frees what a spec holds (its compiled plan, a training step's device state). */
export const disposeStep = (spec: StepSpec): void => spec.step.dispose();

// ---- (a) the plan ------------------------------------------------------------------------------------------------

/** One kernel of a `StepPlan`: its output shape, the primitives fused into it, what it reads and its source. */
export interface KernelPlan {
  index: number;
  name: string;
  /** the output's shape */
  shape: readonly number[];
  /** the primitives fused into the kernel, in order */
  fused: readonly string[];
  /** what it reads: input names, `const[shape]`, or the names of the kernels that wrote them */
  inputs: string[];
  /** the generated source (on wasm and webgpu: a listing of the kernel's IR) */
  source: string;
}

/** A compiled step as data (`stepPlan`): its backend, kernel and primitive counts, memory plan and kernel list. */
export interface StepPlan {
  backend: string;
  /** why this backend (requested, or auto's choice), and any kernels gpu.js moved to its CPU path */
  backendReason: string;
  /** how many kernels */
  kernels: number;
  /** primitives of the compiled graph (inputs and constants aside) */
  primitives: number;
  /** kernels of the same step compiled with `fusion: 'unfused'` (known when the step came from a factory) */
  unfusedKernels?: number;
  /** distinct buffers the memory plan allocates */
  buffers: number;
  /** bytes the memory plan allocates, with reuse (f32) */
  bytes: number;
  /** bytes for one buffer per graph node (f32): the baseline of `bytes` */
  naiveBytes: number;
  /** every kernel, in execution order */
  kernelList: KernelPlan[];
}

/** The compiled plan of a step as data: kernels, their inputs and sources, the memory plan. */
export const stepPlan = (step: TrainStep | Executable, options: { unfused?: TrainStep | Executable } = {}): StepPlan => {
  const exe = executableOf(step);
  const g = exe.program.graph;
  const label = (id: number) => {
    const n = g.nodes[id];
    if (n.op === 'input') return n.attrs.name;
    if (n.op === 'constant') return `const[${n.shape}]`;
    return exe.kernels.find((k) => k.root === id)?.name ?? `%${id}`;
  };
  return {
    backend: exe.backend,
    backendReason: exe.backendReason,
    kernels: exe.kernels.length,
    primitives: g.nodes.filter((n) => n.op !== 'input' && n.op !== 'constant').length,
    ...(options.unfused ? { unfusedKernels: executableOf(options.unfused).kernels.length } : {}),
    buffers: exe.memory.buffers,
    bytes: exe.memory.plannedBytes,
    naiveBytes: exe.memory.naiveBytes,
    kernelList: exe.kernels.map((k) => ({
      index: k.index,
      name: k.name,
      shape: k.shape,
      fused: k.fusedOps,
      inputs: k.source.args.map(label),
      source: k.source.source,
    })),
  };
};

// ---- (b) the profile ---------------------------------------------------------------------------------------------

/** One kernel's time in a `StepProfile`: mean milliseconds per step and its share of the kernels' total. */
export interface KernelProfile {
  index: number;
  name: string;
  shape: readonly number[];
  fused: readonly string[];
  /** mean milliseconds per step */
  ms: number;
  /** percent of the summed kernel time of a step (the shares sum to 100) */
  share: number;
}

/** A step's per-kernel profile (`profileStep`): time per step, summed kernel time and every kernel's share. */
export interface StepProfile {
  backend: string;
  warmup: number;
  /** the runs measured (after `warmup`) */
  steps: number;
  /** wall-clock milliseconds per step (mean over `steps`) */
  stepMs: number;
  /** the kernels' summed milliseconds per step: the total the shares are of */
  kernelMs: number;
  /** GL backends queue kernels, so a kernel's time is that of its submission (and of whatever waits in it) */
  note?: string;
  /** every kernel, the most expensive first */
  kernels: KernelProfile[];
}

/** Options of `profileStep`: how many runs to measure and how many to run first. */
export interface ProfileStepOptions {
  /** runs to measure (default 10) */
  steps?: number;
  /** runs before, not measured (default 3) */
  warmup?: number;
}

/** One run of a spec, awaited until its results are computed (a training step's loss, an executable's outputs). */
const runOnce = async ({ step, inputs }: StepSpec): Promise<void> => void (await step.runAsync(inputs));

/**
 * Runs the step `warmup` times, clears its per-kernel times, runs it `steps` more times and returns each kernel's
 * mean time and share. The step must have been compiled with `profile: true` (a factory receives it in its context).
 * A training step trains meanwhile: its parameters change.
 */
export const profileStep = async (spec: StepSpec, options: ProfileStepOptions = {}): Promise<StepProfile> => {
  const { steps = 10, warmup = 3 } = options;
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`profileStep: steps must be a positive integer, got ${steps}`);
  if (!(Number.isInteger(warmup) && warmup >= 0)) throw new Error(`profileStep: warmup must be a non-negative integer, got ${warmup}`);
  const exe = executableOf(spec.step);
  for (let i = 0; i < warmup; i++) await runOnce(spec);
  exe.profile.fill(0);
  const start = performance.now();
  for (let i = 0; i < steps; i++) await runOnce(spec);
  const stepMs = (performance.now() - start) / steps;
  const total = exe.profile.reduce((a, b) => a + b, 0);
  if (exe.kernels.length > 0 && total === 0)
    throw new Error(
      'profileStep: no kernel time was recorded: the step was compiled without `profile: true` ' +
        '(compileStep / compile option); compile it with profile: true, or export a function of { backend, fusion, profile } ' +
        'that passes them on (docs/your-step.md)',
    );
  const kernelMs = total / steps;
  const kernels = exe.kernels
    .map((k) => ({
      index: k.index,
      name: k.name,
      shape: k.shape,
      fused: k.fusedOps,
      ms: exe.profile[k.index] / steps,
      share: kernelMs > 0 ? (100 * exe.profile[k.index]) / steps / kernelMs : 0,
    }))
    .sort((a, b) => b.ms - a.ms);
  const note = isGL(exe.backend)
    ? `${exe.backend} queues kernels: each time is its submission plus whatever waited for the GPU in it; only the step total is exact`
    : undefined;
  return { backend: exe.backend, warmup, steps, stepMs, kernelMs, ...(note ? { note } : {}), kernels };
};

// ---- (c) the benchmark -------------------------------------------------------------------------------------------

/** tinybench's statistics of one task, in milliseconds per run. */
export interface TimingStats {
  /** runs measured (tinybench's samples) */
  runs: number;
  /** the measured runs' summed milliseconds */
  totalMs: number;
  meanMs: number;
  p50Ms: number;
  p75Ms: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
  /** standard deviation */
  sdMs: number;
  /** relative margin of error of the mean, in percent (half-width of its 95% confidence interval) */
  rmePercent: number;
  /** every run's milliseconds, sorted (with `latencies: true`) */
  latencies?: number[];
}

/** Options of `timeRuns`: the time budget, the fewest runs and the warm-up. */
export interface TimingOptions {
  /** the time budget in milliseconds: runs continue until it and `iterations` are both reached */
  time: number;
  /** the fewest runs */
  iterations: number;
  /** runs before, not measured */
  warmup: number;
  /** the task's name in tinybench's errors */
  name?: string;
  /** keep every run's milliseconds in `latencies` (default false: a fast step runs thousands of times) */
  latencies?: boolean;
}

/** Times `fn` with tinybench (loaded on first use). Every benchmark of this repository times with it. */
export const timeRuns = async (
  fn: () => Promise<void> | void,
  { time, iterations, warmup, name = 'step', latencies = false }: TimingOptions,
): Promise<TimingStats> => {
  const { Bench } = await import('tinybench');
  const bench = new Bench({ time, iterations, warmupTime: 0, warmupIterations: warmup, retainSamples: latencies });
  bench.add(name, async () => void (await fn()));
  await bench.run();
  const r = bench.tasks[0].result;
  if (r.state !== 'completed') throw new Error(`${name}: ${r.state} ${r.state === 'errored' ? String(r.error) : ''}`.trimEnd());
  const l = r.latency;
  const stats: TimingStats = {
    runs: l.samplesCount,
    totalMs: r.totalTime,
    meanMs: l.mean,
    p50Ms: l.p50,
    p75Ms: l.p75,
    p99Ms: l.p99,
    minMs: l.min,
    maxMs: l.max,
    sdMs: l.sd,
    rmePercent: l.rme,
    ...(latencies ? { latencies: [...(l.samples ?? [])] } : {}),
  };
  return stats;
};

/** A step's benchmark (`benchStep`): tinybench's statistics in milliseconds, steps/s and, with a batch size, samples/s. */
export interface StepBench extends TimingStats {
  name: string;
  backend: string;
  kernels: number;
  warmup: number;
  /** the time budget tinybench was given, in milliseconds */
  timeMs: number;
  /** 1000 / meanMs */
  stepsPerSec: number;
  batchSize?: number;
  /** batchSize * stepsPerSec */
  samplesPerSec?: number;
}

/** Options of `benchStep`: the time budget, run counts, batch size and name (`fusediff bench`'s flags). */
export interface BenchStepOptions {
  /** shorter: 500 ms, at least 2 runs after 1 warm-up run (what `bench --quick` runs); the fields below override it */
  quick?: boolean;
  /** time budget in milliseconds (default 2000) */
  time?: number;
  /** the fewest runs (default 10) */
  iterations?: number;
  /** warm-up runs, not measured (default 3) */
  warmup?: number;
  /** samples per step (default the spec's batchSize) */
  batchSize?: number;
  /** the name in the table (default the spec's name, else 'step') */
  name?: string;
  /** keep every run's milliseconds in `latencies` */
  latencies?: boolean;
}

/** Benchmarks a step with tinybench: latency statistics per run, steps/s and, given a batch size, samples/s. */
export const benchStep = async (spec: StepSpec, options: BenchStepOptions = {}): Promise<StepBench> => {
  const quick = options.quick ?? false;
  const time = options.time ?? (quick ? 500 : 2000);
  const iterations = options.iterations ?? (quick ? 2 : 10);
  const warmup = options.warmup ?? (quick ? 1 : 3);
  const batchSize = options.batchSize ?? spec.batchSize;
  if (batchSize !== undefined && !(batchSize > 0)) throw new Error(`benchStep: batchSize must be positive, got ${batchSize}`);
  const name = options.name ?? spec.name ?? 'step';
  const stats = await timeRuns(() => runOnce(spec), { time, iterations, warmup, name, latencies: options.latencies });
  const exe = executableOf(spec.step);
  const stepsPerSec = stats.meanMs > 0 ? 1000 / stats.meanMs : Infinity;
  return {
    name,
    backend: exe.backend,
    kernels: exe.kernels.length,
    warmup,
    timeMs: time,
    ...stats,
    stepsPerSec,
    ...(batchSize !== undefined ? { batchSize, samplesPerSec: batchSize * stepsPerSec } : {}),
  };
};

// ---- plan and profile of a source, as `fusediff inspect` reports them ------------------------------------------

/** What `inspectStep` (and `fusediff inspect`) reports: the plan, the step's description and, if asked, its profile. */
export interface StepReport extends StepPlan {
  describe?: string;
  profile?: StepProfile;
}

/** Options of `inspectStep`: the backend a factory compiles for and, optionally, a profile. */
export interface InspectStepOptions {
  /** the backend a factory compiles for (default 'auto') */
  backend?: BackendRequest;
  /** profile so many runs after warm-up ones (a factory is then called with `profile: true`) */
  profile?: ProfileStepOptions;
  /** name the source in errors */
  where?: string;
}

/**
 * The plan of a step source and, with `profile`, its per-kernel profile. A factory is also built unfused on the same
 * backend for the unfused kernel count, and the steps it built are disposed afterwards; a StepSpec is left as it is.
 */
export const inspectStep = async (source: StepSource, options: InspectStepOptions = {}): Promise<StepReport> => {
  const where = options.where ?? 'inspectStep';
  const spec = await buildStep(source, { backend: options.backend, fusion: 'fused', profile: options.profile !== undefined }, where);
  try {
    const profile = options.profile ? await profileStep(spec, options.profile) : undefined;
    const backend = executableOf(spec.step).backend;
    const unfused =
      typeof source === 'function' ? await buildStep(source, { backend, fusion: 'unfused', profile: false }, where) : undefined;
    const plan = stepPlan(spec.step, { unfused: unfused?.step });
    if (unfused) disposeStep(unfused);
    return { ...(spec.describe !== undefined ? { describe: spec.describe } : {}), ...plan, ...(profile ? { profile } : {}) };
  } finally {
    if (typeof source === 'function') disposeStep(spec);
  }
};

// ---- (d) the printers --------------------------------------------------------------------------------------------

/** The fused ops of a kernel, in one short column: the first few and how many more. */
const fusedSummary = (ops: readonly string[], max = 8): string =>
  `${ops.slice(0, max).join(' ')}${ops.length > max ? ` +${ops.length - max} more` : ''}`;

/** Options of `formatStepPlan`: whether to print the kernel listing and each kernel's source. */
export interface FormatPlanOptions {
  /** each kernel's generated source (default false) */
  source?: boolean;
  /** the kernel listing (default true; `inspect --profile` leaves it out unless the sources are asked for) */
  listing?: boolean;
}

/** The plan as `fusediff inspect` prints it: the backend, each kernel, the kernel totals and the memory plan. */
export const formatStepPlan = (plan: StepPlan, { source = false, listing = true }: FormatPlanOptions = {}): string => {
  const lines = [`backend: ${plan.backend} (${plan.backendReason})`];
  if (listing || source)
    for (const k of plan.kernelList) {
      lines.push(`\n${k.name}  out [${k.shape.join(',')}]  fuses ${k.fused.length}: ${k.fused.join(' ')}`);
      lines.push(`  reads: ${k.inputs.join(', ') || '(nothing)'}`);
      if (source) lines.push(k.source.replace(/^/gm, '  | '));
    }
  const unfused =
    plan.unfusedKernels !== undefined
      ? ` (unfused: ${plan.unfusedKernels} kernels, ${(plan.kernels / plan.unfusedKernels).toFixed(2)}x)`
      : '';
  lines.push(`\n${plan.kernels} kernels for ${plan.primitives} primitives${unfused}`);
  lines.push(
    `memory plan: ${plan.buffers} buffers, ${(plan.bytes / 1e6).toFixed(2)} MB with reuse ` +
      `vs ${(plan.naiveBytes / 1e6).toFixed(2)} MB for one buffer per node`,
  );
  return lines.join('\n');
};

/** The profile table: the `top` most expensive kernels (0: all), the rest as one row, and the total (100%). */
export const formatStepProfile = (p: StepProfile, { top = 15 }: { top?: number } = {}): string => {
  const lines = [
    `profile: ${p.steps} steps after ${p.warmup} warm-up steps on ${p.backend}: ${p.stepMs.toFixed(2)} ms per step (wall), ` +
      `${p.kernelMs.toFixed(2)} ms in kernels (${((100 * p.kernelMs) / p.stepMs).toFixed(1)}%)`,
  ];
  if (p.note) lines.push(`note: ${p.note}`);
  const shown = top > 0 ? p.kernels.slice(0, top) : p.kernels;
  const rest = p.kernels.slice(shown.length);
  const restLabel = `(${rest.length} more)`;
  const totalLabel = `total (${p.kernels.length} kernels)`;
  const nameW = Math.max(6, totalLabel.length, restLabel.length, ...shown.map((k) => k.name.length));
  const shapeW = Math.max(5, ...shown.map((k) => k.shape.join(',').length + 2));
  const row = (name: string, shape: string, ms: number, share: number, fused: string) =>
    lines.push(
      (
        `  ${name.padEnd(nameW)}  ${shape.padEnd(shapeW)}  ` +
        `${ms.toFixed(3).padStart(9)}  ${`${share.toFixed(1)}%`.padStart(6)}  ${fused}`
      ).trimEnd(),
    );
  lines.push(`  ${'kernel'.padEnd(nameW)}  ${'out'.padEnd(shapeW)}  ${'ms/step'.padStart(9)}  ${'share'.padStart(6)}  fuses`);
  for (const k of shown) row(k.name, `[${k.shape.join(',')}]`, k.ms, k.share, `${k.fused.length}: ${fusedSummary(k.fused)}`);
  const sum = (ks: readonly KernelProfile[], f: (k: KernelProfile) => number) => ks.reduce((a, k) => a + f(k), 0);
  if (rest.length > 0)
    row(
      restLabel,
      '',
      sum(rest, (k) => k.ms),
      sum(rest, (k) => k.share),
      '',
    );
  row(
    totalLabel,
    '',
    p.kernelMs,
    sum(p.kernels, (k) => k.share),
    '',
  );
  return lines.join('\n');
};

/** The benchmark table: latency statistics per step, then steps/s and samples/s. */
export const formatStepBench = (b: StepBench): string => {
  const ms = (x: number) => `${x.toFixed(3).padStart(10)} ms`;
  const rows: [string, string][] = [
    ['mean', `${ms(b.meanMs)}  ±${b.rmePercent.toFixed(1)}%`],
    ['p50', ms(b.p50Ms)],
    ['p75', ms(b.p75Ms)],
    ['p99', ms(b.p99Ms)],
    ['min', ms(b.minMs)],
    ['max', ms(b.maxMs)],
    ['sd', ms(b.sdMs)],
    ['steps/s', b.stepsPerSec.toFixed(2).padStart(10)],
  ];
  if (b.samplesPerSec !== undefined) rows.push(['samples/s', `${b.samplesPerSec.toFixed(1).padStart(10)}    (batch ${b.batchSize})`]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return [
    `bench: ${b.name} on ${b.backend} (${b.kernels} kernels): ${b.runs} runs in ${b.totalMs.toFixed(0)} ms ` +
      `after ${b.warmup} warm-up runs (tinybench, ${b.timeMs} ms budget)`,
    ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`),
  ].join('\n');
};
