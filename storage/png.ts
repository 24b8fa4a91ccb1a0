// Images [N, C, H, W] as PNG pixels, encoded by pngjs: the sample images that the report's figures embed (titles,
// axes and legends are drawn by the plotting library, in plots/). Deterministic in its inputs.
import { PNG } from 'pngjs';
import type { NDArray } from '../core/ndarray.ts';
import { fmt } from '../core/shape.ts';

type RGB = readonly [number, number, number];

const PAD_GREY: RGB = [128, 128, 128];
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

export interface GridOptions {
  /** Images per row; default ceil(sqrt(N)). */
  readonly cols?: number;
  /** Integer upscaling of each image pixel (nearest neighbour); default 2. */
  readonly scale?: number;
  /** Mid-grey pixels between and around cells, in output pixels; default 2. */
  readonly pad?: number;
}

/** Maps [-1, 1] (clamped) to 0..255; NaN has no grey level (see NAN_COLOUR). */
const toByte = (v: number): number => Math.round(((Math.min(1, Math.max(-1, v)) + 1) / 2) * 255);

/**
 * A PNG of images [N, C, H, W] (C = 1 grey or 3 RGB, values in [-1, 1]) laid out row-major in `cols` columns.
 * Image i's top-left output pixel is (pad + c (W scale + pad), pad + r (H scale + pad)) for r = floor(i / cols),
 * c = i % cols; everything else is mid-grey.
 */
export const imageGrid = (images: NDArray, options: GridOptions = {}): Uint8Array => {
  if (images.shape.length !== 4 || (images.shape[1] !== 1 && images.shape[1] !== 3) || images.shape[0] < 1) {
    throw new Error(`imageGrid: expected images [N>=1, C=1|3, H, W], got shape ${fmt(images.shape)}`);
  }
  const [n, ch, h, w] = images.shape;
  const { cols = Math.ceil(Math.sqrt(n)), scale = 2, pad = 2 } = options;
  for (const [name, v, min] of [
    ['cols', cols, 1],
    ['scale', scale, 1],
    ['pad', pad, 0],
  ] as const) {
    if (!Number.isInteger(v) || v < min) throw new Error(`imageGrid: ${name} must be an integer >= ${min}, got ${v}`);
  }
  const rows = Math.ceil(n / cols);
  const cellW = w * scale,
    cellH = h * scale;
  const canvas = new Canvas(cols * cellW + (cols + 1) * pad, rows * (cellH + pad) + pad, PAD_GREY);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const x0 = pad + (i % cols) * (cellW + pad),
      y0 = pad + Math.floor(i / cols) * (cellH + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = (c: number): number => images.data[(i * ch + c) * plane + y * w + x];
        const vs = ch === 1 ? [at(0), at(0), at(0)] : [at(0), at(1), at(2)];
        const colour: RGB = vs.some(Number.isNaN) ? NAN_COLOUR : [toByte(vs[0]), toByte(vs[1]), toByte(vs[2])];
        canvas.rect(x0 + x * scale, y0 + y * scale, scale, scale, colour);
      }
    }
  }
  return canvas.encode();
};
