// Waves: how a plan's kernels meet the worker threads. Threads synchronise once per wave, not once per kernel: a wave
// holds kernels that do not read each other's outputs (every buffer of a wasm plan has a place of its own, so
// independent kernels can run at the same time and in any order), the large ones split by rows over every thread,
// the small ones each given whole to the thread with the least work so far. A training step's backward pass and its
// optimizer updates are mostly such kernels: a layer's weight and input gradients, every parameter's update.

/** What scheduling needs to know of a kernel. */
export interface KernelTask {
  /** buffers (graph nodes) it reads and writes */
  readonly reads: readonly number[];
  readonly writes: readonly number[];
  /** multiply-adds, to balance the threads */
  readonly work: number;
  /** extent of its outermost loop, and the step a thread's share is a multiple of */
  readonly extent: number;
  readonly step: number;
  /** split by rows over the threads (else run whole by one thread) */
  readonly split: boolean;
}

/** One thread's part of a wave: [kernel, lo, hi] ranges of the outermost loop. */
export type ThreadItems = readonly (readonly [number, number, number])[];

/** A wave: the items of each thread (thread 0 is the calling one); every thread has finished before the next wave. */
export type Wave = readonly ThreadItems[];

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

/**
 * The waves of a plan: each kernel goes to the wave after the last one that writes what it reads (its level in the
 * dependency graph), waves of more than `maxKernels` kernels are cut into several, and within a wave the split kernels
 * are shared out by rows and the others whole, the largest first, to the least loaded thread.
 */
export const scheduleWaves = (tasks: readonly KernelTask[], threads: number, maxKernels: number): Wave[] => {
  const writer = new Map<number, number>();
  tasks.forEach((t, i) => t.writes.forEach((b) => writer.set(b, i)));
  const level: number[] = [];
  const levels: number[][] = [];
  tasks.forEach((t, i) => {
    const l = Math.max(0, ...t.reads.map((b) => (writer.has(b) && writer.get(b)! < i ? level[writer.get(b)!] + 1 : 0)));
    level.push(l);
    (levels[l] ??= []).push(i);
  });
  const waves: Wave[] = [];
  for (const members of levels)
    for (let from = 0; from < members.length; from += maxKernels) waves.push(share(tasks, members.slice(from, from + maxKernels), threads));
  return waves;
};

const share = (tasks: readonly KernelTask[], members: readonly number[], threads: number): Wave => {
  const items: [number, number, number][][] = Array.from({ length: threads }, () => []);
  const load = new Array<number>(threads).fill(0);
  for (const i of members) {
    const t = tasks[i];
    if (!t.split || threads === 1) continue;
    splitRange(t.extent, t.step, threads).forEach(([lo, hi], thread) => {
      if (lo >= hi) return;
      items[thread].push([i, lo, hi]);
      load[thread] += (t.work * (hi - lo)) / t.extent;
    });
  }
  const whole = members.filter((i) => !tasks[i].split || threads === 1).sort((a, b) => tasks[b].work - tasks[a].work || a - b);
  for (const i of whole) {
    const thread = load.indexOf(Math.min(...load));
    items[thread].push([i, 0, tasks[i].extent]);
    load[thread] += tasks[i].work;
  }
  return items;
};
