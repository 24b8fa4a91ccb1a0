// Integer index expressions of the kernel IR: a sum of coefficient x atom terms plus a constant, where an atom is
// a loop variable or a floor division, remainder or clamp of another expression. Every variable has a known range,
// so division and remainder simplify exactly where the terms split cleanly (a reshape of contiguous dims is then
// plain affine arithmetic), and what remains is exact integer arithmetic on every backend that has integers.

export interface VarInfo {
  readonly id: number;
  /** values 0 .. extent - 1 */
  readonly extent: number;
  /** output axis (one per output dimension) or reduction axis */
  readonly role: 'out' | 'red';
}

export type Atom =
  | { readonly k: 'var'; readonly v: number }
  | { readonly k: 'div'; readonly x: Ix; readonly d: number }
  | { readonly k: 'mod'; readonly x: Ix; readonly d: number }
  | { readonly k: 'clamp'; readonly x: Ix; readonly lo: number; readonly hi: number };

/** sum of coef * atom, plus c; terms are kept sorted by atom key and never have a zero coefficient */
export interface Ix {
  readonly terms: readonly (readonly [Atom, number])[];
  readonly c: number;
}

export const atomKey = (a: Atom): string => {
  switch (a.k) {
    case 'var':
      return `v${a.v}`;
    case 'div':
      return `(${ixKey(a.x)})/${a.d}`;
    case 'mod':
      return `(${ixKey(a.x)})%${a.d}`;
    case 'clamp':
      return `clamp(${ixKey(a.x)},${a.lo},${a.hi})`;
  }
};

export const ixKey = (x: Ix): string => [...x.terms.map(([a, c]) => `${c}*${atomKey(a)}`), String(x.c)].join('+');

export const constIx = (c: number): Ix => ({ terms: [], c });
export const varIx = (v: number): Ix => ({ terms: [[{ k: 'var', v }, 1]], c: 0 });
const atomIx = (a: Atom): Ix => ({ terms: [[a, 1]], c: 0 });

