// Shape arithmetic shared by every layer: sizes, strides, broadcasting and axis normalisation.
/** A tensor's dimensions, outermost first (row-major); `[]` is a scalar. */
export type Shape = readonly number[];

export const size = (shape: Shape): number => shape.reduce((a, b) => a * b, 1);

export const strides = (shape: Shape): number[] => {
  const out = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = acc;
    acc *= shape[i];
  }
  return out;
};

export const fmt = (shape: Shape): string => `[${shape.join(',')}]`;

export const sameShape = (a: Shape, b: Shape): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** numpy broadcasting of two shapes; null when they are not broadcastable. */
export const broadcastShapes = (a: Shape, b: Shape): number[] | null => {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out[i] = da === 1 ? db : da;
  }
  return out;
};

/** Thrown when a shape or attribute is wrong; the message names the op, the shapes and, when known, the call site. */
export class ShapeError extends Error {
  constructor(
    readonly op: string,
    readonly detail: string,
    readonly site?: string,
  ) {
    super(`${op}: ${detail}${site ? ` (called at ${site})` : ''}`);
    this.name = 'ShapeError';
  }
}

/** Normalises possibly-negative axes against a rank; an axis out of range is a ShapeError naming the op. */
export const normalizeAxes = (op: string, axes: readonly number[], rank: number, shape?: Shape): number[] => {
  const out = axes.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank)
      throw new ShapeError(
        op,
        `unknown axis ${a} for a tensor of rank ${rank}${shape ? ` and shape ${fmt(shape)}` : ''} (valid axes: ${-rank}..${rank - 1})`,
      );
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) throw new ShapeError(op, `repeated axis in [${axes.join(',')}]`);
  return out;
};
