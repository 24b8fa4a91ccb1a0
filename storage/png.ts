// PNG figures for reports: a grid of sample images and a 2-D scatter plot, rendered into RGBA pixels by hand and
// encoded by pngjs. No fonts beyond a 3x5 digit set for grid labels; everything is deterministic in its inputs.
import { PNG } from 'pngjs';
import type { NDArray } from '../core/ndarray.ts';
import { fmt } from '../core/shape.ts';
import { writeFileAtomic } from './checkpoint.ts';

type RGB = readonly [number, number, number];

const PAD_GREY: RGB = [128, 128, 128];
const LABEL_INK: RGB = [255, 255, 255];
/** Pixels whose value is NaN: a colour no [-1, 1] image can produce, so diverged samples stand out. */
export const NAN_COLOUR: RGB = [255, 0, 255];

/** An RGBA canvas filled with one colour (alpha always 255). */
class Canvas {
  readonly data: Buffer;
  constructor(
    readonly width: number,
    readonly height: number,
    fill: RGB,
  ) {
    this.data = Buffer.alloc(width * height * 4);
    for (let i = 0; i < width * height; i++) this.data.set([fill[0], fill[1], fill[2], 255], i * 4);
  }
  set(x: number, y: number, [r, g, b]: RGB): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 4;
    this.data[o] = r;
    this.data[o + 1] = g;
    this.data[o + 2] = b;
  }
  rect(x: number, y: number, w: number, h: number, colour: RGB): void {
    for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) this.set(i, j, colour);
  }
  encode(): Uint8Array {
    const png = new PNG({ width: this.width, height: this.height });
    this.data.copy(png.data);
    return PNG.sync.write(png);
  }
}

// ---- image grid -----------------------------------------------------------------------------------------------

// 3x5 glyphs, one row of 3 bits per string: enough for class labels and short numbers.
const GLYPHS: Record<string, readonly string[]> = {
  '0': ['111', '101', '101', '101', '111'],
  '1': ['010', '110', '010', '010', '111'],
  '2': ['111', '001', '111', '100', '111'],
  '3': ['111', '001', '111', '001', '111'],
  '4': ['101', '101', '111', '001', '001'],
  '5': ['111', '100', '111', '001', '111'],
  '6': ['111', '100', '111', '101', '111'],
  '7': ['111', '001', '001', '001', '001'],
  '8': ['111', '101', '111', '101', '111'],
  '9': ['111', '101', '111', '001', '111'],
  '-': ['000', '000', '111', '000', '000'],
  '.': ['000', '000', '000', '000', '010'],
  ':': ['000', '010', '000', '010', '000'],
  ' ': ['000', '000', '000', '000', '000'],
};

export interface GridOptions {
  /** Images per row; default ceil(sqrt(N)). */
  readonly cols?: number;
  /** Integer upscaling of each image pixel (nearest neighbour); default 2. */
  readonly scale?: number;
  /** Mid-grey pixels between and around cells, in output pixels; default 2. */
  readonly pad?: number;
  /** One label per image (digits and ' -.:' only), drawn white in a grey band above it at the image's scale. */
  readonly labels?: ArrayLike<string | number>;
}

/** Maps [-1, 1] (clamped) to 0..255; NaN has no grey level (see NAN_COLOUR). */
const toByte = (v: number): number => Math.round(((Math.min(1, Math.max(-1, v)) + 1) / 2) * 255);

/**
 * A PNG of images [N, C, H, W] (C = 1 grey or 3 RGB, values in [-1, 1]) laid out row-major in `cols` columns.
 * Image i's top-left output pixel is (pad + c (W scale + pad), pad + r (H scale + L + pad) + L) for
 * r = floor(i / cols), c = i % cols and label band height L = labels ? 7 scale : 0; everything else is mid-grey.
 */
