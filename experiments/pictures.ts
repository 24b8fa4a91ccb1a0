// The report's pictures, as figures of plots/specs.ts rendered by plots/render.ts: a row's samples (a digit grid
// whose columns are the digits the samples were conditioned on, or a 2-D scatter under true samples of the mixture),
// the loss curves of the models trained, and each metric against the CFG scale.
import path from 'node:path';
import type { NDArray } from '../core/ndarray.ts';
import type { RunSetup } from '../runs/setup.ts';
import { cfgFigure, gridFigure, lossFigure, palette, scatterFigure, type Figure, type Heading, type MetricPanel } from '../plots/specs.ts';
import { imageUrls, writeFigure } from '../plots/render.ts';
import type { Metrics } from './evaluate.ts';

/** The figure of one row's samples; `heading` says which run, model, CFG scale and weights drew them. */
export const sampleFigure = (s: RunSetup, samples: NDArray, classes: ArrayLike<number> | undefined, heading: Heading): Figure => {
  if (s.dataset.kind === 'points') {
    const m = s.dataset.mixture;
    return scatterFigure({ ...heading, samples, classes, reference: m.sample(2000, 4242), bounds: m.bounds });
  }
  const cols = 10;
  const n = Math.min(100, samples.shape[0]);
  const per = samples.data.length / samples.shape[0];
  const urls = imageUrls({ shape: [n, ...samples.shape.slice(1)], data: samples.data.subarray(0, n * per) });
  // balanced classes cycle 0..9, so column c holds the samples conditioned on digit c; say so only when it is true
  const byColumn = classes !== undefined && Array.from({ length: n }, (_, i) => classes[i] === classes[i % cols]).every(Boolean);
  return gridFigure({
    ...heading,
    columns: cols,
    columnTitle: byColumn ? 'digit the samples were conditioned on' : 'samples (unconditional: no class)',
    images: urls.map((url, i) => ({ url, column: byColumn ? String(classes[i % cols]) : String((i % cols) + 1) })),
  });
};

export const samplePicture = async (
  s: RunSetup,
  samples: NDArray,
  classes: ArrayLike<number> | undefined,
  heading: Heading,
  file: string,
): Promise<void> => writeFigure(file, sampleFigure(s, samples, classes, heading));

/** Loss curves of the models trained in a run (a committed model has no loss history in its checkpoint). */
export const lossPicture = async (
  heading: Heading,
  series: readonly { name: string; losses: readonly number[]; objective: string }[],
  file: string,
): Promise<void> =>
  writeFigure(
    file,
    lossFigure({
      ...heading,
      series: series.map((s, i) => ({
        name: s.name,
        losses: s.losses,
        colour: series.length <= 2 ? (s.objective === 'sp' ? palette.sp : palette.mse) : palette.classes[i % palette.classes.length],
      })),
    }),
  );

/** The panels of a data set kind: log-likelihood and mode coverage for 2-D mixtures, FD and IS for images. */
export const metricPanels = (rows: readonly { series: string; cfg: number; metrics: Metrics }[]): MetricPanel[] => {
  if (rows.length === 0) return [];
  const panel = (metric: string, value: (m: Metrics) => number | undefined): MetricPanel => ({
    metric,
    points: rows.map((r) => ({ series: r.series, cfg: r.cfg, value: value(r.metrics) ?? NaN })),
  });
  return rows[0].metrics.kind === 'points'
    ? [
        panel('mean log-likelihood (higher is better)', (m) => (m.kind === 'points' ? m.logLikelihood : undefined)),
        panel('mode coverage (higher is better)', (m) => (m.kind === 'points' ? m.modeCoverage : undefined)),
      ]
    : [
        panel('FD-MNIST (lower is better)', (m) => (m.kind === 'image' ? m.fd : undefined)),
        panel('inception score (higher is better)', (m) => (m.kind === 'image' ? m.is : undefined)),
      ];
};

const cfgPicture = async (heading: Heading, panels: readonly MetricPanel[], file: string): Promise<void> =>
  writeFigure(file, cfgFigure({ ...heading, panels }));

/**
 * `<dataset>-cfg.png` in `dir`, each metric of the rows against their CFG scale, one series per `seriesOf`; only
 * where the rows have more than one scale. Returns the file's name when it drew one.
 */
export const rowsCfgPicture = async <R extends { dataset: string; cfgScale: number; metrics: Metrics; count: number }>(
  rows: readonly R[],
  label: string,
  seriesOf: (r: R) => string,
  dir: string,
): Promise<string | undefined> => {
  if (new Set(rows.map((r) => r.cfgScale)).size < 2) return undefined;
  const name = `${rows[0].dataset}-cfg.png`;
  await cfgPicture(
    {
      title: `${rows[0].dataset} · metrics against the CFG scale · ${label}`,
      subtitle: [`${rows[0].count} samples per point; CFG 1 is no guidance`],
    },
    metricPanels(rows.map((r) => ({ series: seriesOf(r), cfg: r.cfgScale, metrics: r.metrics }))),
    path.join(dir, name),
  );
  return name;
};
