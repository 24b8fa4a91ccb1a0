// The data sets: MNIST splits, resampling and batches; the 2-D mixtures' samples, densities and metrics; the registry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NDArray } from '../core/ndarray.ts';
import { initNormal, initUniform } from '../dsl/params.ts';
import {
  areaResample,
  areaWeights,
  batches,
  COVERAGE_THRESHOLD,
  datasetNames,
  getDataset,
  loadMnist,
  MNIST_COUNT,
  mixtures,
  mnistSplitIndices,
  type Mixture2D,
} from '../data/index.ts';

const mean = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
};

// ---- MNIST ------------------------------------------------------------------------------------------------

test('MNIST split: deterministic, disjoint, covers all 10,000, sizes from testFraction', () => {
  const a = mnistSplitIndices(0.2, 0);
  const b = mnistSplitIndices(0.2, 0);
  assert.deepEqual(a.test, b.test);
  assert.equal(a.test.length, 2000);
  assert.equal(a.train.length, 8000);
  const seen = new Uint8Array(MNIST_COUNT);
  for (const i of a.train) seen[i]++;
  for (const i of a.test) seen[i]++;
  assert.ok(
    seen.every((c) => c === 1),
    'every digit in exactly one split',
  );
  const c = mnistSplitIndices(0.2, 1);
  assert.notDeepEqual(c.test, a.test, 'another seed, another split');
  assert.equal(mnistSplitIndices(0.1, 0).test.length, 1000);
  assert.throws(() => mnistSplitIndices(1.5), /testFraction must be in \(0, 1\)/);
});

test('MNIST 16 and 28: shapes, pixel range [-1, 1], balanced labels, 16 is the area average of 28', () => {
  const t28 = loadMnist({ size: 28, split: 'test' });
  const t16 = loadMnist({ size: 16, split: 'test' });
  const tr16 = loadMnist({ size: 16, split: 'train' });
  assert.deepEqual(t28.images.shape, [2000, 1, 28, 28]);
  assert.deepEqual(t16.images.shape, [2000, 1, 16, 16]);
  assert.deepEqual(tr16.images.shape, [8000, 1, 16, 16]);
  assert.deepEqual(t16.indices, t28.indices);
  assert.deepEqual(t16.labels, t28.labels);
  for (const s of [t28, t16, tr16]) {
    let lo = Infinity,
      hi = -Infinity;
    for (const v of s.images.data) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    assert.ok(lo >= -1 && hi <= 1, `range [${lo}, ${hi}]`);
    assert.equal(lo, -1); // background
    assert.ok(hi > 0.9, `max ${hi}`);
    const counts = new Array<number>(10).fill(0);
    for (const l of s.labels) counts[l]++;
    const n = s.labels.length;
    for (let d = 0; d < 10; d++) assert.ok(counts[d] > 0.07 * n && counts[d] < 0.14 * n, `class ${d}: ${counts[d]} of ${n}`);
  }
  // image by image, the 16x16 mean equals the 28x28 mean (exact area averaging)
  for (let k = 0; k < 20; k++) {
    const m28 = mean(t28.images.data.subarray(k * 784, (k + 1) * 784));
    const m16 = mean(t16.images.data.subarray(k * 256, (k + 1) * 256));
    assert.ok(Math.abs(m28 - m16) < 1e-12, `image ${k}: ${m28} vs ${m16}`);
  }
});

test('area resampling 28 -> 16 preserves the mean exactly; rows of the weights sum to 1; 28 -> 14 is 2x2 average pooling', () => {
  const x = initNormal([3, 2, 28, 28], 1, 7);
  const y = areaResample(x, 16, 16);
  assert.deepEqual(y.shape, [3, 2, 16, 16]);
  for (let p = 0; p < 6; p++) {
    const mx = mean(x.data.subarray(p * 784, (p + 1) * 784));
    const my = mean(y.data.subarray(p * 256, (p + 1) * 256));
    assert.ok(Math.abs(mx - my) < 1e-14, `plane ${p}: ${mx} vs ${my}`);
  }
  const w = areaWeights(28, 16);
  for (let j = 0; j < 16; j++) assert.ok(Math.abs(mean(w.subarray(j * 28, (j + 1) * 28)) * 28 - 1) < 1e-15);
  const c = areaResample({ shape: [1, 28, 28], data: new Float64Array(784).fill(0.3) }, 16, 16);
  assert.ok(
    c.data.every((v) => Math.abs(v - 0.3) < 1e-15),
    'a constant stays constant',
  );
  const z = areaResample(x, 14, 14);
  for (const [p, i, j] of [
    [0, 0, 0],
    [5, 13, 2],
    [3, 7, 7],
  ]) {
    const at = (r: number, s: number): number => x.data[p * 784 + r * 28 + s];
    const pool = (at(2 * i, 2 * j) + at(2 * i, 2 * j + 1) + at(2 * i + 1, 2 * j) + at(2 * i + 1, 2 * j + 1)) / 4;
    assert.ok(Math.abs(z.data[p * 196 + i * 14 + j] - pool) < 1e-14);
  }
});

