// Worker threads for the wasm backend (Node's worker_threads, or Web Workers in a cross-origin isolated page): each
// worker instantiates the plan's module over the same shared memory, and a kernel's outermost output loop is split
// into contiguous ranges, one per thread. Every output element is computed by exactly one thread with the same code,
// so results are bit-identical for any thread count. Synchronisation is one shared Int32Array: the main thread
// writes each worker's (kernel, lo, hi), bumps a sequence number and notifies; workers run their range, count
// themselves done and notify back. A page's main thread may not block (Atomics.wait throws there), so in a browser
// it spins on the counter, and until every worker has started (they start only once the page's script yields) it
// runs each kernel whole by itself.

/** control block layout (Int32 slots) */
const SEQ = 0;
const DONE = 1;
const SLOTS = 2; // then per worker: kernel, lo, hi

const workerLoop = `
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
  kernels[k](ctl[base + 1], ctl[base + 2], index + 1); // index + 1: the thread's scratch (0 is the main thread's)
  Atomics.add(ctl, ${DONE}, 1);
  Atomics.notify(ctl, ${DONE});
}
`;
const nodeWorkerSource = `const { workerData } = require('node:worker_threads');
const { module, memory, control, index } = workerData;
${workerLoop}`;
const webWorkerSource = `onmessage = (e) => { const { module, memory, control, index } = e.data;
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
  /** runs kernel k over [0, extent) of its outermost loop, in ranges that are multiples of step */
  run(k: number, extent: number, step: number, main: (lo: number, hi: number) => void): void;
  /** kernel calls split over the workers so far (in a page, calls before the workers started ran whole) */
  readonly splitCalls: number;
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
export const threadsSupported = (): boolean =>
  (nodeWorker() !== undefined || webWorker() !== undefined) && typeof SharedArrayBuffer !== 'undefined';

/** A pool of `threads - 1` workers over the module and its shared memory; undefined for one thread or without workers. */
export const createThreadPool = (threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory): ThreadPool | undefined => {
  const NodeWorker = nodeWorker();
  const WebWorker = NodeWorker ? undefined : webWorker();
  if (threads <= 1 || (!NodeWorker && !WebWorker)) return undefined;
  const n = threads - 1;
  const control = new SharedArrayBuffer(4 * (SLOTS + 3 * n));
  const ctl = new Int32Array(control);
  let workers: { terminate(): unknown }[];
  let started = false;
  if (NodeWorker) {
    const ws = Array.from(
      { length: n },
      (_, index) => new NodeWorker(nodeWorkerSource, { eval: true, workerData: { module, memory, control, index } }),
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
      w.postMessage({ module, memory, control, index });
      return w;
    });
    URL.revokeObjectURL(url);
  }
  /** waits for the workers' count to reach n: blocking in Node, spinning where the thread may not block */
  const waitDone = NodeWorker
    ? () => {
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
    run(k, extent, step, main) {
      // a page's workers start once its script has yielded: until then the main thread runs the kernel whole
      if (!started && !(started = Atomics.load(ctl, DONE) >= n)) return main(0, extent);
      splitCalls++;
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
      waitDone();
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