export const imageGrid = (images: NDArray, options: GridOptions = {}): Uint8Array => {
  if (images.shape.length !== 4 || (images.shape[1] !== 1 && images.shape[1] !== 3) || images.shape[0] < 1) {
    throw new Error(`imageGrid: expected images [N>=1, C=1|3, H, W], got shape ${fmt(images.shape)}`);
  }
  const [n, ch, h, w] = images.shape;
  const { cols = Math.ceil(Math.sqrt(n)), scale = 2, pad = 2, labels } = options;
  for (const [name, v, min] of [
    ['cols', cols, 1],
    ['scale', scale, 1],
    ['pad', pad, 0],
  ] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`imageGrid: ${name} must be an integer >= ${min}, got ${v}`);
  }
  const text = labels === undefined ? undefined : Array.from(labels, String);
  if (text !== undefined && text.length !== n) throw new Error(`imageGrid: ${text.length} labels for ${n} images`);
  for (const [i, s] of (text ?? []).entries()) {
    for (const c of s)
      if (!(c in GLYPHS)) throw new Error(`imageGrid: label ${i} '${s}' has '${c}'; labels may use only digits and ' -.:'`);
  }
  const rows = Math.ceil(n / cols);
  const cellW = w * scale,
    cellH = h * scale,
    bandH = text ? 7 * scale : 0;
  const canvas = new Canvas(cols * cellW + (cols + 1) * pad, rows * (cellH + bandH + pad) + pad, PAD_GREY);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const x0 = pad + (i % cols) * (cellW + pad),
      y0 = pad + Math.floor(i / cols) * (cellH + bandH + pad) + bandH;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = (c: number): number => images.data[(i * ch + c) * plane + y * w + x];
        const vs = ch === 1 ? [at(0), at(0), at(0)] : [at(0), at(1), at(2)];
        const colour: RGB = vs.some(Number.isNaN) ? NAN_COLOUR : [toByte(vs[0]), toByte(vs[1]), toByte(vs[2])];
        canvas.rect(x0 + x * scale, y0 + y * scale, scale, scale, colour);
      }
    }
    [...(text?.[i] ?? '')].forEach((c, k) => {
      GLYPHS[c].forEach((bits, gy) => {
        for (let gx = 0; gx < 3; gx++)
          if (bits[gx] === '1') canvas.rect(x0 + (4 * k + gx) * scale, y0 - bandH + (1 + gy) * scale, scale, scale, LABEL_INK);
      });
    });
  }
  return canvas.encode();
};

// ---- scatter plot ---------------------------------------------------------------------------------------------

export interface ScatterOptions {
  /** Points [M, 2] drawn faint grey under the samples (e.g. draws from the data distribution). */
  readonly reference?: NDArray;
  /** [xmin, xmax, ymin, ymax]; default: a square window around the reference (or the points without one) + 10%. */
  readonly range?: readonly [number, number, number, number];
  /** Width and height in pixels; default 480. */
  readonly size?: number;
}

const BACKGROUND: RGB = [250, 250, 250];
const AXIS: RGB = [200, 200, 200];
const REFERENCE: RGB = [170, 170, 170];
const SAMPLE: RGB = [20, 50, 160];
const OUTLIER: RGB = [220, 30, 30];

const points2 = (p: NDArray, what: string): number => {
  if (p.shape.length !== 2 || p.shape[1] !== 2) throw new Error(`scatterPlot: ${what} must be [N, 2], got shape ${fmt(p.shape)}`);
  return p.shape[0];
};

/** Square window (equal scale on both axes, so shapes are not distorted) around the finite points, with a margin. */
const defaultRange = (p: NDArray): [number, number, number, number] => {
  let xmin = Infinity,
    xmax = -Infinity,
    ymin = Infinity,
    ymax = -Infinity;
  for (let i = 0; i < p.shape[0]; i++) {
    const x = p.data[2 * i],
      y = p.data[2 * i + 1];
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    [xmin, xmax, ymin, ymax] = [Math.min(xmin, x), Math.max(xmax, x), Math.min(ymin, y), Math.max(ymax, y)];
  }
  if (xmin > xmax) return [-1, 1, -1, 1];
  const half = 0.6 * Math.max(xmax - xmin, ymax - ymin) || 1;
  const cx = (xmin + xmax) / 2,
    cy = (ymin + ymax) / 2;
  return [cx - half, cx + half, cy - half, cy + half];
};

