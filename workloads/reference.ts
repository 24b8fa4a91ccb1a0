// The reference workload of the peer benchmark (issue 3, section 8): one number each, shared by fusediff's own
// benchmark and every peer, so all systems train exactly the same model on the same data with the same optimizer.
//
// Model: an eps-prediction MLP denoiser. Input = [x_t (2), sinusoidal embedding of t (64)] -> 66 -> 256 -> 256 -> 256
// -> 2, SiLU after each hidden layer, every linear layer with a bias. Loss: mean over all B*2 entries of
// (net(x_t, t) - eps)^2 with x_t = alpha(t) x0 + sigma(t) eps, eps ~ N(0, 1), t ~ U{0..T-1} (integers),
// alpha = cos(pi/2 t/T), sigma = sin(pi/2 t/T). Optimizer: Adam (bias-corrected, eps outside the sqrt).
// Data: x0 is one fixed batch of B points from 8 Gaussians (full-batch training on a fixed data set); eps and t
// are fresh every step and drawn by each system itself (see each peer's `noise` field for where).

/** Batch size: samples per step. */
export const BATCH = 512;
/** Input point dimension (and output dimension: eps has the shape of x). */
export const POINT_DIM = 2;
/** Width of the sinusoidal time embedding: half cos, half sin. */
export const EMB_DIM = 64;
/** Number of diffusion timesteps; t is drawn uniformly from the integers 0..T-1. */
export const T_STEPS = 1000;
/** Hidden width and depth. */
export const HIDDEN = 256;
/** Layer sizes, input first: 66 -> 256 -> 256 -> 256 -> 2 (four linear layers, each with a bias). */
export const LAYER_SIZES: readonly number[] = [POINT_DIM + EMB_DIM, HIDDEN, HIDDEN, HIDDEN, POINT_DIM];

/** Adam hyper-parameters. */
export const ADAM = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;

/** Seeds: parameter init and the fixed data set. */
export const PARAM_SEED = 0;
export const DATA_SEED = 1;

/** Matmul sizes for the GFLOP/s table (square n x n x n, f32). */
export const MATMUL_SIZES: readonly number[] = [256, 512, 1024];
/** FLOPs of one n x n x n matmul. */
export const matmulFlops = (n: number): number => 2 * n * n * n;

/** One forward 2-D convolution for the conv GFLOP/s table: stride 1, 'same' padding (odd kernel), no bias. */
export interface ConvWorkload {
  readonly batch: number;
  readonly inChannels: number;
  readonly outChannels: number;
  /** height = width of the input and (stride 1, 'same') of the output */
  readonly size: number;
  /** kernel height = width (odd, so 'same' pads (kernel - 1) / 2 on every side) */
  readonly kernel: number;
  readonly stride: 1;
  readonly padding: 'same';
}
/** The conv workload: a UNet-sized 3x3 conv, 16 x 32 x 16 x 16 in, 32 out (75.5 MFLOP). */
export const CONV: ConvWorkload = { batch: 16, inChannels: 32, outChannels: 32, size: 16, kernel: 3, stride: 1, padding: 'same' };
/** FLOPs of one forward conv: 2 N O H W C KH KW (a multiply and an add per tap, padding taps included). */
export const convFlops = (c: ConvWorkload): number => 2 * c.batch * c.outChannels * c.size * c.size * c.inChannels * c.kernel * c.kernel;
/** Deterministic inputs in [-0.5, 0.5): x as NCHW [N, C, H, W] and w as OIHW [O, C, KH, KW] (the peers transpose as they need). */
export const convInputs = (c: ConvWorkload): { x: Float32Array; w: Float32Array } => ({
  x: Float32Array.from({ length: c.batch * c.inChannels * c.size * c.size }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5),
  w: Float32Array.from({ length: c.outChannels * c.inChannels * c.kernel * c.kernel }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5),
});

/** freqs_i = exp(-ln(10000) i / (EMB_DIM/2)), i = 0..EMB_DIM/2-1; emb(t) = [cos(t freqs), sin(t freqs)]. */
export const timeFreqs = (): Float32Array => {
  const half = EMB_DIM / 2;
  const f = new Float32Array(half);
  for (let i = 0; i < half; i++) f[i] = Math.exp((-Math.log(10000) * i) / half);
  return f;
};

/** alpha(t), sigma(t) of the cosine-like schedule: cos / sin of pi/2 * t/T. */
export const alphaSigma = (t: number): [alpha: number, sigma: number] => {
  const a = ((Math.PI / 2) * t) / T_STEPS;
  return [Math.cos(a), Math.sin(a)];
};

