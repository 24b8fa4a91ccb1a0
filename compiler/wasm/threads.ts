// Worker threads for the wasm backend (Node's worker_threads): each worker instantiates the plan's module over the
// same shared memory, and a kernel's outermost output loop is split into contiguous ranges, one per thread. Every
// output element is computed by exactly one thread with the same code, so results are bit-identical for any thread
// count. Synchronisation is one shared Int32Array: the main thread writes each worker's (kernel, lo, hi), bumps a
// sequence number and notifies; workers run their range, count themselves done and notify back.

/** control block layout (Int32 slots) */
const SEQ = 0;
const DONE = 1;
const SLOTS = 2; // then per worker: kernel, lo, hi

const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, control, index } = workerData;
const ctl = new Int32Array(control);
const instance = new WebAssembly.Instance(module, { env: { memory } });
const kernels = [];
for (let k = 0; ; k++) { const f = instance.exports['k' + k]; if (!f) break; kernels.push(f); }
Atomics.add(ctl, ${DONE}, 1);
Atomics.notify(ctl, ${DONE});
let seen = 0;
for (;;) {
  Atomics.wait(ctl, ${SEQ}, seen);
  seen = Atomics.load(ctl, ${SEQ});
  const base = ${SLOTS} + 3 * index;
  const k = ctl[base];
  if (k < 0) break;
  kernels[k](ctl[base + 1], ctl[base + 2]);
  Atomics.add(ctl, ${DONE}, 1);
  Atomics.notify(ctl, ${DONE});
}
`;

interface NodeWorker {
  terminate(): Promise<number>;
  unref(): void;
}

export interface ThreadPool {
  /** worker threads (the main thread computes a share too) */
  readonly workers: number;
  /** runs kernel k over [0, extent) of its outermost loop, in ranges that are multiples of step */
  run(k: number, extent: number, step: number, main: (lo: number, hi: number) => void): void;
  dispose(): void;
}

/** Splits [0, extent) into `parts` ranges of whole steps, as even as possible (empty ranges allowed). */
export const splitRange = (extent: number, step: number, parts: number): [number, number][] => {
  const units = Math.ceil(extent / step);
  const out: [number, number][] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const n = Math.floor(units / parts) + (p < units % parts ? 1 : 0);
    const end = Math.min(extent, (start + n) * step);
    out.push([Math.min(start * step, extent), end]);
    start += n;
  }
  return out;
};

type WorkerCtor = new (code: string, options: { eval: true; workerData: unknown }) => NodeWorker;

/** Node's worker_threads, loaded synchronously; undefined in a browser (the plan then runs on the calling thread). */
const nodeWorker = (): WorkerCtor | undefined => {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.('node:worker_threads') as { Worker?: WorkerCtor } | undefined;
  return mod?.Worker;
};

/** Whether this process can run worker threads over a shared memory. */
export const threadsSupported = (): boolean => nodeWorker() !== undefined && typeof SharedArrayBuffer !== 'undefined';

/** A pool of `threads - 1` workers over the module and its shared memory; undefined for one thread or without workers. */
export const createThreadPool = (threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory): ThreadPool | undefined => {
  const Worker = nodeWorker();
  if (threads <= 1 || !Worker) return undefined;
  const n = threads - 1;
  const control = new SharedArrayBuffer(4 * (SLOTS + 3 * n));
  const ctl = new Int32Array(control);
  const workers = Array.from(
    { length: n },
    (_, index) => new Worker(workerSource, { eval: true, workerData: { module, memory, control, index } }),
  );
  workers.forEach((w) => w.unref()); // an idle pool never keeps the process alive
  // wait (blocking the main thread is allowed in Node) until every worker has instantiated the module
  while (Atomics.load(ctl, DONE) < n) Atomics.wait(ctl, DONE, Atomics.load(ctl, DONE), 1000);
  let disposed = false;
  return {
    workers: n,
    run(k, extent, step, main) {
      const ranges = splitRange(extent, step, n + 1);
      Atomics.store(ctl, DONE, 0);
      ranges.slice(1).forEach(([lo, hi], w) => {
        ctl[SLOTS + 3 * w] = k;
        ctl[SLOTS + 3 * w + 1] = lo;
        ctl[SLOTS + 3 * w + 2] = hi;
      });
      Atomics.add(ctl, SEQ, 1);
      Atomics.notify(ctl, SEQ);
      main(ranges[0][0], ranges[0][1]);
      for (let done = Atomics.load(ctl, DONE); done < n; done = Atomics.load(ctl, DONE)) Atomics.wait(ctl, DONE, done);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (let w = 0; w < n; w++) ctl[SLOTS + 3 * w] = -1;
      Atomics.add(ctl, SEQ, 1);
      Atomics.notify(ctl, SEQ);
      workers.forEach((w) => void w.terminate());
    },
  };
};
