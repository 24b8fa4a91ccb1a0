// checkGrads as a user-facing feature: it passes correct gradients, catches and localises a wrong vjp rule,
// and refuses inputs it cannot judge.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vjpRules } from '../transforms/vjpRules.ts';
import { grad, valueAndGrad, vjp } from '../transforms/grad.ts';
import { checkGrads } from '../transforms/check/checkGrads.ts';
import { evaluate } from '../core/interpret.ts';
import type { NDArray } from '../core/ndarray.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { call, trace } from '../dsl/trace.ts';

const arr = (shape: number[], f: (i: number) => number): NDArray => ({
  shape,
  data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)),
});

test('a correct model passes at orders 1 and 2, scalar and non-scalar outputs', () => {
  const x = arr([4, 3], (i) => Math.sin(i));
  const w = arr([3, 2], (i) => Math.cos(i) / 2);
  const model = ({ x, w }: { x: op_T; w: op_T }) => op.tanh(op.matmul(x, w));
  const scalar = checkGrads(({ x, w }) => op.sum(op.mul(model({ x, w }), model({ x, w }))), { x, w }, { order: 2 });
  assert.ok(scalar.ok, JSON.stringify(scalar));
  assert.equal(scalar.checks, 6);
  const vector = checkGrads(model, { x, w }, { order: 2 });
  assert.ok(vector.ok, JSON.stringify(vector));
  // f64 central differences with eps = 1e-6 agree to ~1e-8 on a smooth function; rtol 1e-5 leaves margin
  assert.ok(vector.worst.relErr < 1e-7, `rel err ${vector.worst.relErr}`);
});
type op_T = Tensor;

test('a wrong vjp rule is caught and the primitive named, with the call site', () => {
  const saved = vjpRules.sin;
  vjpRules.sin = ({ ct, ins: [x] }) => [op.mul(ct, op.sin(x))]; // wrong: should be cos
  try {
    const line = new Error().stack!.split('\n')[1].match(/:(\d+):\d+\)?$/)![1];
    const report = checkGrads(({ x }) => op.sum(op.exp(op.sin(x))), { x: arr([5], (i) => i / 3) });
    assert.equal(report.ok, false);
    assert.ok(report.worst.relErr > 1e-2);
    assert.equal(report.culprit?.op, 'sin');
    assert.match(report.culprit?.site ?? '', new RegExp(`checkGrads\\.test\\.ts:${Number(line) + 1}:`));
  } finally {
    vjpRules.sin = saved;
  }
});

test('a wrong second-order rule is caught at order 2 only', () => {
  const saved = vjpRules.sin;
  // ct * cos(x) detached from x: first derivatives of sin stay right, its second derivative becomes 0
  vjpRules.sin = ({ ct, ins: [x] }) => [op.mul(ct, op.stopGradient(op.cos(x)))];
  try {
    const args = { x: arr([4], (i) => 0.3 + i / 2) };
    assert.equal(checkGrads(({ x }) => op.sum(op.sin(x)), args, { order: 1 }).ok, true);
    const r2 = checkGrads(({ x }) => op.sum(op.sin(x)), args, { order: 2 });
    assert.equal(r2.ok, false);
    assert.equal(r2.worst.order, 2);
  } finally {
    vjpRules.sin = saved;
  }
});

test('non-finite inputs and values are refused with the argument and index', () => {
  const bad = arr([3], (i) => (i === 2 ? Number.NaN : i));
  assert.throws(() => checkGrads(({ x }) => op.sum(x), { x: bad }), /argument 'x' has a non-finite value \(NaN\) at flat index 2/);
  assert.throws(() => checkGrads(({ x }) => op.sum(op.log(x)), { x: arr([2], (i) => -1 - i) }), /value is not finite/);
});

test('grad of grad: the Hessian of sum(x^3)/3 is diag(2x)', () => {
  const f = trace(({ x }) => op.div(op.sum(op.pow(x, 3)), 3), { x: [3] });
  const g = grad(f, ['x']);
  // row i of the Hessian = grad of <grad f, e_i>
  const x = arr([3], (i) => i - 0.5);
  for (let i = 0; i < 3; i++) {
    const probe = trace(
      ({ x }) =>
        op.sum(
          op.mul(
            call(g, { x })['grad.x'],
            op.constant(
              [0, 1, 2].map((j) => +(j === i)),
              [3],
            ),
          ),
        ),
      { x: [3] },
    );
    const row = evaluate(grad(probe, ['x']), { x })['grad.x'].data;
    [...row].forEach((v, j) => assert.ok(Math.abs(v - (i === j ? 2 * x.data[i] : 0)) < 1e-12, `H[${i}][${j}] = ${v}`));
  }
});

test('valueAndGrad and vjp agree with grad; wrt selects tree prefixes', () => {
  const spec = { x: [2, 2], p: { a: [2], b: [2] } } as const;
  const f = trace(({ x, p }) => op.sum(op.mul(op.add(x, p.a), p.b)), spec);
  const inputs = { x: arr([2, 2], (i) => i), 'p.a': arr([2], (i) => i + 1), 'p.b': arr([2], (i) => 2 - i) };
  const vg = evaluate(valueAndGrad(f, ['p']), inputs);
  assert.deepEqual(Object.keys(vg).sort(), ['grad.p.a', 'grad.p.b', 'out']);
  assert.deepEqual([...vg['grad.p.a'].data], [4, 2]); // sum over rows of b
  const v = evaluate(vjp(f, ['x']), { ...inputs, 'ct.out': arr([], () => 3) });
  assert.deepEqual([...v['grad.x'].data], [6, 3, 6, 3]);
  assert.equal(v.out.data[0], vg.out.data[0]);
});
