// The pictures as Vega-Lite specs: a figure is a spec whose data are named data sets plus the rows for them, so one
// spec serves the reports (rendered to SVG and PNG in Node by plots/render.ts) and the playground (rendered to a
// canvas by vega in the page, which swaps the rows without rebuilding the view). Nothing here touches the DOM or
// the file system: the builders are pure functions of their inputs.
import type { TopLevelSpec } from 'vega-lite';
import type { NDArray } from '../core/ndarray.ts';

export type Row = Record<string, string | number | boolean | null>;

export interface Figure {
  readonly spec: TopLevelSpec;
  /** rows for each named data set of the spec (`data: { name }`) */
  readonly data: Readonly<Record<string, readonly Row[]>>;
}

/** The font the specs name; plots/render.ts ships it for PNGs, a browser falls back to its sans-serif. */
export const FONT = 'Inter, system-ui, sans-serif';

const config = {
  font: FONT,
  background: 'white',
  aria: false, // no aria-label per mark: a label holding an image's data URL would double the SVG
  title: { fontSize: 15, subtitleFontSize: 11, subtitleColor: '#4b5563', anchor: 'start', offset: 8 },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e5e7eb', domainColor: '#6b7280', tickColor: '#6b7280' },
  legend: { labelFontSize: 11, titleFontSize: 12, symbolSize: 60, symbolOpacity: 1, labelLimit: 260 },
  view: { stroke: '#d1d5db' },
} as const;

export interface Heading {
  /** the first line: what the picture is (data set, row, model) */
  readonly title: string;
  /** smaller lines under it: run, model, CFG, weights, sampler, counts */
  readonly subtitle?: readonly string[];
}

const titleOf = (h: Heading) => ({ text: h.title, ...(h.subtitle?.length ? { subtitle: [...h.subtitle] } : {}) });

// ---- 2-D samples over the data ----------------------------------------------------------------------------------

/** Colours: the data in near-black on top, samples in colour under it, outliers in red. */
export const palette = {
  data: '#111827',
  samples: '#2563eb',
  ghost: '#94a3b8',
  outside: '#dc2626',
  classes: ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#0891b2', '#ca8a04', '#db2777', '#4f46e5', '#65a30d', '#b91c1c'],
  mse: '#2563eb',
  sp: '#ea580c',
} as const;

export interface ScatterInput extends Heading {
  /** [N, 2] samples */
  readonly samples?: NDArray;
  /** class id per sample: colours the samples by class (one legend entry per class) */
  readonly classes?: ArrayLike<number>;
  /** [M, 2] draws from the data distribution, drawn on top of the samples */
  readonly reference?: NDArray;
  /** [K, 2] earlier samples (the playground's last MSE samples), drawn as hollow rings under everything */
  readonly ghost?: NDArray;
  /** the plotting window [xmin, xmax, ymin, ymax]; samples outside it are drawn clamped to its border in red */
  readonly bounds: readonly [number, number, number, number];
  /** the plot's larger side in pixels; default 420 */
  readonly size?: number;
}

const rows2 = (p: NDArray | undefined, what: string): [number, number][] => {
  if (p === undefined) return [];
  if (p.shape.length !== 2 || p.shape[1] !== 2) throw new Error(`scatterFigure: ${what} must be [N, 2], got [${p.shape.join(',')}]`);
  return Array.from({ length: p.shape[0] }, (_, i) => [p.data[2 * i], p.data[2 * i + 1]]);
};

/** Series names, in legend order. */
export const SERIES = { data: 'data (true samples)', samples: 'samples', ghost: 'earlier samples', outside: 'outside the window' } as const;

/**
 * Samples (filled, translucent) under the data set's own draws (small, dark, translucent, on top), so the samples
 * never hide the data and a tight cluster of samples still shows through it; samples outside the window clamped
 * onto its border as red crosses; equal scales on both axes. The subtitle gains how many samples are outside the
 * window and how many are not finite (those cannot be drawn).
 */
