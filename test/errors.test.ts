// Bad input gets a clear error: each test feeds one mistake and checks that the message names what a user
// needs to fix it (the op, the shapes, the axis and its valid range, the argument names, the call site).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad } from '../transforms/grad.ts';
import { evaluate } from '../core/interpret.ts';
import { ShapeError } from '../core/shape.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { caught, sitesOf } from './support/sites.ts';

const { file: thisFile, siteLine } = sitesOf(import.meta.url);

/** A ShapeError naming the op, every given fragment (shapes, axes...), and this file at the tagged line. */
const assertShapeError = (e: Error, opName: string, fragments: readonly string[], tag: string): void => {
  assert.ok(e instanceof ShapeError, `expected a ShapeError, got ${e.name}: ${e.message}`);
  assert.equal(e.op, opName);
  assert.match(e.message, new RegExp(`^${opName}\\b`), 'the message starts with the op name');
  for (const f of fragments) assert.ok(e.message.includes(f), `message should contain ${JSON.stringify(f)}: ${e.message}`);
  assert.ok(e.message.includes('errors.test.ts:'), `message should name this file: ${e.message}`);
  // The full site: absolute path, the tagged line, then a column.
  assert.ok(e.message.includes(`${thisFile}:${siteLine(tag)}:`), `message should name line ${siteLine(tag)} of ${thisFile}: ${e.message}`);
};

/** Shapes typed as plain number[], so that deliberately wrong programs compile and fail at trace time. */
const loose = <T extends Record<string, number[]>>(spec: T): { [K in keyof T]: number[] } => spec;

// ---- shape mismatches at trace time ------------------------------------------------------------------------

test('add of [2,3] and [4]: ShapeError naming add, both shapes and the call site', () => {
  const e = caught(() =>
    trace(
      ({ a, b }) => {
        return op.add(a, b); // @site:add
      },
      loose({ a: [2, 3], b: [4] }),
    ),
  );
  assertShapeError(e, 'add', ['[2,3]', '[4]', 'not broadcastable'], 'add');
});

test('matmul with different inner dimensions names both shapes and the dims', () => {
  const e = caught(() =>
    trace(
      ({ a, b }) => {
        const h = op.exp(a);
        return op.matmul(h, b); // @site:matmul
      },
      loose({ a: [2, 3], b: [4, 5] }),
    ),
  );
  assertShapeError(e, 'matmul', ['[2,3]', '[4,5]', '3 vs 4'], 'matmul');
});

test('matmul with mismatched batch dims names both shapes', () => {
  const e = caught(
    () => trace(({ a, b }) => op.matmul(a, b), loose({ a: [2, 3, 4], b: [5, 4, 6] })), // @site:batch
  );
  assertShapeError(e, 'matmul', ['[2,3,4]', '[5,4,6]'], 'batch');
});

test('conv2d with an input/weight channel mismatch names both shapes', () => {
  const e = caught(() =>
    trace(
      ({ x, w }) => {
        return op.conv2d(x, w, { padding: 1 }); // @site:conv
      },
      loose({ x: [1, 3, 5, 5], w: [4, 2, 3, 3] }),
    ),
  );
  assertShapeError(e, 'conv2d', ['[4,2,3,3]', '3 channels', '[1,3,5,5]'], 'conv');
});

test('reshape to a shape of a different size names both shapes and the element count', () => {
  const e = caught(() =>
    trace(
      ({ a }) => {
        return op.reshape(a, [4, 2]); // @site:reshape
      },
      loose({ a: [2, 3] }),
    ),
  );
  assertShapeError(e, 'reshape', ['[2,3]', '[4,2]', '6 elements'], 'reshape');
});

test('reshape with an inferred -1 that does not divide names both shapes', () => {
  const e = caught(() =>
    trace(
      ({ a }) => {
        return op.reshape(a, [-1, 4]); // @site:reshape-infer
      },
      loose({ a: [2, 3] }),
    ),
  );
  assertShapeError(e, 'reshape', ['[2,3]', '[-1,4]'], 'reshape-infer');
});

