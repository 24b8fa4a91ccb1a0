// Type-level shape tests that also run: every check lives inside a traced function, so `tsc` proves the
// shape *types* (literal dims rejected at compile time via @ts-expect-error, result types pinned exactly)
// and `node --test` proves the same calls behave at trace time (bad ones throw ShapeError, good ones have
// the runtime shape their type claims).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShapeError } from '../core/shape.ts';
import * as op from '../dsl/ops.ts';
import type { Shape } from '../dsl/shapeTypes.ts';
import type { Tensor, ShapeOf } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';

// ---- type assertion helpers --------------------------------------------------------------------------------

/** Exact type equality (distinguishes `readonly`, `any`, unions), the standard conditional-type trick. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Mutable<S> = { -readonly [K in keyof S]: S[K] };

/** `expectType<T>()(value)` compiles only when the value's type is exactly T. */
const expectType =
  <T>() =>
  <V>(value: V & (Equal<V, T> extends true ? unknown : { 'type differs, got': V; expected: T })): V =>
    value;

/**
 * `expectShape(t, [2, 5])` compiles only when t's shape *type* is exactly the literal tuple given (readonly
 * aside), and at run time asserts the runtime shape equals it too, so the type and the value cannot drift apart.
 */
const expectShape = <T extends Tensor, const S extends Shape>(
  t: T,
  shape: S & (Equal<Mutable<ShapeOf<T>>, Mutable<S>> extends true ? unknown : { 'shape type differs, got': ShapeOf<T> }),
): T => {
  assert.deepEqual(t.shape, shape);
  return t;
};

/** For tensors whose shape type is deliberately non-literal (`number` dims): the type is pinned, the runtime shape checked. */
const expectRuntimeShape = (t: Tensor, shape: Shape): void => assert.deepEqual(t.shape, shape);

/** The bad calls below must be rejected by tsc *and* throw a ShapeError naming the op at trace time. */
const throwsShape = (f: () => unknown, opName: string): void =>
  assert.throws(f, (e: unknown) => e instanceof ShapeError && e.op === opName);

// ---- the helpers are not vacuous ---------------------------------------------------------------------------

test('the type helpers reject wrong types (self-check)', () => {
  trace(
    ({ a }) => {
      expectShape(a, [2, 3]);
      // @ts-expect-error a wrong literal dim is a compile error (and a runtime assertion failure)
      assert.throws(() => expectShape(a, [2, 4]));
      // @ts-expect-error a wrong rank is a compile error
      assert.throws(() => expectShape(a, [2, 3, 1]));
      expectType<Tensor<[2, 3]>>()(a);
      // @ts-expect-error exact: readonly-ness counts for expectType
      expectType<Tensor<readonly [2, 3]>>()(a);
      // @ts-expect-error exact: a wider shape type is not equal
      expectType<Tensor<number[]>>()(a);
      return a;
    },
    { a: [2, 3] },
  );
});

// ---- trace keeps literal shapes ----------------------------------------------------------------------------

test('trace hands out tensors with the literal shapes of its spec (nested trees too), as mutable tuples', () => {
  trace(
    ({ a, params }) => {
      expectType<Tensor<[2, 3]>>()(a);
      expectType<Tensor<[3, 5]>>()(params.w);
      expectType<Tensor<[5]>>()(params.inner.b);
      expectType<Tensor<[]>>()(params.inner.s);
      expectShape(params.w, [3, 5]);
      expectShape(params.inner.s, []);
      return a;
    },
    { a: [2, 3], params: { w: [3, 5], inner: { b: [5], s: [] } } },
  );
});

test('a spec typed with number dims gives permissive tensor types', () => {
  const spec: { x: number[]; y: [number, 3] } = { x: [2, 3], y: [4, 3] };
  trace(({ x, y }) => {
    expectType<Tensor<number[]>>()(x);
    expectType<Tensor<[number, 3]>>()(y);
    return x;
  }, spec);
});

// ---- matmul ------------------------------------------------------------------------------------------------