export const scatterFigure = (s: ScatterInput): Figure => {
  const [x0, x1, y0, y1] = s.bounds;
  if (!(x0 < x1 && y0 < y1 && [x0, x1, y0, y1].every(Number.isFinite)))
    throw new Error(`scatterFigure: bounds must be finite [xmin, xmax, ymin, ymax] with xmin < xmax, ymin < ymax, got [${s.bounds}]`);
  const samples = rows2(s.samples, 'samples');
  if (s.classes !== undefined && s.classes.length !== samples.length)
    throw new Error(`scatterFigure: ${s.classes.length} classes for ${samples.length} samples`);
  const classIds = s.classes === undefined ? [] : [...new Set(Array.from(s.classes))].sort((a, b) => a - b);
  const seriesOf = (i: number) => (s.classes === undefined ? SERIES.samples : `class ${s.classes[i]}`);
  const inside: Row[] = [],
    outside: Row[] = [];
  let nonFinite = 0;
  samples.forEach(([x, y], i) => {
    if (!Number.isFinite(x) || !Number.isFinite(y)) nonFinite++;
    else if (x >= x0 && x <= x1 && y >= y0 && y <= y1) inside.push({ x, y, series: seriesOf(i) });
    else outside.push({ x: Math.min(x1, Math.max(x0, x)), y: Math.min(y1, Math.max(y0, y)), series: SERIES.outside });
  });
  const keep = ([x, y]: [number, number]) => x >= x0 && x <= x1 && y >= y0 && y <= y1;
  const reference = rows2(s.reference, 'reference')
    .filter(keep)
    .map(([x, y]) => ({ x, y, series: SERIES.data }));
  const ghost = rows2(s.ghost, 'ghost')
    .filter(keep)
    .map(([x, y]) => ({ x, y, series: SERIES.ghost }));
  const domain: string[] = [
    ...(reference.length ? [SERIES.data] : []),
    ...(samples.length ? (s.classes === undefined ? [SERIES.samples] : classIds.map((k) => `class ${k}`)) : []),
    ...(ghost.length ? [SERIES.ghost] : []),
    ...(outside.length ? [SERIES.outside] : []),
  ];
  const colourOf = (d: string): string =>
    d === SERIES.data
      ? palette.data
      : d === SERIES.samples
        ? palette.samples
        : d === SERIES.ghost
          ? palette.ghost
          : d === SERIES.outside
            ? palette.outside
            : palette.classes[Number(d.slice(6)) % palette.classes.length];
  const size = s.size ?? 420;
  const aspect = (y1 - y0) / (x1 - x0);
  const [width, height] = aspect <= 1 ? [size, Math.round(size * aspect)] : [Math.round(size / aspect), size];
  const notes = [
    ...(outside.length ? [`${outside.length} of ${samples.length} samples outside the window (red, on its border)`] : []),
    ...(nonFinite ? [`not finite, so not drawn: ${nonFinite} of ${samples.length} samples`] : []),
  ];
  const color = {
    field: 'series',
    type: 'nominal',
    scale: { domain, range: domain.map(colourOf) },
    legend: { title: null, orient: 'right' },
  } as const;
  const xy = {
    x: { field: 'x', type: 'quantitative', scale: { domain: [x0, x1] as number[], nice: false, zero: false }, title: 'x₁' },
    y: { field: 'y', type: 'quantitative', scale: { domain: [y0, y1] as number[], nice: false, zero: false }, title: 'x₂' },
    color,
  } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config,
    title: titleOf({ title: s.title, subtitle: [...(s.subtitle ?? []), ...notes] }),
    width,
    height,
    layer: [
      { data: { name: 'ghost' }, mark: { type: 'point', size: 14, strokeWidth: 0.8, opacity: 0.6 }, encoding: xy },
      { data: { name: 'samples' }, mark: { type: 'circle', size: 16, opacity: 0.5 }, encoding: xy },
      { data: { name: 'reference' }, mark: { type: 'circle', size: 4, opacity: 0.4 }, encoding: xy },
      { data: { name: 'outside' }, mark: { type: 'point', shape: 'cross', size: 40, filled: true, opacity: 0.9 }, encoding: xy },
    ],
  };
  return { spec, data: { ghost, samples: inside, reference, outside } };
};

// ---- image samples in a labelled grid ---------------------------------------------------------------------------

