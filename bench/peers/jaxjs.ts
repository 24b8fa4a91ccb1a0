// jax-js peer: the reference MLP step and a square matmul on the `wasm` device, each under one jit.
// jax-js 0.1.x in Node 20 needs two globals that browsers have: `navigator` (it reads navigator.userAgent while
// tuning kernels) and `Float16Array` (it only tests `x instanceof Float16Array`, so an empty class is enough).
// Threads: its wasm device runs kernels on a pool of web Workers only when `SharedArrayBuffer` AND a global
// `Worker` exist; Node has no global web Worker, so in Node every kernel runs on the main thread.
// Memory: jax-js reference-counts arrays; passing an array to any function consumes it, `.ref` keeps a copy.
import type * as Jax from '@jax-js/jax';
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

type JaxModule = typeof Jax;
type Arr = Jax.Array;
type Layer = { w: Arr; b: Arr };
type Params = Layer[];
type State = { params: Params; m: Params; v: Params; count: Arr; key: Arr };

export type JaxDevice = 'wasm' | 'webgpu';
const loading = new Map<JaxDevice, Promise<JaxModule>>();
/** Holds Dawn's GPU object for jax-js's webgpu device in Node: if the GC collects it, Dawn aborts the process. */
let dawnForJax: unknown;
/**
 * Install the Node shims, import jax-js, and start a device (once per device and process). webgpu in Node: the
 * webgpu package's GPU object as navigator.gpu (as jax-js's own Node instructions do), on the adapter it finds.
 */
export const loadJax = (device: JaxDevice = 'wasm'): Promise<JaxModule> => {
  let p = loading.get(device);
  if (!p)
    loading.set(
      device,
      (p = (async () => {
        const g = globalThis as Record<string, unknown>;
        g.navigator ??= { userAgent: `Node.js/${process.version}`, hardwareConcurrency: 1 };
        g.Float16Array ??= class Float16ArrayStandIn {};
        const nav = g.navigator as { gpu?: unknown };
        if (device === 'webgpu' && !nav.gpu) {
          const name = 'webgpu';
          const { create, globals } = (await import(name)) as { create(f: string[]): unknown; globals: object };
          Object.assign(globalThis, globals); // GPUBufferUsage and the other constants jax-js reads
          nav.gpu = dawnForJax = create([]);
        }
        const jax = await import('@jax-js/jax');
        const devices = await jax.init(device);
        if (!devices.includes(device)) throw new Error(`jax-js: ${device} device unavailable (got ${devices.join(', ')})`);
        jax.defaultDevice(device);
        return jax;
      })()),
    );
  return p;
};

