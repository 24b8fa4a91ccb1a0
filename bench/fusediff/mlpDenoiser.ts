// fusediff's row of the reference benchmark: the reference step of workloads/referenceStep.ts, timed like every peer.
import { compile, type Executable } from '../../compiler/index.ts';
import type { BackendRequest } from '../../compiler/index.ts';
import type { FusionMode } from '../../compiler/index.ts';
import { bindInputs, paramSpec, type Params, type ParamTensors } from '../../dsl/params.ts';
import { trace } from '../../dsl/trace.ts';
import type { PeerSystem } from '../peers/types.ts';
import * as W from '../../workloads/reference.ts';
import { compileReferenceStep, lossOf } from '../../workloads/referenceStep.ts';
import type { TrainStep } from '../../train/compileStep.ts';

export class FusediffMlp implements PeerSystem {
  readonly system = 'fusediff';
  backend: string;
  readonly noise = 'inside the compiled step (counter-based RNG keyed by the step)';
  private train?: TrainStep;
  private evalExe?: Executable;
  private last = NaN;
  private readonly x0 = W.eightGaussians();

  constructor(
    private readonly requested: BackendRequest,
    private readonly fusion: FusionMode = 'fused',
  ) {
    this.backend = `${requested}${fusion === 'unfused' ? ', unfused' : ''}`;
  }

  async setup(): Promise<void> {
    await this.dispose();
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
    const { params } = await this.train!.readAsync(); // async: webgpu reads back only so
    this.evalExe ??= compile(
      trace(({ params: p, x0, eps: e, t: tt }) => lossOf(p as ParamTensors<Params>, x0, e, tt), {
        params: paramSpec(params),
        x0: [W.BATCH, W.POINT_DIM],
        eps: [W.BATCH, W.POINT_DIM],
        t: [W.BATCH, 1],
      }),
      { backend: this.train!.executable.backend, fusion: this.fusion },
    );
    return (await this.evalExe.runAsync({ ...bindInputs({ params }), x0: this.x0, eps, t: Float32Array.from(t) })).out.data[0];
  }

  /** frees the training step and the loss plan: their memory and, on wasm, their worker threads (Web Workers in a page) */
  async dispose(): Promise<void> {
    this.train?.dispose();
    this.evalExe?.dispose();
    this.train = this.evalExe = undefined;
  }
}
