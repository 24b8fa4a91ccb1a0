// The evaluation classifier for MNIST-16: a small CNN written in the project's DSL, trained with its own compiler
// (compileStep: forward + backward + Adam in one plan). Its penultimate layer ('features', 64 values after ReLU)
// feeds the Frechet distance (FD-MNIST); its logits feed the inception score and per-class coverage.
//
//   x [N,1,16,16] -> conv3x3(1->c1, pad 1) -> relu -> avgpool2 -> conv3x3(c1->c2, pad 1) -> relu -> avgpool2
//     -> flatten [N, c2*4*4] -> linear(hidden) -> relu  ('features')  -> linear(10)  ('logits')
import { argmaxRows } from './metrics.ts';
import { compileStep } from '../train/compileStep.ts';
import { compilePlanAuto, type PlanAutoOptions } from '../train/compilePlanAuto.ts';
import { compile, type Executable } from '../compiler/index.ts';
import type { BackendRequest } from '../compiler/index.ts';
import type { NDArray } from '../core/ndarray.ts';
import { avgPool2d, crossEntropy } from '../dsl/composites.ts';
import * as nn from '../dsl/nn.ts';
import * as op from '../dsl/ops.ts';
import { adam } from '../dsl/optim.ts';
import { bindInputs, flattenParams, paramSpec, seedFor, type Params, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace, type Spec } from '../dsl/trace.ts';
import { batches, loadMnist, MNIST_CLASSES, type MnistSplitName } from '../data/mnist.ts';

export interface ClassifierConfig {
  readonly kind: 'cnn-classifier';
  readonly size: 16;
  readonly c1: number;
  readonly c2: number;
  readonly hidden: number;
  readonly classes: number;
}

export const CLASSIFIER_CONFIG: ClassifierConfig = { kind: 'cnn-classifier', size: 16, c1: 16, c2: 32, hidden: 64, classes: MNIST_CLASSES };

export type ClassifierParams = {
  conv1: nn.Conv2dParams;
  conv2: nn.Conv2dParams;
  fc1: nn.LinearParams;
  fc2: nn.LinearParams;
};

export type ClassifierLayer = 'features' | 'logits';

export interface Classifier {
  readonly config: ClassifierConfig;
  /** config and parameter shapes as one stable string; a checkpoint loads only into a model with the same one */
  readonly signature: string;
  init(seed: number): ClassifierParams;
  /** x [N,1,16,16] in [-1, 1] -> logits [N,10], or the penultimate features [N,hidden] with until 'features' */
  apply(params: ParamTensors<ClassifierParams>, x: Tensor, opts?: { until?: ClassifierLayer }): Tensor;
}

const fmtShape = (s: readonly number[]) => `[${s.join(',')}]`;

export const createClassifier = (config: ClassifierConfig = CLASSIFIER_CONFIG): Classifier => {
  const { size, c1, c2, hidden, classes } = config;
  const flat = c2 * (size / 4) * (size / 4);
  const init = (seed: number): ClassifierParams => ({
    conv1: nn.conv2d.init(seedFor(seed, 'conv1'), 1, c1, 3),
    conv2: nn.conv2d.init(seedFor(seed, 'conv2'), c1, c2, 3),
    fc1: nn.linear.init(seedFor(seed, 'fc1'), flat, hidden),
    fc2: nn.linear.init(seedFor(seed, 'fc2'), hidden, classes),
  });
  const cfgPart = Object.entries(config)
    .filter(([k]) => k !== 'kind')
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  const shapes = flattenParams(init(0)).map(([p, a]) => `${p}=${fmtShape(a.shape)}`);
  const signature = `${[config.kind, ...cfgPart].join(';')}|${shapes.join(';')}`;
  return {
    config,
    signature,
    init,
    apply: (p, x, { until = 'logits' } = {}) => {
      if (x.rank !== 4 || x.shape[1] !== 1 || x.shape[2] !== size || x.shape[3] !== size)
        throw new Error(`classifier: expects images [N,1,${size},${size}], got ${fmtShape(x.shape)}`);
      if (until !== 'features' && until !== 'logits')
        throw new Error(`classifier: unknown layer '${String(until)}'; valid: features, logits`);
      const N = x.shape[0];
      let h = avgPool2d(op.relu(nn.conv2d.apply(p.conv1, x, { padding: 1 })), 2);
      h = avgPool2d(op.relu(nn.conv2d.apply(p.conv2, h, { padding: 1 })), 2);
      const features = op.relu(nn.linear.apply(p.fc1, op.reshape(h, [N, flat])));
      return until === 'features' ? features : nn.linear.apply(p.fc2, features);
    },
  };
};