test('matmul: literal inner dims are checked, result shape is [..., M, N]', () => {
  trace(
    ({ a, b, c, d, bA, bB, bC, bK, n }) => {
      expectShape(op.matmul(a, b), [2, 5]);
      expectType<Tensor<[2, 5]>>()(op.matmul(a, b));
      // @ts-expect-error inner dimensions differ: [2,3] x [4,5]
      throwsShape(() => op.matmul(a, c), 'matmul');
      // @ts-expect-error inner dimensions differ the other way round: [3,5] x [2,3]
      throwsShape(() => op.matmul(b, a), 'matmul');
      expectShape(op.matmul(c, d), [4, 2]);

      // batched: equal batch dims, and broadcast batch dims (missing or 1)
      expectShape(op.matmul(bA, bB), [7, 2, 5]);
      expectShape(op.matmul(bA, b), [7, 2, 5]);
      expectShape(op.matmul(a, bB), [7, 2, 5]);
      expectShape(op.matmul(bK, bB), [7, 2, 5]); // [1,2,3] x [7,3,5]
      // @ts-expect-error batch dims 7 vs 6 are not broadcastable
      throwsShape(() => op.matmul(bA, bC), 'matmul');
      // @ts-expect-error inner dims differ in a batched product
      throwsShape(() => op.matmul(bA, bA), 'matmul');

      // `number` dims stay permissive: checked at trace time only
      expectType<Tensor<number[]>>()(op.matmul(n, b));
      expectRuntimeShape(op.matmul(n, b), [2, 5]);
      throwsShape(() => op.matmul(n, c), 'matmul'); // compiles, but [2,3] x [4,5] is caught at trace time
      return op.matmul(a, b);
    },
    { a: [2, 3], b: [3, 5], c: [4, 5], d: [5, 2], bA: [7, 2, 3], bB: [7, 3, 5], bC: [6, 3, 5], bK: [1, 2, 3], n: [2, 3] as number[] },
  );
});

test('transpose swaps the last two literal dims', () => {
  trace(
    ({ a, bA }) => {
      expectShape(op.transpose(a), [3, 2]);
      expectShape(op.transpose(bA), [7, 3, 2]);
      expectShape(op.matmul(a, op.transpose(a)), [2, 2]);
      // @ts-expect-error [2,3] x [2,3] needs a transpose
      throwsShape(() => op.matmul(a, a), 'matmul');
      return op.transpose(a);
    },
    { a: [2, 3], bA: [7, 2, 3] },
  );
});

// ---- elementwise broadcasting ------------------------------------------------------------------------------

test('elementwise ops: numpy broadcasting of literal shapes', () => {
  trace(
    ({ a, row, col, c4, r15, r41, t, n, half }) => {
      expectShape(op.add(a, row), [2, 3]);
      expectShape(op.add(row, a), [2, 3]);
      expectShape(op.mul(a, a), [2, 3]);
      expectShape(op.sub(a, 1), [2, 3]);
      expectShape(op.div(2, a), [2, 3]);
      expectShape(op.add(r41, r15), [4, 5]); // [4,1] + [1,5]
      expectShape(op.add(col, a), [2, 3]); // [2,1] + [2,3]
      expectShape(op.mul(t, a), [4, 2, 3]); // rank extension on the left
      expectShape(op.maximum(a, row), [2, 3]);
      expectShape(op.lt(row, a), [2, 3]);
      expectType<Tensor<[2, 3]>>()(op.add(a, row));
      expectType<Tensor<[4, 5]>>()(op.add(r41, r15));
      expectShape(op.exp(a), [2, 3]); // unary ops keep the shape type

      // @ts-expect-error [2,3] + [4] is not broadcastable
      throwsShape(() => op.add(a, c4), 'add');
      // @ts-expect-error [4] - [2,3]
      throwsShape(() => op.sub(c4, a), 'sub');
      // @ts-expect-error [2,3] * [4,1,5]: 3 vs 5 in the last dim
      throwsShape(() => op.mul(a, op.reshape(r15, [1, 1, 5])), 'mul');
      // @ts-expect-error [4,1] / [2,3]: 4 vs 2
      throwsShape(() => op.div(r41, a), 'div');
      // @ts-expect-error comparisons are elementwise too
      throwsShape(() => op.lt(a, c4), 'lt');
      // @ts-expect-error maximum is elementwise too
      throwsShape(() => op.maximum(c4, a), 'maximum');
      // @ts-expect-error pow
      throwsShape(() => op.pow(a, half), 'pow');

      // number dims stay permissive: the literal side wins where known, else `number`
      expectType<Tensor<number[]>>()(op.add(a, n));
      expectRuntimeShape(op.add(a, n), [2, 3]);
      expectType<() => Tensor<number[]>>()(() => op.add(n, c4)); // compiles (not run here) ...
      throwsShape(() => op.add(n, c4), 'add'); // ... but [2,3] + [4] fails at trace time
      return op.add(a, row);
    },
    { a: [2, 3], row: [3], col: [2, 1], c4: [4], r15: [1, 5], r41: [4, 1], t: [4, 2, 3], n: [2, 3] as number[], half: [2, 2] },
  );
});

test('broadcasting with partly-known dims: a literal dim against `number` keeps the literal', () => {
  const spec: { p: [number, 3]; a: [2, 3]; q: [number, number]; c4: [4] } = { p: [2, 3], a: [2, 3], q: [2, 3], c4: [4] };
  trace(({ p, a, q, c4 }) => {
    expectType<Tensor<[2, 3]>>()(op.add(p, a));
    expectType<Tensor<[number, 3]>>()(op.add(p, q));
    expectType<Tensor<[number, 3]>>()(op.mul(p, 2));
    expectRuntimeShape(op.add(p, q), [2, 3]);
    // @ts-expect-error the known trailing 3 still has to match: [number, 3] + [4]
    throwsShape(() => op.add(p, c4), 'add');
    return op.add(p, a);
  }, spec);
});

