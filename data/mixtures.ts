// 2-D data sets with known densities, for exact sample-quality metrics.
//
// Definitions (all exact; logDensity is the exact log density of the distribution that `sample` draws from):
// - eightGaussians: equal-weight mixture of 8 isotropic Gaussians, centres on the circle of radius 2 at angles
//   2 pi k / 8, std 0.1.
// - grid25: equal-weight mixture of 25 isotropic Gaussians centred on {-2,-1,0,1,2}^2, std 0.05.
// - checkerboard: uniform on the 8 "dark" unit cells [i, i+1) x [j, j+1), i, j in {-2,-1,0,1}, i + j even, of
//   the 4x4 board [-2, 2)^2; density 1/8 on the support, 0 (log density -Infinity) outside.
// - twoMoons: a mixture of thin Gaussians along the arcs (not a uniform arc convolved with a Gaussian: that has
//   no closed form). Upper moon centres (cos a, sin a), lower moon centres (1 - cos a, 1/2 - sin a), a = pi k / 49
//   for k = 0..49 (50 per moon, endpoints included), all shifted by (-1/2, -1/4) so the set is centred; 100
//   equal-weight components, std 0.1 (neighbouring centres are 0.064 apart, so each moon is a smooth band).
//
// Metrics (each data set has them bound as methods):
// - meanLogLikelihood: mean of logDensity over the samples (exact; -Infinity for checkerboard as soon as one
//   sample falls off the support);
// - offDataShare: share of samples farther than 3 std (Euclidean) from every component centre of a Gaussian
//   mixture, or outside the support of the checkerboard. True samples of a Gaussian mixture land off the data
//   with probability at most exp(-9/2) = 1.1% (exactly that for well-separated components);
// - modeCoverage: share of modes that receive at least a quarter of their fair share of the samples, i.e.
//   count_m / n >= COVERAGE_THRESHOLD * w_m with COVERAGE_THRESHOLD = 0.25 and w_m the mode's true mass. A sample
//   belongs to the mode of the nearest component within 3 std (Gaussian mixtures) or to its cell (checkerboard).
//   Modes: the 8 and 25 Gaussians, the 8 dark cells, and for twoMoons 10 arc segments (each moon cut into 5
//   runs of 10 consecutive components).
import type { NDArray } from '../core/ndarray.ts';
import { normalAt, randomKey, uniformAt } from '../core/rng.ts';

/** A mode receives enough samples when count / n >= COVERAGE_THRESHOLD * (its true mass). */
export const COVERAGE_THRESHOLD = 0.25;
/** Off the data: farther than OFF_DATA_SIGMAS standard deviations from every component centre. */
export const OFF_DATA_SIGMAS = 3;

const MIXTURE_STREAM = 0x2d_6d_01;

export type Point = readonly [number, number];

export interface Mixture2D {
  readonly name: string;
  readonly description: string;
  /** n points [n,2], deterministic in (n, seed). */
  sample(n: number, seed: number): NDArray;
  /** Exact log density at each row of points [m,2]. */
  logDensity(points: NDArray): Float64Array;
  /** Centres of the Gaussian components (Gaussian mixtures) or of the support's cells (checkerboard). */
  readonly modes: readonly Point[];
  /** Number of coverage modes (the groups modeCoverage counts) and their true masses. */
  readonly coverageModes: number;
  readonly coverageMass: readonly number[];
  /** Coverage mode of a point, or -1 when the point is off the data. */
  assign(x: number, y: number): number;
  /** Analytic mean and covariance [[xx, xy], [xy, yy]]. */
  readonly mean: Point;
  readonly cov: readonly [Point, Point];
  /** A box [xmin, xmax, ymin, ymax] holding all but a negligible share of the mass (plots, integration). */
  readonly bounds: readonly [number, number, number, number];
  meanLogLikelihood(samples: NDArray): number;
  offDataShare(samples: NDArray): number;
  modeCoverage(samples: NDArray): number;
}

const checkPoints = (points: NDArray, who: string): number => {
  if (points.shape.length !== 2 || points.shape[1] !== 2)
    throw new Error(`${who}: expected points of shape [n,2], got [${points.shape.join(',')}]`);
  return points.shape[0];
};

// ---- metrics, generic over the data set -----------------------------------------------------------------

export const meanLogLikelihood = (m: Mixture2D, samples: NDArray): number => {
  const n = checkPoints(samples, 'meanLogLikelihood');
  if (n === 0) return NaN;
  const lp = m.logDensity(samples);
  let s = 0;
  for (let i = 0; i < n; i++) s += lp[i];
  return s / n;
};

export const offDataShare = (m: Mixture2D, samples: NDArray): number => {
  const n = checkPoints(samples, 'offDataShare');
  if (n === 0) return NaN;
  let off = 0;
  for (let i = 0; i < n; i++) if (m.assign(samples.data[2 * i], samples.data[2 * i + 1]) < 0) off++;
  return off / n;
};

