// The self-perceptual objective (docs/method.md, stage 2): a frozen copy f* of the stage-1 model is the perceptual
// network. Both the real x0 and the online prediction's x0_hat are re-noised at a fresh t', and the loss is the
// distance between f*'s middle-block features of the two. Gradient semantics (pinned by test/objectives.test.ts):
//  - f*'s parameters are graph constants (frozen): they get no gradient and are not inputs at all;
//  - the predicted branch flows THROUGH f* back to x0_hat and on to theta (no stop-gradient around the call);
//  - the real branch is a constant target (stop-gradient; it does not depend on theta anyway).
import { broadcastShapes, fmt, ShapeError } from '../core/shape.ts';
import type { LossOptions } from '../dsl/composites.ts';
import * as op from '../dsl/ops.ts';
import { frozen, type Params, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { isTensor } from '../dsl/trace.ts';
import { mapTree, type Tree } from '../dsl/tree.ts';
import { assertSameSignature, signatureOf, type Denoiser } from '../models/index.ts';
import { fromPrediction, type Prediction } from '../models/parameterization.ts';
import { sampleTimesteps, type Schedule } from '../models/schedule.ts';
import { checkPrediction, coefficients, noise, streams } from './noising.ts';
import type { Objective, ObjectiveArgs } from './types.ts';

/** Options of the self-perceptual objective: the model, the frozen stage-1 weights, and the method's knobs (docs/method.md). */
export interface SelfPerceptualOptions {
  model: Denoiser;
  /** the stage-1 weights: the frozen copy f* (host arrays, embedded as constants) */
  frozenParams: Params;
  schedule: Schedule;
  prediction: Prediction;
  /** the feature layer of f*: 'mid' (the paper's choice), any layer name of the model, or 'all' (sum over layers) */
  layer?: string;
  /**
   * how t' is drawn: 'uniform' (the paper's best), 'same' (t' = t, under which the loss is identically zero) or
   * 'offset' (t' = t + tPrimeOffset, clamped to 1..T)
   */
  tPrime?: 'uniform' | 'same' | 'offset';
  /** with tPrime 'offset': t' - t in timesteps (may be negative) */
  tPrimeOffset?: number;
  /**
   * the noise of the two branches at t': 'predicted' (real with eps, predicted with eps_hat: the paper's Algorithm 1),
   * 'true' (both with the true eps) or 'fresh' (both with one new draw eps')
   */
  renoise?: 'predicted' | 'true' | 'fresh';
  /** the perceptual network: the frozen stage-1 copy (the paper) or the EMA of the online model (`args.ema`) */
  perceptual?: 'frozen' | 'ema';
  distance?: 'mse' | 'mae';
  seed?: number;
  /** for the negative test only: wraps the whole frozen call in a stop-gradient (the classic bug) */
  stopGradientThroughFrozen?: boolean;
}

/** f*'s features of the real and the predicted branch at t', one pair per feature layer. */
export interface PerceptualFeatures {
  readonly layers: readonly string[];
  readonly real: readonly Tensor[];
  readonly predicted: readonly Tensor[];
}

const checkOptions = (o: SelfPerceptualOptions): readonly string[] => {
  const { model, layer = 'mid' } = o;
  assertSameSignature(model, signatureOf(model.config, o.frozenParams), ['online', 'frozen']);
  const layers = layer === 'all' ? model.layers : [layer];
  for (const l of layers)
    if (!model.layers.includes(l))
      throw new Error(`selfPerceptual: the model has no layer '${l}'; its layers are: ${model.layers.join(', ')}, or 'all'`);
  return layers;
};

/** The perceptual network's weights: the frozen copy as graph constants, or the EMA input (never differentiated). */
const perceptualParams = (o: SelfPerceptualOptions, ema: ParamTensors<Params> | undefined): ParamTensors<Params> => {
  if ((o.perceptual ?? 'frozen') === 'frozen') return frozen(o.frozenParams) as ParamTensors<Params>;
  if (!ema) throw new Error("selfPerceptual: perceptual 'ema' reads the step's EMA: compile the step with { emaDecay, emaInLoss: true }");
  return mapTree(ema as Tree<Tensor>, isTensor, (v) => op.stopGradient(v)) as ParamTensors<Params>;
};

/** Steps 1-6 of the method up to the features (no stop-gradient applied yet: the objective decides). */
export const selfPerceptualFeatures = (o: SelfPerceptualOptions) => {
  const layers = checkOptions(o);
  const { model, schedule, prediction, tPrime = 'uniform', tPrimeOffset = 0, renoise = 'predicted', seed = 0 } = o;
  return ({ params, x0, c, step, ema }: ObjectiveArgs): PerceptualFeatures => {
    const counter = step as Tensor<readonly []>;
    const n = noise(schedule, x0, step, seed);
    const pred = model.apply(params, n.xt, n.t, c);
    checkPrediction('selfPerceptual', pred, x0);
    const { x0: x0Hat, eps: epsHat } = fromPrediction(prediction, pred, n.xt, n.alpha, n.sigma);
    const t2 =
      tPrime === 'same'
        ? n.t
        : tPrime === 'offset'
          ? op.minimum(op.maximum(op.add(n.t, tPrimeOffset), 1), schedule.T)
          : sampleTimesteps(schedule, x0.shape[0], { seed, stream: streams.tPrime, counter });
    const { alpha, sigma } = coefficients(schedule, t2, x0.rank);
    const fresh = renoise === 'fresh' ? op.normal(x0.shape, { seed, stream: streams.renoise, counter }) : undefined;
    const realNoise = fresh ?? n.eps;
    const predictedNoise = fresh ?? (renoise === 'true' ? n.eps : epsHat);
    const real = op.add(op.mul(alpha, x0), op.mul(sigma, realNoise));
    const predicted = op.add(op.mul(alpha, x0Hat), op.mul(sigma, predictedNoise));
    const fStar = perceptualParams(o, ema);
    return {
      layers,
      real: layers.map((l) => model.apply(fStar, real, t2, c, { until: l })),
      predicted: layers.map((l) => model.apply(fStar, predicted, t2, c, { until: l })),
    };
  };
};

/**
 * mean |d|^2 (or |d|) over all elements. Like the DSL's `mse` and `mae`, a and b must have one shape (a ShapeError
 * naming both and the call site otherwise) unless `{ broadcast: true }`.
 */
export const featureDistance = (a: Tensor, b: Tensor, distance: 'mse' | 'mae', opts?: LossOptions): Tensor => {
  if (distance !== 'mse' && distance !== 'mae')
    throw new Error(`featureDistance: distance must be 'mse' or 'mae', got '${String(distance)}'`);
  if (!opts?.broadcast && (a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i]))) {
    const joint = broadcastShapes(a.shape, b.shape);
    throw new ShapeError(
      'featureDistance',
      `operands have different shapes ${fmt(a.shape)} and ${fmt(b.shape)}` +
        (joint ? ` (they would broadcast to ${fmt(joint)})` : '') +
        `; reshape one to the other's shape, or pass { broadcast: true } to broadcast on purpose`,
      a.graph.siteOf(),
    );
  }
  const d = op.sub(a, b);
  const size = d.shape.reduce((x, y) => x * y, 1);
  return op.div(op.sum(distance === 'mse' ? op.mul(d, d) : op.abs(d)), size);
};

/**
 * The self-perceptual objective (stage 2, docs/method.md): the distance between the frozen copy f*'s features of the
 * real x0 and of the online model's prediction, both re-noised at t'. The gradient flows through f* to the prediction;
 * f*'s weights are graph constants, and the real branch is a constant target.
 */
export const selfPerceptualObjective = (o: SelfPerceptualOptions): Objective => {
  const features = selfPerceptualFeatures(o);
  const distance = o.distance ?? 'mse';
  return (args) => {
    const f = features(args);
    return f.layers
      .map((_, i) => {
        const predicted = o.stopGradientThroughFrozen ? op.stopGradient(f.predicted[i]) : f.predicted[i];
        return featureDistance(predicted, op.stopGradient(f.real[i]), distance);
      })
      .reduce((a, b) => op.add(a, b));
  };
};
