// `fusediff inspect <example | module>`: the compiled plan of an example step, or of a step module of the user's
// (docs/your-step.md): each kernel's fused primitives, output, inputs and generated source, with totals against the
// unfused baseline. With --profile: the step is compiled with `profile: true`, run for a few warm steps, and each
// kernel's share of the step's time is printed. The work is train/inspectStep.ts's; this file holds the examples.
import type { Graph } from '../core/ir.ts';
import type { BackendRequest } from '../compiler/index.ts';
import { compile } from '../compiler/index.ts';
import { compileStep, type TrainStep } from '../train/compileStep.ts';
import {
  formatStepPlan,
  formatStepProfile,
  inspectStep,
  type StepFactory,
  type StepInputs,
  type StepReport,
  type StepSpec,
} from '../train/inspectStep.ts';
import { isModulePath, loadStepModule } from './stepModule.ts';
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

// inspect shows and profiles one plan on the backend asked for: under auto that is the untimed choice (no timing:
// the profile is the measurement, and --backend webgpu inspects the WGSL plan on any adapter)
/** A built-in example: a step factory, as a user's module exports one. */
type Example = { describe: string; build: StepFactory };

/** A training step on fixed data. */
const stepOf = (t: TrainStep, inputs: StepInputs): StepSpec => ({ step: t, inputs });

const convParams = { conv: nn.conv2d.init(1, 1, 8, 3), norm: nn.groupNorm.init(2, 8), head: nn.conv2d.init(3, 8, 1, 1) };

export const examples: Record<string, Example> = {
  mlp: {
    describe: 'the reference MLP denoiser training step (batch 512, 66-256-256-256-2, SiLU, MSE on eps, Adam)',
    build: ({ backend, fusion, profile }) => stepOf(compileReferenceStep(backend, fusion, profile), { x0: eightGaussians() }),
  },
  softmax: {
    describe: 'softmax cross-entropy of a linear layer with its gradient (batch 64, 32 -> 10)',
    build: ({ backend, fusion, profile }) => {
      const g: Graph = trace(({ x, w, y }) => c.crossEntropy(op.matmul(x, w), y), { x: [64, 32], w: [32, 10], y: [64] });
      const exe = compile(g, { backend, fusion, profile });
      const inputs = {
        x: initNormal([64, 32], 1, 1),
        w: initNormal([32, 10], 0.1, 2),
        y: Float32Array.from({ length: 64 }, (_, i) => i % 10),
      };
      return { step: exe, inputs };
    },
  },
  conv: {
    describe: 'a conv -> groupNorm -> SiLU -> 1x1 conv step with Adam (batch 8, 1x16x16)',
    build: ({ backend, fusion, profile }) =>
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
    build: ({ backend, fusion, profile }) => {
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

/** What `fusediff inspect` reports: the plan (and profile) of an example or of a module, by its name or path. */
export interface InspectReport extends StepReport {
  example: string;
}

export interface InspectOptions {
  /** profile this many steps after `warmup` (default 3) warm-up steps */
  profile?: { steps: number; warmup?: number };
}

/** An example's name, or else the path of a step module (relative to the working directory). */
export const inspect = async (name: string, backend: BackendRequest, opts: InspectOptions = {}): Promise<InspectReport> => {
  const ex = examples[name];
  if (!ex && !isModulePath(name))
    throw new Error(`inspect: unknown example '${name}'; examples: ${Object.keys(examples).join(', ')}, or the path of a step module`);
  const { source, where } = ex
    ? { source: ex.build, where: `inspect ${name}` }
    : await loadStepModule(name, backend).then((m) => ({ source: m.source, where: m.path }));
  const r = await inspectStep(source, { backend, profile: opts.profile, where });
  return { example: name, ...(ex ? { describe: ex.describe } : {}), ...r };
};

/** The CLI's inspect output: the title, the plan (the kernel listing left out under --profile unless --source), the profile. */
export const printInspect = (r: InspectReport, showSource: boolean, top = 15): void => {
  console.log(r.describe !== undefined ? `${r.example}: ${r.describe}` : r.example);
  console.log(formatStepPlan(r, { source: showSource, listing: !r.profile }));
  if (r.profile) console.log(`\n${formatStepProfile(r.profile, { top })}`);
};