/** Per-mode sample counts (index coverageModes counts the off-data samples). */
export const modeCounts = (m: Mixture2D, samples: NDArray): Int32Array => {
  const n = checkPoints(samples, 'modeCounts');
  const counts = new Int32Array(m.coverageModes + 1);
  for (let i = 0; i < n; i++) {
    const k = m.assign(samples.data[2 * i], samples.data[2 * i + 1]);
    counts[k < 0 ? m.coverageModes : k]++;
  }
  return counts;
};

export const modeCoverage = (m: Mixture2D, samples: NDArray): number => {
  const n = checkPoints(samples, 'modeCoverage');
  if (n === 0) return 0;
  const counts = modeCounts(m, samples);
  let covered = 0;
  for (let k = 0; k < m.coverageModes; k++) if (counts[k] / n >= COVERAGE_THRESHOLD * m.coverageMass[k]) covered++;
  return covered / m.coverageModes;
};

const withMetrics = (m: Omit<Mixture2D, 'meanLogLikelihood' | 'offDataShare' | 'modeCoverage'>): Mixture2D => {
  const full: Mixture2D = {
    ...m,
    meanLogLikelihood: (s) => meanLogLikelihood(full, s),
    offDataShare: (s) => offDataShare(full, s),
    modeCoverage: (s) => modeCoverage(full, s),
  };
  return full;
};

const checkN = (n: number): void => {
  if (!Number.isInteger(n) || n < 0 || n >= 1 << 22) throw new Error(`sample: n must be an integer in [0, 2^22), got ${n}`);
};

// ---- isotropic Gaussian mixtures with equal weights ----------------------------------------------------------

/**
 * An equal-weight mixture of isotropic Gaussians with a common std. `group[k]` names the coverage mode of
 * component k (identity by default).
 */
export const isotropicMixture = (spec: {
  name: string;
  description: string;
  centres: readonly Point[];
  std: number;
  group?: readonly number[];
}): Mixture2D => {
  const { centres, std } = spec;
  const K = centres.length;
  const group = spec.group ?? centres.map((_, k) => k);
  const groups = Math.max(...group) + 1;
  const mass = new Array<number>(groups).fill(0);
  for (const g of group) mass[g] += 1 / K;
  const cx = Float64Array.from(centres, (c) => c[0]);
  const cy = Float64Array.from(centres, (c) => c[1]);
  // moments: mean = avg(mu), cov = avg(mu mu^T) + std^2 I - mean mean^T
  let mx = 0,
    my = 0,
    sxx = 0,
    sxy = 0,
    syy = 0;
  for (let k = 0; k < K; k++) {
    mx += cx[k] / K;
    my += cy[k] / K;
    sxx += (cx[k] * cx[k]) / K;
    sxy += (cx[k] * cy[k]) / K;
    syy += (cy[k] * cy[k]) / K;
  }
  const v = std * std;
  const logNorm = -Math.log(2 * Math.PI * v) - Math.log(K);
  const far2 = (OFF_DATA_SIGMAS * std) ** 2;
  let xmin = Infinity,
    xmax = -Infinity,
    ymin = Infinity,
    ymax = -Infinity;
  for (let k = 0; k < K; k++) {
    xmin = Math.min(xmin, cx[k]);
    xmax = Math.max(xmax, cx[k]);
    ymin = Math.min(ymin, cy[k]);
    ymax = Math.max(ymax, cy[k]);
  }
  const pad = 8 * std;
  return withMetrics({
    name: spec.name,
    description: spec.description,
    modes: centres,
    coverageModes: groups,
    coverageMass: mass,
    mean: [mx, my],
    cov: [
      [sxx + v - mx * mx, sxy - mx * my],
      [sxy - mx * my, syy + v - my * my],
    ],
    bounds: [xmin - pad, xmax + pad, ymin - pad, ymax + pad],
    sample(n, seed) {
      checkN(n);
      const kc = randomKey(seed >>> 0, MIXTURE_STREAM, 0);
      const kn = randomKey(seed >>> 0, MIXTURE_STREAM, 1);
      const data = new Float64Array(2 * n);
      for (let i = 0; i < n; i++) {
        const k = Math.min(K - 1, Math.floor(uniformAt(kc, i) * K));
        data[2 * i] = cx[k] + std * normalAt(kn, 2 * i);
        data[2 * i + 1] = cy[k] + std * normalAt(kn, 2 * i + 1);
      }
      return { shape: [n, 2], data };
    },
    logDensity(points) {
      const n = checkPoints(points, 'logDensity');
      const out = new Float64Array(n);
      const e = new Float64Array(K);
      for (let i = 0; i < n; i++) {
        const x = points.data[2 * i],
          y = points.data[2 * i + 1];
        let best = -Infinity;
        for (let k = 0; k < K; k++) {
          const dx = x - cx[k],
            dy = y - cy[k];
          e[k] = -(dx * dx + dy * dy) / (2 * v);
          if (e[k] > best) best = e[k];
        }
        let s = 0;
        for (let k = 0; k < K; k++) s += Math.exp(e[k] - best);
        out[i] = best + Math.log(s) + logNorm;
      }
      return out;
    },
    assign(x, y) {
      let best = -1;
      let bestD = far2;
      for (let k = 0; k < K; k++) {
        const dx = x - cx[k],
          dy = y - cy[k];
        const d = dx * dx + dy * dy;
        if (d <= bestD) {
          bestD = d;
          best = k;
        }
      }
      return best < 0 ? -1 : group[best];
    },
  });
};

