// One playground session, without the DOM: the run, its model and schedule, the compiled training step on the
// chosen backend (parameters, Adam state and EMA stay on the device), the loss history, sampling, and checkpoints
// in and out. The page (web/main.ts) drives it; everything here is the library's ordinary API.
import type { NDArray } from '../core/ndarray.ts';
import {
  backendFor,
  isAvailable,
  isResident,
  resolveBackend,
  webgpuAdapter,
  type BackendName,
  type BackendRequest,
} from '../compiler/index.ts';
import { BackendError } from '../compiler/index.ts';
import { compileStep, type StepArgs, type TrainStep } from '../train/compileStep.ts';
import { compileStepAuto, type AutoOptions } from '../train/compileStepAuto.ts';
import { decodeCheckpoint, encodeCheckpoint, SignatureMismatchError } from '../storage/checkpoint.ts';
import { adam } from '../dsl/optim.ts';
import { flattenParams, mapParams, type Params } from '../dsl/params.ts';
import type { Mixture2D } from '../data/mixtures.ts';
import { signatureDiff, signatureOf, type Denoiser } from '../models/index.ts';
import { createSampler, denoiserPredict, type SampleResult, type Sampler } from '../models/samplers.ts';
import type { Schedule } from '../models/schedule.ts';
import type { Objective } from '../objectives/index.ts';
import { batchSource, buildObjective, setupRun, type RunSetup, type StepBatch } from '../runs/setup.ts';
import { mixtureOf, runFromConfig, type ObjectiveKind, type PageRun } from './runConfig.ts';

declare const __FUSEDIFF_VERSION__: string;
const VERSION = typeof __FUSEDIFF_VERSION__ === 'string' ? __FUSEDIFF_VERSION__ : 'unknown';

/**
 * SP fine-tuning uses a tenth of the pretraining learning rate: a fresh Adam at the full rate moves every weight by
 * about lr per step whatever the gradient's scale, which first undoes much of what MSE learned (measured on
 * 8 Gaussians after 300 MSE steps: log-likelihood -1.19 -> -3.56 after 40 SP steps at 3e-3, -> -0.79 at 3e-4).
 */
export const SP_LR_FACTOR = 0.1;

export const backendLabels: Record<BackendName, string> = {
  wasm: 'WebAssembly',
  webgl2: 'WebGL2',
  webasm: 'WebAssembly (gpu.js)',
  cpu: 'CPU (JavaScript)',
  headlessgl: 'headless-gl',
  'gpujs-webgpu': 'WebGPU (gpu.js)',
  webgpu: 'WebGPU (WGSL)',
};
// wasm, the compiler's own WebAssembly SIMD, is the CPU path; gpu.js's webasm and cpu stay selectable
export const browserBackends: readonly BackendName[] = ['webgpu', 'gpujs-webgpu', 'webgl2', 'wasm', 'webasm', 'cpu'];
/** Backends that run and read back only asynchronously: the compiler's own WGSL and gpu.js's WebGPU path. */
export const isAsyncBackend = (b: BackendName): boolean => b === 'webgpu' || b === 'gpujs-webgpu';

export interface BackendChoice {
  readonly requested: BackendRequest;
  readonly name: BackendName;
  /** why the requested backend is not the one running (absent when it is) */
  readonly fallback?: string;
  /** auto: what it found and why it chose (compiler's resolveBackend) */
  readonly reason?: string;
}

/**
 * 'auto' (the default) before the step is compiled: WebGL2 on a hardware GPU, else the wasm backend (a software
 * implementation such as SwiftShader is slower than WebAssembly SIMD), with the reason; on a hardware WebGPU adapter
 * the first step's compile times webgpu against wasm and the session takes the faster (Session.ensureTrainer). A named
 * backend if this browser has it, else auto's choice, saying why. The page awaits prepareWebGPU() before it asks.
 */
