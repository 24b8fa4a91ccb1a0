// One tinybench measurement: setup, then the mean latency in ms of fn over at least `time` ms and `iterations` runs,
// after `warmups` runs that are not counted. Every bench entry times its rows with it.
import { Bench } from 'tinybench';

export interface TimerOptions {
  readonly time: number;
  readonly iterations: number;
  readonly warmups: number;
}

export type Timer = (name: string, fn: () => Promise<void>, setup: () => Promise<void>) => Promise<number>;

export const timer =
  ({ time, iterations, warmups }: TimerOptions): Timer =>
  async (name, fn, setup) => {
    await setup();
    const bench = new Bench({ time, iterations, warmupTime: 0, warmupIterations: warmups } as never);
    bench.add(name, fn);
    await bench.run();
    const r = bench.tasks[0].result as { state: string; latency?: { mean: number }; error?: unknown };
    if (r.state !== 'completed' || !r.latency) throw new Error(`${name}: ${r.state} ${String(r.error ?? '')}`);
    return r.latency.mean;
  };
