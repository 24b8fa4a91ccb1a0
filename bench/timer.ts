// One tinybench measurement: setup, then the mean latency in ms of fn over at least `time` ms and `iterations` runs,
// after `warmups` runs that are not counted. Every bench entry times its rows with it; the timing itself is the
// library's timeRuns (train/inspectStep.ts), which `fusediff bench <module>` uses too.
import { timeRuns } from '../train/inspectStep.ts';

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
    return (await timeRuns(fn, { time, iterations, warmup: warmups, name })).meanMs;
  };
