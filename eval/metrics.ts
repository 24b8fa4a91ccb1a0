// Sample-quality metrics over classifier outputs, in plain float64: Frechet distance between feature sets (FID's
// formula on the evaluation classifier's features), inception score over its class probabilities, and per-class
// coverage / conditional accuracy over its predicted labels. Pure functions; nothing here touches the compiler.
import type { NDArray } from '../core/ndarray.ts';
import { fmt } from '../core/shape.ts';
import { clampPsd, matmul, sqrtPsd, symmetricEigen } from './linalg.ts';

// ---- Frechet distance -----------------------------------------------------------------------------------------

/** Mean [D] and unbiased covariance [D, D] of a feature set, and how many rows they came from. */
export interface GaussianStats {
  readonly mean: NDArray;
  readonly cov: NDArray;
  readonly count: number;
}

const matrixShape = (x: NDArray, what: string): [number, number] => {
  if (x.shape.length !== 2) throw new Error(`${what}: expected a matrix [N, D], got shape ${fmt(x.shape)}`);
  return [x.shape[0], x.shape[1]];
};

/** Mean and covariance with the (N - 1) denominator, as FID's reference implementation (np.cov). Needs N >= 2. */
export const gaussianStats = (x: NDArray): GaussianStats => {
  const [n, d] = matrixShape(x, 'gaussianStats');
  if (n < 2) throw new Error(`gaussianStats: need at least 2 rows for a covariance, got shape ${fmt(x.shape)}`);
  if (d < 1) throw new Error(`gaussianStats: need at least 1 feature, got shape ${fmt(x.shape)}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x.data[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  // Two passes (centre, then X^T X) rather than E[xx^T] - mu mu^T, which cancels badly for features with large means.
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = x.data[i * d + j] - mean[j];
    for (let j = 0; j < d; j++) {
      const rj = row[j];
      for (let k = j; k < d; k++) cov[j * d + k] += rj * row[k];
    }
  }
  for (let j = 0; j < d; j++) {
    for (let k = j; k < d; k++) cov[j * d + k] = cov[k * d + j] = cov[j * d + k] / (n - 1);
  }
  return { mean: { shape: [d], data: mean }, cov: { shape: [d, d], data: cov }, count: n };
};

/**
 * ||mu_a - mu_b||^2 + Tr(Sa + Sb - 2 (Sa^1/2 Sb Sa^1/2)^1/2). The matrix square roots go through symmetric
 * eigendecompositions (rounding-level and negative eigenvalues clamped to 0), so singular covariances (N <= D) work.
 * Mathematically >= 0; the float result can be a rounding-sized negative for identical statistics.
 */
export const frechetFromStats = (a: GaussianStats, b: GaussianStats): number => {
  const d = a.mean.shape[0];
  if (b.mean.shape[0] !== d || a.cov.shape[0] !== d || b.cov.shape[0] !== d) {
    throw new Error(
      `frechetFromStats: feature sizes differ: mean ${fmt(a.mean.shape)} ` +
        `cov ${fmt(a.cov.shape)} vs mean ${fmt(b.mean.shape)} cov ${fmt(b.cov.shape)}`,
    );
  }
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (a.mean.data[j] - b.mean.data[j]) ** 2;
  const root = sqrtPsd(a.cov.data, d);
  const m = matmul(matmul(root, b.cov.data, d), root, d);
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) m[i * d + j] = m[j * d + i] = 0.5 * (m[i * d + j] + m[j * d + i]);
  let traceSqrt = 0;
  for (const l of clampPsd(symmetricEigen(m, d).values)) traceSqrt += Math.sqrt(l);
  let traces = 0;
  for (let j = 0; j < d; j++) traces += a.cov.data[j * d + j] + b.cov.data[j * d + j];
  return meanTerm + traces - 2 * traceSqrt;
};

/** Frechet distance between the Gaussians fitted to feature sets a [N, D] and b [M, D] (FID's formula). */
export const frechetDistance = (a: NDArray, b: NDArray): number => {
  const [, da] = matrixShape(a, 'frechetDistance');
  const [, db] = matrixShape(b, 'frechetDistance');
  if (da !== db) throw new Error(`frechetDistance: feature sizes differ: ${fmt(a.shape)} vs ${fmt(b.shape)}`);
  if (a.shape[0] < 2 || b.shape[0] < 2)
    throw new Error(`frechetDistance: need at least 2 rows in each set, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  return frechetFromStats(gaussianStats(a), gaussianStats(b));
};

// ---- inception score ------------------------------------------------------------------------------------------

/**
 * exp(E_x KL(p(y|x) || p(y))) over class probabilities [N, K] (rows must sum to 1; 0 log 0 = 0). With splits > 1
 * the rows are cut into that many contiguous near-equal parts (all rows used) and the scores' mean and population
 * std (np.std, as the reference implementation) are returned; std is 0 for one split. Ranges over [1, K].
 */
export const inceptionScore = (probs: NDArray, splits = 1): { mean: number; std: number } => {
  const [n, k] = matrixShape(probs, 'inceptionScore');
  if (!Number.isInteger(splits) || splits < 1 || splits > n)
    throw new Error(`inceptionScore: splits must be an integer in [1, ${n}] for shape ${fmt(probs.shape)}, got ${splits}`);
  const p = probs.data;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const v = p[i * k + j];
      if (!(v >= 0)) throw new Error(`inceptionScore: probabilities must be >= 0, got ${v} at (${i}, ${j}) of ${fmt(probs.shape)}`);
      sum += v;
    }
    // Catches logits passed by mistake.
    if (Math.abs(sum - 1) > 1e-6)
      throw new Error(`inceptionScore: row ${i} of ${fmt(probs.shape)} sums to ${sum}, not 1 (pass softmax probabilities)`);
  }
  const scores: number[] = [];
  for (let s = 0; s < splits; s++) {
    const lo = Math.floor((s * n) / splits),
      hi = Math.floor(((s + 1) * n) / splits);
    const marginal = new Float64Array(k);
    for (let i = lo; i < hi; i++) for (let j = 0; j < k; j++) marginal[j] += p[i * k + j];
    for (let j = 0; j < k; j++) marginal[j] /= hi - lo;
    let kl = 0;
    for (let i = lo; i < hi; i++) {
      for (let j = 0; j < k; j++) {
        const v = p[i * k + j];
        if (v > 0) kl += v * Math.log(v / marginal[j]);
      }
    }
    scores.push(Math.exp(kl / (hi - lo)));
  }
  const mean = scores.reduce((x, y) => x + y, 0) / splits;
  const std = Math.sqrt(scores.reduce((x, y) => x + (y - mean) ** 2, 0) / splits);
  return { mean, std };
};

