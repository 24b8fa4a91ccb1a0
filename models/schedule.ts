// Variance-preserving noise schedules as host float64 tables (t = 1..T at index t-1), and the two in-graph helpers
// that read them per sample: alpha/sigma lookup and uniform timestep draws.
import { oneHot } from '../dsl/composites.ts';
import * as op from '../dsl/ops.ts';
import type { RandomOptions } from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';

/** A variance-preserving noise schedule as host float64 tables over t = 1..T (index t-1): abar, alpha and sigma. */
export interface Schedule {
  readonly name: string;
  readonly T: number;
  /** abar_t at index t-1, t = 1..T */
  readonly alphaBar: Float64Array;
  /** sqrt(abar_t): the signal coefficient of x_t = alpha x0 + sigma eps */
  readonly alpha: Float64Array;
  /** sqrt(1 - abar_t): the noise coefficient */
  readonly sigma: Float64Array;
}

const checkT = (T: number): void => {
  if (!Number.isInteger(T) || T < 1) throw new Error(`schedule: T must be a positive integer, got ${T}`);
};

/** A schedule from its abar table; alpha and sigma are taken from abar directly so alpha^2 + sigma^2 = 1 to round-off. */
export const fromAlphaBar = (name: string, alphaBar: Float64Array): Schedule => {
  for (const [i, a] of alphaBar.entries())
    if (!(a >= 0 && a <= 1)) throw new Error(`schedule ${name}: abar at t=${i + 1} is ${a}, outside [0, 1]`);
  return { name, T: alphaBar.length, alphaBar, alpha: alphaBar.map(Math.sqrt), sigma: alphaBar.map((a) => Math.sqrt(1 - a)) };
};

/** abar_t = prod_{s<=t} (1 - beta_s). */
export const fromBetas = (name: string, betas: ArrayLike<number>): Schedule => {
  const alphaBar = new Float64Array(betas.length);
  let prod = 1;
  for (let i = 0; i < betas.length; i++) alphaBar[i] = prod *= 1 - betas[i];
  return fromAlphaBar(name, alphaBar);
};

const linspace = (a: number, b: number, n: number): Float64Array =>
  Float64Array.from({ length: n }, (_, i) => (n === 1 ? a : a + ((b - a) * i) / (n - 1)));

/** DDPM (Ho et al. 2020): betas linear from betaStart to betaEnd. */
export const linearSchedule = (T = 1000, betaStart = 1e-4, betaEnd = 0.02): Schedule => {
  checkT(T);
  return fromBetas(`linear(T=${T}, ${betaStart}, ${betaEnd})`, linspace(betaStart, betaEnd, T));
};

/** Stable Diffusion's "scaled_linear": betas = linspace(sqrt(b0), sqrt(b1))^2. */
export const scaledLinearSchedule = (T = 1000, betaStart = 0.00085, betaEnd = 0.012): Schedule => {
  checkT(T);
  return fromBetas(
    `scaledLinear(T=${T}, ${betaStart}, ${betaEnd})`,
    linspace(Math.sqrt(betaStart), Math.sqrt(betaEnd), T).map((b) => b * b),
  );
};

/**
 * Nichol & Dhariwal 2021: abar(t) = f(t)/f(0), f(t) = cos(((t/T) + s)/(1 + s) * pi/2)^2, realised through
 * beta_t = min(1 - abar(t)/abar(t-1), 0.999). The clip keeps the last step from being a pure-noise step
 * (beta_T would be ~1), so abar_T is small but not zero; rescaleZeroTerminalSnr makes it zero.
 */
export const cosineSchedule = (T = 1000, s = 0.008): Schedule => {
  checkT(T);
  const f = (t: number) => Math.cos(((t / T + s) / (1 + s)) * (Math.PI / 2)) ** 2;
  const betas = Float64Array.from({ length: T }, (_, i) => Math.min(1 - f(i + 1) / f(i), 0.999));
  return fromBetas(`cosine(T=${T}, s=${s})`, betas);
};

