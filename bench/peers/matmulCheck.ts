// A matmul peer's product checked before its speed is reported: sampled entries of C = A B against float64 dot
// products of the operands it read back. A wrong kernel (a transposed operand, a dropped tile, a stale buffer) is off
// by about the size of an entry; f32 rounding is off by about sqrt(n) ulps of the sum of |a_ik b_kj|.

/** The bound on |c_ij - (A B)_ij| relative to sum_k |a_ik b_kj|: n * 2^-24 is f32's worst case at n = 1700. */
export const MATMUL_REL_TOL = 1e-4;

export interface MatmulCheck {
  readonly ok: boolean;
  /** the largest |c_ij - ref_ij| / sum_k |a_ik b_kj| over the sampled entries */
  readonly worst: number;
  readonly samples: number;
  /** the first entry off by more than the tolerance (or not finite), in words */
  readonly firstBad?: string;
}

/** Checks `samples` entries of the n x n product c (row-major), the four corners among them. */
export const checkMatmul = (n: number, { a, b, c }: { a: Float32Array; b: Float32Array; c: Float32Array }, samples = 64): MatmulCheck => {
  if (a.length !== n * n || b.length !== n * n || c.length !== n * n)
    return { ok: false, worst: Infinity, samples: 0, firstBad: `sizes ${a.length}, ${b.length}, ${c.length}, expected ${n * n} each` };
  const picks: [number, number][] = [
    [0, 0],
    [0, n - 1],
    [n - 1, 0],
    [n - 1, n - 1],
  ];
  let seed = 12345;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  while (picks.length < samples) picks.push([next(), next()]);
  let worst = 0;
  let firstBad: string | undefined;
  for (const [i, j] of picks) {
    let ref = 0,
      scale = 0;
    for (let k = 0; k < n; k++) {
      const p = a[i * n + k] * b[k * n + j];
      ref += p;
      scale += Math.abs(p);
    }
    const got = c[i * n + j];
    const err = Number.isFinite(got) ? Math.abs(got - ref) / Math.max(scale, 1e-30) : Infinity;
    worst = Math.max(worst, err);
    if (err > MATMUL_REL_TOL && firstBad === undefined) firstBad = `C[${i}][${j}] = ${got}, float64 ${ref}`;
  }
  return { ok: firstBad === undefined, worst, samples: picks.length, ...(firstBad ? { firstBad } : {}) };
};