/** mulberry32: a small deterministic PRNG for host-side init and data (not for the per-step noise). */
export const mulberry32 = (seed: number): (() => number) => {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
};

/** Standard normals by Box-Muller from a uniform source. */
export const gaussianSource =
  (uniform: () => number): (() => number) =>
  () => {
    const u1 = Math.max(uniform(), 1e-12);
    const u2 = uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  };

/** Eight Gaussians on a circle of radius 2, std 0.1: n points, row-major [n, 2]. Deterministic in (n, seed). */
export const eightGaussians = (n: number = BATCH, seed: number = DATA_SEED): Float32Array => {
  const u = mulberry32(seed);
  const g = gaussianSource(u);
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const k = Math.floor(u() * 8);
    out[2 * i] = 2 * Math.cos((k * Math.PI) / 4) + 0.1 * g();
    out[2 * i + 1] = 2 * Math.sin((k * Math.PI) / 4) + 0.1 * g();
  }
  return out;
};

/** One linear layer: w is [in, out] row-major (y = x w + b), b is [out]. */
export interface LayerInit {
  inDim: number;
  outDim: number;
  w: Float32Array;
  b: Float32Array;
}

/** PyTorch's default Linear init (U(-1/sqrt(in), 1/sqrt(in)) for w and b), deterministic in the seed. */
export const initParams = (seed: number = PARAM_SEED): LayerInit[] => {
  const u = mulberry32(seed);
  const layers: LayerInit[] = [];
  for (let l = 0; l + 1 < LAYER_SIZES.length; l++) {
    const inDim = LAYER_SIZES[l],
      outDim = LAYER_SIZES[l + 1];
    const bound = 1 / Math.sqrt(inDim);
    const w = new Float32Array(inDim * outDim);
    for (let i = 0; i < w.length; i++) w[i] = (2 * u() - 1) * bound;
    const b = new Float32Array(outDim);
    for (let i = 0; i < b.length; i++) b[i] = (2 * u() - 1) * bound;
    layers.push({ inDim, outDim, w, b });
  }
  return layers;
};

/** Total parameter count (66*256+256 + 2*(256*256+256) + 256*2+2 = 149,250). */
export const paramCount = (): number => initParams().reduce((s, l) => s + l.w.length + l.b.length, 0);

/** A fixed probe batch (eps [B,2], integer t [B]) on which every system's loss must agree before training. */
export const probeNoise = (seed = 7): { eps: Float32Array; t: Int32Array } => {
  const u = mulberry32(seed);
  const g = gaussianSource(u);
  const eps = new Float32Array(BATCH * POINT_DIM);
  for (let i = 0; i < eps.length; i++) eps[i] = g();
  const t = new Int32Array(BATCH);
  for (let i = 0; i < BATCH; i++) t[i] = Math.floor(u() * T_STEPS);
  return { eps, t };
};

/** The loss in float64 plain JS: the oracle for `probeNoise` (same formula as every peer). */
export const referenceLoss = (params: readonly LayerInit[], x0: Float32Array, eps: Float32Array, t: Int32Array): number => {
  const freqs = timeFreqs();
  const half = EMB_DIM / 2;
  let h = new Float64Array(BATCH * LAYER_SIZES[0]);
  for (let i = 0; i < BATCH; i++) {
    const [a, s] = alphaSigma(t[i]);
    const row = i * LAYER_SIZES[0];
    for (let d = 0; d < POINT_DIM; d++) h[row + d] = a * x0[i * POINT_DIM + d] + s * eps[i * POINT_DIM + d];
    for (let j = 0; j < half; j++) {
      const arg = t[i] * freqs[j];
      h[row + POINT_DIM + j] = Math.cos(arg);
      h[row + POINT_DIM + half + j] = Math.sin(arg);
    }
  }
  params.forEach((p, l) => {
    const out = new Float64Array(BATCH * p.outDim);
    for (let i = 0; i < BATCH; i++)
      for (let o = 0; o < p.outDim; o++) {
        let acc = p.b[o];
        for (let k = 0; k < p.inDim; k++) acc += h[i * p.inDim + k] * p.w[k * p.outDim + o];
        out[i * p.outDim + o] = l + 1 < params.length ? acc / (1 + Math.exp(-acc)) : acc;
      }
    h = out;
  });
  let sum = 0;
  for (let i = 0; i < h.length; i++) sum += (h[i] - eps[i]) ** 2;
  return sum / h.length;
};
