// The loop-limit probe: on one gpu.js backend, the largest literal loop count whose loop runs to completion.
// It compiles `let s = 0.0; for (let i = 0; i < N; i++) s = s + 1.0; return s;` straight through gpu.js (not the
// fusediff code generator) with loopMaxIterations 2^30, as compiler/executable.ts sets it, and compares the
// result with N: doubling from 2^10 up to `max`, then bisecting between the last count that completed and the
// first that did not. N stays below 2^24, where s is exact in float32, so a result below N is a cut loop.
// Two more kernels show how a cut counts loops: two sequential loops, and one loop nested in another, each loop
// alone below the cut. Used by test/loop-limit.test.ts and scripts/probe-loop-limit.ts (webgl2 in headless Chromium
// through test/browser/loop-probe-entry.ts); the numbers it measured are in docs/numerics.md.
import { GPU } from 'gpu.js';

export type ProbeMode = 'cpu' | 'webasm' | 'headlessgl' | 'webgl2';

export interface LoopRun {
  readonly loops: string;
  /** iterations the program asks for */
  readonly want: number;
  /** iterations that ran (the kernel's result) */
  readonly got: number;
}

export interface LoopProbe {
  readonly mode: ProbeMode;
  /** the gpu.js kernel class that ran, to show there was no silent fallback */
  readonly kernelClass: string;
  /** the largest N whose single loop completed; null when every N up to `max` completed (no cut found) */
  readonly limit: number | null;
  /** the largest N tried */
  readonly max: number;
  /** the first N that was cut and what it gave, when one was */
  readonly firstCut?: LoopRun;
  /** two sequential loops, then one loop nested in another, each loop alone below the cut */
  readonly shared: readonly LoopRun[];
  /** kernels compiled */
  readonly kernels: number;
  readonly ms: number;
}

const singleLoop = (n: number) => `function() { let s = 0.0; for (let i = 0; i < ${n}; i++) { s = s + 1.0; } return s; }`;
const sequentialLoops = (a: number, b: number) =>
  `function() { let s = 0.0; for (let i = 0; i < ${a}; i++) { s = s + 1.0; } for (let j = 0; j < ${b}; j++) { s = s + 1.0; } return s; }`;
const nestedLoops = (a: number, b: number) =>
  `function() { let s = 0.0; for (let i = 0; i < ${a}; i++) { for (let j = 0; j < ${b}; j++) { s = s + 1.0; } } return s; }`;

/** Whether gpu.js can run `mode` in this process (headlessgl needs the gl package and an X display). */
export const probeAvailable = (mode: ProbeMode): boolean =>
  mode === 'headlessgl'
    ? GPU.isHeadlessGLSupported
    : mode === 'webgl2'
      ? GPU.isWebGL2Supported && 'document' in globalThis
      : mode === 'webasm'
        ? GPU.isWebAssemblySupported
        : true;

/** Finds the largest literal loop count that completes on `mode`, up to `max` (at most 2^23). */
export const probeLoopLimit = async (mode: ProbeMode, { max = 2 ** 22 }: { max?: number } = {}): Promise<LoopProbe> => {
  if (!probeAvailable(mode))
    throw new Error(
      `loop probe: gpu.js backend '${mode}' is not available here${mode === 'headlessgl' ? ' (run under sh scripts/with-display.sh)' : ''}`,
    );
  if (max > 2 ** 23) throw new Error('loop probe: counts above 2^23 are not exact in a float32 sum of ones');
  const t0 = performance.now();
  const gpu = new GPU({ mode });
  let kernels = 0;
  let kernelClass = '';
  const run = (source: string): number => {
    const k = gpu.createKernel(source as never, { output: [1], precision: 'single', loopMaxIterations: 2 ** 30 } as never);
    const out = k() as unknown as Float32Array;
    kernels++;
    kernelClass = (k as unknown as { kernel?: object }).kernel?.constructor.name ?? k.constructor.name;
    return out[0];
  };
  try {
    let ok = 0;
    let cut: LoopRun | undefined;
    for (let n = 1024; n <= max; n = Math.min(max, n * 2)) {
      const got = run(singleLoop(n));
      if (got !== n) {
        cut = { loops: `one loop of ${n}`, want: n, got };
        break;
      }
      ok = n;
      if (n === max) break;
    }
    const firstCut = cut;
    if (cut) {
      let [lo, hi] = [ok, cut.want];
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        const got = run(singleLoop(mid));
        if (got === mid) lo = mid;
        else hi = mid;
      }
      ok = lo;
    }
    const limit = cut ? ok : null;
    // each loop alone below the cut (or below `max` where none was found), together above it
    const part = Math.floor(((limit ?? max) * 2) / 3);
    const outer = 100;
    const inner = Math.ceil(((limit ?? max) * 1.1) / outer);
    const shared: LoopRun[] = [
      { loops: `${part} then ${part} (sequential)`, want: 2 * part, got: run(sequentialLoops(part, part)) },
      { loops: `${outer} x ${inner} (nested)`, want: outer * inner, got: run(nestedLoops(outer, inner)) },
    ];
    return { mode, kernelClass, limit, max, firstCut, shared, kernels, ms: performance.now() - t0 };
  } finally {
    await gpu.destroy();
  }
};

/** One line per probe, for a report or a test diagnostic. */
export const describeProbe = (p: LoopProbe): string =>
  `${p.mode} (${p.kernelClass}): ` +
  `${p.limit === null ? `no cut up to ${p.max}` : `largest complete loop ${p.limit}; ${p.firstCut!.loops} gave ${p.firstCut!.got}`}; ` +
  `${p.shared.map((r) => `${r.loops}: ${r.got} of ${r.want}`).join('; ')} (${p.kernels} kernels, ${p.ms.toFixed(0)} ms)`;
