// The report figures decoded back with pngjs: grid layout and value mapping, scatter placement, outliers in red,
// labels, and the atomic write.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PNG } from 'pngjs';
import type { NDArray } from '../core/ndarray.ts';
import { imageGrid, NAN_COLOUR, scatterPlot, writePng } from '../storage/png.ts';

const decode = (bytes: Uint8Array): PNG => PNG.sync.read(Buffer.from(bytes));
const pixel = (png: PNG, x: number, y: number): number[] => {
  const o = (y * png.width + x) * 4;
  return Array.from(png.data.subarray(o, o + 4));
};
const filled = (shape: number[], f: (i: number) => number): NDArray => {
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = f(i);
  return { shape, data };
};
const GREY = [128, 128, 128, 255],
  WHITE = [255, 255, 255, 255],
  BLACK = [0, 0, 0, 255];

test('imageGrid: layout, white for +1, black for -1, grey padding and empty cells', () => {
  // 3 grey 4x4 images: image 0 all +1, image 1 all -1, image 2 all 0; 2 columns, scale 3, pad 2.
  const images = filled([3, 1, 4, 4], (i) => [1, -1, 0][Math.floor(i / 16)]);
  const png = decode(imageGrid(images, { cols: 2, scale: 3, pad: 2 }));
  assert.equal(png.width, 2 * 12 + 3 * 2);
  assert.equal(png.height, 2 * 12 + 3 * 2);
  // Image 0 spans x, y in [2, 14); image 1 starts at x = 16; image 2 at y = 16.
  assert.deepEqual(pixel(png, 2, 2), WHITE);
  assert.deepEqual(pixel(png, 13, 13), WHITE);
  assert.deepEqual(pixel(png, 14, 2), GREY);
  assert.deepEqual(pixel(png, 1, 2), GREY);
  assert.deepEqual(pixel(png, 16, 2), BLACK);
  assert.deepEqual(pixel(png, 27, 13), BLACK);
  assert.deepEqual(pixel(png, 2, 16), [128, 128, 128, 255]); // 0 maps to round(127.5) = 128
  assert.deepEqual(pixel(png, 20, 20), GREY); // the fourth cell is empty
});

test('imageGrid: pixel (y, x) of an image lands on its scale x scale block; values clamp; RGB channels; NaN marked', () => {
  // One 2x3 RGB image; pixel (y=1, x=2) has r = 2 (clamped to 1), g = -5 (clamped to -1), b = 0.5.
  const img = filled([1, 3, 2, 3], () => -1);
  img.data[0 * 6 + 1 * 3 + 2] = 2;
  img.data[1 * 6 + 1 * 3 + 2] = -5;
  img.data[2 * 6 + 1 * 3 + 2] = 0.5;
  img.data[0 * 6 + 0 * 3 + 1] = NaN;
  const png = decode(imageGrid(img, { scale: 2, pad: 1 }));
  assert.equal(png.width, 1 + 3 * 2 + 1);
  assert.equal(png.height, 1 + 2 * 2 + 1);
  for (const [x, y] of [
    [5, 3],
    [6, 3],
    [5, 4],
    [6, 4],
  ])
    assert.deepEqual(pixel(png, x, y), [255, 0, 191, 255]);
  assert.deepEqual(pixel(png, 4, 3), BLACK);
  assert.deepEqual(pixel(png, 3, 1), [...NAN_COLOUR, 255]);
});

test('imageGrid: labels draw digits in a band above each image', () => {
  const images = filled([2, 1, 8, 8], () => -1);
  const png = decode(imageGrid(images, { cols: 2, scale: 1, pad: 1, labels: [7, '1'] }));
  // band height 7: image 0 at (1, 8); its label occupies rows 2..6 from x = 1. '7' = 111/001/001/001/001.
  assert.equal(png.height, 1 + 7 + 8 + 1);
  assert.deepEqual(pixel(png, 1, 8), BLACK);
  assert.deepEqual([pixel(png, 1, 2), pixel(png, 2, 2), pixel(png, 3, 2)], [WHITE, WHITE, WHITE]);
  assert.deepEqual([pixel(png, 1, 3), pixel(png, 3, 3)], [GREY, WHITE]);
  assert.deepEqual(pixel(png, 1, 1), GREY);
  // '1' at image 1 (x0 = 10): middle column set in row 0, left column set in row 1 only.
  assert.deepEqual([pixel(png, 10, 2), pixel(png, 11, 2), pixel(png, 10, 3)], [GREY, WHITE, WHITE]);
});

test('imageGrid rejects bad shapes, options and labels', () => {
  assert.throws(() => imageGrid(filled([2, 2, 4, 4], () => 0)), /expected images \[N>=1, C=1\|3, H, W\], got shape \[2,2,4,4\]/);
  assert.throws(
    () =>
      imageGrid(
        filled([2, 1, 4, 4], () => 0),
        { scale: 1.5 },
      ),
    /scale must be an integer >= 1, got 1.5/,
  );
  assert.throws(
    () =>
      imageGrid(
        filled([2, 1, 4, 4], () => 0),
        { labels: ['1'] },
      ),
    /1 labels for 2 images/,
  );
  assert.throws(
    () =>
      imageGrid(
        filled([1, 1, 4, 4], () => 0),
        { labels: ['a'] },
      ),
    /label 0 'a' has 'a'/,
  );
});