// ---- zero-size tensors: refused at trace time (docs/numerics.md) -----------------------------------------------

test('an input of shape [0,3] is refused at trace time, naming the input, the shape and the call site', () => {
  const e = caught(() => trace(({ x }) => op.add(x, 1), loose({ x: [0, 3] }))); // @site:zero-input
  assertShapeError(e, 'input', ["'x'", '[0,3]', 'zero-size'], 'zero-input');
});

test('full([0,3], 1) is refused: the broadcast that builds it names the shape', () => {
  const e = caught(() =>
    trace(() => {
      return op.full([0, 3], 1); // @site:zero-full
    }, {}),
  );
  assertShapeError(e, 'broadcast', ['[0,3]', 'zero-size'], 'zero-full');
});

test('a slice to an empty range is refused, naming slice and the empty shape', () => {
  const e = caught(() =>
    trace(
      ({ x }) => {
        return op.slice(x, [[1, 1]]); // @site:zero-slice
      },
      { x: [2, 3] },
    ),
  );
  assertShapeError(e, 'slice', ['[0,3]', 'zero-size'], 'zero-slice');
});

test('a reshape to a zero-size shape is refused (the sizes differ), also with an inferred -1', () => {
  const e = caught(() =>
    trace(
      ({ x }) => {
        return op.reshape(x, [0, 6]); // @site:zero-reshape
      },
      { x: [2, 3] },
    ),
  );
  assertShapeError(e, 'reshape', ['[2,3]', '[0,6]'], 'zero-reshape');
  const inferred = caught(() =>
    trace(
      ({ x }) => {
        return op.reshape(x, [0, -1]); // @site:zero-reshape-infer
      },
      { x: [2, 3] },
    ),
  );
  assertShapeError(inferred, 'reshape', ['[2,3]', '[0,-1]'], 'zero-reshape-infer');
});

test('an input with a negative or fractional dimension is refused at trace time', () => {
  for (const shape of [
    [-1, 3],
    [1.5, 3],
  ]) {
    const e = caught(() => trace(({ x }) => op.exp(x), loose({ x: shape })));
    assert.ok(e instanceof ShapeError && e.op === 'input', e.message);
    assert.ok(e.message.includes(`[${shape.join(',')}]`) && /not a positive integer/.test(e.message), e.message);
  }
});

// ---- axes --------------------------------------------------------------------------------------------------

test('sum over axis 5 of a rank-2 tensor names the axis and the valid range', () => {
  const e = caught(() =>
    trace(
      ({ a }) => {
        return op.sum(a, 5); // @site:axis
      },
      loose({ a: [2, 3] }),
    ),
  );
  assertShapeError(e, 'sum', ['axis 5', 'rank 2', '[2,3]', '-2..1'], 'axis');
});

test('a negative axis out of range (-3 for rank 2) names the axis and the valid range', () => {
  const e = caught(() =>
    trace(
      ({ a }) => {
        return op.max(a, [0, -3]); // @site:negaxis
      },
      loose({ a: [2, 3] }),
    ),
  );
  assertShapeError(e, 'max', ['axis -3', 'rank 2', '-2..1'], 'negaxis');
});

test('negative axes in range are accepted (the valid range really is -rank..rank-1)', () => {
  const g = trace(({ a }) => ({ first: op.sum(a, -2), last: op.sum(a, -1) }), { a: [2, 3] });
  const out = evaluate(g, { a: { shape: [2, 3], data: Float64Array.of(1, 2, 3, 4, 5, 6) } });
  assert.deepEqual([...out.first.data], [5, 7, 9]);
  assert.deepEqual([...out.last.data], [6, 15]);
});

// ---- grad --------------------------------------------------------------------------------------------------

