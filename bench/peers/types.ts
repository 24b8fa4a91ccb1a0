// The interface every peer system (and fusediff's own benchmark rows) implements, so one tinybench harness can run
// them side by side in one process. Every method that returns a promise is synchronised: when it resolves, the
// work is done on the backend (results awaited or read back), so wall-clock timings around it are honest.
import type { ConvWorkload } from '../../workloads/reference.ts';

/** A training-step runner for the reference MLP denoiser workload (see workload.ts). */
export interface PeerSystem {
  /** e.g. 'TensorFlow.js 4.22.0' */
  readonly system: string;
  /** e.g. 'wasm (SIMD, 1 thread)'; filled in after setup() with what actually ran */
  readonly backend: string;
  /** where eps and t are drawn each step, in words (e.g. 'inside the jitted step (threefry on wasm)') */
  readonly noise: string;
  /** initialise the backend, upload the workload's initial parameters and data set, compile whatever is compiled */
  setup(): Promise<void>;
  /** one training step: forward + backward + Adam update, on a fresh draw of eps and t; resolves when finished */
  step(): Promise<void>;
  /** the loss of the most recent step() (NaN before the first) */
  loss(): Promise<number>;
  /**
   * The loss of the current parameters on a given batch (eps [B*2], integer t [B]) without updating anything:
   * used to prove every system computes the same function (compare with workload.referenceLoss).
   */
  evalLoss(eps: Float32Array, t: Int32Array): Promise<number>;
  /** free every tensor / array the peer holds */
  dispose(): Promise<void>;
}

/** A square f32 matmul runner: C = A B with A, B n x n, created once in setup(). */
export interface MatmulPeer {
  readonly system: string;
  readonly backend: string;
  setup(n: number): Promise<void>;
  /** one n x n x n f32 matmul; resolves when the product is computed (awaited on the backend) */
  run(): Promise<void>;
  /** the operands and one product read back to the host, for checkMatmul (bench/peers/matmulCheck.ts) before timing */
  readback?(): Promise<{ a: Float32Array; b: Float32Array; c: Float32Array }>;
  dispose(): Promise<void>;
}

/**
 * One forward 2-D convolution (workloads/reference.ts CONV: stride 1, 'same' padding, no bias), inputs created
 * once in setup(). Each system uses its native layout (fusediff and jax-js NCHW / OIHW, TF.js NHWC / HWIO): the
 * FLOPs are the same, and the timing is what the table compares.
 */
export interface ConvPeer {
  readonly system: string;
  /** filled in after setup() with what actually ran */
  readonly backend: string;
  setup(conv?: ConvWorkload): Promise<void>;
  /** one forward conv; resolves when the output is computed and read back (or awaited on the backend) */
  run(): Promise<void>;
  dispose(): Promise<void>;
}
