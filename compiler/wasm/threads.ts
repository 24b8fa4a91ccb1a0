// Worker threads for the wasm backend (Node's worker_threads, or Web Workers in a cross-origin isolated page): each
// worker instantiates the plan's module over the same shared memory and runs tasks of a wave (schedule.ts): whole
// small kernels, and chunks of a large kernel's outermost output loop. Every output element is computed by exactly
// one call with the same code, whichever thread makes it, so results are bit-identical for any thread count.
// Synchronisation is one shared Int32Array: the main thread writes the wave's tasks, bumps a sequence number and
// notifies; every thread, the main one too, then takes the next task with an atomic increment until none is left, and
// the workers count themselves done and notify back, once per wave. A page's main thread may not block (Atomics.wait
// throws there), so in a browser it spins on the counter, and until every worker has started (they start only once
// the page's script yields) it runs every task by itself.
import type { Wave } from './schedule.ts';

/** control block layout (Int32 slots) */
const SEQ = 0;
const DONE = 1;
/** the next task to take, and the wave's task count (-1: stop) */
const NEXT = 2;
const COUNT = 3;
const TASKS = 4; // then MAX_TASKS (kernel, lo, hi) tasks
/** the most tasks in one wave (scheduleWaves cuts longer ones) */
export const MAX_TASKS = 256;
/**
 * Polls of the control block before a thread sleeps (about a quarter of a millisecond here): a step's waves follow each
 * other within microseconds, and a wake from Atomics.wait costs tens of them on a VM. Measured on the UNet step, 2
 * threads: about 30 ms per step sleeping at once, about 21 ms with the spin; on one thread it is 35 ms. After a spin
 * that ended without the event, a thread spins a 64th of that (a few µs) until one succeeds again: when another
 * process holds a core, the other thread is often off its core, and a full spin then takes the core from our own
 * working thread (the UNet step with a busy loop beside it: 75 ms spinning always, 38-50 ms never, 47 ms so; 36 ms
 * on one thread).
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
let budget = spin;
for (;;) {
  // spin before sleeping (see SPIN), a short while after a spin that did not see the next wave
  let i = 0;
  while (i < budget && Atomics.load(ctl, ${SEQ}) === seen) i++;
  budget = i < budget ? spin : spin >> 6;
  Atomics.wait(ctl, ${SEQ}, seen);
  seen = Atomics.load(ctl, ${SEQ});
  const count = Atomics.load(ctl, ${COUNT});
  if (count < 0) break;
  // index + 1: the thread, for its scratch (0 is the main thread)
  for (let t = Atomics.add(ctl, ${NEXT}, 1); t < count; t = Atomics.add(ctl, ${NEXT}, 1))
    kernels[ctl[${TASKS} + 3 * t]](ctl[${TASKS} + 1 + 3 * t], ctl[${TASKS} + 2 + 3 * t], index + 1);
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
   * Runs one wave (schedule.ts): every thread takes its tasks in turn (the caller's through `main`); returns when
   * every thread is done. Until a page's workers have started, the caller runs every task itself.
   */
  runWave(tasks: Wave, main: (kernel: number, lo: number, hi: number) => void): void;
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
  const control = new SharedArrayBuffer(4 * (TASKS + 3 * MAX_TASKS));
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
  let budget = spin;
  const waitDone = NodeWorker
    ? () => {
        let i = 0;
        while (i < budget && Atomics.load(ctl, DONE) < n) i++;
        budget = i < budget ? spin : spin >> 6;
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
    runWave(tasks, main) {
      // a page's workers start once its script has yielded: until then the main thread runs every task itself
      if (!started && !(started = Atomics.load(ctl, DONE) >= n)) {
        for (const [k, lo, hi] of tasks) main(k, lo, hi);
        return;
      }
      if (tasks.length > MAX_TASKS) throw new Error(`wasm threads: ${tasks.length} tasks in one wave, at most ${MAX_TASKS}`);
      splitCalls++;
      Atomics.store(ctl, DONE, 0);
      tasks.forEach(([k, lo, hi], t) => {
        ctl[TASKS + 3 * t] = k;
        ctl[TASKS + 3 * t + 1] = lo;
        ctl[TASKS + 3 * t + 2] = hi;
      });
      Atomics.store(ctl, COUNT, tasks.length);
      Atomics.store(ctl, NEXT, 0);
      Atomics.add(ctl, SEQ, 1);
      Atomics.notify(ctl, SEQ);
      for (let t = Atomics.add(ctl, NEXT, 1); t < tasks.length; t = Atomics.add(ctl, NEXT, 1)) main(...tasks[t]);
      waitDone();
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      Atomics.store(ctl, COUNT, -1);
      Atomics.add(ctl, SEQ, 1);
      Atomics.notify(ctl, SEQ);
      workers.forEach((w) => void w.terminate());
    },
  };
};
