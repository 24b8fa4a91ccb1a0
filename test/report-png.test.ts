// The sample images as PNG pixels (what the report's digit grids embed), decoded back with pngjs: grid layout and
// value mapping, NaN marked; and the atomic write of a figure. The figures themselves: test/figures.test.ts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PNG } from 'pngjs';
import type { NDArray } from '../core/ndarray.ts';
import { imageGrid, NAN_COLOUR } from '../storage/png.ts';
import { imageUrls, writeFigure } from '../plots/render.ts';
import { lossFigure } from '../plots/specs.ts';
import { WriteError } from '../storage/atomicWrite.ts';
import { CheckpointError } from '../storage/checkpoint.ts';

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

test('imageGrid rejects bad shapes and options', () => {
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
        { cols: 0 },
      ),
    /cols must be an integer >= 1, got 0/,
  );
});

test('imageUrls: one PNG data URL per image, each image alone at the scale asked', () => {
  const urls = imageUrls(
    filled([2, 1, 4, 4], (i) => (i < 16 ? 1 : -1)),
    3,
  );
  assert.equal(urls.length, 2);
  const [a, b] = urls.map((u) => decode(Buffer.from(u.replace(/^data:image\/png;base64,/, ''), 'base64')));
  assert.deepEqual([a.width, a.height], [12, 12]);
  assert.deepEqual([pixel(a, 0, 0), pixel(a, 11, 11), pixel(b, 5, 5)], [WHITE, WHITE, BLACK]);
});

test('writeFigure writes the PNG atomically and leaves no temporary file', async () => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'fusediff-png-'));
  try {
    const path = join(dir, 'grid.png');
    fs.writeFileSync(path, 'old');
    const figure = lossFigure({ title: 'loss', series: [{ name: 'a', losses: [1, 0.5, 0.25] }] });
    await writeFigure(path, figure);
    const png = decode(fs.readFileSync(path));
    assert.ok(png.width > 100 && png.height > 100);
    assert.deepEqual(fs.readdirSync(dir), ['grid.png']);
    // a picture that cannot be written is a WriteError naming it, not a CheckpointError (it is no checkpoint)
    await assert.rejects(
      writeFigure(join(dir, 'missing', 'x.png'), figure),
      (e: Error) => e instanceof WriteError && !(e instanceof CheckpointError) && /could not write .*x\.png.*ENOENT/.test(e.message),
    );
    assert.deepEqual(fs.readdirSync(dir), ['grid.png']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