// ---- other ops that carry shape types ----------------------------------------------------------------------

test('layout, reduction and random ops keep or compute literal shape types', () => {
  trace(
    ({ a, row }) => {
      expectShape(op.reshape(a, [3, 2]), [3, 2]);
      expectShape(op.reshape(a, [6]), [6]);
      expectShape(op.broadcastTo(row, [2, 3]), [2, 3]);
      expectShape(op.flip(a, [0]), [2, 3]);
      expectShape(op.stopGradient(a), [2, 3]);
      expectShape(op.normal([4, 5], { seed: 1, stream: 0 }), [4, 5]);
      expectShape(op.uniform([7], { seed: 1, stream: 0 }), [7]);
      expectShape(op.sum(a), []); // full reduction is a scalar
      expectType<Tensor<[]>>()(op.sum(a));
      expectType<Tensor<[]>>()(op.max(a));
      expectType<Tensor>()(op.sum(a, 0)); // axis reductions are permissive...
      expectRuntimeShape(op.sum(a, 0), [3]); // ... and checked at trace time
      expectRuntimeShape(op.sum(a, 1, true), [2, 1]);
      return a;
    },
    { a: [2, 3], row: [3] },
  );
});

test('reshape with an inferred -1 dimension', () => {
  trace(
    ({ a }) => {
      expectRuntimeShape(op.reshape(a, [-1, 3]), [2, 3]);
      // the inferred -1 dimension is typed `number`, so the result still broadcasts against literal shapes
      expectType<Tensor<[number, 3]>>()(op.reshape(a, [-1, 3]));
      expectRuntimeShape(op.add(op.reshape(a, [-1, 3]), a), [2, 3]);
      return a;
    },
    { a: [2, 3] },
  );
});

test('where: broadcasting of its three operands', () => {
  trace(
    ({ a, row, c4 }) => {
      expectRuntimeShape(op.where(op.gt(a, 0), a, row), [2, 3]);
      expectRuntimeShape(op.where(op.gt(row, 0), 1, 0), [3]);
      // @ts-expect-error [2,3] and [4] do not broadcast
      throwsShape(() => op.where(a, c4, 1), 'where');
      // @ts-expect-error [2,3] and [4] do not broadcast
      throwsShape(() => op.where(a, 1, c4), 'where');
      expectShape(op.where(op.gt(a, 0), a, row), [2, 3]);
      return a;
    },
    { a: [2, 3], row: [3], c4: [4] },
  );
});

test('a scalar input from trace can drive the random counter', () => {
  trace(
    ({ step }) => {
      expectType<Tensor<[]>>()(step);
      const noise = op.normal([2, 3], { seed: 1, stream: 0, counter: step });
      expectShape(noise, [2, 3]);
      return noise;
    },
    { step: [] },
  );
});

// ---- annotations written the natural way -------------------------------------------------------------------

test('functions annotated with mutable literal shapes trace, differentiate, check and compile', async () => {
  const { checkGrads } = await import('../transforms/check/checkGrads.ts');
  const { grad } = await import('../transforms/grad.ts');
  const { compile } = await import('../compiler/index.ts');
  const { evaluate } = await import('../core/interpret.ts');
  const { initNormal } = await import('../dsl/params.ts');
  const f = ({ a, b }: { a: Tensor<[3, 2]>; b: Tensor<[2, 4]> }): Tensor<[]> => op.sum(op.tanh(op.matmul(a, b)));
  const g = trace(f, { a: [3, 2], b: [2, 4] });
  // @ts-expect-error the spec's shapes must be the annotation's (and trace refuses it too)
  throwsShape(() => trace(f, { a: [3, 3], b: [2, 4] }), 'matmul');
  // a readonly annotation is accepted as well
  trace(({ a }: { a: Tensor<readonly [3, 2]> }) => op.sum(a), { a: [3, 2] });
  const a = initNormal([3, 2], 1, 1);
  const b = initNormal([2, 4], 1, 2);
  assert.equal(checkGrads(f, { a, b }, { order: 2 }).ok, true);
  // @ts-expect-error the host arguments must cover the annotated tree (b is missing)
  assert.throws(() => checkGrads(f, { a }));
  const dg = grad(g, ['a']);
  const want = evaluate(dg, { a, b })['grad.a'];
  const got = compile(dg, { backend: 'cpu' }).run({ a, b })['grad.a'];
  got.data.forEach((v, i) => assert.ok(Math.abs(v - want.data[i]) <= 1e-4 * (1 + Math.abs(want.data[i]))));
});