/** Index of the largest entry of each row of [N, K] (first on ties): predicted labels from logits or probabilities. */
export const argmaxRows = (x: NDArray): Int32Array => {
  const [n, k] = matrixShape(x, 'argmaxRows');
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (x.data[i * k + j] > x.data[i * k + best]) best = j;
    out[i] = best;
  }
  return out;
};

// ---- class coverage -------------------------------------------------------------------------------------------

export interface CoverageOptions {
  /** A class counts as covered when its share of the samples is >= this; default 1 / (2K), half the uniform share. */
  readonly threshold?: number;
  /** The class each sample was conditioned on (same length as predicted): adds the conditional accuracy. */
  readonly intended?: ArrayLike<number>;
}

export interface ClassCoverage {
  /** counts[c]: samples the classifier assigns to class c. */
  readonly counts: number[];
  /** shares[c] = counts[c] / N. */
  readonly shares: number[];
  /** The share threshold used. */
  readonly threshold: number;
  /** Number of classes with share >= threshold. */
  readonly covered: number;
  /** covered / K, in [0, 1]. */
  readonly coverage: number;
  /** With `intended`: share of samples whose predicted class is the one they were conditioned on. */
  readonly accuracy?: number;
}

const checkLabels = (labels: ArrayLike<number>, classes: number, what: string): void => {
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!Number.isInteger(c) || c < 0 || c >= classes)
      throw new Error(`classCoverage: ${what}[${i}] = ${c} is not a class in [0, ${classes})`);
  }
};

/**
 * Per-class counts and shares of the classifier's predicted labels for N generated samples over K classes, the
 * number (and fraction) of classes covered (share >= threshold), and, given the conditioning labels, the
 * conditional-generation accuracy.
 */
export function classCoverage(
  predicted: ArrayLike<number>,
  classes: number,
  options: CoverageOptions & { intended: ArrayLike<number> },
): ClassCoverage & { accuracy: number };
export function classCoverage(predicted: ArrayLike<number>, classes: number, options?: CoverageOptions): ClassCoverage;
export function classCoverage(predicted: ArrayLike<number>, classes: number, options: CoverageOptions = {}): ClassCoverage {
  if (!Number.isInteger(classes) || classes < 1) throw new Error(`classCoverage: classes must be a positive integer, got ${classes}`);
  const n = predicted.length;
  if (n === 0) throw new Error('classCoverage: no predicted labels');
  const threshold = options.threshold ?? 1 / (2 * classes);
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`classCoverage: threshold must be in [0, 1], got ${threshold}`);
  checkLabels(predicted, classes, 'predicted');
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < n; i++) counts[predicted[i]]++;
  const shares = counts.map((c) => c / n);
  const covered = shares.filter((s) => s >= threshold).length;
  const result: ClassCoverage = { counts, shares, threshold, covered, coverage: covered / classes };
  const { intended } = options;
  if (intended === undefined) return result;
  if (intended.length !== n) throw new Error(`classCoverage: ${n} predicted labels but ${intended.length} intended labels`);
  checkLabels(intended, classes, 'intended');
  let hits = 0;
  for (let i = 0; i < n; i++) if (predicted[i] === intended[i]) hits++;
  return { ...result, accuracy: hits / n };
}
