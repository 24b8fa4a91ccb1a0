// GL kernels with four outputs per thread (compiler/kernel/lanes.ts) against one output per thread, on the same
// backend and workloads, timed alternately in one run: matmul, the reference conv, the reference MLP step and
// (unless quick) the UNet MSE step.
import type { BackendName, CompileOptions } from '../../compiler/index.ts';
import { CONV, MATMUL_SIZES, convFlops, matmulFlops } from '../../workloads/reference.ts';
import { compileReferenceStep } from '../../workloads/referenceStep.ts';
import * as W from '../../workloads/reference.ts';
import { FusediffConv } from './conv.ts';
import { FusediffMatmul } from './matmul.ts';
import { spCostCases, spCostSteps } from './spCost.ts';
import type { Timer } from '../timer.ts';

export interface GlLaneRow {
  readonly backend: string;
  readonly workload: string;
  /** ms per run with one output per thread (glLanes: 1) */
  readonly oneMs: number;
  /** ms per run with four outputs per thread where they share loads (the default) */
  readonly fourMs: number;
  /** oneMs / fourMs */
  readonly speedup: number;
  /** GFLOP/s of the four-lane run, where the workload has a FLOP count */
  readonly gflops?: number;
}

interface Workload {
  readonly name: string;
  readonly flops?: number;
  /** compiles with the options; returns the run and its disposal */
  readonly make: (options: CompileOptions) => Promise<{ run: () => Promise<void>; dispose: () => void }>;
}

export const glLaneRows = async (backend: BackendName, time: Timer, quick: boolean): Promise<GlLaneRow[]> => {
  const workloads: Workload[] = [
    ...(quick ? [256] : MATMUL_SIZES).map((n): Workload => ({
      name: `matmul ${n}`,
      flops: matmulFlops(n),
      make: async (o) => {
        const m = new FusediffMatmul(backend, o);
        await m.setup(n);
        return { run: () => m.run(), dispose: () => void m.dispose() };
      },
    })),
    {
      name: 'conv2d (reference)',
      flops: convFlops(CONV),
      make: async (o) => {
        const c = new FusediffConv(backend, o);
        await c.setup(CONV);
        return { run: () => c.run(), dispose: () => void c.dispose() };
      },
    },
    {
      name: 'MLP step (reference)',
      make: async (o) => {
        const s = compileReferenceStep(backend, 'fused', false, o);
        const x0 = W.eightGaussians();
        return { run: async () => void s.run({ x0 }), dispose: () => s.dispose() };
      },
    },
    ...(quick
      ? []
      : [
          {
            name: 'UNet MSE step (batch 16)',
            make: async (o: CompileOptions) => {
              const { mse, batch } = spCostSteps(
                spCostCases.find((c) => c.name === 'Unet')!,
                backend,
                o,
                'mse',
              );
              return { run: async () => void mse.run(batch), dispose: () => mse.dispose() };
            },
          },
        ]),
  ];
  const rows: GlLaneRow[] = [];
  for (const w of workloads) {
    const ms: Record<1 | 4, number> = { 1: NaN, 4: NaN };
    for (const lanes of [1, 4] as const) {
      let job: Awaited<ReturnType<Workload['make']>> | undefined;
      ms[lanes] = await time(
        `${w.name} ${backend} lanes ${lanes}`,
        () => job!.run(),
        async () => void (job = await w.make({ glLanes: lanes })),
      );
      job?.dispose();
    }
    const row: GlLaneRow = {
      backend,
      workload: w.name,
      oneMs: ms[1],
      fourMs: ms[4],
      speedup: ms[1] / ms[4],
      ...(w.flops ? { gflops: w.flops / ms[4] / 1e6 } : {}),
    };
    rows.push(row);
    const rate = row.gflops ? `  (${row.gflops.toFixed(2)} GFLOP/s)` : '';
    console.log(
      `${backend.padEnd(11)} ${w.name.padEnd(26)} 1/thread ${ms[1].toFixed(1).padStart(8)} ms   ` +
        `4/thread ${ms[4].toFixed(1).padStart(8)} ms   ${row.speedup.toFixed(2)}x${rate}`,
    );
  }
  return rows;
};
