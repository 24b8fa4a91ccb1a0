// Worker threads for the wasm backend (Node's worker_threads, or Web Workers in a cross-origin isolated page): each
// worker instantiates the plan's module over the same shared memory and runs the items of a wave (schedule.ts): whole
// small kernels, and contiguous ranges of a large kernel's outermost output loop. Every output element is computed by
// exactly one thread with the same code, so results are bit-identical for any thread count. Synchronisation is one
// shared Int32Array: the main thread writes each worker's items, bumps a sequence number and notifies; workers run
// them, count themselves done and notify back, once per wave. A page's main thread may not block (Atomics.wait throws
// there), so in a browser it spins on the counter, and until every worker has started (they start only once the
// page's script yields) it runs every item by itself.
import type { Wave } from './schedule.ts';

/** control block layout (Int32 slots) */
const SEQ = 0;
const DONE = 1;
const SLOTS = 2; // then per worker: a count (-1: stop) and up to MAX_ITEMS (kernel, lo, hi) items
/** the most items one worker runs in one wave (scheduleWaves is given this many kernels at most per wave) */
export const MAX_ITEMS = 64;
const STRIDE = 1 + 3 * MAX_ITEMS;
/**
 * Polls of the control block before a thread sleeps (about a quarter of a millisecond here): a step's waves follow each
 * other within microseconds, and a wake from Atomics.wait costs tens of them on a VM. Measured on the UNet step, 2
 * threads: about 30 ms per step sleeping at once, about 25 ms with the spin; on one thread it is 35 ms.
 */
const SPIN = 20000;

const workerLoop = `
const ctl = new Int32Array(control);
const instance = new WebAssembly.Instance(module, { env: { memory } });
const kernels = [];
for (let k = 0; ; k++) { const f = instance.exports['k' + k]; if (!f) break; kernels.push(f); }
Atomics.add(ctl, ${DONE}, 1);
Atomics.notify(ctl, ${DONE});
let seen = 0;
for (;;) {
  // spin a little before sleeping: the next wave of a step usually comes within microseconds, and waking from
  // Atomics.wait costs tens of them on a VM
  for (let i = 0; i < spin && Atomics.load(ctl, ${SEQ}) === seen; i++);
  Atomics.wait(ctl, ${SEQ}, seen);
  seen = Atomics.load(ctl, ${SEQ});
  const base = ${SLOTS} + ${STRIDE} * index;
  const count = ctl[base];
  if (count < 0) break;
  // index + 1: the thread, for its scratch (0 is the main thread)
  for (let t = 0; t < count; t++) kernels[ctl[base + 1 + 3 * t]](ctl[base + 2 + 3 * t], ctl[base + 3 + 3 * t], index + 1);
  Atomics.add(ctl, ${DONE}, 1);
  Atomics.notify(ctl, ${DONE});
}
`;
const nodeWorkerSource = `const { workerData } = require('node:worker_threads');
const { module, memory, control, index, spin } = workerData;
${workerLoop}`;
const webWorkerSource = `onmessage = (e) => { const { module, memory, control, index, spin } = e.data;
${workerLoop}
};`;

interface WebWorkerLike {
  postMessage(message: unknown): void;
  terminate(): void;
}
type WebWorkerCtor = new (url: string) => WebWorkerLike;

/** Web Workers over shared memory: a browser page that is cross-origin isolated (COOP + COEP headers). */
const webWorker = (): WebWorkerCtor | undefined => {
  const g = globalThis as { Worker?: WebWorkerCtor; crossOriginIsolated?: boolean; process?: unknown };
  return g.process === undefined && g.crossOriginIsolated === true && typeof g.Worker === 'function' ? g.Worker : undefined;
};

interface NodeWorker {
  terminate(): Promise<number>;
  unref(): void;
}

export interface ThreadPool {
  /** worker threads (the main thread computes a share too) */
  readonly workers: number;
  /**
   * Runs one wave (schedule.ts): thread t runs items[t] (thread 0 is the caller, through `main`); returns when every
   * thread is done. Until a page's workers have started, the caller runs every item itself.
   */
  runWave(items: Wave, main: (kernel: number, lo: number, hi: number) => void): void;
  /** waves shared with the workers so far (in a page, waves before the workers started ran on the caller alone) */
  readonly splitCalls: number;
  dispose(): void;
}

type WorkerCtor = new (code: string, options: { eval: true; workerData: unknown }) => NodeWorker;

