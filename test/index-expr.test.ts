// The index simplifier (compiler/kernel/indexExpr.ts) against plain integer arithmetic. Every kernel's loads go
// through it: a reshape of a reshape becomes div/mod of a flat offset, and divmodIx folds what it can back into sums
// (multiples of d leave the remainder alone, a term whose coefficient divides d splits, a quotient and its remainder
// join again). A wrong fold reads the wrong element, so each rule is checked on random affine indices at every point
// of their variables' ranges, with floor semantics (the indices may be negative: a pad's shifted index).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { divmodIx, flattenIx, range, scaleIx, sumIx, unflattenIx, type Ix } from '../compiler/kernel/indexExpr.ts';
import { ixValue } from '../compiler/kernel/evaluate.ts';
import type { VarInfo } from '../compiler/kernel/indexExpr.ts';

const floorDiv = (a: number, d: number) => Math.floor(a / d);
const floorMod = (a: number, d: number) => a - d * Math.floor(a / d);

/** Every assignment of the variables (extents are small, so all points are checked). */
const points = (extents: readonly number[]): number[][] =>
  extents.reduce<number[][]>((acc, e) => acc.flatMap((p) => Array.from({ length: e }, (_, i) => [...p, i])), [[]]);

const varsOf = (extents: readonly number[]): Map<number, VarInfo> => new Map(extents.map((extent, v) => [v, { id: v, extent } as VarInfo]));
const envOf = (p: readonly number[]) => new Map(p.map((x, v) => [v, x]));

/** An affine index: coefficients that are often powers of two or multiples of each other, as strides are. */
const affineArb = fc
  .record({
    extents: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 3 }),
    coefs: fc.array(fc.oneof(fc.constantFrom(1, 2, 4, 8, 16, 64, 256), fc.integer({ min: -20, max: 40 })), { minLength: 3, maxLength: 3 }),
    c: fc.integer({ min: -40, max: 60 }),
  })
  .map(({ extents, coefs, c }) => ({
    extents,
    x: { terms: extents.map((_, v) => [{ k: 'var', v }, coefs[v]] as const).filter(([, k]) => k !== 0), c } as Ix,
  }));

const divisorArb = fc.oneof(fc.constantFrom(2, 4, 8, 16, 64, 256, 1024), fc.integer({ min: 1, max: 50 }));

test('divmodIx: q and r equal floor division and floor modulo at every point, for random affine indices', () => {
  fc.assert(
    fc.property(affineArb, divisorArb, ({ extents, x }, d) => {
      const vars = varsOf(extents);
      const { q, r } = divmodIx(x, d, vars);
      for (const p of points(extents)) {
        const env = envOf(p);
        const v = ixValue(x, env);
        assert.equal(ixValue(q, env), floorDiv(v, d), `q of ${JSON.stringify(x)} / ${d} at ${p}`);
        assert.equal(ixValue(r, env), floorMod(v, d), `r of ${JSON.stringify(x)} mod ${d} at ${p}`);
      }
      const [lo, hi] = range(x, vars);
      const [rlo, rhi] = range(r, vars);
      // the remainder's range must stay sound (the emitter trusts it to fold constants into load offsets)
      assert.ok(rlo >= Math.min(0, lo) && rhi <= Math.max(d - 1, hi), `range of r: [${rlo}, ${rhi}]`);
    }),
    { numRuns: 400 },
  );
});

test('divmodIx: nested quotients and remainders (a divisor of a divisor) match floor arithmetic', () => {
  fc.assert(
    fc.property(affineArb, divisorArb, divisorArb, ({ extents, x }, a, b) => {
      const vars = varsOf(extents);
      const first = divmodIx(x, a, vars);
      const second = divmodIx(first.q, b, vars);
      const back = divmodIx(first.r, b, vars);
      for (const p of points(extents)) {
        const env = envOf(p);
        const v = ixValue(x, env);
        assert.equal(ixValue(second.q, env), floorDiv(floorDiv(v, a), b));
        assert.equal(ixValue(second.r, env), floorMod(floorDiv(v, a), b));
        assert.equal(ixValue(back.q, env), floorDiv(floorMod(v, a), b));
      }
    }),
    { numRuns: 300 },
  );
});

test('a reshape of a reshape: an offset unflattened to shape A, flattened, then to shape B is the offset at every point', () => {
  const shapeArb = fc.array(fc.constantFrom(1, 2, 3, 4, 8, 16), { minLength: 1, maxLength: 4 });
  fc.assert(
    fc.property(shapeArb, shapeArb, fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 3 }), (a, b, extents) => {
      const total = extents.reduce((m, e) => m * e, 1);
      const vars = varsOf(extents);
      // a row-major offset over the variables: the flat index of an element of a [extents] tensor
      let stride = 1;
      const terms: [{ k: 'var'; v: number }, number][] = [];
      for (let v = extents.length - 1; v >= 0; v--) {
        terms.push([{ k: 'var', v }, stride]);
        stride *= extents[v];
      }
      const flat: Ix = { terms, c: 0 };
      const sizeA = a.reduce((m: number, e) => m * e, 1);
      const sizeB = b.reduce((m: number, e) => m * e, 1);
      // view the elements as shape A (padded to hold them), then as shape B: offsets survive both unflattens
      const shapeA = [Math.ceil(total / sizeA) * 1, ...a];
      const shapeB = [Math.ceil((shapeA[0] * sizeA) / sizeB) + 1, ...b];
      const viaA = flattenIx(unflattenIx(flat, shapeA, vars), shapeA);
      const viaB = flattenIx(unflattenIx(viaA, shapeB, vars), shapeB);
      for (const p of points(extents)) assert.equal(ixValue(viaB, envOf(p)), ixValue(flat, envOf(p)));
      // and where every extent is a power of two (strides then nest), the joins make it a plain sum again
      const pow2 = (n: number) => (n & (n - 1)) === 0;
      if ([...a, ...b, ...extents].every(pow2))
        assert.ok(
          viaB.terms.every(([t]) => t.k === 'var'),
          `not folded: ${JSON.stringify(viaB)}`,
        );
    }),
    { numRuns: 300 },
  );
});

test('sums of quotients and remainders (the joins in normalize) keep their value, matching coefficients or not', () => {
  const atomOf = (x: Ix, d: number, k: 'div' | 'mod'): Ix => ({ terms: [[{ k, x, d }, 1]], c: 0 });
  fc.assert(
    fc.property(
      affineArb,
      fc.constantFrom(2, 3, 4, 16),
      fc.constantFrom(2, 3, 4, 16),
      fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 4, maxLength: 4 }),
      ({ extents, x }, a, b, [k1, k2, k3, k4]) => {
        const q = atomOf(x, a, 'div');
        // k1 a (x div a) + k2 (x mod a) + k3 ((x div a) mod b) + k4 b (x div ab): joins only where k1 = k2 or k3 = k4
        const parts = [
          scaleIx(q, k1 * a),
          scaleIx(atomOf(x, a, 'mod'), k2),
          scaleIx(atomOf(q, b, 'mod'), k3),
          scaleIx(atomOf(x, a * b, 'div'), k4 * b),
        ];
        const joined = sumIx(parts);
        for (const p of points(extents)) {
          const env = envOf(p);
          const want = parts.reduce((acc, part) => acc + ixValue(part, env), 0);
          assert.equal(ixValue(joined, env), want, `${JSON.stringify(joined)} at ${p}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});
