// TensorFlow.js peers: the reference MLP step, a square matmul and the forward conv on the `cpu` and `wasm` backends
// (and on `webgpu` through tfjsWebgpu.ts, which hands these classes its own TfjsDriver).
// Every backend lives in one tfjs-core engine, which has ONE active backend at a time: every entry point below
// first makes its own backend active (tensors created on one backend and used on another are silently copied).
// In Node the wasm backend is single-threaded: tfjs-backend-wasm 4.x answers WASM_HAS_MULTITHREAD_SUPPORT with
// false whenever IS_NODE (tfjs issue #3830), so it loads tfjs-backend-wasm-simd.wasm, never the threaded binary.
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
// Imported for its side effects: the union package's Node bundle is what registers the gradient of every kernel
// (tfjs-core's CJS bundle registers none, and its ESM register_all_gradients.js cannot be imported by Node ESM).
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import type { ConvPeer, MatmulPeer, PeerSystem } from './types.ts';
import {
  ADAM,
  BATCH,
  CONV,
  EMB_DIM,
  POINT_DIM,
  T_STEPS,
  convInputs,
  eightGaussians,
  initParams,
  timeFreqs,
  type ConvWorkload,
} from '../../workloads/reference.ts';

export type TfjsBackend = 'cpu' | 'wasm';

const require = createRequire(import.meta.url);
const TFJS_VERSION: string = tf.version_core;

let wasmPathsSet = false;
/** Point the wasm backend at the .wasm files in node_modules (file paths, no network). */
const setLocalWasmPaths = (): void => {
  if (wasmPathsSet) return;
  const dist = require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm').replace(/tfjs-backend-wasm\.wasm$/, '');
  tfwasm.setWasmPaths(dist);
  wasmPathsSet = true;
};

/** Make `name` the active tfjs backend (cheap when it already is); a name other than cpu and wasm must be registered. */
export const useTfjsBackend = async (name: string): Promise<void> => {
  // engine().backendName, not getBackend(): getBackend() would first initialise the highest-priority backend
  if (tf.engine().backendName === name) return;
  if (name === 'wasm') setLocalWasmPaths();
  if (!(await tf.setBackend(name))) throw new Error(`TensorFlow.js: backend '${name}' failed to initialise`);
  await tf.ready();
};

/** What actually ran, in words: the wasm backend's SIMD and thread count, read back from tfjs. */
const describeBackend = async (name: TfjsBackend): Promise<string> => {
  if (name === 'cpu') return 'cpu (plain JS, 1 thread)';
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = tfwasm.getThreadsCount();
  return `wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})`;
};

/**
 * One tfjs backend as the peer classes use it: the wasm and cpu drivers are below, webgpu's in tfjsWebgpu.ts (in Node it
 * must set navigator.gpu before the backend's package is imported, which is when that package registers the backend).
 */
export interface TfjsDriver {
  /** tfjs's name of the backend */
  readonly name: string;
  /** make it the active backend (initialising it on first use) */
  use(): Promise<void>;
  /** what actually ran, in words (called after use()) */
  describe(): Promise<string>;
  /**
   * Resolves when `t` has been computed. cpu and wasm compute inside the op, so a read-back proves it; a GPU backend
   * may wait for its queue instead, as jax-js's blockUntilReady and fusediff's resident matmul do.
   */
  settle(t: tf.Tensor): Promise<void>;
}

const cpuOrWasm = (name: TfjsBackend): TfjsDriver => ({
  name,
  use: () => useTfjsBackend(name),
  describe: () => describeBackend(name),
  settle: async (t) => void (await t.data()),
});

interface TfLayer {
  w: tf.Variable<tf.Rank.R2>;
  b: tf.Variable<tf.Rank.R1>;
}