export const chooseBackend = (requested: BackendRequest): BackendChoice => {
  if (requested === 'auto') {
    const { name, reason } = resolveBackend('auto');
    return { requested, name, reason };
  }
  if (isAvailable(requested)) return { requested, name: requested };
  // what auto would choose: a GPU backend only on a hardware GPU (SwiftShader's WebGPU is slower than wasm)
  const name = resolveBackend('auto').name;
  const why =
    requested === 'webgl2'
      ? 'this browser could not create a WebGL2 context (WebGL2 disabled, blocklisted GPU, or no GPU)'
      : isAsyncBackend(requested)
        ? resolveAvailability(requested)
        : 'this browser does not support it';
  return {
    requested,
    name,
    fallback:
      `${backendLabels[requested]} is not available: ${why}. ` +
      `Training runs on ${backendLabels[name]} instead, which is much slower for wide models.`,
  };
};

const resolveAvailability = (b: BackendName): string => {
  try {
    resolveBackend(b);
    return 'available';
  } catch (e) {
    return (e as Error).message.replace(/; available: .*$/, '');
  }
};

/** The WebGPU adapter prepareWebGPU() found, in words (e.g. 'google swiftshader, a CPU implementation'). */
export const webgpuAdapterText = (): string | undefined => {
  const a = webgpuAdapter();
  return a && `${a.description}${a.software ? ', a CPU implementation' : ''}`;
};

/** The GPU renderer string WebGL reports (e.g. "ANGLE (..., SwiftShader driver)"), or undefined. */
export const webglRenderer = (): string | undefined => {
  try {
    const gl = document.createElement('canvas').getContext('webgl2');
    if (!gl) return undefined;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    return String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  } catch {
    return undefined;
  }
};

/** What gpu.js actually built on a backend: its kernels, how many run in a WebGL2 context, how many fell back to CPU. */
export interface KernelReport {
  readonly kernels: number;
  readonly webgl2Kernels: number;
  readonly cpuFallbacks: number;
  /** GL textures alive in the backend's context */
  readonly textures: number;
}

export const kernelReport = (b: BackendName): KernelReport => {
  const backend = backendFor(b);
  const kernels = backend.kernelInfo();
  return {
    kernels: kernels.length,
    webgl2Kernels: kernels.filter((k) => k.context === 'webgl2' && !k.fellBack).length,
    cpuFallbacks: kernels.filter((k) => k.fellBack).length,
    textures: backend.counters().textures,
  };
};

export interface LossPoint {
  readonly step: number;
  readonly loss: number;
  readonly objective: ObjectiveKind;
}

export interface SampleSet {
  readonly x: NDArray;
  /** class id per sample (conditional models), for colouring */
  readonly classes?: Float64Array;
  readonly step: number;
  readonly objective: ObjectiveKind;
  readonly cfgScale: number;
  readonly steps: number;
  readonly weights: 'ema' | 'params';
  readonly ms: number;
  readonly backend: string;
  readonly logLikelihood: number;
  readonly offData: number;
  readonly coverage: number;
}

export interface SampleRequest {
  readonly count: number;
  readonly steps: number;
  readonly cfgScale: number;
  readonly weights?: 'ema' | 'params';
}

export interface LoadResult {
  readonly ok: boolean;
  /** a summary to show: a few lines at most */
  readonly message: string;
  /** the long part, shown folded under the message: both full signatures of a refused checkpoint */
  readonly details?: string;
}

const copy = (p: Params): Params => mapParams(p, (a) => ({ shape: [...a.shape], data: Float64Array.from(a.data) }));
const isEmpty = (p: Params): boolean => flattenParams(p).length === 0;
const sameShapes = (a: Params, b: Params): boolean => {
  const fa = flattenParams(a),
    fb = new Map(flattenParams(b));
  return fa.length === fb.size && fa.every(([n, v]) => fb.get(n)?.shape.join(',') === v.shape.join(','));
};