export const eightGaussians: Mixture2D = isotropicMixture({
  name: 'eightGaussians',
  description: '8 Gaussians (std 0.1) on the circle of radius 2',
  centres: Array.from({ length: 8 }, (_, k) => [2 * Math.cos((2 * Math.PI * k) / 8), 2 * Math.sin((2 * Math.PI * k) / 8)] as const),
  std: 0.1,
});

export const grid25: Mixture2D = isotropicMixture({
  name: 'grid25',
  description: '5x5 grid of Gaussians (std 0.05) centred on {-2,...,2}^2',
  centres: Array.from({ length: 25 }, (_, k) => [(k % 5) - 2, Math.floor(k / 5) - 2] as const),
  std: 0.05,
});

const MOON_POINTS = 50;
const MOON_SEGMENTS = 5;

export const twoMoons: Mixture2D = isotropicMixture({
  name: 'twoMoons',
  description: 'two moons: 100 Gaussians (std 0.1) along two interleaved half circles of radius 1',
  centres: [
    ...Array.from({ length: MOON_POINTS }, (_, k) => {
      const a = (Math.PI * k) / (MOON_POINTS - 1);
      return [Math.cos(a) - 0.5, Math.sin(a) - 0.25] as const;
    }),
    ...Array.from({ length: MOON_POINTS }, (_, k) => {
      const a = (Math.PI * k) / (MOON_POINTS - 1);
      return [1 - Math.cos(a) - 0.5, 0.5 - Math.sin(a) - 0.25] as const;
    }),
  ],
  std: 0.1,
  group: Array.from({ length: 2 * MOON_POINTS }, (_, k) => Math.floor(k / (MOON_POINTS / MOON_SEGMENTS))),
});

// ---- checkerboard ------------------------------------------------------------------------------------------

const BOARD = 2; // the board is [-BOARD, BOARD)^2 with unit cells

const checkerCells: readonly Point[] = (() => {
  const cells: Point[] = [];
  for (let j = -BOARD; j < BOARD; j++) for (let i = -BOARD; i < BOARD; i++) if ((((i + j) % 2) + 2) % 2 === 0) cells.push([i, j]);
  return cells;
})();

export const checkerboard: Mixture2D = (() => {
  const C = checkerCells.length; // 8
  const cellIndex = new Map(checkerCells.map((c, k) => [`${c[0]},${c[1]}`, k]));
  const assign = (x: number, y: number): number => {
    if (!(x >= -BOARD && x < BOARD && y >= -BOARD && y < BOARD)) return -1;
    return cellIndex.get(`${Math.floor(x)},${Math.floor(y)}`) ?? -1;
  };
  // moments: uniform on cells => mean = avg centre, cov = avg(c c^T) + I/12 - mean mean^T
  let mx = 0,
    my = 0,
    sxx = 0,
    sxy = 0,
    syy = 0;
  for (const [i, j] of checkerCells) {
    const x = i + 0.5,
      y = j + 0.5;
    mx += x / C;
    my += y / C;
    sxx += (x * x) / C;
    sxy += (x * y) / C;
    syy += (y * y) / C;
  }
  return withMetrics({
    name: 'checkerboard',
    description: 'uniform on the 8 dark unit cells of a 4x4 checkerboard on [-2,2)^2 (density 1/8 on the support)',
    modes: checkerCells.map(([i, j]) => [i + 0.5, j + 0.5] as const),
    coverageModes: C,
    coverageMass: new Array<number>(C).fill(1 / C),
    mean: [mx, my],
    cov: [
      [sxx + 1 / 12 - mx * mx, sxy - mx * my],
      [sxy - mx * my, syy + 1 / 12 - my * my],
    ],
    bounds: [-BOARD, BOARD, -BOARD, BOARD],
    sample(n, seed) {
      checkN(n);
      const kc = randomKey(seed >>> 0, MIXTURE_STREAM, 2);
      const ku = randomKey(seed >>> 0, MIXTURE_STREAM, 3);
      const data = new Float64Array(2 * n);
      for (let i = 0; i < n; i++) {
        const [ci, cj] = checkerCells[Math.min(C - 1, Math.floor(uniformAt(kc, i) * C))];
        data[2 * i] = ci + uniformAt(ku, 2 * i); // uniformAt is in the open (0, 1): the point stays in its cell
        data[2 * i + 1] = cj + uniformAt(ku, 2 * i + 1);
      }
      return { shape: [n, 2], data };
    },
    logDensity(points) {
      const n = checkPoints(points, 'logDensity');
      const out = new Float64Array(n);
      const inside = -Math.log(C);
      for (let i = 0; i < n; i++) out[i] = assign(points.data[2 * i], points.data[2 * i + 1]) >= 0 ? inside : -Infinity;
      return out;
    },
    assign,
  });
})();

/** The 2-D data sets by name. */
export const mixtures = { eightGaussians, grid25, checkerboard, twoMoons } as const;
export type MixtureName = keyof typeof mixtures;
