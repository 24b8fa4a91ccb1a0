// Metrics of a set of samples against the data. MNIST: the committed classifier's penultimate features give the
// Frechet distance to the held-out split (FD-MNIST), its probabilities the inception score, its predictions the
// per-class coverage (and, for class-conditional samples, how often the intended digit came out). 2-D mixtures:
// the exact mean log-likelihood under the true density, the share of samples off the data, and mode coverage.
import { loadCheckpoint } from '../storage/checkpoint.ts';
import type { NDArray } from '../core/ndarray.ts';
import type { BackendRequest } from '../compiler/index.ts';
import type { Params } from '../dsl/params.ts';
import { areaResample } from '../data/mnist.ts';
import { classifier, ClassifierRunner, softmaxRows } from '../eval/classifier.ts';
import { argmaxRows, classCoverage, frechetFromStats, gaussianStats, inceptionScore, type GaussianStats } from '../eval/metrics.ts';
import { mnistSplit, type RunSetup } from '../runs/setup.ts';
import { cliChoiceCache } from '../runs/autoBackendCache.ts';
import type { PlanAutoOptions } from '../train/compilePlanAuto.ts';
import type { Mixture2D } from '../data/mixtures.ts';

export const CLASSIFIER_CHECKPOINT = 'pretrained:classifier-mnist16';

export interface ImageMetrics {
  kind: 'image';
  /** FD-MNIST: Frechet distance between sample and held-out features (lower is better) */
  fd: number;
  /** FD of as many real training digits as there are samples: what a perfect model would score at this count */
  fdReal: number;
  /** classifier inception score in [1, 10] (higher: confident and diverse) */
  is: number;
  /** share of the 10 digits with at least half their fair share of samples */
  coverage: number;
  /** share of samples predicted as each digit */
  classShares: number[];
  /** conditional samples: share classified as the digit they were conditioned on */
  accuracy?: number;
}

export interface PointMetrics {
  kind: 'points';
  /** mean log-likelihood of the samples under the true density (higher is better) */
  logLikelihood: number;
  /** the same for as many true samples: the value a perfect model would get */
  logLikelihoodReal: number;
  /** share of samples off the data (farther than 3 sigma from every mode, or outside the support) */
  offData: number;
  offDataReal: number;
  /** share of modes holding at least a quarter of their true mass */
  modeCoverage: number;
}

export type Metrics = ImageMetrics | PointMetrics;

let classifierParams: Params | undefined;
const runners = new Map<string, Promise<ClassifierRunner>>();

/**
 * The classifier's forward pass for `backend`, compiled once per process: under auto timed on a hardware WebGPU
 * adapter against wasm (it runs once per 250 images, over every sample and every reference digit). `auto.log` hears
 * the reason when it is compiled.
 */
const runnerFor = (backend: BackendRequest, auto: EvalAutoOptions): Promise<ClassifierRunner> => {
  classifierParams ??= loadCheckpoint(CLASSIFIER_CHECKPOINT, { expectSignature: classifier.signature }).params;
  let r = runners.get(backend);
  if (!r) {
    runners.set(backend, (r = ClassifierRunner.create(classifierParams, 250, backend, { cache: cliChoiceCache(), ...auto })));
    r.catch(() => runners.delete(backend)); // a failed compile is tried again next time, not remembered
  }
  return r;
};

/** How evaluation times `auto` (compilePlanAuto's options; tests inject an adapter, a timer and a cache). */
export type EvalAutoOptions = Omit<PlanAutoOptions, 'inputs'>;

/** Metrics with the backend that ran the classifier and why (none for 2-D mixtures: those are computed on the host). */
export interface Evaluation {
  metrics: Metrics;
  backend?: string;
  backendReason?: string;
}

/** The classifier reads 16x16 digits: 28x28 samples are area-averaged down first, as the data set does. */
const as16 = (images: NDArray): NDArray => (images.shape[2] === 16 ? images : areaResample(images, 16, 16));

const firstN = (x: NDArray, n: number): NDArray => {
  const per = x.data.length / x.shape[0];
  return { shape: [n, ...x.shape.slice(1)], data: x.data.slice(0, n * per) };
};

/**
 * What every row of a split is compared with, computed once per process: the held-out digits' feature statistics,
 * and the FD of `n` real training digits against them (the floor at that sample count).
 */
const references = new Map<string, { test: GaussianStats; floors: Map<number, number> }>();
const reference = async (
  s: RunSetup,
  runner: ClassifierRunner,
  key: string,
  n: number,
): Promise<{ test: GaussianStats; floor: number }> => {
  let r = references.get(key);
  if (!r)
    references.set(key, (r = { test: gaussianStats((await runner.run(as16(mnistSplit(s, 'test').images))).features), floors: new Map() }));
  let floor = r.floors.get(n);
  if (floor === undefined) {
    const train = mnistSplit(s, 'train').images;
    const real = await runner.run(as16(firstN(train, Math.min(n, train.shape[0]))));
    r.floors.set(n, (floor = frechetFromStats(gaussianStats(real.features), r.test)));
  }
  return { test: r.test, floor };
};

export const evaluateSamples = async (
  s: RunSetup,
  samples: NDArray,
  classes: ArrayLike<number> | undefined,
  backend: BackendRequest,
): Promise<Metrics> => (await evaluate(s, samples, classes, backend)).metrics;

/** evaluateSamples, saying which backend ran the classifier and why. */
export const evaluate = async (
  s: RunSetup,
  samples: NDArray,
  classes: ArrayLike<number> | undefined,
  backend: BackendRequest,
  auto: EvalAutoOptions = {},
): Promise<Evaluation> => {
  const N = samples.shape[0];
  if (s.dataset.kind === 'points') return { metrics: pointMetrics(s.dataset.mixture, samples) };
  const runner = await runnerFor(backend, auto);
  const ref = await reference(s, runner, `${s.dataset.name}/${s.config.data.testFraction}/${s.config.data.splitSeed}/${backend}`, N);
  const out = await runner.run(as16(samples));
  const predicted = argmaxRows(out.logits);
  const cov = classes ? classCoverage(predicted, 10, { intended: classes }) : classCoverage(predicted, 10);
  const metrics: ImageMetrics = {
    kind: 'image',
    fd: frechetFromStats(gaussianStats(out.features), ref.test),
    fdReal: ref.floor,
    is: inceptionScore(softmaxRows(out.logits)).mean,
    coverage: cov.coverage,
    classShares: cov.shares,
    accuracy: cov.accuracy,
  };
  return { metrics, backend: runner.exe.backend, backendReason: runner.exe.backendReason };
};

const pointMetrics = (m: Mixture2D, samples: NDArray): PointMetrics => {
  const real = m.sample(samples.shape[0], 987_654);
  return {
    kind: 'points',
    logLikelihood: m.meanLogLikelihood(samples),
    logLikelihoodReal: m.meanLogLikelihood(real),
    offData: m.offDataShare(samples),
    offDataReal: m.offDataShare(real),
    modeCoverage: m.modeCoverage(samples),
  };
};