const normalize = (terms: (readonly [Atom, number])[], c: number): Ix => {
  const byKey = new Map<string, [Atom, number]>();
  for (const [a, coef] of terms) {
    const key = atomKey(a);
    const prev = byKey.get(key);
    byKey.set(key, [a, (prev?.[1] ?? 0) + coef]);
  }
  // a d (x div d) + a (x mod d) = a x: a quotient and its remainder, split by an unflatten, join again
  for (const [key, [atom, coef]] of byKey) {
    if (atom.k !== 'div' || coef === 0) continue;
    const mod = byKey.get(atomKey({ k: 'mod', x: atom.x, d: atom.d }));
    if (!mod || mod[1] === 0 || coef !== mod[1] * atom.d) continue;
    const a = mod[1];
    byKey.delete(key);
    byKey.delete(atomKey(mod[0]));
    return normalize([...[...byKey.values()], ...atom.x.terms.map(([t, k]) => [t, k * a] as const)], c + atom.x.c * a);
  }
  // k ((x div a) mod b) + k b (x div ab) = k (x div a): the same join one level up (a quotient's quotient was merged)
  for (const [key, [atom, coef]] of byKey) {
    if (atom.k !== 'mod' || coef === 0 || atom.x.c !== 0 || atom.x.terms.length !== 1 || atom.x.terms[0][1] !== 1) continue;
    const inner = atom.x.terms[0][0];
    if (inner.k !== 'div') continue;
    const outer = byKey.get(atomKey({ k: 'div', x: inner.x, d: inner.d * atom.d }));
    if (!outer || outer[1] !== coef * atom.d) continue;
    byKey.delete(key);
    byKey.delete(atomKey(outer[0]));
    return normalize([...byKey.values(), [inner, coef]], c);
  }
  const sorted = [...byKey.entries()].filter(([, [, coef]]) => coef !== 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { terms: sorted.map(([, t]) => t), c };
};

export const addIx = (a: Ix, b: Ix): Ix => normalize([...a.terms, ...b.terms], a.c + b.c);
export const scaleIx = (a: Ix, s: number): Ix =>
  s === 0
    ? constIx(0)
    : normalize(
        a.terms.map(([t, c]) => [t, c * s] as const),
        a.c * s,
      );
export const sumIx = (xs: readonly Ix[]): Ix => xs.reduce(addIx, constIx(0));

/** The range [lo, hi] an expression takes over its variables' ranges. */
export const range = (x: Ix, vars: ReadonlyMap<number, VarInfo>): [number, number] => {
  let lo = x.c;
  let hi = x.c;
  for (const [a, coef] of x.terms) {
    const [alo, ahi] = atomRange(a, vars);
    lo += Math.min(coef * alo, coef * ahi);
    hi += Math.max(coef * alo, coef * ahi);
  }
  return [lo, hi];
};

const atomRange = (a: Atom, vars: ReadonlyMap<number, VarInfo>): [number, number] => {
  switch (a.k) {
    case 'var': {
      const info = vars.get(a.v);
      if (!info) throw new Error(`kernel IR: unknown variable v${a.v}`);
      return [0, info.extent - 1];
    }
    case 'div': {
      const [lo, hi] = range(a.x, vars);
      return [Math.floor(lo / a.d), Math.floor(hi / a.d)];
    }
    case 'mod': {
      const [lo, hi] = range(a.x, vars);
      return lo >= 0 && hi < a.d ? [lo, hi] : [0, a.d - 1];
    }
    case 'clamp': {
      const [lo, hi] = range(a.x, vars);
      return [Math.max(a.lo, Math.min(lo, a.hi)), Math.min(a.hi, Math.max(hi, a.lo))];
    }
  }
};

/**
 * floor(x / d) and x mod d (d > 0), simplified: terms whose coefficient d divides go to the quotient when the rest
 * stays within [0, d); an expression already within [0, d) has quotient 0.
 */
export const divmodIx = (x: Ix, d: number, vars: ReadonlyMap<number, VarInfo>): { q: Ix; r: Ix } => {
  if (d === 1) return { q: x, r: constIx(0) };
  const whole = x.terms.filter(([, c]) => c % d === 0);
  const rest: Ix = { terms: x.terms.filter(([, c]) => c % d !== 0), c: 0 };
  // the constant splits too: c = qc d + rc with 0 <= rc < d
  const qc = Math.floor(x.c / d);
  const rc = x.c - qc * d;
  const restWithC: Ix = { ...rest, c: rc };
  /** the quotient of the multiples of d and of the constant's multiple */
  const wholeQ = normalize(
    whole.map(([a, c]) => [a, c / d] as const),
    qc,
  );
  const [lo, hi] = range(restWithC, vars);
  if (lo >= 0 && hi < d) return { q: wholeQ, r: restWithC };
  const [xlo, xhi] = range(x, vars);
  if (xlo >= 0 && xhi < d) return { q: constIx(0), r: x };
  // one term c t whose coefficient divides d, above a remainder within [0, c): c t = d (t div d/c) + c (t mod d/c),
  // so the quotient gets t div d/c and the rest stays a sum (a reshape of a reshape: 256 i + 16 j + k over 1024)
  if (lo >= 0)
    for (const [t, c] of rest.terms) {
      if (c <= 1 || d % c !== 0 || atomRange(t, vars)[0] < 0) continue;
      const others: Ix = { terms: rest.terms.filter(([u]) => u !== t), c: rc };
      const [olo, ohi] = range(others, vars);
      if (olo < 0 || ohi >= c) continue;
      const inner = divmodIx(atomIx(t), d / c, vars);
      return { q: addIx(wholeQ, inner.q), r: addIx(scaleIx(inner.r, c), others) };
    }
  // the multiples of d leave the remainder alone: floor((W + R) / d) = W / d + floor(R / d), (W + R) mod d = R mod d
  if (whole.length || qc !== 0) {
    const inner = divmodIx(restWithC, d, vars);
    return { q: addIx(wholeQ, inner.q), r: inner.r };
  }
  // floor(floor(y / a) / d) = floor(y / (a d))
  if (x.terms.length === 1 && x.c === 0 && x.terms[0][1] === 1 && x.terms[0][0].k === 'div') {
    const { x: y, d: a } = x.terms[0][0];
    return { q: divmodIx(y, a * d, vars).q, r: atomIx({ k: 'mod', x, d }) };
  }
  return { q: atomIx({ k: 'div', x, d }), r: atomIx({ k: 'mod', x, d }) };
};

/** max(lo, min(x, hi)), dropped when the range already lies inside. */
export const clampIx = (x: Ix, lo: number, hi: number, vars: ReadonlyMap<number, VarInfo>): Ix => {
  const [xlo, xhi] = range(x, vars);
  if (xlo >= lo && xhi <= hi) return x;
  if (lo === hi) return constIx(lo);
  return atomIx({ k: 'clamp', x, lo, hi });
};

/** Coordinates of a flat offset in a shape (row-major), outermost first. */
export const unflattenIx = (flat: Ix, shape: readonly number[], vars: ReadonlyMap<number, VarInfo>): Ix[] => {
  const out = new Array<Ix>(shape.length);
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (d === 0) {
      out[0] = rest;
      break;
    }
    const { q, r } = divmodIx(rest, shape[d], vars);
    out[d] = r;
    rest = q;
  }
  return out;
};

/** Flat row-major offset of coordinates in a shape. */
export const flattenIx = (coords: readonly Ix[], shape: readonly number[]): Ix => {
  let stride = 1;
  const parts: Ix[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1) parts.push(scaleIx(coords[d], stride));
    stride *= shape[d];
  }
  return sumIx(parts);
};

/** The coefficient of variable v where x is affine in it (v appears only as a plain term), else undefined. */
export const coefficientOf = (x: Ix, v: number): number | undefined => {
  let coef = 0;
  for (const [a, c] of x.terms) {
    if (a.k === 'var') {
      if (a.v === v) coef += c;
    } else if (dependsOn(a, v)) return undefined;
  }
  return coef;
};

export const dependsOn = (a: Atom, v: number): boolean => (a.k === 'var' ? a.v === v : a.x.terms.some(([t]) => dependsOn(t, v)));
export const ixDependsOn = (x: Ix, v: number): boolean => x.terms.some(([a]) => dependsOn(a, v));

/** x with variable v replaced by a constant or an index expression (whose variables must be in `vars`). */
export const substituteIx = (x: Ix, v: number, value: number | Ix, vars: ReadonlyMap<number, VarInfo>): Ix =>
  sumIx([constIx(x.c), ...x.terms.map(([a, c]) => scaleIx(substituteAtom(a, v, value, vars), c))]);

const substituteAtom = (a: Atom, v: number, value: number | Ix, vars: ReadonlyMap<number, VarInfo>): Ix => {
  switch (a.k) {
    case 'var':
      return a.v === v ? (typeof value === 'number' ? constIx(value) : value) : atomIx(a);
    case 'div':
      return divmodIx(substituteIx(a.x, v, value, vars), a.d, vars).q;
    case 'mod':
      return divmodIx(substituteIx(a.x, v, value, vars), a.d, vars).r;
    case 'clamp':
      return clampIx(substituteIx(a.x, v, value, vars), a.lo, a.hi, vars);
  }
};