test('grad with respect to an argument that does not exist lists the available names', () => {
  const g = trace(({ x, params }) => op.sum(op.mul(op.matmul(x, params.w), params.b)), { x: [2, 3], params: { w: [3, 4], b: [4] } });
  const e = caught(() => grad(g, ['nope']));
  assert.match(e.message, /grad/);
  assert.match(e.message, /'nope'/);
  for (const name of ['x', 'params.w', 'params.b']) assert.ok(e.message.includes(name), `should list '${name}': ${e.message}`);
  // a correct name, and a tree prefix, are fine
  assert.doesNotThrow(() => grad(g, ['params']));
  assert.doesNotThrow(() => grad(g, ['x']));
});

test('grad of a non-scalar output says so, with the output name and shape', () => {
  const g = trace(({ x }) => op.mul(x, x), { x: [2, 3] });
  const e = caught(() => grad(g, ['x']));
  assert.match(e.message, /grad/);
  assert.match(e.message, /scalar/);
  assert.ok(e.message.includes('[2,3]'), e.message);
  assert.ok(e.message.includes("'out'"), e.message);
});

test('grad of a function with several outputs says it must return one scalar', () => {
  const g = trace(({ x }) => ({ a: op.sum(x), b: op.max(x) }), { x: [2, 3] });
  const e = caught(() => grad(g, ['x']));
  assert.match(e.message, /one scalar/);
  assert.match(e.message, /\ba\b.*\bb\b/);
});

// ---- evaluate ----------------------------------------------------------------------------------------------

test('evaluate with a missing input names the input and its expected shape', () => {
  const g = trace(({ x, y }) => op.add(x, y), { x: [2, 3], y: [3] });
  const e = caught(() => evaluate(g, { x: { shape: [2, 3], data: new Float64Array(6) } }));
  assert.match(e.message, /missing input 'y'/);
  assert.ok(e.message.includes('[3]'), e.message);
});

test('evaluate with an input of the wrong shape names the input and both shapes', () => {
  const g = trace(({ x, y }) => op.add(x, y), { x: [2, 3], y: [3] });
  const e = caught(() => evaluate(g, { x: { shape: [3, 2], data: new Float64Array(6) }, y: { shape: [3], data: new Float64Array(3) } }));
  assert.match(e.message, /input 'x'/);
  assert.ok(e.message.includes('[3,2]') && e.message.includes('[2,3]'), e.message);
});

test('evaluate with data that does not fill the declared shape names the input', () => {
  const g = trace(({ x }) => op.exp(x), { x: [2, 3] });
  const e = caught(() => evaluate(g, { x: { shape: [2, 3], data: new Float64Array(5) } }));
  assert.match(e.message, /input 'x'/);
  assert.match(e.message, /5 values/);
});

// ---- tensors from different traces -------------------------------------------------------------------------

test('mixing a tensor captured from another trace with a local one is a clear error', () => {
  let leaked: Tensor | undefined;
  trace(
    ({ a }) => {
      leaked = a;
      return op.exp(a);
    },
    { a: [2, 3] },
  );
  const e = caught(() => trace(({ b }) => op.add(b, leaked!), { b: [2, 3] }));
  assert.ok(e instanceof ShapeError);
  assert.match(e.message, /^add\b/);
  assert.match(e.message, /different traces/);
  assert.match(e.message, /as inputs/); // says what to do instead
});

test('returning a tensor computed only from another trace is a clear error', () => {
  let leaked: Tensor | undefined;
  trace(
    ({ a }) => {
      leaked = a;
      return op.exp(a);
    },
    { a: [2, 3] },
  );
  const e = caught(() => trace(() => op.exp(leaked!), { b: [2, 3] }));
  assert.match(e.message, /another trace/);
});

test('ops outside any trace are a clear error', () => {
  const e = caught(() => op.zeros([2, 3]));
  assert.match(e.message, /outside a trace/);
});
