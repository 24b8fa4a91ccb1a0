// fusediff's row of the reference benchmark: the workload of bench/peers/workload.ts written in the DSL and
// compiled by compileStep. Noise (eps) and timesteps (t) are drawn inside the compiled step by the
// counter-based RNG, keyed by the step counter.
import { compile, type Executable } from '../../compiler/runtime/executable.ts';
import type { BackendRequest } from '../../compiler/runtime/backends.ts';
import { compileStep, type TrainStep } from '../../compiler/runtime/step.ts';
import type { FusionMode } from '../../compiler/passes/fuse.ts';
import * as c from '../../dsl/composites.ts';
import * as nn from '../../dsl/nn.ts';
import { adam } from '../../dsl/optim.ts';
import * as op from '../../dsl/ops.ts';
import type { Params, ParamTensors } from '../../dsl/params.ts';
import type { Tensor } from '../../dsl/tensor.ts';
import { trace } from '../../dsl/trace.ts';
import type { PeerSystem } from '../peers/types.ts';
import * as W from '../peers/workload.ts';

type Layer = { w: { shape: number[]; data: Float64Array }; b: { shape: number[]; data: Float64Array } };

/** The workload's initial parameters as a fusediff tree { l0: { w, b }, ... } (same [in, out] layout). */
export const workloadParams = (): Params =>
  Object.fromEntries(
    W.initParams().map((l, i): [string, Layer] => [`l${i}`, { w: { shape: [l.inDim, l.outDim], data: Float64Array.from(l.w) }, b: { shape: [l.outDim], data: Float64Array.from(l.b) } }]),
  );

/** The denoiser: [x_t, emb(t)] -> 3 x (linear, SiLU) -> linear. */
export const denoise = (p: ParamTensors<Params>, xt: Tensor, t: Tensor): Tensor => {
  const layers = p as unknown as Record<string, ParamTensors<nn.LinearParams>>;
  let h = op.concat([xt, c.timestepEmbedding(op.reshape(t, [W.BATCH]), W.EMB_DIM)], 1);
  const n = W.LAYER_SIZES.length - 1;
  for (let i = 0; i < n; i++) {
    h = nn.linear.apply(layers[`l${i}`], h);
    if (i < n - 1) h = c.silu(h);
  }
  return h;
};

const lossOf = (p: ParamTensors<Params>, x0: Tensor, eps: Tensor, t: Tensor): Tensor => {
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

export const compileReferenceStep = (backend: BackendRequest, fusion: FusionMode = 'fused', profile = false): TrainStep =>
  compileStep(trainingLoss, {
    params: workloadParams(),
    optimizer: adam({ lr: W.ADAM.lr, b1: W.ADAM.beta1, b2: W.ADAM.beta2, eps: W.ADAM.eps }),
    data: { x0: [W.BATCH, W.POINT_DIM] },
    backend,
    fusion,
    profile,
  });

export class FusediffMlp implements PeerSystem {
  readonly system = 'fusediff';
  backend: string;
  readonly noise = 'inside the compiled step (counter-based RNG keyed by the step)';
  private train?: TrainStep;
  private evalExe?: Executable;
  private last = NaN;
  private readonly x0 = W.eightGaussians();

  constructor(private readonly requested: BackendRequest, private readonly fusion: FusionMode = 'fused') {
    this.backend = `${requested}${fusion === 'unfused' ? ', unfused' : ''}`;
  }

  async setup(): Promise<void> {
    this.train = compileReferenceStep(this.requested, this.fusion);
    this.backend = `${this.train.executable.backend}${this.fusion === 'unfused' ? ', unfused' : ''}`;
  }

  async step(): Promise<void> {
    this.last = await this.train!.runAsync({ x0: this.x0 });
  }

  async loss(): Promise<number> {
    return this.last;
  }

  async evalLoss(eps: Float32Array, t: Int32Array): Promise<number> {
    const params = this.train!.params();
    this.evalExe ??= compile(
      trace(({ params: p, x0, eps: e, t: tt }) => lossOf(p as ParamTensors<Params>, x0, e, tt), {
        params: Object.fromEntries(Object.keys(params).map((k) => [k, { w: [W.LAYER_SIZES[+k.slice(1)], W.LAYER_SIZES[+k.slice(1) + 1]], b: [W.LAYER_SIZES[+k.slice(1) + 1]] }])),
        x0: [W.BATCH, W.POINT_DIM],
        eps: [W.BATCH, W.POINT_DIM],
        t: [W.BATCH, 1],
      }),
      { backend: this.train!.executable.backend, fusion: this.fusion },
    );
    const flat = Object.fromEntries(Object.entries(params).flatMap(([k, l]) => Object.entries(l as Record<string, { data: Float64Array }>).map(([n, a]) => [`params.${k}.${n}`, a.data])));
    return this.evalExe.run({ ...flat, x0: this.x0, eps, t: Float32Array.from(t) }).out.data[0];
  }

  async dispose(): Promise<void> {}
}
