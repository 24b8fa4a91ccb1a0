// Means over seeds with a 95% confidence interval: Student's t, because three seeds are far too few for the normal
// approximation (t_0.975 with 2 degrees of freedom is 4.30, not 1.96).

/** t_0.975 for 1..30 degrees of freedom (beyond 30, the normal 1.96 is within 4%). */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086,
  2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export interface MeanInterval {
  readonly mean: number;
  /** half-width of the 95% interval of the mean (0 for a single value: no spread is known, none is claimed) */
  readonly half: number;
  readonly n: number;
}

export const meanInterval = (xs: readonly number[]): MeanInterval => {
  const n = xs.length;
  if (n === 0) throw new Error('meanInterval: no values');
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, half: 0, n };
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  const t = n - 1 <= T975.length ? T975[n - 2] : 1.96;
  return { mean, half: t * Math.sqrt(variance / n), n };
};
