// The evaluation metrics against closed forms, hand-computed values and invariances: the Jacobi eigensolver and PSD
// square root, the Frechet distance, the inception score and class coverage.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { NDArray } from '../core/ndarray.ts';
import { initNormal } from '../dsl/params.ts';
import { matmul, sqrtPsd, symmetricEigen } from '../eval/linalg.ts';
import { argmaxRows, classCoverage, frechetDistance, frechetFromStats, gaussianStats, inceptionScore } from '../eval/metrics.ts';

const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const transpose = (a: Float64Array, n: number): Float64Array => a.map((_, k) => a[(k % n) * n + Math.floor(k / n)]);
const close = (actual: number, expected: number, tol: number, what = ''): void =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} vs ${expected} (tolerance ${tol})`);

// ---- linalg ---------------------------------------------------------------------------------------------------

const symmetric = fc.integer({ min: 1, max: 8 }).chain((n) =>
  fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: n * n, maxLength: n * n }).map((xs) => {
    const a = Float64Array.from(xs);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i];
    return { n, a };
  }),
);

const checkEigen = (a: Float64Array, n: number): void => {
  const { values, vectors } = symmetricEigen(a, n);
  const scale = 1 + maxAbs(a);
  const av = matmul(a, vectors, n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) close(av[i * n + j], vectors[i * n + j] * values[j], 1e-12 * n * scale, `(AV - V diag l)[${i},${j}]`);
  const vtv = matmul(transpose(vectors, n), vectors, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) close(vtv[i * n + j], i === j ? 1 : 0, 1e-12 * n, `(V^T V)[${i},${j}]`);
  for (let j = 1; j < n; j++) assert.ok(values[j - 1] <= values[j], 'eigenvalues ascending');
};

test('Jacobi eigen: A V = V diag(l) and V^T V = I for random symmetric matrices', () => {
  fc.assert(
    fc.property(symmetric, ({ n, a }) => checkEigen(a, n)),
    { numRuns: 300 },
  );
});

test('Jacobi eigen: 2x2 closed form, repeated eigenvalues, zero matrix and a 128x128 Gram matrix', () => {
  const { values } = symmetricEigen(Float64Array.from([2, 1, 1, 3]), 2);
  close(values[0], (5 - Math.sqrt(5)) / 2, 1e-14, 'l0');
  close(values[1], (5 + Math.sqrt(5)) / 2, 1e-14, 'l1');
  // 2 I + 1 1^T (n = 4): eigenvalues 2, 2, 2, 6.
  const rep = Float64Array.from({ length: 16 }, (_, k) => 1 + (k % 5 === 0 ? 2 : 0));
  assert.deepEqual(
    Array.from(symmetricEigen(rep, 4).values, (x) => Math.round(x * 1e12) / 1e12),
    [2, 2, 2, 6],
  );
  checkEigen(rep, 4);
  checkEigen(new Float64Array(9), 3);
  const n = 128,
    b = initNormal([n, n], 1, 7).data;
  const gram = matmul(b, transpose(b, n), n);
  checkEigen(gram, n);
  let trace = 0;
  for (let i = 0; i < n; i++) trace += gram[i * n + i];
  close(
    symmetricEigen(gram, n).values.reduce((x, y) => x + y, 0),
    trace,
    1e-10 * trace,
    'sum of eigenvalues = trace',
  );
});

test('Jacobi eigen rejects asymmetric and non-finite input', () => {
  assert.throws(() => symmetricEigen(Float64Array.from([1, 2, 3, 4]), 2), /not symmetric: \(0, 1\) = 2 but \(1, 0\) = 3/);
  assert.throws(() => symmetricEigen(Float64Array.from([1, NaN, NaN, 4]), 2), /non-finite entry NaN at \(0, 1\)/);
  assert.throws(() => symmetricEigen(new Float64Array(5), 2), /expected a 2x2 matrix \(4 values\), got 5/);
});

test('sqrtPsd squares back to a random PSD matrix (full rank or not) and is symmetric', () => {
  const psd = fc.record({ n: fc.integer({ min: 1, max: 7 }), r: fc.integer({ min: 1, max: 7 }), seed: fc.nat() }).map(({ n, r, seed }) => {
    const b = initNormal([n, r], 3, seed).data; // rank <= r
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < r; k++) a[i * n + j] += b[i * r + k] * b[j * r + k];
    return { n, a };
  });
  fc.assert(
    fc.property(psd, ({ n, a }) => {
      const root = sqrtPsd(a, n);
      const sq = matmul(root, root, n);
      const tol = 1e-11 * n * (1 + maxAbs(a));
      for (let k = 0; k < n * n; k++) close(sq[k], a[k], tol, `R^2[${k}]`);
      assert.deepEqual(root, transpose(root, n));
    }),
    { numRuns: 200 },
  );
});

// ---- Frechet distance -----------------------------------------------------------------------------------------

const matrix = (rows: number[][]): NDArray => ({ shape: [rows.length, rows[0].length], data: Float64Array.from(rows.flat()) });

/** rows of mu + sqrt(s) * N(0, 1), one independent seed per set. */
const gaussianSample = (n: number, mu: number[], s: number[], seed: number): NDArray => {
  const d = mu.length,
    x = initNormal([n, d], 1, seed);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) x.data[i * d + j] = mu[j] + Math.sqrt(s[j]) * x.data[i * d + j];
  return x;
};

const diagonalClosedForm = (muA: number[], sA: number[], muB: number[], sB: number[]): number =>
  muA.reduce((acc, _, j) => acc + (muA[j] - muB[j]) ** 2 + (Math.sqrt(sA[j]) - Math.sqrt(sB[j])) ** 2, 0);

test('gaussianStats: mean and unbiased covariance of a small matrix', () => {
  const s = gaussianStats(
    matrix([
      [1, 2],
      [3, 6],
      [5, 4],
    ]),
  );
  assert.deepEqual(Array.from(s.mean.data), [3, 4]);
  // deviations (-2,-2), (0,2), (2,0): sums 8, 4 / 4, 8 over N - 1 = 2
  assert.deepEqual(Array.from(s.cov.data), [4, 2, 2, 4]);
  assert.deepEqual(s.cov.shape, [2, 2]);
  assert.equal(s.count, 3);
});

test('FD of a set with itself is ~0, also with more features than rows', () => {
  for (const [n, d] of [
    [200, 8],
    [10, 32],
    [500, 64],
  ]) {
    const x = initNormal([n, d], 2, n + d);
    // Relative to Tr(2S) ~ 8 d; rank-deficient S (n <= d) needs the rounding-level eigenvalues clamped to hit this.
    close(frechetDistance(x, x), 0, 1e-12 * 8 * d, `FD(x, x) for [${n},${d}]`);
  }
});

test('FD equals the diagonal closed form exactly for exact-moment (Hadamard design) sets', () => {
  // Columns 1..7 of the 8x8 Sylvester Hadamard matrix sum to 0 and are orthogonal with squared norm 8, so
  // X = mu + H[:, 1..d] diag(sqrt(s (N-1)/N)) has sample mean mu and unbiased covariance diag(s) exactly.
  const N = 8,
    H = (i: number, j: number): number => (popcount(i & j) % 2 === 0 ? 1 : -1);
  const exact = (mu: number[], s: number[]): NDArray =>
    matrix(Array.from({ length: N }, (_, i) => mu.map((m, j) => m + H(i, j + 1) * Math.sqrt((s[j] * (N - 1)) / N))));
  const muA = [0, 1, -2, 0.5, 3],
    sA = [1, 4, 0.25, 9, 2];
  const muB = [1, 1, 0, -0.5, 3],
    sB = [4, 1, 0.25, 1, 0.5];
  close(frechetDistance(exact(muA, sA), exact(muB, sB)), diagonalClosedForm(muA, sA, muB, sB), 1e-10, 'FD');
});
const popcount = (x: number): number => (x === 0 ? 0 : (x & 1) + popcount(x >>> 1));

test('FD between large samples of two Gaussians approaches the closed form', () => {
  const N = 20000;
  const muA = [0, 0, 0, 0],
    sA = [1, 4, 0.25, 1];
  const muB = [0.5, -0.5, 0, 1],
    sB = [1, 1, 1, 4];
  const closed = diagonalClosedForm(muA, sA, muB, sB); // 3.75
  // Delta method: var ~ sum_j 4 dmu_j^2 (sA_j + sB_j)/N + 4 (sqrt sA_j - sqrt sB_j)^2 (sA_j + sB_j)/(2N), sigma ~ 0.049
  // here (0.042 measured over 40 seeds); bias ~ (tr SA + tr SB)/N < 0.001. Tolerance 5 sigma.
  let variance = 0;
  for (let j = 0; j < 4; j++) {
    variance +=
      (4 * (muA[j] - muB[j]) ** 2 * (sA[j] + sB[j])) / N + (4 * (Math.sqrt(sA[j]) - Math.sqrt(sB[j])) ** 2 * (sA[j] + sB[j])) / (2 * N);
  }
  const fd = frechetDistance(gaussianSample(N, muA, sA, 11), gaussianSample(N, muB, sB, 12));
  close(fd, closed, 5 * Math.sqrt(variance), 'FD vs closed form');
});

test('FD in one dimension is (mean difference)^2 + (std difference)^2 (independent computation)', () => {
  const column = fc.array(fc.double({ min: -50, max: 50, noNaN: true }), { minLength: 2, maxLength: 30 });
  fc.assert(
    fc.property(column, column, (a, b) => {
      const stats = (x: number[]): [number, number] => {
        const m = x.reduce((s, v) => s + v, 0) / x.length;
        return [m, Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / (x.length - 1))];
      };
      const [ma, sa] = stats(a),
        [mb, sb] = stats(b);
      const fd = frechetDistance(
        { shape: [a.length, 1], data: Float64Array.from(a) },
        { shape: [b.length, 1], data: Float64Array.from(b) },
      );
      close(fd, (ma - mb) ** 2 + (sa - sb) ** 2, 1e-9 * (1 + ma * ma + mb * mb + sa * sa + sb * sb));
    }),
    { numRuns: 200 },
  );
});

test('FD is symmetric and invariant to a shared rotation and translation (random Givens products)', () => {
  const setsAndRotation = fc.integer({ min: 1, max: 5 }).chain((d) => {
    const set = fc
      .integer({ min: 2, max: 10 })
      .chain((n) => fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: n * d, maxLength: n * d }));
    const givens = fc.record({ i: fc.nat(d - 1), j: fc.nat(d - 1), angle: fc.double({ min: -Math.PI, max: Math.PI, noNaN: true }) });
    const shift = fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: d, maxLength: d });
    return fc.record({ d: fc.constant(d), a: set, b: set, rotations: fc.array(givens, { maxLength: 8 }), shift });
  });
  const transform = (x: number[], d: number, rotations: { i: number; j: number; angle: number }[], shift: number[]): NDArray => {
    const y = Float64Array.from(x);
    for (let r = 0; r < y.length; r += d) {
      for (const { i, j, angle } of rotations) {
        if (i === j) continue;
        const c = Math.cos(angle),
          s = Math.sin(angle),
          yi = y[r + i],
          yj = y[r + j];
        y[r + i] = c * yi - s * yj;
        y[r + j] = s * yi + c * yj;
      }
      for (let k = 0; k < d; k++) y[r + k] += shift[k];
    }
    return { shape: [x.length / d, d], data: y };
  };
  fc.assert(
    fc.property(setsAndRotation, ({ d, a, b, rotations, shift }) => {
      const A = { shape: [a.length / d, d], data: Float64Array.from(a) },
        B = { shape: [b.length / d, d], data: Float64Array.from(b) };
      const fd = frechetDistance(A, B);
      const { cov: ca } = gaussianStats(A),
        { cov: cb } = gaussianStats(B);
      let scale = 1;
      for (let k = 0; k < d; k++) scale += ca.data[k * d + k] + cb.data[k * d + k];
      // sqrt is not Lipschitz at 0: an eigenvalue at rounding level (~eps * scale^2) that one order of operations
      // clamps and another keeps moves the trace by ~sqrt(eps) * scale, so near-singular sets get no better than that.
      const tol = 1e-6 * scale;
      close(frechetDistance(B, A), fd, tol, 'FD(b, a) vs FD(a, b)');
      close(frechetDistance(transform(a, d, rotations, shift), transform(b, d, rotations, shift)), fd, tol, 'rotated FD');
      assert.ok(fd >= -tol, `FD ${fd} >= 0`);
    }),
    { numRuns: 300 },
  );
});

test('FD errors name the shapes', () => {
  const x = initNormal([5, 3], 1, 1);
  assert.throws(() => frechetDistance(x, initNormal([5, 4], 1, 2)), /feature sizes differ: \[5,3\] vs \[5,4\]/);
  assert.throws(() => frechetDistance(x, initNormal([1, 3], 1, 2)), /at least 2 rows in each set, got \[5,3\] and \[1,3\]/);
  assert.throws(() => frechetDistance(x, initNormal([6], 1, 2)), /expected a matrix \[N, D\], got shape \[6\]/);
  assert.throws(() => frechetFromStats(gaussianStats(x), gaussianStats(initNormal([4, 2], 1, 2))), /feature sizes differ/);
});

// ---- inception score ------------------------------------------------------------------------------------------

const oneHot = (labels: number[], k: number): NDArray => matrix(labels.map((c) => Array.from({ length: k }, (_, j) => (j === c ? 1 : 0))));

test('IS = K for confident predictions spread uniformly over K classes, 1 for identical predictions', () => {
  close(inceptionScore(oneHot([0, 1, 2, 3, 4, 0, 1, 2, 3, 4], 5)).mean, 5, 1e-12, 'IS');
  const same = matrix(Array.from({ length: 7 }, () => [0.2, 0.5, 0.3]));
  close(inceptionScore(same).mean, 1, 1e-12, 'IS');
  close(inceptionScore(oneHot([2, 2, 2], 4)).mean, 1, 1e-12, 'IS one class');
});

test('IS matches a hand computation and splits give mean and population std', () => {
  // p(y) = (0.75, 0.25); KL rows: log(4/3) and 0.5 log(2/3) + 0.5 log 2; IS = exp of their mean = 1.2408...
  const expected = Math.exp((Math.log(4 / 3) + 0.5 * Math.log(2 / 3) + 0.5 * Math.log(2)) / 2);
  close(
    inceptionScore(
      matrix([
        [1, 0],
        [0.5, 0.5],
      ]),
    ).mean,
    expected,
    1e-12,
    'IS',
  );
  close(expected, 1.24081, 1e-5, 'hand value');
  // Split 1: two confident distinct classes (IS 2); split 2: identical rows (IS 1).
  const r = inceptionScore(
    matrix([
      [1, 0],
      [0, 1],
      [0.3, 0.7],
      [0.3, 0.7],
    ]),
    2,
  );
  close(r.mean, 1.5, 1e-12, 'mean');
  close(r.std, 0.5, 1e-12, 'std');
  assert.equal(inceptionScore(oneHot([0, 1], 2)).std, 0);
});

test('IS lies in [1, K] and ignores the order of rows and classes', () => {
  const probs = fc
    .record({ n: fc.integer({ min: 1, max: 12 }), k: fc.integer({ min: 1, max: 6 }), seed: fc.nat() })
    .map(({ n, k, seed }) => {
      const x = initNormal([n, k], 3, seed);
      for (let i = 0; i < n; i++) {
        let z = 0;
        for (let j = 0; j < k; j++) z += x.data[i * k + j] = Math.exp(x.data[i * k + j]);
        for (let j = 0; j < k; j++) x.data[i * k + j] /= z;
      }
      return x;
    });
  fc.assert(
    fc.property(probs, (p) => {
      const [n, k] = p.shape;
      const is = inceptionScore(p).mean;
      assert.ok(is >= 1 - 1e-12 && is <= k + 1e-12, `IS ${is} in [1, ${k}]`);
      const permuted = { shape: p.shape, data: p.data.map((_, idx) => p.data[(n - 1 - Math.floor(idx / k)) * k + (((idx % k) + 1) % k)]) };
      close(inceptionScore(permuted).mean, is, 1e-12, 'permuted IS');
    }),
    { numRuns: 200 },
  );
});

test('IS rejects rows that are not probabilities and bad splits', () => {
  assert.throws(() => inceptionScore(matrix([[2, -1]])), /probabilities must be >= 0, got -1 at \(0, 1\) of \[1,2\]/);
  assert.throws(() => inceptionScore(matrix([[0.5, 0.6]])), /row 0 of \[1,2\] sums to 1.1/);
  assert.throws(() => inceptionScore(oneHot([0, 1], 2), 3), /splits must be an integer in \[1, 2\]/);
});

// ---- coverage -------------------------------------------------------------------------------------------------

test('classCoverage counts, shares, covered classes with the default half-uniform threshold', () => {
  // K = 4: default threshold 1/8 = 0.125. Shares: 0.5, 0.3, 0.1, 0.1 -> two covered.
  const predicted = [0, 0, 0, 0, 0, 1, 1, 1, 2, 3];
  const r = classCoverage(predicted, 4);
  assert.deepEqual(r.counts, [5, 3, 1, 1]);
  assert.deepEqual(r.shares, [0.5, 0.3, 0.1, 0.1]);
  assert.equal(r.threshold, 0.125);
  assert.equal(r.covered, 2);
  assert.equal(r.coverage, 0.5);
  assert.equal(r.accuracy, undefined);
  assert.equal(classCoverage(predicted, 4, { threshold: 0.1 }).covered, 4);
  assert.equal(classCoverage(predicted, 6).covered, 4); // 1/12: classes 4 and 5 have no samples
});

test('classCoverage with intended labels adds the conditional accuracy', () => {
  const r = classCoverage([0, 1, 2, 2, 1], 3, { intended: [0, 1, 2, 1, 0] });
  const accuracy: number = r.accuracy; // typed as present when intended is given
  assert.equal(accuracy, 3 / 5);
  assert.equal(r.covered, 3);
});

test('classCoverage and argmaxRows: labels from probabilities, and errors', () => {
  assert.deepEqual(
    Array.from(
      argmaxRows(
        matrix([
          [0.1, 0.7, 0.2],
          [3, 3, 1],
          [-1, -2, 0],
        ]),
      ),
    ),
    [1, 0, 2],
  );
  assert.throws(() => classCoverage([0, 3], 3), /predicted\[1\] = 3 is not a class in \[0, 3\)/);
  assert.throws(() => classCoverage([0, 1], 3, { intended: [0] }), /2 predicted labels but 1 intended/);
  assert.throws(() => classCoverage([0, 1], 3, { intended: [0, 1.5] }), /intended\[1\] = 1.5/);
  assert.throws(() => classCoverage([], 3), /no predicted labels/);
  assert.throws(() => classCoverage([0], 3, { threshold: 2 }), /threshold must be in \[0, 1\]/);
});