const pts = (xy: number[][]): NDArray => ({ shape: [xy.length, 2], data: Float64Array.from(xy.flat()) });
const BACKGROUND = [250, 250, 250, 255],
  SAMPLE = [20, 50, 160, 255],
  OUTLIER = [220, 30, 30, 255],
  REFERENCE = [170, 170, 170, 255],
  AXIS = [200, 200, 200, 255];

test('scatterPlot: a point darkens its pixel, axes at 0, reference faint, y up', () => {
  // Range [-1, 1]^2 over 101 pixels: x maps to 50 (x + 1), y to 50 (1 - y).
  const png = decode(scatterPlot(pts([[0.5, 0.5]]), { range: [-1, 1, -1, 1], size: 101, reference: pts([[-0.5, -0.5]]) }));
  assert.equal(png.width, 101);
  assert.equal(png.height, 101);
  for (const [x, y] of [
    [75, 25],
    [76, 25],
    [75, 26],
    [76, 26],
  ])
    assert.deepEqual(pixel(png, x, y), SAMPLE);
  assert.deepEqual(pixel(png, 74, 25), BACKGROUND);
  assert.deepEqual(pixel(png, 25, 75), REFERENCE);
  assert.deepEqual(pixel(png, 50, 10), AXIS);
  assert.deepEqual(pixel(png, 10, 50), AXIS);
  assert.deepEqual(pixel(png, 10, 10), BACKGROUND);
  // Large plots use 3x3 dots centred on the pixel; axes outside the range are not drawn.
  const big = decode(scatterPlot(pts([[2, 2]]), { range: [1, 3, 1, 3], size: 801 }));
  for (const [x, y] of [
    [399, 399],
    [401, 401],
    [400, 400],
  ])
    assert.deepEqual(pixel(big, x, y), SAMPLE);
  assert.deepEqual(pixel(big, 0, 0), BACKGROUND);
});

test('scatterPlot: points outside the range are clamped to the border in red', () => {
  const png = decode(
    scatterPlot(
      pts([
        [5, 0],
        [0, -9],
        [NaN, 0],
      ]),
      { range: [-1, 1, -1, 1], size: 101 },
    ),
  );
  // 3x3 red dots (one larger than samples) around the clamped pixel, shifted inward to stay whole.
  for (const [x, y] of [
    [98, 49],
    [100, 51],
    [100, 50],
  ])
    assert.deepEqual(pixel(png, x, y), OUTLIER); // right border
  assert.deepEqual(pixel(png, 97, 49), BACKGROUND);
  assert.deepEqual(pixel(png, 50, 100), OUTLIER); // bottom border
  assert.deepEqual(pixel(png, 0, 50), OUTLIER); // NaN x goes to the left border
  assert.deepEqual(pixel(png, 2, 51), OUTLIER);
});

test('scatterPlot: default range frames the reference, so far samples show as outliers', () => {
  const ring = pts(Array.from({ length: 64 }, (_, i) => [Math.cos(i / 10), Math.sin(i / 10)]));
  const png = decode(
    scatterPlot(
      pts([
        [0, 0],
        [100, 0],
      ]),
      { reference: ring, size: 200 },
    ),
  );
  assert.deepEqual(pixel(png, 100, 100).slice(0, 3), SAMPLE.slice(0, 3)); // centre of a square window around the ring
  assert.deepEqual(pixel(png, 199, 100), OUTLIER);
  // Without a reference the points set the window: both inside.
  const own = decode(
    scatterPlot(
      pts([
        [0, 0],
        [100, 0],
      ]),
      { size: 200 },
    ),
  );
  let red = 0;
  for (let i = 0; i < own.data.length; i += 4) if (own.data[i] === 220 && own.data[i + 1] === 30) red++;
  assert.equal(red, 0);
});

test('scatterPlot rejects bad shapes and ranges', () => {
  assert.throws(() => scatterPlot({ shape: [3], data: new Float64Array(3) }), /points must be \[N, 2\], got shape \[3\]/);
  assert.throws(() => scatterPlot(pts([[0, 0]]), { range: [1, 0, 0, 1] }), /range must be finite .* got \[1, 0, 0, 1\]/);
  assert.throws(
    () => scatterPlot(pts([[0, 0]]), { reference: { shape: [2, 3], data: new Float64Array(6) } }),
    /reference must be \[N, 2\]/,
  );
});

test('writePng writes the bytes atomically and leaves no temporary file', () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'fusediff-png-'));
  try {
    const path = join(dir, 'grid.png');
    fs.writeFileSync(path, 'old');
    const bytes = imageGrid(filled([1, 1, 2, 2], () => 1));
    writePng(path, bytes);
    assert.deepEqual(new Uint8Array(fs.readFileSync(path)), new Uint8Array(bytes));
    assert.deepEqual(fs.readdirSync(dir), ['grid.png']);
    assert.throws(() => writePng(join(dir, 'missing', 'x.png'), bytes), /could not write/);
    assert.deepEqual(fs.readdirSync(dir), ['grid.png']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