export class Session {
  run: PageRun;
  /** the CLI's construction of the run: model, schedule, classes (runs/setup.ts) */
  private setup!: RunSetup;
  private source!: (step: number) => StepBatch;
  model!: Denoiser;
  schedule!: Schedule;
  mixture!: Mixture2D;
  backend: BackendChoice;
  /** the objective being trained: 'sp' fine-tunes from `frozen`, a copy of the weights when it was chosen */
  objective: ObjectiveKind = 'mse';
  frozen?: Params;
  /** completed steps, over both stages */
  step = 0;
  losses: LossPoint[] = [];
  /** the last MSE-stage samples, kept when SP starts so the page can show what SP changed */
  beforeSp?: SampleSet;
  samples?: SampleSet;
  private params!: Params;
  private state?: Params;
  private ema!: Params;
  private trainer?: TrainStep;
  /** bumped whenever the plans are dropped: a timed compile that finishes after it is stale */
  private plansEpoch = 0;
  /** the trainer's step counter when syncAsync last read its weights back (webgpu) */
  private syncedStep = -1;
  private samplers = new Map<string, Sampler>();
  /** set when a backend failed at run time and the session moved to another one */
  runtimeFallback?: string;

  /**
   * `auto` (optional) injects compileStepAuto's adapter facts, timer or cache (tests: a software adapter treated as
   * hardware); by default the page's adapter, real timings and a cache for the page's life.
   */
  constructor(
    run: PageRun,
    backend: BackendRequest,
    private readonly auto: Pick<AutoOptions, 'adapter' | 'time' | 'cache'> = {},
  ) {
    this.run = run;
    this.backend = chooseBackend(backend);
    this.rebuild(run);
  }

  get numClasses(): number | undefined {
    return this.setup.numClasses;
  }

  get signature(): string {
    return this.model.signature;
  }

  /** The compiled step's backend once a step has run, else the chosen one. */
  get runningBackend(): BackendName {
    return this.trainer?.executable.backend ?? this.backend.name;
  }

  /** A fresh model for `run` (new data set, size or conditioning): weights from init, history cleared. */
  rebuild(run: PageRun, weights?: { params: Params; state?: Params; ema?: Params; step: number }): void {
    this.run = run;
    this.setup = setupRun(run);
    this.source = batchSource(this.setup);
    this.model = this.setup.model;
    this.schedule = this.setup.schedule;
    this.mixture = mixtureOf(run);
    this.params = weights ? copy(weights.params) : this.model.init(run.train.seed);
    this.ema = weights?.ema && !isEmpty(weights.ema) ? copy(weights.ema) : copy(this.params);
    this.state =
      weights?.state && !isEmpty(weights.state) && sameShapes(weights.state, adam({ lr: 1 }).init(this.params))
        ? copy(weights.state)
        : undefined;
    this.step = weights?.step ?? 0;
    this.objective = 'mse';
    this.frozen = undefined;
    this.dropPlans();
    this.losses = [];
    this.samples = undefined;
    this.beforeSp = undefined;
  }

  /**
   * Reads parameters, optimizer state and EMA back from the device (the trainer keeps them there). On webgpu, which
   * reads only asynchronously, syncAsync() must have read them since the last step.
   */
  sync(): void {
    if (!this.trainer) return;
    if (isAsyncBackend(this.trainer.executable.backend)) {
      if (this.syncedStep !== this.trainer.step) throw new Error('session: on webgpu, await syncAsync() before reading the weights');
      return;
    }
    this.params = this.trainer.params();
    this.state = this.trainer.state();
    this.ema = this.trainer.ema();
  }

  /** sync() without blocking: the way weights come back from webgpu (mapAsync), and the same as sync() elsewhere. */
  async syncAsync(): Promise<void> {
    const trainer = this.trainer;
    if (!trainer || !isAsyncBackend(trainer.executable.backend)) return this.sync();
    if (this.syncedStep === trainer.step) return;
    const { params, state, ema } = await trainer.readAsync();
    if (trainer !== this.trainer) return; // dropped while reading: nothing to keep
    Object.assign(this, { params, state, ema, syncedStep: trainer.step });
  }

