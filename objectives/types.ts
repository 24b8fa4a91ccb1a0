// What every objective is: a pure function from the step's arguments to a scalar loss graph.
import type { Params, ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';

/** What an objective receives each step (a `compileStep` loss's arguments): parameters, data, classes, step counter. */
export interface ObjectiveArgs {
  /** the online model's parameters (the ones differentiated) */
  params: ParamTensors<Params>;
  /** clean data [B, ...dataShape] */
  x0: Tensor;
  /** class ids [B] for a conditional model */
  c?: Tensor;
  /** the step counter: keys every random draw, so a resumed run replays the same noise */
  step: Tensor;
  /** the online parameters' EMA before this step (only where the step is compiled with `emaInLoss`) */
  ema?: ParamTensors<Params>;
}

/** A training objective: a pure function from the step's arguments to a scalar loss tensor. */
export type Objective = (args: ObjectiveArgs) => Tensor;