/** The default evaluation classifier. */
export const classifier: Classifier = createClassifier();

// ---- training -------------------------------------------------------------------------------------------------

export interface TrainClassifierOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  backend?: BackendRequest;
  /** train on the first `limit` train images only (tests) */
  limit?: number;
  /** stop after this many steps in total (tests) */
  maxSteps?: number;
  onProgress?: (p: { epoch: number; step: number; stepsPerEpoch: number; loss: number; elapsedMs: number }) => void;
}

export interface TrainClassifierResult {
  params: ClassifierParams;
  /** mean training loss of each epoch */
  epochLoss: number[];
  /** every step's loss */
  stepLoss: number[];
  steps: number;
  /** wall time of each epoch in ms */
  epochMs: number[];
  backend: string;
}

const sliceSplit = (images: NDArray, labels: Float64Array, n: number) => {
  const per = images.data.length / images.shape[0];
  return {
    images: { shape: [n, ...images.shape.slice(1)], data: images.data.subarray(0, n * per) } as NDArray,
    labels: labels.subarray(0, n),
  };
};

/** Trains the classifier with cross-entropy and Adam on the MNIST-16 train split (await runAsync: webasm workers). */
export const trainClassifier = async (opts: TrainClassifierOptions, model: Classifier = classifier): Promise<TrainClassifierResult> => {
  const { epochs, batchSize, lr, seed, backend = 'webasm', limit, maxSteps = Infinity, onProgress } = opts;
  const full = loadMnist({ size: 16, split: 'train' });
  const data = limit ? sliceSplit(full.images, full.labels, Math.min(limit, full.labels.length)) : full;
  const n = data.images.shape[0];
  const stepsPerEpoch = Math.floor(n / batchSize);
  if (stepsPerEpoch < 1) throw new Error(`trainClassifier: batch size ${batchSize} exceeds the ${n} training images`);
  const params0 = model.init(seed);
  const step = compileStep(
    ({ params, images, labels }) => crossEntropy(model.apply(params as unknown as ParamTensors<ClassifierParams>, images), labels),
    { params: params0, optimizer: adam({ lr }), data: { images: [batchSize, 1, 16, 16], labels: [batchSize] }, backend },
  );
  const epochLoss: number[] = [],
    stepLoss: number[] = [],
    epochMs: number[] = [];
  const t0 = performance.now();
  let steps = 0;
  outer: for (let epoch = 0; epoch < epochs; epoch++) {
    const te = performance.now();
    let sum = 0,
      count = 0;
    for (const b of batches(data, batchSize, seed, epoch)) {
      if (steps >= maxSteps) break outer;
      const loss = await step.runAsync({ images: b.images, labels: b.labels! });
      stepLoss.push(loss);
      sum += loss;
      count++;
      steps++;
      onProgress?.({ epoch, step: steps, stepsPerEpoch, loss, elapsedMs: performance.now() - t0 });
    }
    epochLoss.push(sum / Math.max(1, count));
    epochMs.push(performance.now() - te);
  }
  return { params: step.params() as ClassifierParams, epochLoss, stepLoss, steps, epochMs, backend: step.executable.backend };
};

// ---- inference ------------------------------------------------------------------------------------------------

/** The forward pass of a batch: params.*, x [batch,1,16,16] -> { features, logits }. */
const inferenceGraph = (params: Params, batch: number, model: Classifier) =>
  trace(
    (a) => {
      const p = a.params as unknown as ParamTensors<ClassifierParams>;
      const x = a.x as Tensor;
      return { features: model.apply(p, x, { until: 'features' }), logits: model.apply(p, x) };
    },
    { params: paramSpec(params) as Spec, x: [batch, 1, 16, 16] } as Record<string, Spec>,
  );

/** Compiled inference, batched: one plan of batch size `batch`, the tail padded with zeros and cut off. */
export class ClassifierRunner {
  readonly exe: Executable;
  private readonly bound: Record<string, NDArray>;
  /** `backend`: a backend to compile for (auto's untimed choice for 'auto'), or a plan of inferenceGraph already compiled */
  constructor(
    params: Params,
    readonly batch = 250,
    backend: BackendRequest | Executable = 'webasm',
    readonly model: Classifier = classifier,
  ) {
    this.exe = typeof backend === 'object' ? backend : compile(inferenceGraph(params, batch, model), { backend });
    this.bound = bindInputs({ params });
  }

