// The browser side of test/browser-pool.test.ts: counts the Web Workers this page starts and terminates (the
// Worker constructor is wrapped before anything starts one) while wasm plans are compiled, run and disposed, by
// compile() and by the bench's classes (bench/fusediff/), as `npm run bench:page` runs them.
import { compile, createBackend, shutdownBackends } from '../../compiler/index.ts';
import * as op from '../../dsl/ops.ts';
import { trace } from '../../dsl/trace.ts';
import { FusediffConv } from '../../bench/fusediff/conv.ts';
import { FusediffMatmul } from '../../bench/fusediff/matmul.ts';
import { FusediffMlp } from '../../bench/fusediff/mlpDenoiser.ts';

// three cores, whatever the machine has: the shared wasm backend (created on first use) then gives each plan two workers
Object.defineProperty(navigator, 'hardwareConcurrency', { configurable: true, get: () => 3 });

const live = new Set<object>();
let started = 0;
{
  const Native = globalThis.Worker;
  globalThis.Worker = class CountedWorker extends Native {
    constructor(url: string | URL, options?: WorkerOptions) {
      super(url, options);
      live.add(this);
      started++;
    }
    override terminate(): void {
      live.delete(this);
      super.terminate();
    }
  };
}

const yieldFor = (ms: number) => new Promise((r) => setTimeout(r, ms)); // a page's workers start once its script yields
const matmul = (n: number) => trace(({ a, b }) => op.matmul(a, b), { a: [n, n], b: [n, n] });
const ones = (n: number) => new Float32Array(n * n).fill(0.5);

const api = {
  crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
  /** Four plans on a 3-thread backend of their own, disposed; then a plan on the shared backend, ended by shutdownBackends. */
  async library() {
    const startedBefore = started;
    const backend = createBackend('wasm', { threads: 3 });
    const plans = [256, 288, 320, 352].map((n) => compile(matmul(n), { backend }));
    await yieldFor(100);
    const sums = plans.map((p, i) => p.run({ a: ones(256 + 32 * i), b: ones(256 + 32 * i) }).out.data[0]);
    const whileLive = live.size;
    plans.forEach((p) => p.dispose());
    const afterDispose = live.size;
    const kept = compile(matmul(64), { backend: 'wasm' });
    kept.run({ a: ones(64), b: ones(64) });
    const beforeShutdown = live.size;
    await shutdownBackends();
    const afterShutdown = live.size;
    await backend.dispose();
    return { sums, started: started - startedBefore, whileLive, afterDispose, beforeShutdown, afterShutdown };
  },
  /** The bench's fusediff classes on the shared wasm backend: live workers after their runs, and after their dispose(). */
  async bench() {
    const rows: { name: string; started: number; whileLive: number; afterDispose: number }[] = [];
    const measure = async (name: string, body: () => Promise<{ dispose(): Promise<void> }>) => {
      const startedBefore = started;
      const system = await body();
      const whileLive = live.size;
      await system.dispose();
      rows.push({ name, started: started - startedBefore, whileLive, afterDispose: live.size });
    };
    await measure('FusediffMatmul: setup(256), run, setup(320), run', async () => {
      const m = new FusediffMatmul('wasm');
      for (const n of [256, 320]) {
        await m.setup(n);
        await yieldFor(50);
        await m.run();
      }
      return m;
    });
    await measure('FusediffMlp: setup, two steps', async () => {
      const s = new FusediffMlp('wasm');
      await s.setup();
      await yieldFor(50);
      await s.step();
      await s.step();
      return s;
    });
    await measure('FusediffConv: setup, run', async () => {
      const c = new FusediffConv('wasm');
      await c.setup();
      await yieldFor(50);
      await c.run();
      return c;
    });
    await shutdownBackends();
    return { rows, afterShutdown: live.size };
  },
};

export type PoolApi = typeof api;
(window as unknown as { fusediffPool: PoolApi }).fusediffPool = api;
