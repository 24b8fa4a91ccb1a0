// compileStepAuto: compileStep whose `auto` backend is chosen by timing the step itself on a hardware WebGPU adapter
// against wasm (train/autoChoice.ts), the choice cached per step graph and adapter; elsewhere it is compileStep.
import type { NDArray } from '../core/ndarray.ts';
import { size } from '../core/shape.ts';
import type { Params } from '../dsl/params.ts';
import type { Shape } from '../dsl/shapeTypes.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { decideAuto, planKey, withBackendReason, type AdapterFacts, type ChoiceCache } from './autoChoice.ts';
import { stepOnGraph, timeSteps, traceStep, type StepArgs, type StepOptions, type TrainStep } from './compileStep.ts';

/** How compileStepAuto decides `auto`; every field has a default (tests inject the adapter, the timer, the cache). */
export interface AutoOptions {
  /** the WebGPU adapter (default: the device prepareWebGPU() acquired); null: none */
  adapter?: AdapterFacts | null;
  /** where choices are kept (default: one in memory for the process) */
  cache?: ChoiceCache;
  /** ms per step of a candidate (default: timeSteps on `batch`, `runs` steps after a warm-up) */
  time?: (backend: 'webgpu' | 'wasm', step: TrainStep) => Promise<number>;
  /** steps timed per candidate (default 3) */
  runs?: number;
  /** the batch the steps are timed on (default: zeros of the data shapes) */
  batch?: Readonly<Record<string, NDArray | ArrayLike<number>>>;
  /** told the reason once the choice is made (e.g. a line on stderr) */
  log?: (reason: string) => void;
}

/** The step with `reason` in place of the compile's own (its backend's details kept after it). */
const withReason = <P extends Params>(step: TrainStep<P>, reason: string): TrainStep<P> =>
  Object.create(step, { executable: { value: withBackendReason(step.executable, reason) } }) as TrainStep<P>;

/**
 * compileStep, where `backend` 'auto' (the default) on a hardware WebGPU adapter compiles the step on webgpu and on
 * wasm, times a few steps of each (without changing either's state), keeps the faster and disposes the other; the
 * choice is cached per step graph and adapter, and `executable.backendReason` says which and why, e.g. 'auto: webgpu
 * (NVIDIA ..., 0.80 ms/step against wasm 5.10 ms)'. A software adapter (SwiftShader, llvmpipe) is never timed: auto's
 * untimed choice stands (resolveBackend). A named backend compiles as compileStep does.
 */
export const compileStepAuto = async <const D extends Record<string, Shape>, P extends Params = Params>(
  loss: (args: StepArgs<D, P>) => Tensor,
  options: StepOptions<D, P> & { auto?: AutoOptions },
): Promise<TrainStep<P>> => {
  const { auto = {}, ...stepOptions } = options;
  const traced = traceStep(loss, stepOptions);
  const chosen = await chooseStep(traced, stepOptions, auto);
  auto.log?.(chosen.executable.backendReason);
  return chosen;
};

const chooseStep = async <const D extends Record<string, Shape>, P extends Params>(
  traced: ReturnType<typeof traceStep>,
  options: StepOptions<D, P>,
  auto: AutoOptions,
): Promise<TrainStep<P>> => {
  if ((options.backend ?? 'auto') !== 'auto') return stepOnGraph(traced, options);
  const batch = () => auto.batch ?? Object.fromEntries(Object.entries(options.data).map(([k, s]) => [k, new Float32Array(size(s))]));
  return decideAuto(() => planKey(traced.graph), auto, {
    compile: (backend) => stepOnGraph<D, P>(traced, { ...options, backend }),
    time: (backend, step) => (auto.time ? auto.time(backend, step as TrainStep) : timeSteps(step as TrainStep, batch(), auto.runs ?? 3)),
    dispose: (step) => step.dispose(),
    relabel: withReason,
  });
};