export interface GridInput extends Heading {
  /** one image per cell, row-major: a URL (a data: URL of a PNG in the reports) and its column's label */
  readonly images: readonly { readonly url: string; readonly column: string }[];
  /** the column axis's title, e.g. 'digit the sample was conditioned on' */
  readonly columnTitle: string;
  readonly columns: number;
  /** the images' side in pixels; default 32 */
  readonly cell?: number;
}

/**
 * Images in a grid of `columns` columns with the column labels on top (the digit each column was conditioned on),
 * and a grey-scale legend for the pixel values (-1 black, +1 white) beside it.
 */
export const gridFigure = (g: GridInput): Figure => {
  const cell = g.cell ?? 32;
  if (!Number.isInteger(g.columns) || g.columns < 1) throw new Error(`gridFigure: columns must be an integer >= 1, got ${g.columns}`);
  const images = g.images.map((im, i) => ({ url: im.url, column: im.column, slot: i % g.columns, row: Math.floor(i / g.columns) }));
  const labels = Array.from({ length: g.columns }, (_, c) => images.find((im) => im.slot === c)?.column ?? '');
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config,
    title: titleOf(g),
    width: { step: cell + 4 },
    height: { step: cell + 4 },
    layer: [
      {
        data: { name: 'images' },
        mark: { type: 'image', width: cell, height: cell, smooth: false },
        encoding: {
          x: {
            field: 'slot',
            type: 'ordinal',
            scale: { domain: labels.map((_, c) => c) },
            axis: { orient: 'top', title: g.columnTitle, labelAngle: 0, labelExpr: `${JSON.stringify(labels)}[datum.value]`, ticks: false },
          },
          y: { field: 'row', type: 'ordinal', axis: { title: 'sample', labels: false, ticks: false } },
          url: { field: 'url', type: 'nominal' },
        },
      },
      {
        // invisible marks whose only job is the pixel-value legend
        data: { name: 'legend' },
        mark: { type: 'square', opacity: 0 },
        encoding: {
          color: {
            field: 'value',
            type: 'quantitative',
            scale: { domain: [-1, 1], range: ['black', 'white'] },
            legend: { title: 'pixel', orient: 'right', gradientStrokeColor: '#6b7280', gradientStrokeWidth: 1, values: [-1, 0, 1] },
          },
        },
      },
    ],
  };
  return { spec, data: { images, legend: [{ value: -1 }, { value: 1 }] } };
};

// ---- loss curves ------------------------------------------------------------------------------------------------

export interface LossSeries {
  /** the legend's name for it, e.g. 'stage 1 (MSE)' */
  readonly name: string;
  /** loss per step; step numbers start at `firstStep` (default 1) */
  readonly losses: readonly number[];
  readonly firstStep?: number;
  readonly colour?: string;
}

/** The half-width of the loss plots' running mean: a window of 41 steps. */
export const SMOOTH_HALF_WIDTH = 20;

/**
 * A centred running mean in log space: each step's value is the mean of the log-losses of the steps within
 * `halfWidth` of it, over the steps that exist (fewer at the ends of the run). Centred, so it follows the curve
 * without lagging it, and over the available window only, so its first points are no single step's noise that a
 * trailing mean would then drag up or down into a trend that is not there. Non-finite or non-positive losses are
 * skipped (and have no value).
 */
export const smoothLog = (losses: readonly number[], halfWidth = SMOOTH_HALF_WIDTH): number[] => {
  const ok = (v: number) => v > 0 && Number.isFinite(v);
  const sum = [0],
    count = [0];
  for (const v of losses) {
    sum.push(sum[sum.length - 1] + (ok(v) ? Math.log(v) : 0));
    count.push(count[count.length - 1] + (ok(v) ? 1 : 0));
  }
  return losses.map((v, i) => {
    if (!ok(v)) return NaN;
    const [lo, hi] = [Math.max(0, i - halfWidth), Math.min(losses.length, i + halfWidth + 1)];
    return Math.exp((sum[hi] - sum[lo]) / (count[hi] - count[lo]));
  });
};