test('batches: deterministic in (seed, epoch), a permutation per epoch, dropLast by default', () => {
  const images = initUniform([103, 1, 2, 2], -1, 1, 3);
  const labels = Float64Array.from({ length: 103 }, (_, i) => i % 10);
  const ds = { images, labels };
  const e0 = [...batches(ds, 10, 5, 0)];
  assert.equal(e0.length, 10);
  assert.deepEqual(e0[0].images.shape, [10, 1, 2, 2]);
  assert.deepEqual(
    [...batches(ds, 10, 5, 0)].map((b) => [...b.indices]),
    e0.map((b) => [...b.indices]),
  );
  const e1 = [...batches(ds, 10, 5, 1)];
  assert.notDeepEqual(
    e1.map((b) => [...b.indices]),
    e0.map((b) => [...b.indices]),
  );
  const all = [...batches(ds, 10, 5, 0, { dropLast: false })];
  assert.equal(all.length, 11);
  assert.equal(all[10].images.shape[0], 3);
  const idx = all.flatMap((b) => [...b.indices]).sort((a, b) => a - b);
  assert.deepEqual(
    idx,
    Array.from({ length: 103 }, (_, i) => i),
  );
  const b = all[4];
  for (let r = 0; r < b.indices.length; r++) {
    assert.equal(b.labels?.[r], labels[b.indices[r]]);
    assert.deepEqual([...b.images.data.subarray(4 * r, 4 * r + 4)], [...images.data.subarray(4 * b.indices[r], 4 * b.indices[r] + 4)]);
  }
});

// ---- 2-D mixtures -------------------------------------------------------------------------------------------

const all2d = Object.values(mixtures) as Mixture2D[];

test('mixtures: sample(n, seed) is deterministic and [n,2]', () => {
  for (const m of all2d) {
    const a = m.sample(100, 1);
    assert.deepEqual(a.shape, [100, 2]);
    assert.deepEqual(a.data, m.sample(100, 1).data);
    assert.notDeepEqual(a.data, m.sample(100, 2).data);
  }
});

test('mixtures: empirical mean and covariance match the analytic ones within 5 standard errors', () => {
  const n = 20000;
  for (const m of all2d) {
    const s = m.sample(n, 11);
    const xs = Float64Array.from({ length: n }, (_, i) => s.data[2 * i]);
    const ys = Float64Array.from({ length: n }, (_, i) => s.data[2 * i + 1]);
    const cols = [xs, ys];
    for (let a = 0; a < 2; a++) {
      const ma = mean(cols[a]);
      const se = Math.sqrt(m.cov[a][a] / n);
      assert.ok(Math.abs(ma - m.mean[a]) < 5 * se, `${m.name} mean[${a}]: ${ma} vs ${m.mean[a]} (se ${se})`);
      for (let b = a; b < 2; b++) {
        // products about the true mean: their average estimates cov[a][b], their spread gives its standard error
        const prod = Float64Array.from({ length: n }, (_, i) => (cols[a][i] - m.mean[a]) * (cols[b][i] - m.mean[b]));
        const c = mean(prod);
        const sd = Math.sqrt(mean(prod.map((p) => (p - c) ** 2)));
        const seC = sd / Math.sqrt(n);
        assert.ok(Math.abs(c - m.cov[a][b]) < 5 * seC, `${m.name} cov[${a}][${b}]: ${c} vs ${m.cov[a][b]} (se ${seC})`);
      }
    }
  }
});