/** Node's worker_threads, loaded synchronously; undefined in a browser (the plan then runs on the calling thread). */
const nodeWorker = (): WorkerCtor | undefined => {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.('node:worker_threads') as { Worker?: WorkerCtor } | undefined;
  return mod?.Worker;
};

/** The cores of this machine (Node) or the browser's hardwareConcurrency. */
export const machineCores = (): number => {
  const os = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:os') as
    { availableParallelism?: () => number; cpus(): unknown[] } | undefined;
  const browser = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  return Math.max(1, os?.availableParallelism?.() ?? os?.cpus().length ?? browser ?? 1);
};

/** Whether this process can run worker threads over a shared memory. */
export const threadsSupported = (): boolean =>
  (nodeWorker() !== undefined || webWorker() !== undefined) && typeof SharedArrayBuffer !== 'undefined';

/** A pool of `threads - 1` workers over the module and its shared memory; undefined for one thread or without workers. */
export const createThreadPool = (threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory): ThreadPool | undefined => {
  const NodeWorker = nodeWorker();
  const WebWorker = NodeWorker ? undefined : webWorker();
  if (threads <= 1 || (!NodeWorker && !WebWorker)) return undefined;
  const n = threads - 1;
  // threads spin only while each has a core: with more threads than cores a spinning one takes a working one's time
  const spin = threads <= machineCores() ? SPIN : 0;
  const control = new SharedArrayBuffer(4 * (SLOTS + STRIDE * n));
  const ctl = new Int32Array(control);
  let workers: { terminate(): unknown }[];
  let started = false;
  if (NodeWorker) {
    const ws = Array.from(
      { length: n },
      (_, index) => new NodeWorker(nodeWorkerSource, { eval: true, workerData: { module, memory, control, index, spin } }),
    );
    ws.forEach((w) => w.unref()); // an idle pool never keeps the process alive
    // wait (blocking the main thread is allowed in Node) until every worker has instantiated the module
    while (Atomics.load(ctl, DONE) < n) Atomics.wait(ctl, DONE, Atomics.load(ctl, DONE), 1000);
    workers = ws;
    started = true;
  } else {
    const url = URL.createObjectURL(new Blob([webWorkerSource], { type: 'text/javascript' }));
    workers = Array.from({ length: n }, (_, index) => {
      const w = new WebWorker!(url);
      w.postMessage({ module, memory, control, index, spin });
      return w;
    });
    URL.revokeObjectURL(url);
  }
  /** waits for the workers' count to reach n: blocking in Node, spinning where the thread may not block */
  const waitDone = NodeWorker
    ? () => {
        for (let i = 0; i < spin && Atomics.load(ctl, DONE) < n; i++);
        for (let done = Atomics.load(ctl, DONE); done < n; done = Atomics.load(ctl, DONE)) Atomics.wait(ctl, DONE, done);
      }
    : () => {
        while (Atomics.load(ctl, DONE) < n);
      };
  let disposed = false;
  let splitCalls = 0;
  return {
    workers: n,
    get splitCalls() {
      return splitCalls;
    },
    runWave(items, main) {
      // a page's workers start once its script has yielded: until then the main thread runs every item itself
      if (!started && !(started = Atomics.load(ctl, DONE) >= n)) {
        for (const thread of items) for (const [k, lo, hi] of thread) main(k, lo, hi);
        return;
      }
      splitCalls++;
      Atomics.store(ctl, DONE, 0);
      for (let w = 0; w < n; w++) {
        const mine = items[w + 1] ?? [];
        if (mine.length > MAX_ITEMS) throw new Error(`wasm threads: ${mine.length} items for one worker, at most ${MAX_ITEMS}`);
        const base = SLOTS + STRIDE * w;
        ctl[base] = mine.length;
        mine.forEach(([k, lo, hi], t) => ctl.set([k, lo, hi], base + 1 + 3 * t));
      }
      Atomics.add(ctl, SEQ, 1);
      Atomics.notify(ctl, SEQ);
      for (const [k, lo, hi] of items[0] ?? []) main(k, lo, hi);
      waitDone();
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (let w = 0; w < n; w++) ctl[SLOTS + STRIDE * w] = -1;
      Atomics.add(ctl, SEQ, 1);
      Atomics.notify(ctl, SEQ);
      workers.forEach((w) => void w.terminate());
    },
  };
};
