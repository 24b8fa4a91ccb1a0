// `fusediff inspect <example>`: the compiled plan of an example step: each kernel's fused primitives, output,
// inputs and generated source, with totals against the unfused baseline. With --profile: the example is compiled
// with `profile: true`, run for a few warm steps, and each kernel's share of the step's time is printed.
import type { Graph } from '../core/ir.ts';
import type { BackendRequest } from '../compiler/index.ts';
import { compile, isGL, type Executable } from '../compiler/index.ts';
import { compileStep, type TrainStep } from '../train/compileStep.ts';
import { compileReferenceStep } from '../workloads/referenceStep.ts';
import { eightGaussians } from '../workloads/reference.ts';
import { initNormal } from '../dsl/params.ts';
import { createDenoiser } from '../models/index.ts';
import { cosineSchedule, rescaleZeroTerminalSnr } from '../models/schedule.ts';
import { mseObjective } from '../objectives/index.ts';
import * as c from '../dsl/composites.ts';
import * as nn from '../dsl/nn.ts';
import { adam } from '../dsl/optim.ts';
import * as op from '../dsl/ops.ts';
import type { Params, ParamTensors } from '../dsl/params.ts';
import { trace } from '../dsl/trace.ts';

type Fusion = 'fused' | 'unfused';
/** A compiled example and one step of it on fixed data (resolves when the step's results are computed). */
type Built = { exe: Executable; step: () => Promise<void> };
type Example = { describe: string; build: (backend: BackendRequest, fusion: Fusion, profile?: boolean) => Built };

/** A training step's Built: the step runs on fixed data. */
const stepOf = (t: TrainStep, data: Parameters<TrainStep['runAsync']>[0]): Built => ({
  exe: t.executable,
  step: async () => void (await t.runAsync(data)),
});

const convParams = { conv: nn.conv2d.init(1, 1, 8, 3), norm: nn.groupNorm.init(2, 8), head: nn.conv2d.init(3, 8, 1, 1) };

export const examples: Record<string, Example> = {
  mlp: {
    describe: 'the reference MLP denoiser training step (batch 512, 66-256-256-256-2, SiLU, MSE on eps, Adam)',
    build: (backend, fusion, profile) => stepOf(compileReferenceStep(backend, fusion, profile), { x0: eightGaussians() }),
  },
  softmax: {
    describe: 'softmax cross-entropy of a linear layer with its gradient (batch 64, 32 -> 10)',
    build: (backend, fusion, profile) => {
      const g: Graph = trace(({ x, w, y }) => c.crossEntropy(op.matmul(x, w), y), { x: [64, 32], w: [32, 10], y: [64] });
      const exe = compile(g, { backend, fusion, profile });
      const inputs = {
        x: initNormal([64, 32], 1, 1),
        w: initNormal([32, 10], 0.1, 2),
        y: Float32Array.from({ length: 64 }, (_, i) => i % 10),
      };
      return { exe, step: async () => void exe.run(inputs) };
    },
  },
  conv: {
    describe: 'a conv -> groupNorm -> SiLU -> 1x1 conv step with Adam (batch 8, 1x16x16)',
    build: (backend, fusion, profile) =>
      stepOf(
        compileStep(
          ({ params, x }) => {
            const p = params as unknown as ParamTensors<typeof convParams>;
            const h = c.silu(nn.groupNorm.apply(p.norm, nn.conv2d.apply(p.conv, x, { padding: 1 }), 4));
            return c.mse(nn.conv2d.apply(p.head, h), x);
          },
          { params: convParams as unknown as Params, optimizer: adam({ lr: 1e-3 }), data: { x: [8, 1, 16, 16] }, backend, fusion, profile },
        ),
        { x: initNormal([8, 1, 16, 16], 1, 3) },
      ),
  },
  unet: {
    describe: "the default UNet's MSE training step (v-prediction, class-conditional, batch 16, 1x16x16, Adam): the bench's UNet row",
    build: (backend, fusion, profile) => {
      const model = createDenoiser({ kind: 'unet', imageSize: 16, numClasses: 10 });
      const objective = mseObjective({ model, schedule: rescaleZeroTerminalSnr(cosineSchedule(1000)), prediction: 'v' });
      const t = compileStep(({ params, step, x0, c: cls }) => objective({ params, x0, c: cls, step }), {
        params: model.init(1),
        optimizer: adam({ lr: 1e-4 }),
        data: { x0: [16, ...model.dataShape], c: [16] },
        backend,
        fusion,
        profile,
      });
      return stepOf(t, {
        x0: initNormal([16, ...model.dataShape], 1, 5),
        c: { shape: [16], data: Float64Array.from({ length: 16 }, (_, i) => i % 10) },
      });
    },
  },
};

export interface KernelProfile {
  index: number;
  name: string;
  shape: readonly number[];
  fused: readonly string[];
  /** mean milliseconds per step */
  ms: number;
  /** percent of the summed kernel time of a step */
  share: number;
}