/** The denoiser loss on given x0 [B,2], eps [B,2] and t [B,1] (float): everything but the draws, for step and probe. */
const lossOf = (layers: TfLayer[], x0: tf.Tensor2D, freqs: tf.Tensor2D, eps: tf.Tensor2D, t: tf.Tensor2D): tf.Scalar => {
  const ang = tf.mul(t, Math.PI / 2 / T_STEPS);
  const xt = tf.add(tf.mul(tf.cos(ang), x0), tf.mul(tf.sin(ang), eps));
  const arg = tf.matMul(t, freqs); // [B,1] x [1,32]: the outer product t * freqs
  let h: tf.Tensor = tf.concat([xt, tf.cos(arg), tf.sin(arg)], 1);
  layers.forEach((l, i) => {
    // fused matmul + bias: what tf.layers.dense does; SiLU is not a fused activation in tfjs, so x * sigmoid(x)
    h = tf.fused.matMul({ a: h as tf.Tensor2D, b: l.w, bias: l.b });
    if (i + 1 < layers.length) h = tf.mul(h, tf.sigmoid(h));
  });
  return tf.mean(tf.squaredDifference(h, eps));
};

export class TfjsMlp implements PeerSystem {
  readonly system = `TensorFlow.js ${TFJS_VERSION}`;
  backend: string;
  readonly noise =
    'tf.randomNormal / tf.randomUniform(int32) per step: ' +
    'drawn on the host by tfjs-core (seedrandom) and uploaded, as tfjs does on every backend';
  private layers: TfLayer[] = [];
  private x0?: tf.Tensor2D;
  private freqs?: tf.Tensor2D;
  private opt?: tf.AdamOptimizer;
  private last = NaN;
  private steps = 0;
  constructor(
    private readonly driver: TfjsDriver,
    private readonly seed = 1234,
  ) {
    this.backend = driver.name;
  }

  async setup(): Promise<void> {
    await this.driver.use();
    this.backend = await this.driver.describe();
    // inside tidy: tf.variable shares the initial tensor's data, and tidy frees that tensor (not the variable)
    this.layers = tf.tidy(() =>
      initParams().map((p) => ({
        w: tf.variable(tf.tensor2d(p.w, [p.inDim, p.outDim]), true),
        b: tf.variable(tf.tensor1d(p.b), true),
      })),
    );
    this.x0 = tf.tensor2d(eightGaussians(), [BATCH, POINT_DIM]);
    this.freqs = tf.tensor2d(timeFreqs(), [1, EMB_DIM / 2]);
    this.opt = tf.train.adam(ADAM.lr, ADAM.beta1, ADAM.beta2, ADAM.eps);
  }

  async step(): Promise<void> {
    await this.driver.use();
    const { x0, freqs, opt } = this.ready();
    const s = this.seed + this.steps++;
    const vars = this.layers.flatMap((l) => [l.w, l.b]);
    const cost = opt.minimize(
      () => {
        const eps = tf.randomNormal([BATCH, POINT_DIM], 0, 1, 'float32', s) as tf.Tensor2D;
        const t = tf.cast(tf.randomUniform([BATCH, 1], 0, T_STEPS, 'int32', s + 0x9e3779b9), 'float32') as tf.Tensor2D;
        return lossOf(this.layers, x0, freqs, eps, t);
      },
      true,
      vars,
    );
    if (!cost) throw new Error('TensorFlow.js: minimize returned no cost');
    this.last = (await cost.data())[0];
    cost.dispose();
  }

  async loss(): Promise<number> {
    return this.last;
  }

  async evalLoss(eps: Float32Array, t: Int32Array): Promise<number> {
    await this.driver.use();
    const { x0, freqs } = this.ready();
    const l = tf.tidy(() =>
      lossOf(this.layers, x0, freqs, tf.tensor2d(eps, [BATCH, POINT_DIM]), tf.tensor2d(Float32Array.from(t), [BATCH, 1])),
    );
    const v = (await l.data())[0];
    l.dispose();
    return v;
  }

  async dispose(): Promise<void> {
    for (const l of this.layers) tf.dispose([l.w, l.b]);
    this.layers = [];
    tf.dispose([this.x0, this.freqs].filter((x): x is tf.Tensor2D => x !== undefined));
    this.opt?.dispose();
    this.x0 = this.freqs = this.opt = undefined;
  }

  private ready(): { x0: tf.Tensor2D; freqs: tf.Tensor2D; opt: tf.AdamOptimizer } {
    if (!this.x0 || !this.freqs || !this.opt) throw new Error(`TensorFlow.js ${this.driver.name}: call setup() before step()`);
    return { x0: this.x0, freqs: this.freqs, opt: this.opt };
  }
}