/**
 * A square PNG scatter plot of points [N, 2]: light background, grey axes through 0 where visible, reference
 * points as faint grey pixels, samples as dark-blue dots (2x2, 3x3 from size 720). Samples outside the range (or
 * NaN: left/bottom edge) are clamped onto the border as red dots one pixel larger, so outliers stay visible. y
 * points up; (x, y) lands on pixel (round((x - xmin) / (xmax - xmin) (size - 1)), round((ymax - y) / (ymax - ymin)
 * (size - 1))), the dot's top-left (2x2) or centre (3x3).
 */
export const scatterPlot = (points: NDArray, options: ScatterOptions = {}): Uint8Array => {
  const n = points2(points, 'points');
  const { reference, size = 480 } = options;
  if (reference !== undefined) points2(reference, 'reference');
  if (!Number.isInteger(size) || size < 8) throw new Error(`scatterPlot: size must be an integer >= 8, got ${size}`);
  const [xmin, xmax, ymin, ymax] = options.range ?? defaultRange(reference ?? points);
  if (!(xmin < xmax && ymin < ymax && [xmin, xmax, ymin, ymax].every(Number.isFinite))) {
    throw new Error(
      `scatterPlot: range must be finite [xmin, xmax, ymin, ymax] ` +
        `with xmin < xmax and ymin < ymax, got [${[xmin, xmax, ymin, ymax].join(', ')}]`,
    );
  }
  const last = size - 1;
  const px = (x: number): number => Math.round(((x - xmin) / (xmax - xmin)) * last);
  const py = (y: number): number => Math.round(((ymax - y) / (ymax - ymin)) * last);
  const canvas = new Canvas(size, size, BACKGROUND);
  if (xmin <= 0 && 0 <= xmax) canvas.rect(px(0), 0, 1, size, AXIS);
  if (ymin <= 0 && 0 <= ymax) canvas.rect(0, py(0), size, 1, AXIS);
  if (reference !== undefined) {
    for (let i = 0; i < reference.shape[0]; i++) {
      const x = reference.data[2 * i],
        y = reference.data[2 * i + 1];
      if (x >= xmin && x <= xmax && y >= ymin && y <= ymax) canvas.set(px(x), py(y), REFERENCE);
    }
  }
  const dot = size >= 720 ? 3 : 2;
  const lo = dot === 3 ? -1 : 0;
  const outliers: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const x = points.data[2 * i],
      y = points.data[2 * i + 1];
    if (x >= xmin && x <= xmax && y >= ymin && y <= ymax) canvas.rect(px(x) + lo, py(y) + lo, dot, dot, SAMPLE);
    else
      outliers.push([
        Number.isNaN(x) ? 0 : Math.min(last, Math.max(0, px(x))),
        Number.isNaN(y) ? last : Math.min(last, Math.max(0, py(y))),
      ]);
  }
  // Drawn last and one pixel larger so that no sample hides them; shifted inward to stay whole at the border.
  const big = dot + 1;
  const place = (v: number): number => Math.min(last - big + 1, Math.max(0, v - 1));
  for (const [x, y] of outliers) canvas.rect(place(x), place(y), big, big, OUTLIER);
  return canvas.encode();
};

// ---- files ----------------------------------------------------------------------------------------------------

/** Writes PNG bytes atomically (`<path>.tmp-<pid>-<random>`, fsync, rename): a reader never sees half a figure. */
export const writePng = (path: string, bytes: Uint8Array): void => writeFileAtomic(path, bytes);
