// Canvas drawing for the page: the loss curve (log scale, one colour per objective) and the sample scatter over
// the data set's reference points. Plain 2-D canvas, sized for the device pixel ratio.
import type { NDArray } from '../core/ndarray.ts';
import type { LossPoint } from './session.ts';

export const colors = {
  mse: '#2563eb',
  sp: '#ea580c',
  grid: '#e5e7eb',
  axis: '#6b7280',
  text: '#374151',
  reference: 'rgba(148,163,184,0.28)',
  ghost: 'rgba(71,85,105,0.55)',
};

/** A palette for class ids (cycled), and one colour for unconditional samples. */
const palette = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4f46e5', '#65a30d'];

/** Sizes the backing store to the element's CSS size times the pixel ratio; returns a context in CSS pixels. */
const prepare = (canvas: HTMLCanvasElement): { ctx: CanvasRenderingContext2D; w: number; h: number } => {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = '11px system-ui, sans-serif';
  return { ctx, w, h };
};

const niceLogTicks = (lo: number, hi: number): number[] => {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  return ticks;
};

const fmtTick = (v: number): string => (v >= 1000 || v < 0.01 ? v.toExponential(0) : String(+v.toPrecision(2)));

/** Loss against step, log y; raw losses as faint dots, a running mean as the line; SP in its own colour. */
export const drawLoss = (canvas: HTMLCanvasElement, losses: readonly LossPoint[]): void => {
  const { ctx, w, h } = prepare(canvas);
  const pad = { l: 44, r: 10, t: 10, b: 24 };
  const finite = losses.filter((p) => Number.isFinite(p.loss) && p.loss > 0);
  if (!finite.length) {
    ctx.fillStyle = colors.axis;
    ctx.fillText('the loss curve appears once training starts', pad.l, h / 2);
    return;
  }
  const s0 = finite[0].step,
    s1 = Math.max(finite[finite.length - 1].step, s0 + 10);
  let lo = Infinity,
    hi = -Infinity;
  for (const p of finite) [lo, hi] = [Math.min(lo, p.loss), Math.max(hi, p.loss)];
  [lo, hi] = [lo / 1.3, hi * 1.3];
  if (hi / lo < 10) [lo, hi] = [Math.sqrt(lo * hi) / Math.sqrt(10), Math.sqrt(lo * hi) * Math.sqrt(10)];
  const X = (s: number) => pad.l + ((s - s0) / (s1 - s0)) * (w - pad.l - pad.r);
  const Y = (v: number) => pad.t + (1 - (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * (h - pad.t - pad.b);
  ctx.strokeStyle = colors.grid;
  ctx.fillStyle = colors.axis;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of niceLogTicks(lo, hi)) {
    ctx.beginPath();
    ctx.moveTo(pad.l, Y(v));
    ctx.lineTo(w - pad.r, Y(v));
    ctx.stroke();
    ctx.fillText(fmtTick(v), pad.l - 4, Y(v));
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const stepTick = 10 ** Math.floor(Math.log10(Math.max(1, (s1 - s0) / 4)));
  const every = [1, 2, 5, 10].map((m) => m * stepTick).find((d) => (s1 - s0) / d <= 6) ?? 10 * stepTick;
  for (let s = Math.ceil(s0 / every) * every; s <= s1; s += every) ctx.fillText(String(s), X(s), h - pad.b + 6);
  // raw points
  for (const p of finite) {
    ctx.fillStyle = p.objective === 'sp' ? 'rgba(234,88,12,0.25)' : 'rgba(37,99,235,0.22)';
    ctx.fillRect(X(p.step) - 1, Y(p.loss) - 1, 2, 2);
  }
  // running mean (in log space) per objective segment
  let mean = NaN,
    prev: LossPoint | undefined;
  ctx.lineWidth = 2;
  for (const p of finite) {
    const restart = !prev || prev.objective !== p.objective;
    mean = restart ? Math.log(p.loss) : 0.95 * mean + 0.05 * Math.log(p.loss);
    if (restart) {
      ctx.stroke();
      ctx.beginPath();
      ctx.strokeStyle = colors[p.objective];
      ctx.moveTo(X(p.step), Y(Math.exp(mean)));
    } else ctx.lineTo(X(p.step), Y(Math.exp(mean)));
    prev = p;
  }
  ctx.stroke();
};

export interface ScatterLayer {
  readonly points: NDArray;
  readonly classes?: Float64Array;
  readonly style: 'reference' | 'ghost' | 'samples';
}

/** Points in the data set's bounding box (square, equal aspect); later layers on top. */
export const drawScatter = (
  canvas: HTMLCanvasElement,
  bounds: readonly [number, number, number, number],
  layers: readonly ScatterLayer[],
): void => {
  const { ctx, w, h } = prepare(canvas);
  const [x0, x1, y0, y1] = bounds;
  const span = Math.max(x1 - x0, y1 - y0) * 1.08;
  const cx = (x0 + x1) / 2,
    cy = (y0 + y1) / 2;
  const side = Math.min(w, h) - 8;
  const ox = (w - side) / 2,
    oy = (h - side) / 2;
  const X = (x: number) => ox + ((x - cx) / span + 0.5) * side;
  const Y = (y: number) => oy + (0.5 - (y - cy) / span) * side;
  ctx.strokeStyle = colors.grid;
  ctx.strokeRect(ox, oy, side, side);
  ctx.beginPath();
  ctx.moveTo(X(0), oy);
  ctx.lineTo(X(0), oy + side);
  ctx.moveTo(ox, Y(0));
  ctx.lineTo(ox + side, Y(0));
  ctx.stroke();
  for (const layer of layers) {
    const { data } = layer.points;
    const n = layer.points.shape[0];
    const r = layer.style === 'reference' ? 1.5 : 2.2;
    ctx.lineWidth = 0.8;
    for (let i = 0; i < n; i++) {
      const px = X(data[2 * i]),
        py = Y(data[2 * i + 1]);
      if (!(px >= ox - 4 && px <= ox + side + 4 && py >= oy - 4 && py <= oy + side + 4)) continue;
      ctx.beginPath();
      ctx.arc(px, py, r, 0, 2 * Math.PI);
      if (layer.style === 'ghost') {
        // earlier samples: hollow rings, so the current ones stay readable on top
        ctx.strokeStyle = colors.ghost;
        ctx.stroke();
        continue;
      }
      ctx.fillStyle =
        layer.style === 'reference' ? colors.reference : layer.classes ? palette[layer.classes[i] % palette.length] : colors.mse;
      ctx.globalAlpha = layer.style === 'samples' ? 0.8 : 1;
      ctx.fill();
    }
    ctx.globalAlpha = 1;
  }
};
