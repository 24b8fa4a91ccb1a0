// Exponential moving average of parameters: the DSL update (traced into a step graph), its warm-up decay, and a
// float64 host reference. compileStep's `emaDecay` (train/compileStep.ts) keeps the EMA on the device.
import * as op from '../dsl/ops.ts';
import { mapParams, type Params, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { isNDArray, isTensor } from '../dsl/trace.ts';
import { flatten, unflatten } from '../dsl/tree.ts';

type T = ParamTensors<Params>;

/**
 * ema' = ema + (1 - decay) (params - ema), i.e. decay * ema + (1 - decay) * params written as a lerp, so a
 * parameter that equals its average stays exactly equal in f32. `decay` may be a scalar tensor (warm-up).
 */
export const emaUpdate = (ema: T, params: T, decay: number | Tensor<[]>): T => {
  const p = new Map(flatten(params as never, isTensor) as [string, Tensor][]);
  const out = (flatten(ema as never, isTensor) as [string, Tensor][]).map(([path, e]) => {
    const q = p.get(path);
    if (!q) throw new Error(`emaUpdate: the EMA has '${path}', the parameters do not`);
    return [path, op.add(e, op.mul(op.sub(q, e), op.sub(1, decay)))] as const;
  });
  if (p.size !== out.length) throw new Error(`emaUpdate: ${p.size} parameters but ${out.length} EMA entries`);
  return unflatten(out) as T;
};

/**
 * The decay at a 1-based step with the usual warm-up min(decay, (1 + step) / (10 + step)) (as in
 * diffusers' EMAModel), so the average is not dominated by the random init early in training.
 */
export const emaDecayAt = (step: Tensor, decay: number, warmup = true): Tensor<[]> =>
  (warmup ? op.minimum(op.div(op.add(step, 1), op.add(step, 10)), decay) : op.full([], decay)) as Tensor<[]>;

/** Host float64 reference of one emaUpdate (for tests and for resuming without a device). */
export const emaUpdateHost = (ema: Params, params: Params, decay: number): Params => {
  const p = new Map(flatten(params, isNDArray));
  return mapParams(ema, (e, path) => ({ shape: e.shape, data: e.data.map((v, i) => v + (p.get(path)!.data[i] - v) * (1 - decay)) }));
};
