// Small dense float64 linear algebra for the evaluation metrics: square row-major matrices as (Float64Array, n).
// Only what the Frechet distance needs: a symmetric eigendecomposition (cyclic Jacobi, accurate and simple for
// n up to a few hundred) and the PSD square root built on it.

export interface SymmetricEigen {
  /** Eigenvalues, ascending. */
  readonly values: Float64Array;
  /** Row-major n x n; column j is the unit eigenvector of values[j]. */
  readonly vectors: Float64Array;
}

const checkSquare = (a: Float64Array, n: number, what: string): void => {
  if (!Number.isInteger(n) || n < 1 || a.length !== n * n)
    throw new Error(`${what}: expected a ${n}x${n} matrix (${n * n} values), got ${a.length} values`);
};

/** C = A B for n x n row-major matrices. */
export const matmul = (a: Float64Array, b: Float64Array, n: number): Float64Array => {
  checkSquare(a, n, 'matmul');
  checkSquare(b, n, 'matmul');
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
    }
  }
  return c;
};

/**
 * Eigendecomposition A = V diag(values) V^T of a symmetric matrix by cyclic Jacobi rotations. Throws on non-finite
 * entries or a matrix that is not symmetric to 1e-8 relative (rounding-level asymmetry is averaged away).
 */
export const symmetricEigen = (input: Float64Array, n: number, maxSweeps = 100): SymmetricEigen => {
  checkSquare(input, n, 'symmetricEigen');
  let scale = 0;
  for (let i = 0; i < input.length; i++) {
    if (!Number.isFinite(input[i])) throw new Error(`symmetricEigen: non-finite entry ${input[i]} at (${Math.floor(i / n)}, ${i % n})`);
    scale = Math.max(scale, Math.abs(input[i]));
  }
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const x = input[i * n + j],
        y = input[j * n + i];
      if (Math.abs(x - y) > 1e-8 * scale)
        throw new Error(`symmetricEigen: matrix is not symmetric: (${i}, ${j}) = ${x} but (${j}, ${i}) = ${y}`);
      a[i * n + j] = 0.5 * (x + y);
    }
  }
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;

  let frob2 = 0;
  for (let i = 0; i < a.length; i++) frob2 += a[i] * a[i];
  let converged = false;
  for (let sweep = 0; sweep < maxSweeps && !converged; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    if (off === 0) {
      converged = true;
      break;
    }
    // Early sweeps skip small elements (Numerical Recipes' threshold) so that rotations go to the large ones first.
    const thresh = sweep < 3 ? (0.2 * Math.sqrt(off)) / (n * n) : 0;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        const app = a[p * n + p],
          aqq = a[q * n + q];
        const g = 100 * Math.abs(apq);
        // Once apq is below the diagonals' rounding, rotating changes nothing: zero it, which ends the iteration.
        if (sweep > 3 && Math.abs(app) + g === Math.abs(app) && Math.abs(aqq) + g === Math.abs(aqq)) {
          a[p * n + q] = a[q * n + p] = 0;
          continue;
        }
        if (Math.abs(apq) <= thresh || apq === 0) continue;
        const theta = (aqq - app) / (2 * apq);
        // The smaller root of t^2 + 2 theta t - 1 = 0 keeps the rotation angle below pi/4 (stable); guard theta^2 overflow.
        const t = Math.abs(theta) > 1e150 ? 1 / (2 * theta) : (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1),
          s = t * c;
        for (let k = 0; k < n; k++) {
          if (k === p || k === q) continue;
          const akp = a[k * n + p],
            akq = a[k * n + q];
          const nkp = c * akp - s * akq,
            nkq = s * akp + c * akq;
          a[k * n + p] = a[p * n + k] = nkp;
          a[k * n + q] = a[q * n + k] = nkq;
        }
        a[p * n + p] = app - t * apq;
        a[q * n + q] = aqq + t * apq;
        a[p * n + q] = a[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p],
            vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
    if (sweep === maxSweeps - 1) {
      let rest = 0;
      for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) rest += a[p * n + q] * a[p * n + q];
      if (rest > 1e-24 * frob2)
        throw new Error(`symmetricEigen: no convergence after ${maxSweeps} sweeps (off-diagonal norm ${Math.sqrt(rest)})`);
    }
  }

  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[i * n + i] - a[j * n + j]);
  const values = new Float64Array(n),
    vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = a[src * n + src];
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src];
  });
  return { values, vectors };
};

/** V diag(f(values)) V^T: a function applied to a symmetric matrix through its eigendecomposition. */
export const fromEigen = ({ values, vectors }: SymmetricEigen, f: (x: number) => number): Float64Array => {
  const n = values.length;
  const fv = values.map(f);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += vectors[i * n + k] * fv[k] * vectors[j * n + k];
      out[i * n + j] = out[j * n + i] = s;
    }
  }
  return out;
};

/**
 * Eigenvalues of a PSD matrix with rounding noise removed: those below n eps max|l| (negative ones included) are
 * below the eigensolver's absolute accuracy, so they are set to exactly 0 rather than contributing sqrt(noise).
 */
export const clampPsd = (values: Float64Array): Float64Array => {
  let top = 0;
  for (const l of values) top = Math.max(top, Math.abs(l));
  const floor = values.length * Number.EPSILON * top;
  return values.map((l) => (l <= floor ? 0 : l));
};

/** Symmetric square root of a symmetric PSD matrix (rounding-level eigenvalues clamped to 0 by clampPsd). */
export const sqrtPsd = (a: Float64Array, n: number): Float64Array => {
  const eig = symmetricEigen(a, n);
  return fromEigen({ values: clampPsd(eig.values), vectors: eig.vectors }, Math.sqrt);
};