export class TfjsMatmul implements MatmulPeer {
  readonly system = `TensorFlow.js ${TFJS_VERSION}`;
  backend: string;
  private a?: tf.Tensor2D;
  private b?: tf.Tensor2D;
  constructor(private readonly driver: TfjsDriver) {
    this.backend = driver.name;
  }

  async setup(n: number): Promise<void> {
    await this.driver.use();
    this.backend = await this.driver.describe();
    await this.dispose();
    this.a = tf.randomUniform([n, n], -1, 1, 'float32', 1) as tf.Tensor2D;
    this.b = tf.randomUniform([n, n], -1, 1, 'float32', 2) as tf.Tensor2D;
  }

  async run(): Promise<void> {
    await this.driver.use();
    if (!this.a || !this.b) throw new Error(`TensorFlow.js ${this.driver.name}: call setup(n) before run()`);
    const c = tf.matMul(this.a, this.b);
    await this.driver.settle(c);
    c.dispose();
  }

  async readback(): Promise<{ a: Float32Array; b: Float32Array; c: Float32Array }> {
    await this.driver.use();
    if (!this.a || !this.b) throw new Error(`TensorFlow.js ${this.driver.name}: call setup(n) before readback()`);
    const c = tf.matMul(this.a, this.b);
    const [a, b, cv] = await Promise.all([this.a.data<'float32'>(), this.b.data<'float32'>(), c.data<'float32'>()]);
    c.dispose();
    return { a, b, c: cv };
  }

  async dispose(): Promise<void> {
    tf.dispose([this.a, this.b].filter((x): x is tf.Tensor2D => x !== undefined));
    this.a = this.b = undefined;
  }
}

export class TfjsConv implements ConvPeer {
  readonly system = `TensorFlow.js ${TFJS_VERSION}`;
  backend: string;
  private x?: tf.Tensor4D;
  private w?: tf.Tensor4D;
  constructor(private readonly driver: TfjsDriver) {
    this.backend = driver.name;
  }

  async setup(conv: ConvWorkload = CONV): Promise<void> {
    await this.driver.use();
    this.backend = await this.driver.describe();
    await this.dispose();
    // tf.conv2d's layouts: input NHWC [N, H, W, C] and filter [KH, KW, C, O] (fusediff and jax-js: NCHW and OIHW).
    // The same values are read in the other layout: the FLOPs are the same, and timing is what this row measures.
    const { x, w } = convInputs(conv);
    this.x = tf.tensor4d(x, [conv.batch, conv.size, conv.size, conv.inChannels]);
    this.w = tf.tensor4d(w, [conv.kernel, conv.kernel, conv.inChannels, conv.outChannels]);
  }

  async run(): Promise<void> {
    await this.driver.use();
    if (!this.x || !this.w) throw new Error(`TensorFlow.js ${this.driver.name}: call setup() before run()`);
    const y = tf.conv2d(this.x, this.w, 1, 'same');
    await y.data(); // read back, as fusediff's and jax-js's rows do
    y.dispose();
  }

  async dispose(): Promise<void> {
    tf.dispose([this.x, this.w].filter((t): t is tf.Tensor4D => t !== undefined));
    this.x = this.w = undefined;
  }
}

/** The reference MLP denoiser step on TensorFlow.js `cpu` or `wasm` (tf.train.adam via optimizer.minimize). */
export const tfjsMlp = (backend: TfjsBackend): PeerSystem => new TfjsMlp(cpuOrWasm(backend));
/** An n x n x n f32 tf.matMul on TensorFlow.js `cpu` or `wasm`. */
export const tfjsMatmul = (backend: TfjsBackend): MatmulPeer => new TfjsMatmul(cpuOrWasm(backend));
/** One forward tf.conv2d (NHWC, 'same') on TensorFlow.js `cpu` or `wasm`. */
export const tfjsConv = (backend: TfjsBackend): ConvPeer => new TfjsConv(cpuOrWasm(backend));
/** Live tensors in the tfjs engine (for soak checks: must stay flat across steps). */
export const tfjsNumTensors = (): number => tf.engine().state.numTensors;