  /** Frees the compiled training step and samplers (their kernels and device buffers); the next use compiles anew. */
  private dropPlans({ samplers = true } = {}): void {
    // best effort: a backend that failed at run time may not be able to free what it holds
    try {
      this.trainer?.dispose();
    } catch {}
    this.trainer = undefined;
    this.plansEpoch++;
    if (!samplers) return;
    for (const s of this.samplers.values()) {
      try {
        s.dispose();
      } catch {}
    }
    this.samplers.clear();
  }

  /** Frees everything this session compiled; the page calls it before it replaces the session. */
  dispose(): void {
    this.dropPlans();
  }

  setBackend(requested: BackendRequest): void {
    this.sync();
    this.dropPlans();
    this.runtimeFallback = undefined;
    this.backend = chooseBackend(requested);
  }

  /**
   * MSE (stage 1) or SP fine-tuning (stage 2). Choosing SP freezes a copy of the weights (`run.train.initFrom`:
   * the current ones by default, or the EMA) as f*; the online model starts from them with a fresh Adam state.
   */
  setObjective(kind: ObjectiveKind): void {
    if (kind === this.objective) return;
    this.sync();
    this.dropPlans({ samplers: false });
    if (kind === 'sp') {
      const start = copy(this.run.train.initFrom === 'ema' ? this.ema : this.params);
      this.frozen = start;
      this.params = copy(start);
      this.ema = copy(start);
      this.beforeSp = this.samples;
    } else this.frozen = undefined;
    this.state = undefined;
    this.objective = kind;
  }

  /** A warning for combinations that are known to go wrong (shown next to the objective). */
  get objectiveWarning(): string | undefined {
    const alphaT = this.schedule.alpha[this.schedule.T - 1];
    if (this.run.prediction === 'eps' && alphaT < 1e-3)
      return (
        `This model predicts eps on a schedule with alpha_T = ${alphaT.toExponential(1)}: ` +
        `x0_hat = (x_t - sigma eps_hat) / alpha amplifies its error up to ${Math.round(1 / alphaT)}x near t = T, ` +
        `which the SP objective re-noises, so SP fine-tuning can diverge. ` +
        `v-prediction (the page's default) does not have this problem.`
      );
    return undefined;
  }

  /** The CLI's objective (runs/setup.ts buildObjective) for the page's current choice of MSE or SP. */
  private objectiveFn(): Objective {
    const config = { ...this.run, objective: { ...this.run.objective, kind: this.objective } };
    return buildObjective({ ...this.setup, config }, this.frozen);
  }

  /** Adam's learning rate for the current objective: SP fine-tunes at a tenth of the pretraining rate. */
  get lr(): number {
    return this.objective === 'sp' ? this.run.train.lr * SP_LR_FACTOR : this.run.train.lr;
  }

  /** The training step of the current model and objective, and compileStep's options but the backend. */
  private stepDefinition() {
    const B = this.run.train.batchSize;
    const objective = this.objectiveFn();
    const data = this.numClasses === undefined ? { x0: [B, 2] } : { x0: [B, 2], c: [B] };
    return {
      loss: ({ params, step, x0, c }: StepArgs<Record<string, number[]>>) => objective({ params, x0, c, step }),
      options: {
        params: this.params,
        optimizer: adam({ lr: this.lr, weightDecay: this.run.train.weightDecay }),
        data: data as Record<string, number[]>,
        emaDecay: this.run.train.emaDecay,
        startStep: this.step + 1,
        initialState: { state: this.state, ema: this.ema },
      },
    };
  }

  private compileTrainer(): TrainStep {
    const { loss, options } = this.stepDefinition();
    return compileStep(loss, { ...options, backend: this.backend.name });
  }