  /**
   * A runner whose `auto` is chosen by timing the forward pass (it runs once per `batch` images, over every sample and
   * reference digit) on a hardware WebGPU adapter against wasm (compilePlanAuto); a named backend compiles as `new`.
   */
  static async create(
    params: Params,
    batch = 250,
    backend: BackendRequest = 'auto',
    auto: Omit<PlanAutoOptions, 'inputs'> = {},
    model: Classifier = classifier,
  ): Promise<ClassifierRunner> {
    const inputs = Object.fromEntries(flattenParams(params).map(([p, v]) => [`params.${p}`, Float32Array.from(v.data)]));
    return new ClassifierRunner(
      params,
      batch,
      await compilePlanAuto(inferenceGraph(params, batch, model), backend, { ...auto, inputs }),
      model,
    );
  }

  /** images [N,1,16,16] -> { logits [N,10], features [N,hidden] } */
  async run(images: NDArray): Promise<{ logits: NDArray; features: NDArray }> {
    const N = images.shape[0],
      per = 256,
      B = this.batch;
    const { classes, hidden } = this.model.config;
    const logits = new Float64Array(N * classes),
      features = new Float64Array(N * hidden);
    for (let s = 0; s < N; s += B) {
      const m = Math.min(B, N - s);
      const x = new Float32Array(B * per);
      for (let i = 0; i < m * per; i++) x[i] = images.data[s * per + i];
      const out = await this.exe.runDeviceAsync({ ...this.bound, x });
      // read without blocking: webgpu has no synchronous read (a timed auto may have chosen it)
      logits.set((await this.exe.readAsync(out.logits, [B, classes])).subarray(0, m * classes), s * classes);
      features.set((await this.exe.readAsync(out.features, [B, hidden])).subarray(0, m * hidden), s * hidden);
    }
    return { logits: { shape: [N, classes], data: logits }, features: { shape: [N, hidden], data: features } };
  }
}

/** Predicted classes of images [N,1,16,16]. */
export const classifierPredict = async (params: Params, images: NDArray, backend: BackendRequest = 'webasm'): Promise<Int32Array> =>
  argmaxRows((await runOnce(params, images, backend)).logits);

/** One pass over `images` with a runner made for it (under auto, timed: it runs once per 250 images), freed after. */
const runOnce = async (params: Params, images: NDArray, backend: BackendRequest): Promise<{ logits: NDArray; features: NDArray }> => {
  const runner = await ClassifierRunner.create(params, 250, backend);
  try {
    return await runner.run(images);
  } finally {
    runner.exe.dispose();
  }
};

/** Accuracy on the first `limit` images (default all) of an MNIST-16 split. */
export const evaluateClassifier = async (
  params: Params,
  split: MnistSplitName = 'test',
  backend: BackendRequest = 'webasm',
  limit?: number,
): Promise<number> => {
  const full = loadMnist({ size: 16, split });
  const n = Math.min(limit ?? full.labels.length, full.labels.length);
  const { images, labels } = sliceSplit(full.images, full.labels, n);
  const pred = await classifierPredict(params, images, backend);
  let correct = 0;
  for (let i = 0; i < n; i++) if (pred[i] === labels[i]) correct++;
  return correct / n;
};

/** Penultimate-layer features [N,hidden] of images [N,1,16,16], for the Frechet distance. */
export const classifierFeatures = async (params: Params, images: NDArray, backend: BackendRequest = 'webasm'): Promise<NDArray> =>
  (await runOnce(params, images, backend)).features;

/** Class probabilities [N,10] (softmax of the logits, on the host), for the inception score and coverage. */
export const classifierProbs = async (params: Params, images: NDArray, backend: BackendRequest = 'webasm'): Promise<NDArray> =>
  softmaxRows((await runOnce(params, images, backend)).logits);

/** Row-wise softmax of logits [N, K] on the host, in float64. */
export const softmaxRows = (logits: NDArray): NDArray => {
  const [N, K] = logits.shape;
  const out = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    let mx = -Infinity;
    for (let k = 0; k < K; k++) mx = Math.max(mx, logits.data[n * K + k]);
    let z = 0;
    for (let k = 0; k < K; k++) z += out[n * K + k] = Math.exp(logits.data[n * K + k] - mx);
    for (let k = 0; k < K; k++) out[n * K + k] /= z;
  }
  return { shape: [N, K], data: out };
};