/** Loss against step on a log scale: each step's loss as a faint dot, its running mean as the line; one colour per series. */
export const lossFigure = (
  h: Heading & { readonly series: readonly LossSeries[]; readonly width?: number; readonly height?: number },
): Figure => {
  const raw: Row[] = [],
    smooth: Row[] = [];
  for (const s of h.series) {
    const first = s.firstStep ?? 1;
    const m = smoothLog(s.losses);
    s.losses.forEach((loss, i) => {
      if (loss > 0 && Number.isFinite(loss)) raw.push({ step: first + i, loss, series: s.name });
      if (Number.isFinite(m[i])) smooth.push({ step: first + i, loss: m[i], series: s.name });
    });
  }
  const names = h.series.map((s) => s.name);
  const fallback = [palette.mse, palette.sp, ...palette.classes.slice(2)];
  const color = {
    field: 'series',
    type: 'nominal',
    scale: { domain: names, range: h.series.map((s, i) => s.colour ?? fallback[i % fallback.length]) },
    legend: { title: null, orient: 'right' },
  } as const;
  const x = { field: 'step', type: 'quantitative', title: 'training step', scale: { zero: false, nice: false } } as const;
  const y = { field: 'loss', type: 'quantitative', title: 'loss (log scale)', scale: { type: 'log' } } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config,
    title: titleOf({
      title: h.title,
      subtitle: [
        ...(h.subtitle ?? []),
        `dots: each step · line: centred mean of ${2 * SMOOTH_HALF_WIDTH + 1} steps (log space; fewer at the ends)`,
      ],
    }),
    width: h.width ?? 420,
    height: h.height ?? 240,
    layer: [
      { data: { name: 'raw' }, mark: { type: 'circle', size: 5, opacity: 0.25 }, encoding: { x, y, color } },
      { data: { name: 'smooth' }, mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y, color, detail: { field: 'series' } } },
    ],
  };
  return { spec, data: { raw, smooth } };
};

// ---- a metric against the CFG scale -----------------------------------------------------------------------------

export interface MetricPoint {
  /** the line it belongs to, e.g. the model ('stage1 (MSE)', 'SP') */
  readonly series: string;
  readonly cfg: number;
  readonly value: number;
}

export interface MetricPanel {
  /** the y axis's title, with which way is better: 'FD-MNIST (lower is better)' */
  readonly metric: string;
  readonly points: readonly MetricPoint[];
}

/** One panel per metric, side by side: the metric against the CFG scale, one line (with its points) per model. */
type Panel = Extract<TopLevelSpec, { hconcat: unknown }>['hconcat'][number];

/** The x axis and legend of a metric figure: the CFG scale and the model by default; training steps for curves. */
export interface MetricAxes {
  readonly x: string;
  readonly format: string;
  readonly legend: string;
}

export const cfgFigure = (h: Heading & { readonly panels: readonly MetricPanel[]; readonly axes?: MetricAxes }): Figure => {
  const axes = h.axes ?? { x: 'CFG scale', format: '.2~r', legend: 'model' };
  const series = [...new Set(h.panels.flatMap((p) => p.points.map((q) => q.series)))];
  const scales = [...new Set(h.panels.flatMap((p) => p.points.map((q) => q.cfg)))].sort((a, b) => a - b);
  const fallback = [palette.mse, palette.sp, ...palette.classes.slice(2)];
  const color = {
    field: 'series',
    type: 'nominal',
    scale: { domain: series, range: series.map((_, i) => fallback[i % fallback.length]) },
    legend: { title: axes.legend, orient: 'right' },
  } as const;
  const data: Record<string, Row[]> = {};
  const panel = (p: MetricPanel, i: number): Panel => {
    data[`metric${i}`] = p.points.filter((q) => Number.isFinite(q.value)).map((q) => ({ series: q.series, cfg: q.cfg, value: q.value }));
    const x = {
      field: 'cfg',
      type: 'quantitative',
      title: axes.x,
      scale: { zero: false, nice: false, padding: 12 },
      axis: { values: scales, format: axes.format },
    } as const;
    const y = { field: 'value', type: 'quantitative', title: p.metric, scale: { zero: false } } as const;
    return {
      data: { name: `metric${i}` },
      width: 220,
      height: 200,
      layer: [
        { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y, color } },
        { mark: { type: 'point', filled: true, size: 60 }, encoding: { x, y, color } },
      ],
    };
  };
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config,
    title: titleOf(h),
    hconcat: h.panels.map(panel),
    resolve: { scale: { color: 'shared' } },
  };
  return { spec, data };
};