  /**
   * The trainer, compiled if there is none. Under 'auto' the step is compiled by compileStepAuto: on a hardware WebGPU
   * adapter it is timed on webgpu and on wasm and the faster kept (the choice cached for the page's life), and the
   * session's backend becomes that choice, with its reason; on a software adapter auto's untimed choice stands.
   */
  private async ensureTrainer(): Promise<TrainStep> {
    if (this.trainer) return this.trainer;
    if (this.backend.requested !== 'auto' || this.runtimeFallback) return (this.trainer = this.compileTrainer());
    const epoch = this.plansEpoch;
    const { loss, options } = this.stepDefinition();
    const trainer = await compileStepAuto(loss, { ...options, backend: 'auto', auto: { ...this.auto, batch: this.batch(this.step + 1) } });
    if (epoch !== this.plansEpoch || this.trainer) {
      // the model, objective or backend changed while it was timed: compile for what is there now
      trainer.dispose();
      return this.ensureTrainer();
    }
    // samplers compiled before it keep their backend; later ones take this one
    this.backend = { requested: 'auto', name: trainer.executable.backend, reason: trainer.executable.backendReason };
    return (this.trainer = trainer);
  }

  /** The batch of a step, drawn by the CLI's own batch source: fresh points keyed by (seed, step), class = mixture mode. */
  batch(step: number): Record<string, NDArray> {
    const { x0, c } = this.source(step);
    return c ? { x0, c } : { x0 };
  }

  /**
   * One training step on the device; returns the loss. A backend that fails to run a kernel (e.g. a shader that
   * does not compile) is left for the next one, with the reason in `runtimeFallback`. Not on webgpu: trainStepAsync.
   */
  trainStep(): number {
    if (!this.trainer) this.trainer = this.compileTrainer();
    let loss: number;
    try {
      loss = this.trainer.run(this.batch(this.step + 1));
    } catch (e) {
      loss = this.fallBack(e, () => this.sync());
    }
    return this.record(loss);
  }

  /** One step, awaiting the loss (mapAsync on webgpu, so the page stays responsive while the GPU works). */
  async trainStepAsync(): Promise<number> {
    const trainer = await this.ensureTrainer();
    let loss: number;
    try {
      loss = isAsyncBackend(this.backend.name) ? await trainer.runAsync(this.batch(this.step + 1)) : trainer.run(this.batch(this.step + 1));
    } catch (e) {
      // keep the steps already taken, if the failed backend can still be read
      if (e instanceof BackendError) await this.syncAsync().catch(() => {});
      loss = this.fallBack(e, () => {});
    }
    return this.record(loss);
  }

  /**
   * Steps while `more()` says so (asked before each further step), at least one; returns how many ran. On webgpu one
   * step stays in flight: the next is submitted before the loss of the last is read, so the GPU does not wait for
   * the readback (compileStep's overlapped runAsync; a non-finite loss still keeps the update from being applied).
   */
  async trainWhile(more: () => boolean): Promise<number> {
    await this.ensureTrainer();
    if (!isAsyncBackend(this.backend.name)) {
      let n = 0;
      do {
        await this.trainStepAsync();
        n++;
      } while (more());
      return n;
    }
    const trainer = await this.ensureTrainer();
    let next = this.step + 1;
    let inflight = trainer.runAsync(this.batch(next++));
    let n = 0;
    for (;;) {
      const following = more() ? trainer.runAsync(this.batch(next++)) : undefined;
      following?.catch(() => {}); // rejects (discarded) when `inflight` does; awaited below otherwise
      let loss: number;
      try {
        loss = await inflight;
      } catch (e) {
        if (!(e instanceof BackendError)) throw e;
        await this.syncAsync().catch(() => {});
        this.record(this.fallBack(e, () => {}));
        return n + 1;
      }
      this.record(loss);
      n++;
      if (!following) return n;
      inflight = following;
    }
  }

  private record(loss: number): number {
    this.step++;
    this.losses.push({ step: this.step, loss, objective: this.objective });
    return loss;
  }

