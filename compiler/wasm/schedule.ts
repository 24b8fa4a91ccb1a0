// Waves: how a plan's kernels meet the worker threads. Threads synchronise once per wave, not once per kernel: a wave
// holds kernels that do not read each other's outputs (every buffer of a wasm plan has a place of its own, so
// independent kernels can run at the same time and in any order). A wave is a list of tasks, ranges of a kernel's
// outer loop: a large kernel cut into chunks (of rows; of panels, for one that packs), a small one whole. The threads
// take tasks from the list in turn (threads.ts), the largest first, so a thread that the machine slows down (another
// process on its core) leaves its share to the others instead of holding every thread at the wave's end. A training
// step's backward pass and its optimizer updates are mostly such independent kernels: a layer's weight and input
// gradients, every parameter's update.

/** What scheduling needs to know of a kernel. */
export interface KernelTask {
  /** buffers (graph nodes) it reads and writes */
  readonly reads: readonly number[];
  readonly writes: readonly number[];
  /** multiply-adds, to order the tasks and size the chunks */
  readonly work: number;
  /** extent of its outermost loop, and the step a chunk is a multiple of */
  readonly extent: number;
  readonly step: number;
  /** cut into chunks of its outer loop (else run whole by one thread) */
  readonly split: boolean;
}

/** One task: [kernel, lo, hi), a range of its outermost loop. */
export type WaveTask = readonly [number, number, number];

/** A wave: tasks in the order the threads take them; every thread has finished before the next wave. */
export type Wave = readonly WaveTask[];

/** Chunks per thread of a split kernel: enough for a thread to take over the share of one that was held up. */
export const CHUNKS_PER_THREAD = 4;
/** The least multiply-adds in a chunk (about 10 µs of work here): finer, taking a chunk costs more than it balances. */
export const MIN_CHUNK_WORK = 1 << 17;

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

/** A split kernel's chunks: up to CHUNKS_PER_THREAD per thread, of at least MIN_CHUNK_WORK, at least one per thread. */
export const chunksOf = (t: KernelTask, threads: number): number => {
  const units = Math.ceil(t.extent / t.step);
  const wanted = Math.max(threads, Math.min(threads * CHUNKS_PER_THREAD, Math.floor(t.work / MIN_CHUNK_WORK)));
  return Math.max(1, Math.min(units, wanted));
};

/**
 * The waves of a plan: each kernel goes to the wave after the last one that writes what it reads (its level in the
 * dependency graph); a split kernel becomes its chunks; tasks are ordered by work, the largest first (a greedy
 * balance whatever thread takes them), and a wave of more than `maxTasks` tasks is cut into several.
 */
export const scheduleWaves = (tasks: readonly KernelTask[], threads: number, maxTasks: number): Wave[] => {
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
  for (const members of levels) {
    const wave: { task: WaveTask; work: number }[] = [];
    for (const i of members) {
      const t = tasks[i];
      if (!t.split || threads === 1) {
        wave.push({ task: [i, 0, t.extent], work: t.work });
        continue;
      }
      for (const [lo, hi] of splitRange(t.extent, t.step, chunksOf(t, threads)))
        if (lo < hi) wave.push({ task: [i, lo, hi], work: (t.work * (hi - lo)) / t.extent });
    }
    wave.sort((a, b) => b.work - a.work || a.task[0] - b.task[0] || a.task[1] - b.task[1]);
    for (let from = 0; from < wave.length; from += maxTasks) waves.push(wave.slice(from, from + maxTasks).map((x) => x.task));
  }
  return waves;
};
