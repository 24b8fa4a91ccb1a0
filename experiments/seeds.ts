// A row sampled once per seed becomes one row: every metric's mean over the seeds, with its 95% interval.
import { meanInterval, type MeanInterval } from '../eval/interval.ts';
import type { ImageMetrics, Metrics, PointMetrics } from './evaluate.ts';

/** The scalar metrics a row reports (class shares are averaged too, without an interval). */
export type MetricName = Exclude<keyof ImageMetrics | keyof PointMetrics, 'kind' | 'classShares'>;

const scalars = (m: Metrics): Partial<Record<MetricName, number>> => {
  const { kind: _k, ...rest } = m;
  return Object.fromEntries(Object.entries(rest).filter((e): e is [MetricName, number] => typeof e[1] === 'number'));
};

/** Each seed's metrics and the 95% interval of every metric's mean. */
export interface SeedSummary {
  readonly seeds: number[];
  readonly perSeed: Metrics[];
  readonly interval: Partial<Record<MetricName, MeanInterval>>;
}

export const overSeeds = <R extends { metrics: Metrics; sampleSeconds: number }>(
  runs: readonly R[],
  seeds: readonly number[],
): R & { seeds: SeedSummary } => {
  if (runs.length !== seeds.length || runs.length === 0) throw new Error(`overSeeds: ${runs.length} runs for ${seeds.length} seeds`);
  const perSeed = runs.map((r) => r.metrics);
  const interval: Partial<Record<MetricName, MeanInterval>> = {};
  for (const name of Object.keys(scalars(perSeed[0])) as MetricName[]) {
    const values = perSeed.map((m) => scalars(m)[name]);
    if (values.every((v): v is number => v !== undefined)) interval[name] = meanInterval(values);
  }
  const means = Object.fromEntries(Object.entries(interval).map(([k, v]) => [k, v.mean]));
  const first = perSeed[0];
  const metrics = (
    first.kind === 'image'
      ? {
          ...first,
          ...means,
          classShares: first.classShares.map((_, k) => perSeed.reduce((a, m) => a + (m as ImageMetrics).classShares[k], 0) / runs.length),
        }
      : { ...first, ...means }
  ) as Metrics;
  return {
    ...runs[0],
    metrics,
    seeds: { seeds: [...seeds], perSeed, interval },
    sampleSeconds: runs.reduce((a, r) => a + r.sampleSeconds, 0),
  };
};