/**
 * Lin et al. 2023 ("Common Diffusion Noise Schedules and Sample Steps are Flawed"), Algorithm 1: shift sqrt(abar)
 * so its last value is 0, then scale so its first value is unchanged; abar = the square. The last step becomes
 * pure noise (abar_T = 0 exactly, SNR_T = 0), which is what the sampler meets at t = T. First value is re-set
 * exactly rather than trusting (a0 - aT) * a0 / (a0 - aT) to round back to a0.
 */
export const rescaleZeroTerminalSnr = (sched: Schedule): Schedule => {
  const a = sched.alpha;
  const a0 = a[0],
    aT = a[a.length - 1];
  if (!(a0 > aT)) throw new Error(`rescaleZeroTerminalSnr: ${sched.name} needs sqrt(abar) to decrease (first ${a0}, last ${aT})`);
  const scale = a0 / (a0 - aT);
  const rescaled = a.map((v) => (v - aT) * scale);
  rescaled[0] = a0;
  rescaled[a.length - 1] = 0;
  return fromAlphaBar(
    `zeroTerminal(${sched.name})`,
    rescaled.map((v) => v * v),
  );
};

/** SNR_t = abar_t / (1 - abar_t) = (alpha/sigma)^2; 0 at a zero-terminal t = T. */
export const snr = (sched: Schedule): Float64Array => sched.alphaBar.map((a) => a / (1 - a));

// ---- in-graph helpers -------------------------------------------------------------------------------------

/**
 * Per-sample alpha_t, sigma_t for integer-valued float timesteps t [B] in 1..T. The IR has no gather primitive
 * (gpu.js writes one output per thread and cannot scatter a gather's backward), so the lookup is a one-hot select,
 * split in two levels to keep it cheap: t - 1 = hi K + lo with K a power of two (so (t-1)/K is exact in f32),
 * rows = oneHot(hi, H) [B, H] @ table [H, K*2], then the lo-th pair of each row by oneHot(lo, K) and a sum. Every
 * product is 1 * value or 0 * value, so the result is exactly the table entry. One level (oneHot [B, T] @ [T, 2])
 * materialises B*T one-hot values; two levels make B*(H+K) of them (measured 26 -> ~10 ms at B=2000, T=1000 on
 * cpu). A t outside 1..T gives alpha = sigma = 0, so callers must keep t in range (sampleTimesteps does).
 */
export const alphaSigmaAt = (sched: Schedule, t: Tensor): { alpha: Tensor; sigma: Tensor } => {
  if (t.rank !== 1) throw new Error(`alphaSigmaAt: t must be [B], got [${t.shape.join(',')}]`);
  const B = t.shape[0];
  const K = 2 ** Math.ceil(Math.log2(Math.sqrt(sched.T))),
    H = Math.ceil(sched.T / K);
  const table = new Float64Array(H * K * 2); // [h, 2k + j]: (alpha, sigma) of t = hK + k + 1, zero past T
  for (let i = 0; i < sched.T; i++) [table[2 * i], table[2 * i + 1]] = [sched.alpha[i], sched.sigma[i]];
  const i0 = op.sub(t, 1);
  const hi = op.floor(op.div(i0, K));
  const lo = op.sub(i0, op.mul(hi, K));
  const rows = op.reshape(op.matmul(oneHot(hi, H), op.constant(table, [H, 2 * K])), [B, K, 2]);
  const pair: Tensor = op.sum(op.mul(rows, op.reshape(oneHot(lo, K), [B, K, 1])), 1); // [B, 2]
  return { alpha: op.reshape(op.slice(pair, [null, [0, 1]]), [B]), sigma: op.reshape(op.slice(pair, [null, [1, 2]]), [B]) };
};

/**
 * B timesteps uniform on {1..T}: floor(u * T) + 1 with u ~ U(0, 1) from the counter RNG. u < 1, but u * T can
 * round up to T in f32 for large T, so the index is clamped at T - 1 before the +1 (a ~2^-23 bias, harmless).
 */
export const sampleTimesteps = (T: number | Schedule, B: number, rng: RandomOptions): Tensor<[number]> => {
  const n = typeof T === 'number' ? T : T.T;
  checkT(n);
  const u = op.uniform([B], rng);
  return op.add(op.minimum(op.floor(op.mul(u, n)), n - 1), 1) as Tensor<[number]>;
};