const JAX_VERSION = '0.1.25'; // read from its package.json at setup(); this is the tested version
const readJaxVersion = async (): Promise<string> => {
  const { createRequire } = await import('node:module');
  const { readFile } = await import('node:fs/promises');
  const require = createRequire(import.meta.url);
  // the package's exports map hides package.json: resolve the entry point and walk up from dist/
  const entry = require.resolve('@jax-js/jax');
  const pkg = JSON.parse(await readFile(entry.replace(/dist[\\/][^\\/]+$/, 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? JAX_VERSION;
};

const threadsNote = (): string =>
  typeof SharedArrayBuffer !== 'undefined' && typeof (globalThis as Record<string, unknown>).Worker !== 'undefined'
    ? 'worker threads'
    : '1 thread: no global Worker in Node';

/** Build the loss and the jitted training step for a loaded jax-js module. */
const buildStep = (jax: JaxModule) => {
  const { numpy: np, nn, random } = jax;

  const forward = (p: Params, x: Arr): Arr => {
    let h = x;
    p.forEach((l, i) => {
      h = np.dot(h, l.w).add(l.b);
      if (i + 1 < p.length) h = nn.silu(h);
    });
    return h;
  };

  /** Loss on x0 [B,2], freqs [1,32], eps [B,2], t [B,1] (float). Consumes every argument. */
  const lossOf = (p: Params, x0: Arr, freqs: Arr, eps: Arr, t: Arr): Arr => {
    const ang = t.ref.mul(Math.PI / 2 / T_STEPS);
    const xt = np.cos(ang.ref).mul(x0).add(np.sin(ang).mul(eps.ref));
    const arg = t.mul(freqs); // [B,1] * [1,32] -> [B,32]
    const h = np.concatenate([xt, np.cos(arg.ref), np.sin(arg)], 1);
    return np.square(forward(p, h).sub(eps)).mean();
  };

  /** The noise draws of one step, inside the graph: t ~ U{0..T-1}, eps ~ N(0,1), from a threefry key. */
  const lossWithDraws = (p: Params, x0: Arr, freqs: Arr, key: Arr): Arr => {
    const [kt, ke] = random.split(key, 2);
    const t = random.randint(kt, { minval: 0, maxval: T_STEPS, shape: [BATCH, 1] }).astype(np.float32);
    const eps = random.normal(ke, [BATCH, POINT_DIM]);
    return lossOf(p, x0, freqs, eps, t);
  };

  const { lr, beta1, beta2, eps: adamEps } = ADAM;
  const step = jax.jit((s: State, x0: Arr, freqs: Arr) => {
    const [key, sub] = random.split(s.key, 2);
    const [loss, grads] = jax.valueAndGrad(lossWithDraws)(jax.tree.ref(s.params), x0, freqs, sub);
    const count = s.count.add(1);
    // bias corrections 1 - b^count, as exp(count ln b)
    const bc1 = np
      .exp(count.ref.mul(Math.log(beta1)))
      .mul(-1)
      .add(1);
    const bc2 = np
      .exp(count.ref.mul(Math.log(beta2)))
      .mul(-1)
      .add(1);
    const upd = (p: Arr, g: Arr, m: Arr, v: Arr): [Arr, Arr, Arr] => {
      const m2 = m.mul(beta1).add(g.ref.mul(1 - beta1));
      const v2 = v.mul(beta2).add(np.square(g).mul(1 - beta2));
      const stepDir = m2.ref.div(bc1.ref).div(np.sqrt(v2.ref.div(bc2.ref)).add(adamEps));
      return [p.sub(stepDir.mul(lr)), m2, v2];
    };
    const params: Params = [],
      m: Params = [],
      v: Params = [];
    s.params.forEach((l, i) => {
      const [pw, mw, vw] = upd(l.w, grads[i].w, s.m[i].w, s.v[i].w);
      const [pb, mb, vb] = upd(l.b, grads[i].b, s.m[i].b, s.v[i].b);
      params.push({ w: pw, b: pb });
      m.push({ w: mw, b: mb });
      v.push({ w: vw, b: vb });
    });
    bc1.dispose();
    bc2.dispose();
    return { loss, state: { params, m, v, count, key } };
  });

  const evalLoss = jax.jit((p: Params, x0: Arr, freqs: Arr, eps: Arr, t: Arr) => lossOf(p, x0, freqs, eps, t));
  return { step, evalLoss };
};

class JaxMlp implements PeerSystem {
  system = `jax-js ${JAX_VERSION}`;
  backend = 'wasm + jit';
  readonly noise = 'inside the jitted step: random.split / randint / normal (threefry) on the wasm device';
  private jax?: JaxModule;
  private fns?: ReturnType<typeof buildStep>;
  private state?: State;
  private x0?: Arr;
  private freqs?: Arr;
  private last = NaN;
  constructor(
    private readonly device: JaxDevice = 'wasm',
    private readonly seed = 1234,
  ) {}

  async setup(): Promise<void> {
    const jax = (this.jax = await loadJax(this.device));
    jax.defaultDevice(this.device);
    this.system = `jax-js ${await readJaxVersion()}`;
    this.backend = this.device === 'wasm' ? `wasm + jit (${threadsNote()})` : 'webgpu + jit';
    const np = jax.numpy;
    const params: Params = initParams().map((p) => ({
      w: np.array(p.w).reshape([p.inDim, p.outDim]),
      b: np.array(p.b),
    }));
    const zeros = (): Params => params.map((l) => ({ w: np.zerosLike(l.w.ref), b: np.zerosLike(l.b.ref) }));
    this.state = { params, m: zeros(), v: zeros(), count: np.array(0), key: jax.random.key(this.seed) };
    this.x0 = np.array(eightGaussians()).reshape([BATCH, POINT_DIM]);
    this.freqs = np.array(timeFreqs()).reshape([1, EMB_DIM / 2]);
    await jax.blockUntilReady([this.state, this.x0, this.freqs]);
    this.fns = buildStep(jax);
  }

  async step(): Promise<void> {
    const { jax, fns, state, x0, freqs } = this.ready();
    const out = fns.step(state, x0.ref, freqs.ref);
    this.state = out.state;
    await jax.blockUntilReady(out.state); // the Adam update too, not just the loss
    this.last = (await out.loss.data())[0];
  }

  async loss(): Promise<number> {
    return this.last;
  }

  async evalLoss(eps: Float32Array, t: Int32Array): Promise<number> {
    const { jax, fns, state, x0, freqs } = this.ready();
    const np = jax.numpy;
    const l = fns.evalLoss(
      jax.tree.ref(state.params),
      x0.ref,
      freqs.ref,
      np.array(eps).reshape([BATCH, POINT_DIM]),
      np.array(Float32Array.from(t)).reshape([BATCH, 1]),
    );
    return (await l.data())[0];
  }

  async dispose(): Promise<void> {
    if (!this.jax) return;
    this.jax.tree.dispose(this.state);
    this.x0?.dispose();
    this.freqs?.dispose();
    this.fns?.step.dispose();
    this.fns?.evalLoss.dispose();
    this.state = this.x0 = this.freqs = this.fns = undefined;
  }

  private ready() {
    const { jax, fns, state, x0, freqs } = this;
    if (!jax || !fns || !state || !x0 || !freqs) throw new Error('jax-js: call setup() before step()');
    return { jax, fns, state, x0, freqs };
  }
}

class JaxMatmul implements MatmulPeer {
  system = `jax-js ${JAX_VERSION}`;
  backend = 'wasm + jit';
  private jax?: JaxModule;
  private a?: Arr;
  private b?: Arr;
  private mm?: Jax.OwnedFunction<(a: Arr, b: Arr) => Arr>;
  constructor(private readonly device: JaxDevice = 'wasm') {}

  async setup(n: number): Promise<void> {
    await this.dispose();
    const jax = (this.jax = await loadJax(this.device));
    jax.defaultDevice(this.device);
    this.system = `jax-js ${await readJaxVersion()}`;
    this.backend = this.device === 'wasm' ? `wasm + jit (${threadsNote()})` : 'webgpu + jit';
    const [ka, kb] = jax.random.split(jax.random.key(1), 2);
    this.a = jax.random.uniform(ka, [n, n], { minval: -1, maxval: 1 });
    this.b = jax.random.uniform(kb, [n, n], { minval: -1, maxval: 1 });
    await jax.blockUntilReady([this.a, this.b]);
    this.mm = jax.jit((a: Arr, b: Arr) => jax.numpy.matmul(a, b));
  }

  async run(): Promise<void> {
    const { a, b, mm } = this;
    if (!a || !b || !mm) throw new Error('jax-js: call setup(n) before run()');
    const c = mm(a.ref, b.ref);
    await c.blockUntilReady();
    c.dispose();
  }

  async readback(): Promise<{ a: Float32Array; b: Float32Array; c: Float32Array }> {
    const { a, b, mm } = this;
    if (!a || !b || !mm) throw new Error('jax-js: call setup(n) before readback()');
    // data() consumes the array it reads: the operands are read through new references
    const [av, bv, cv] = await Promise.all([a.ref.data(), b.ref.data(), mm(a.ref, b.ref).data()]);
    return { a: Float32Array.from(av), b: Float32Array.from(bv), c: Float32Array.from(cv) };
  }

  async dispose(): Promise<void> {
    this.a?.dispose();
    this.b?.dispose();
    this.mm?.dispose();
    this.a = this.b = this.mm = undefined;
  }
}

class JaxConv implements ConvPeer {
  system = `jax-js ${JAX_VERSION}`;
  backend: string;
  private jax?: JaxModule;
  private x?: Arr;
  private w?: Arr;
  private conv?: (x: Arr, w: Arr) => Arr;
  private jitted?: Jax.OwnedFunction<(x: Arr, w: Arr) => Arr>;
  constructor(
    private readonly mode: 'jit' | 'eager',
    private readonly device: JaxDevice = 'wasm',
  ) {
    this.backend = `${device}${mode === 'jit' ? ' + jit' : ', eager'}`;
  }

  async setup(c: ConvWorkload = CONV): Promise<void> {
    await this.dispose();
    const jax = (this.jax = await loadJax(this.device));
    jax.defaultDevice(this.device);
    this.system = `jax-js ${await readJaxVersion()}`;
    this.backend = `${this.device}${this.mode === 'jit' ? ' + jit' : ', eager'}${this.device === 'wasm' ? ` (${threadsNote()})` : ''}`;
    const np = jax.numpy;
    const { x, w } = convInputs(c);
    // lax.conv's layouts are fusediff's: lhs NCHW [N, C, H, W], rhs OIHW [O, C, KH, KW]
    this.x = np.array(x).reshape([c.batch, c.inChannels, c.size, c.size]);
    this.w = np.array(w).reshape([c.outChannels, c.inChannels, c.kernel, c.kernel]);
    await jax.blockUntilReady([this.x, this.w]);
    const conv = (a: Arr, b: Arr) => jax.lax.conv(a, b, [c.stride, c.stride], 'SAME');
    // Both modes: in jax-js 0.1.25 the jitted conv measured about 10x slower than the eager one on this workload
    // (about 255 vs 27 ms), so the table shows both and fusediff's ratio is taken against the faster.
    this.conv = this.mode === 'jit' ? (this.jitted = jax.jit(conv)) : conv;
  }

  async run(): Promise<void> {
    const { x, w, conv } = this;
    if (!x || !w || !conv) throw new Error('jax-js: call setup() before run()');
    await conv(x.ref, w.ref).data(); // read back (data() consumes the result), as the other conv rows do
  }

  async dispose(): Promise<void> {
    this.x?.dispose();
    this.w?.dispose();
    this.jitted?.dispose();
    this.x = this.w = this.conv = this.jitted = undefined;
  }
}

/** The reference MLP denoiser step on jax-js `wasm` (or `webgpu`), one jit around value_and_grad + Adam (written out, optax-style). */
export const jaxjsMlp = (device: JaxDevice = 'wasm'): PeerSystem => new JaxMlp(device);
/** An n x n x n f32 matmul on jax-js `wasm` (or `webgpu`) under jit. */
export const jaxjsMatmul = (device: JaxDevice = 'wasm'): MatmulPeer => new JaxMatmul(device);
/** One forward lax.conv (NCHW / OIHW, 'SAME') on jax-js `wasm` (or `webgpu`), under jit or eager. */
export const jaxjsConv = (mode: 'jit' | 'eager' = 'jit', device: JaxDevice = 'wasm'): ConvPeer => new JaxConv(mode, device);
