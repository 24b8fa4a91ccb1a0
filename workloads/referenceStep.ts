// The reference training step written in the DSL: the workload of ./reference.ts (an MLP denoiser on 8 Gaussians,
// Adam) compiled by compileStep. Noise (eps) and timesteps (t) are drawn inside the compiled step by the
// counter-based RNG, keyed by the step counter. The bench times it against the peers; `fusediff inspect` shows it.
import type { Backend, BackendRequest, CompileOptions, FusionMode } from '../compiler/index.ts';
import * as c from '../dsl/composites.ts';
import { adam } from '../dsl/optim.ts';
import * as op from '../dsl/ops.ts';
import type { Params, ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { createDenoiser } from '../models/index.ts';
import { compileStep, type TrainStep } from '../train/compileStep.ts';
import * as W from './reference.ts';

type Layer = { w: { shape: number[]; data: Float64Array }; b: { shape: number[]; data: Float64Array } };

/** The project's MLP denoiser; its default configuration is the workload's 66 -> 256 -> 256 -> 256 -> 2. */
export const workloadModel = createDenoiser({
  kind: 'mlp',
  dim: W.POINT_DIM,
  hidden: W.HIDDEN,
  depth: W.LAYER_SIZES.length - 2,
  timeDim: W.EMB_DIM,
});

/** The workload's initial parameters in the model's tree ({ hidden: { hidden0, ... }, out }, same [in, out] layout). */
export const workloadParams = (): Params => {
  const layers = W.initParams().map((l): Layer => ({
    w: { shape: [l.inDim, l.outDim], data: Float64Array.from(l.w) },
    b: { shape: [l.outDim], data: Float64Array.from(l.b) },
  }));
  const hidden = Object.fromEntries(layers.slice(0, -1).map((l, i) => [`hidden${i}`, l]));
  return { hidden, out: layers[layers.length - 1] };
};

const denoise = (p: ParamTensors<Params>, xt: Tensor, t: Tensor): Tensor =>
  workloadModel.apply(p as unknown as Parameters<typeof workloadModel.apply>[0], xt, op.reshape(t, [W.BATCH]));

export const lossOf = (p: ParamTensors<Params>, x0: Tensor, eps: Tensor, t: Tensor): Tensor => {
  const ang = op.mul(t, Math.PI / 2 / W.T_STEPS);
  const xt = op.add(op.mul(op.cos(ang), x0), op.mul(op.sin(ang), eps));
  return c.mse(denoise(p, xt, t), eps);
};

/** The training loss with in-graph noise: t = floor(U * T), eps ~ N(0, 1), both keyed by the step counter. */
export const trainingLoss = ({ params, step, x0 }: { params: ParamTensors<Params>; step: Tensor; x0: Tensor }): Tensor => {
  const t = op.floor(op.mul(op.uniform([W.BATCH, 1], { seed: 42, stream: 1, counter: step as Tensor<readonly []> }), W.T_STEPS));
  const eps = op.normal([W.BATCH, W.POINT_DIM], { seed: 42, stream: 2, counter: step as Tensor<readonly []> });
  return lossOf(params, x0, eps, t);
};

export const compileReferenceStep = (
  backend: BackendRequest | Backend,
  fusion: FusionMode = 'fused',
  profile = false,
  options: CompileOptions = {},
): TrainStep =>
  compileStep(trainingLoss, {
    ...options,
    params: workloadParams(),
    optimizer: adam({ lr: W.ADAM.lr, b1: W.ADAM.beta1, b2: W.ADAM.beta2, eps: W.ADAM.eps }),
    data: { x0: [W.BATCH, W.POINT_DIM] },
    backend,
    fusion,
    profile,
  });