export interface ProfileReport {
  warmup: number;
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

export interface InspectReport {
  example: string;
  backend: string;
  backendReason: string;
  kernels: number;
  primitives: number;
  unfusedKernels: number;
  buffers: number;
  bytes: number;
  naiveBytes: number;
  kernelList: { index: number; name: string; shape: readonly number[]; fused: readonly string[]; inputs: string[]; source: string }[];
  profile?: ProfileReport;
}

const exampleOf = (name: string): Example => {
  const ex = examples[name];
  if (!ex) throw new Error(`inspect: unknown example '${name}'; examples: ${Object.keys(examples).join(', ')}`);
  return ex;
};

/** Runs `warmup` steps, clears the per-kernel times, runs `steps` more and returns each kernel's mean time and share. */
export const profileSteps = async ({ exe, step }: Built, steps: number, warmup: number): Promise<ProfileReport> => {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`inspect --profile: --steps must be a positive integer, got ${steps}`);
  for (let i = 0; i < warmup; i++) await step();
  exe.profile.fill(0);
  const start = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const stepMs = (performance.now() - start) / steps;
  const kernelMs = exe.profile.reduce((a, b) => a + b, 0) / steps;
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
  return { warmup, steps, stepMs, kernelMs, note, kernels };
};

export interface InspectOptions {
  /** profile this many steps after `warmup` (default 3) warm-up steps */
  profile?: { steps: number; warmup?: number };
}

export const inspect = async (name: string, backend: BackendRequest, opts: InspectOptions = {}): Promise<InspectReport> => {
  const ex = exampleOf(name);
  const built = ex.build(backend, 'fused', opts.profile !== undefined);
  const exe = built.exe;
  const profile = opts.profile ? await profileSteps(built, opts.profile.steps, opts.profile.warmup ?? 3) : undefined;
  const unfused = ex.build(exe.backend, 'unfused').exe;
  const g = exe.program.graph;
  const label = (id: number) => {
    const n = g.nodes[id];
    if (n.op === 'input') return n.attrs.name;
    if (n.op === 'constant') return `const[${n.shape}]`;
    return exe.kernels.find((k) => k.root === id)?.name ?? `%${id}`;
  };
  return {
    example: name,
    backend: exe.backend,
    backendReason: exe.backendReason,
    kernels: exe.kernels.length,
    primitives: g.nodes.filter((n) => n.op !== 'input' && n.op !== 'constant').length,
    unfusedKernels: unfused.kernels.length,
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
    profile,
  };
};

/** The fused ops of a kernel, in one short column: the first few and how many more. */
const fusedSummary = (ops: readonly string[], max = 8): string =>
  `${ops.slice(0, max).join(' ')}${ops.length > max ? ` +${ops.length - max} more` : ''}`;

/** The profile table: the `top` most expensive kernels, the rest as one row, and the total (the shares sum to 100%). */
export const printProfile = (r: InspectReport, top: number): void => {
  const p = r.profile;
  if (!p) return;
  console.log(
    `\nprofile: ${p.steps} steps after ${p.warmup} warm-up steps on ${r.backend}: ${p.stepMs.toFixed(2)} ms per step (wall), ` +
      `${p.kernelMs.toFixed(2)} ms in kernels (${((100 * p.kernelMs) / p.stepMs).toFixed(1)}%)`,
  );
  if (p.note) console.log(`note: ${p.note}`);
  const shown = top > 0 ? p.kernels.slice(0, top) : p.kernels;
  const rest = p.kernels.slice(shown.length);
  const restLabel = `(${rest.length} more)`;
  const totalLabel = `total (${p.kernels.length} kernels)`;
  const nameW = Math.max(6, totalLabel.length, restLabel.length, ...shown.map((k) => k.name.length));
  const shapeW = Math.max(5, ...shown.map((k) => k.shape.join(',').length + 2));
  const row = (name: string, shape: string, ms: number, share: number, fused: string) =>
    console.log(
      (
        `  ${name.padEnd(nameW)}  ${shape.padEnd(shapeW)}  ` +
        `${ms.toFixed(3).padStart(9)}  ${`${share.toFixed(1)}%`.padStart(6)}  ${fused}`
      ).trimEnd(),
    );
  console.log(`  ${'kernel'.padEnd(nameW)}  ${'out'.padEnd(shapeW)}  ${'ms/step'.padStart(9)}  ${'share'.padStart(6)}  fuses`);
  for (const k of shown) row(k.name, `[${k.shape.join(',')}]`, k.ms, k.share, `${k.fused.length}: ${fusedSummary(k.fused)}`);
  if (rest.length > 0)
    row(
      restLabel,
      '',
      rest.reduce((a, k) => a + k.ms, 0),
      rest.reduce((a, k) => a + k.share, 0),
      '',
    );
  row(
    totalLabel,
    '',
    p.kernelMs,
    p.kernels.reduce((a, k) => a + k.share, 0),
    '',
  );
};

export const printInspect = (r: InspectReport, showSource: boolean, top = 15): void => {
  console.log(`${r.example}: ${examples[r.example].describe}`);
  console.log(`backend: ${r.backend} (${r.backendReason})`);
  // with --profile the table below replaces the kernel listing (unless the sources are asked for)
  if (!r.profile || showSource)
    for (const k of r.kernelList) {
      console.log(`\n${k.name}  out [${k.shape.join(',')}]  fuses ${k.fused.length}: ${k.fused.join(' ')}`);
      console.log(`  reads: ${k.inputs.join(', ') || '(nothing)'}`);
      if (showSource) console.log(k.source.replace(/^/gm, '  | '));
    }
  printProfile(r, top);
  console.log(
    `\n${r.kernels} kernels for ${r.primitives} primitives ` +
      `(unfused: ${r.unfusedKernels} kernels, ${(r.kernels / r.unfusedKernels).toFixed(2)}x)`,
  );
  console.log(
    `memory plan: ${r.buffers} buffers, ${(r.bytes / 1e6).toFixed(2)} MB with reuse ` +
      `vs ${(r.naiveBytes / 1e6).toFixed(2)} MB for one buffer per node`,
  );
};