test('mixtures: the density integrates to 1 over a grid (midpoint rule, |error| < 1e-3)', () => {
  for (const m of all2d) {
    const [x0, x1, y0, y1] = m.bounds;
    const h = m.name === 'grid25' ? 0.01 : 0.02; // at most a fifth of the std: the midpoint rule is then near-exact
    const nx = Math.ceil((x1 - x0) / h),
      ny = Math.ceil((y1 - y0) / h);
    const pts = new Float64Array(2 * nx * ny);
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        pts[2 * (j * nx + i)] = x0 + (i + 0.5) * h;
        pts[2 * (j * nx + i) + 1] = y0 + (j + 0.5) * h;
      }
    const lp = m.logDensity({ shape: [nx * ny, 2], data: pts });
    let mass = 0;
    for (const l of lp) mass += Math.exp(l) * h * h;
    assert.ok(Math.abs(mass - 1) < 1e-3, `${m.name}: integral ${mass}`);
  }
});

test('mixtures: true samples are on the data and cover every mode; uniform noise over the box is mostly off the data', () => {
  for (const m of all2d) {
    const s = m.sample(4000, 3);
    const off = m.offDataShare(s);
    assert.ok(off < 0.02, `${m.name}: off-data share of true samples ${off}`);
    assert.equal(m.modeCoverage(s), 1, `${m.name}: coverage`);
    assert.ok(Number.isFinite(m.meanLogLikelihood(s)));
    // a sample stuck in one mode covers only that one
    const one: NDArray = { shape: [50, 2], data: new Float64Array(100).map((_, i) => m.modes[0][i % 2]) };
    assert.equal(m.modeCoverage(one), 1 / m.coverageModes);
  }
  for (const m of [mixtures.eightGaussians, mixtures.grid25]) {
    const [x0, x1, y0, y1] = m.bounds;
    const u = initUniform([4000, 2], 0, 1, 9);
    for (let i = 0; i < 4000; i++) {
      u.data[2 * i] = x0 + (x1 - x0) * u.data[2 * i];
      u.data[2 * i + 1] = y0 + (y1 - y0) * u.data[2 * i + 1];
    }
    const off = m.offDataShare(u);
    assert.ok(off > 0.5, `${m.name}: off-data share of uniform noise ${off}`);
    assert.ok(m.meanLogLikelihood(u) < m.meanLogLikelihood(m.sample(4000, 3)) - 5);
  }
  // the checkerboard's support is half its box: uniform noise over a wider box lands off it more than half the time
  const u = initUniform([4000, 2], -3, 3, 10);
  assert.ok(mixtures.checkerboard.offDataShare(u) > 0.7);
  assert.equal(mixtures.checkerboard.meanLogLikelihood(u), -Infinity);
  assert.ok(COVERAGE_THRESHOLD > 0 && COVERAGE_THRESHOLD < 1);
});

test('mixtures: exact log densities at known points', () => {
  const g = mixtures.eightGaussians;
  // at a centre, the other components contribute < exp(-(2*2*sin(pi/8))^2 / 0.02) ~ 0: log p = -log(2 pi 0.01) - log 8
  const lp = g.logDensity({ shape: [1, 2], data: Float64Array.of(2, 0) })[0];
  assert.ok(Math.abs(lp - (-Math.log(2 * Math.PI * 0.01) - Math.log(8))) < 1e-12);
  const c = mixtures.checkerboard.logDensity({ shape: [3, 2], data: Float64Array.of(0.5, 0.5, 0.5, -0.5, 5, 5) });
  assert.deepEqual([...c], [-Math.log(8), -Infinity, -Infinity]);
  assert.throws(() => g.logDensity({ shape: [2, 3], data: new Float64Array(6) }), /shape \[n,2\]/);
});

// ---- registry -----------------------------------------------------------------------------------------------

test('registry: every name resolves; an unknown name lists the valid ones', () => {
  assert.deepEqual(datasetNames, ['mnist16', 'mnist28', 'eightGaussians', 'grid25', 'checkerboard', 'twoMoons']);
  for (const n of datasetNames) assert.equal(getDataset(n).name, n);
  const d = getDataset('mnist16');
  assert.ok(d.kind === 'image' && d.load({ split: 'test' }).images.shape[2] === 16);
  assert.throws(
    () => getDataset('cifar10'),
    /unknown dataset 'cifar10'; datasets: mnist16, mnist28, eightGaussians, grid25, checkerboard, twoMoons/,
  );
});
