// A small io-ts reporter: one line per failure, naming the dotted path, the expected type and the value received,
// e.g. `metadata.step: expected non-negative integer, got "x"`.
import * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';

const show = (v: unknown): string => {
  if (v === undefined) return 'undefined (missing)';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'a function';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Object.prototype.toString.call(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/** `root.a.b: expected T, got V` for one io-ts validation error. */
export const formatValidationError = (e: t.ValidationError, root: string): string => {
  // context[0] is the root codec (key ''); union/intersection members repeat the parent's key, so keep the named keys.
  const keys = e.context
    .slice(1)
    .map((c) => c.key)
    .filter((k) => k !== '');
  const path = [root, ...keys].join('.');
  const expected = e.context[e.context.length - 1]?.type.name ?? 'unknown';
  return e.message ?? `${path}: expected ${expected}, got ${show(e.value)}`;
};

/** Decodes `value` with `codec`, or throws `makeError(lines)` whose lines name every failing path and expected type. */
export const decodeOrThrow = <A>(codec: t.Decoder<unknown, A>, value: unknown, root: string, makeError: (msg: string) => Error): A => {
  const r = codec.decode(value);
  if (isLeft(r)) {
    const lines = [...new Set(r.left.map((e) => formatValidationError(e, root)))];
    throw makeError(lines.join('\n'));
  }
  return r.right;
};

/** A non-negative safe integer (counts, steps, offsets). */
export const NonNegativeInteger = new t.Type<number, number, unknown>(
  'non-negative integer',
  (u): u is number => typeof u === 'number' && Number.isSafeInteger(u) && u >= 0,
  (u, c) => (typeof u === 'number' && Number.isSafeInteger(u) && u >= 0 ? t.success(u) : t.failure(u, c)),
  (a) => a,
);