  /** After a BackendError on a GPU backend: the next backend takes over (else the error goes on); returns its first loss. */
  private fallBack(e: unknown, keep: () => void): number {
    if (!(e instanceof BackendError) || !(isResident(this.backend.name) || this.backend.name === 'webgpu')) throw e;
    const failed = this.backend.name;
    try {
      keep(); // keep the steps already taken, if the failed backend can still be read
    } catch {
      // it cannot: continue from the last weights read back
    }
    this.dropPlans();
    // the next GPU or CPU path that runs synchronously (webgpu runs only through trainStepAsync)
    const next = browserBackends.find((b) => b !== failed && !isAsyncBackend(b) && isAvailable(b)) ?? 'cpu';
    this.backend = { requested: this.backend.requested, name: next };
    this.runtimeFallback = [
      `${backendLabels[failed]} failed to run the training step (${e.message});`,
      `training runs on ${backendLabels[next]} instead.`,
    ].join(' ');
    this.trainer = this.compileTrainer();
    return this.trainer.run(this.batch(this.step + 1));
  }

  /** Samples with the current or the EMA weights; the same noise every time, so the picture changes only with the model. */
  sample(opts: SampleRequest): SampleSet {
    const { sampler, classes, weights, finish } = this.prepareSample(opts);
    const t0 = performance.now();
    return finish(sampler.sample({ classes, params: weights }), performance.now() - t0);
  }

  /**
   * The same samples, step by step: `onStep` is awaited after each DDIM step (the page shows progress and yields to
   * its event loop there), and an aborted `signal` stops after the step in flight, keeping the previous samples.
   */
  async sampleAsync(
    opts: SampleRequest & { onStep?: (done: number, total: number) => void | Promise<void>; signal?: AbortSignal },
  ): Promise<SampleSet> {
    await this.syncAsync();
    const { sampler, classes, weights, finish } = this.prepareSample(opts);
    const t0 = performance.now();
    const x = await sampler.sampleAsync({ classes, params: weights, onStep: opts.onStep, signal: opts.signal, syncEachStep: true });
    return finish(x, performance.now() - t0);
  }

  private prepareSample({ count, steps, cfgScale, weights: which = this.run.sample.weights }: SampleRequest) {
    this.sync();
    const weights = which === 'ema' ? this.ema : this.params;
    const K = this.numClasses;
    const guided = K !== undefined && cfgScale !== 1;
    // the sampler runs where the training step does: under auto that is the step's timed choice once it is compiled
    // (the same model on the same adapter), so the sampler is not timed again; before the first step, the untimed one
    const key = `${count}|${steps}|${guided ? cfgScale : 1}|${this.backend.name}`;
    let sampler = this.samplers.get(key);
    if (!sampler) {
      sampler = createSampler({
        predict: denoiserPredict(this.model),
        shape: [count, 2],
        schedule: this.schedule,
        prediction: this.run.prediction,
        sampler: 'ddim',
        steps,
        seed: this.run.sample.seed,
        backend: this.backend.name,
        params: weights,
        nullClass: K,
        hasNullClass: K !== undefined && this.run.objective.condDropout > 0,
        cfgScale: guided ? cfgScale : 1,
      });
      this.samplers.set(key, sampler);
    }
    const classes = K === undefined ? undefined : Float64Array.from({ length: count }, (_, i) => i % K);
    // the samples are of these weights: labelled with their step and objective, not those when sampling ends (the page
    // may train on while it samples)
    const { step, objective } = this;
    const finish = (x: SampleResult, ms: number): SampleSet => {
      const finite = x.data.every(Number.isFinite);
      this.samples = {
        x,
        classes,
        step,
        objective,
        cfgScale: guided ? cfgScale : 1,
        steps,
        weights: which,
        ms,
        backend: x.backend,
        logLikelihood: finite ? this.mixture.meanLogLikelihood(x) : NaN,
        offData: finite ? this.mixture.offDataShare(x) : NaN,
        coverage: finite ? this.mixture.modeCoverage(x) : NaN,
      };
      return this.samples;
    };
    return { sampler, classes, weights, finish };
  }

