// The cost of a self-perceptual training step relative to an MSE step on the same model, batch and backend.
// SP adds two forward passes of f*'s encoder half (to 'mid') and a backward through one of them.
import type { Backend, BackendName, CompileOptions } from '../../compiler/index.ts';
import { compileStep, type TrainStep } from '../../train/compileStep.ts';
import { adam } from '../../dsl/optim.ts';
import { initNormal } from '../../dsl/params.ts';
import type { NDArray } from '../../core/ndarray.ts';
import { createDenoiser, type DenoiserOptions } from '../../models/index.ts';
import { cosineSchedule, rescaleZeroTerminalSnr } from '../../models/schedule.ts';
import { mseObjective, selfPerceptualObjective, type Objective } from '../../objectives/index.ts';

export interface SpCostCase {
  readonly name: string;
  readonly model: DenoiserOptions;
  readonly batch: number;
}

export const spCostCases: readonly SpCostCase[] = [
  { name: 'Mlp', model: { kind: 'mlp', numClasses: 10 }, batch: 512 },
  { name: 'Unet', model: { kind: 'unet', imageSize: 16, numClasses: 10 }, batch: 16 },
];

/** The case's MSE step (or, with only: 'mse', just it: the SP step is not compiled), its SP step and its batch. */
export function spCostSteps(
  c: SpCostCase,
  backend: BackendName | Backend,
  options?: CompileOptions,
): { mse: TrainStep; sp: TrainStep; batch: Record<string, NDArray> };
export function spCostSteps(
  c: SpCostCase,
  backend: BackendName | Backend,
  options: CompileOptions,
  only: 'mse',
): { mse: TrainStep; batch: Record<string, NDArray> };
export function spCostSteps(
  c: SpCostCase,
  backend: BackendName | Backend,
  options: CompileOptions = {},
  only?: 'mse',
): { mse: TrainStep; sp?: TrainStep; batch: Record<string, NDArray> } {
  const model = createDenoiser(c.model);
  const schedule = rescaleZeroTerminalSnr(cosineSchedule(1000));
  const params = model.init(1);
  const mk = (objective: Objective) =>
    compileStep(({ params: p, step, x0, c: cls }) => objective({ params: p, x0, c: cls, step }), {
      ...options,
      params,
      optimizer: adam({ lr: 1e-4 }),
      data: { x0: [c.batch, ...model.dataShape], c: [c.batch] },
      backend,
    });
  const batch = {
    x0: initNormal([c.batch, ...model.dataShape], 1, 5),
    c: { shape: [c.batch], data: Float64Array.from({ length: c.batch }, (_, i) => i % 10) },
  };
  return {
    mse: mk(mseObjective({ model, schedule, prediction: 'v' })),
    ...(only === 'mse' ? {} : { sp: mk(selfPerceptualObjective({ model, frozenParams: params, schedule, prediction: 'v' })) }),
    batch,
  };
}