  /** The session as a checkpoint: weights, Adam state, EMA and the run config (the CLI's shape, under `run`). */
  checkpointBytes(): Uint8Array {
    this.sync();
    const run: PageRun = {
      ...this.run,
      objective: { ...this.run.objective, kind: this.objective },
      train: { ...this.run.train, lr: this.lr },
      backend: this.backend.name,
    };
    return encodeCheckpoint({
      params: this.params,
      state: this.state ?? {},
      ema: this.ema,
      config: { run, origin: 'fusediff playground' },
      step: this.step,
      rngCounter: this.step + 1,
      schedule: this.schedule.name,
      signature: this.model.signature,
      version: VERSION,
    });
  }

  get checkpointName(): string {
    return `fusediff-${this.run.data.name}-${this.objective}-step${this.step}.safetensors`;
  }

  /**
   * Loads a checkpoint. One whose metadata describes a 2-D MLP run (the CLI's `config.run`) replaces the model
   * with that one; any other must have this model's signature. Nothing changes unless the whole file checks out.
   */
  load(bytes: Uint8Array, name: string): LoadResult {
    let found;
    try {
      found = decodeCheckpoint(bytes, name);
    } catch (e) {
      return { ok: false, message: `Could not read ${name}: ${(e as Error).message}` };
    }
    const described = runFromConfig(found.config);
    const model = described.ok ? setupRun(described.run).model : this.model;
    try {
      // the library's own check: the file's signature against the model that will receive it
      decodeCheckpoint(bytes, name, { expectSignature: model.signature });
    } catch (e) {
      if (!(e instanceof SignatureMismatchError)) return { ok: false, message: `Could not load ${name}: ${(e as Error).message}` };
      // a readable summary: what differs in the model's settings first (the tensors' shapes follow from them), the
      // first few differences only; the full signatures (thousands of characters for a UNet) go under the message
      const [foundHead, expectedHead] = [e.found, e.expected].map((sig) => sig.split('|')[0]);
      const settings = signatureDiff(foundHead, expectedHead, ['file', described.ok ? 'its config' : 'page'], 4);
      const diff = settings.length ? settings : signatureDiff(e.found, e.expected, ['file', described.ok ? 'its config' : 'page'], 4);
      const why = described.ok
        ? `its signature does not match the model its own config describes`
        : `it is a checkpoint of another model (${described.why}), and its signature differs from this page's model`;
      return {
        ok: false,
        message: `${name} was not loaded: ${why}.\nDiffers in: ${diff.join('; ')}.\nNothing was changed.`,
        details: `Checkpoint signature: ${e.found}\n${described.ok ? 'Config' : 'Page'} model signature: ${e.expected}`,
      };
    }
    if (signatureOf(model.config, found.params) !== model.signature)
      return {
        ok: false,
        message:
          `${name} was not loaded: its tensors do not have the shapes its signature names ` +
          `(${signatureDiff(signatureOf(model.config, found.params), model.signature, ['tensors', 'signature']).join('; ')}). ` +
          `Nothing was changed.`,
      };
    const ema = !isEmpty(found.ema) && signatureOf(model.config, found.ema) === model.signature ? found.ema : undefined;
    this.rebuild(described.ok ? { ...described.run, objective: { ...described.run.objective, kind: 'mse' } } : this.run, {
      params: found.params,
      state: found.state,
      ema,
      step: found.step,
    });
    const stage =
      described.ok && described.run.objective.kind === 'sp'
        ? ' It was fine-tuned with SP; its frozen copy is not in the file, so choosing SP here freezes these weights.'
        : '';
    return {
      ok: true,
      message:
        `Loaded ${name}: ${this.run.data.name}, MLP ${this.run.model.hidden}x${this.run.model.depth}` +
        `${this.numClasses ? `, ${this.numClasses} classes` : ''}, ${this.run.prediction}-prediction, ` +
        `step ${found.step}${ema ? ', with EMA' : ''} (written by fusediff ${found.version}).${stage}`,
    };
  }
}
