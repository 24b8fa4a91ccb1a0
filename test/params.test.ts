// Parameter trees and layers: deterministic init, tree round-trips, frozen parameters, layer forward/backward.
import { test } from 'node:test';
import { unflatten } from '../dsl/tree.ts';
import assert from 'node:assert/strict';
import { graphInputs } from '../core/ir.ts';
import * as fd from '../index.ts';
import { nn, type NDArray } from '../index.ts';

const same = (a: NDArray, b: NDArray) =>
  a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]) && a.data.every((v, i) => v === b.data[i]);

/** Central differences, h = 1e-6 on the f64 interpreter; |analytic - fd| <= 1e-6 * max(1, |fd|) (errors are ~1e-10). */
const checkGrad = (g: fd.Graph, inputs: Record<string, NDArray>, wrt: readonly string[]) => {
  const analytic = fd.evaluate(fd.grad(g, wrt), inputs);
  for (const name of wrt) {
    const x = inputs[name];
    const a = analytic[fd.gradName(name)];
    for (let i = 0; i < x.data.length; i++) {
      const at = (d: number) => {
        const data = x.data.slice();
        data[i] += d;
        return fd.evaluate(g, { ...inputs, [name]: { shape: x.shape, data } }).out.data[0];
      };
      const num = (at(1e-6) - at(-1e-6)) / 2e-6;
      assert.ok(Math.abs(a.data[i] - num) <= 1e-6 * Math.max(1, Math.abs(num)), `d/d${name}[${i}]: ${a.data[i]} vs ${num}`);
    }
  }
};

test('init is deterministic for a seed, differs across seeds, and has the requested statistics', () => {
  assert.ok(same(fd.initNormal([3, 4], 0.5, 7), fd.initNormal([3, 4], 0.5, 7)));
  assert.ok(!same(fd.initNormal([3, 4], 0.5, 7), fd.initNormal([3, 4], 0.5, 8)));
  assert.ok(same(fd.initUniform([5], -1, 1, 3), fd.initUniform([5], -1, 1, 3)));
  assert.ok(!same(fd.initUniform([5], -1, 1, 3), fd.initUniform([5], -1, 1, 4)));
  const n = fd.initNormal([20000], 2, 1, 3).data;
  const m = n.reduce((a, b) => a + b, 0) / n.length;
  const v = n.reduce((a, b) => a + (b - m) ** 2, 0) / n.length;
  assert.ok(Math.abs(m - 3) < 0.05 && Math.abs(Math.sqrt(v) - 2) < 0.05, `normal mean ${m}, std ${Math.sqrt(v)}`);
  const u = fd.initUniform([20000], -2, 4, 1).data;
  assert.ok(u.every((x) => x > -2 && x < 4));
  assert.ok(Math.abs(u.reduce((a, b) => a + b, 0) / u.length - 1) < 0.05);
  assert.deepEqual([...fd.zerosArray([2, 2]).data], [0, 0, 0, 0]);
  assert.deepEqual([...fd.onesArray([3]).data], [1, 1, 1]);
  assert.throws(() => fd.ndarray([2, 2], [1, 2, 3]), /3 values do not fill shape \[2,2\]/);
  assert.notEqual(fd.seedFor(1, 'a.w'), fd.seedFor(1, 'a.b'));
  assert.notEqual(fd.seedFor(1, 'a.w'), fd.seedFor(2, 'a.w'));
  assert.equal(fd.seedFor(1, 'a.w'), fd.seedFor(1, 'a.w'));
});

test('layers init deterministically; different paths and seeds draw different values', () => {
  const a = nn.linear.init(5, 3, 4),
    b = nn.linear.init(5, 3, 4),
    c = nn.linear.init(6, 3, 4);
  assert.ok(same(a.w, b.w) && same(a.b!, b.b!));
  assert.ok(!same(a.w, c.w));
  const bound = 1 / Math.sqrt(3);
  assert.ok([...a.w.data, ...a.b!.data].every((v) => Math.abs(v) < bound));
  assert.equal(nn.linear.init(1, 3, 4, { bias: false }).b, undefined);
  assert.ok(nn.linear.init(1, 3, 4, { gain: 0 }).w.data.every((v) => v === 0));
  const conv = nn.conv2d.init(1, 2, 5, 3);
  assert.deepEqual([...conv.w.shape], [5, 2, 3, 3]);
  assert.deepEqual([...conv.b!.shape], [5]);
  const model = { l1: nn.linear.init(fd.seedFor(9, 'l1'), 4, 4), l2: nn.linear.init(fd.seedFor(9, 'l2'), 4, 4) };
  assert.ok(!same(model.l1.w, model.l2.w));
  assert.equal(fd.paramCount(model), 2 * (16 + 4));
});

test('flattenParams / unflattenParams round-trip; bindInputs and subtree name things as trace and grad do', () => {
  const tree = { enc: { '0': nn.linear.init(1, 2, 3), '1': nn.layerNorm.init(0, 3) }, emb: nn.embedding.init(2, 5, 3) };
  const flat = fd.flattenParams(tree);
  assert.deepEqual(
    flat.map(([p]) => p),
    ['enc.0.w', 'enc.0.b', 'enc.1.gamma', 'enc.1.beta', 'emb.table'],
  );
  const back = fd.unflattenParams(flat);
  assert.deepEqual(back, tree);
  assert.equal(fd.paramCount(tree), 6 + 3 + 3 + 3 + 15);
  assert.deepEqual(fd.paramSpec(tree), { enc: { '0': { w: [2, 3], b: [3] }, '1': { gamma: [3], beta: [3] } }, emb: { table: [5, 3] } });
  const doubled = fd.mapParams(tree, (a) => ({ shape: a.shape, data: a.data.map((v) => 2 * v) }));
  assert.equal(doubled.enc['0'].w.data[1], 2 * tree.enc['0'].w.data[1]);
  const bound = fd.bindInputs({ params: tree });
  assert.deepEqual(Object.keys(bound), ['params.enc.0.w', 'params.enc.0.b', 'params.enc.1.gamma', 'params.enc.1.beta', 'params.emb.table']);
  // a typed trace over the tree: the function sees the tree's own keys
  const x = fd.initNormal([4, 2], 1, 3);
  const g = fd.trace(({ x: t, params }) => fd.mean(nn.layerNorm.apply(params.enc['1'], nn.linear.apply(params.enc['0'], t))), {
    x: [4, 2],
    params: fd.paramSpec(tree),
  });
  const grads = fd.subtree(fd.evaluate(fd.grad(g, ['params.enc']), { x, ...bound }), 'grad.params');
  assert.deepEqual(
    fd.flattenParams(grads).map(([p, a]) => [p, [...a.shape]]),
    [
      ['enc.0.w', [2, 3]],
      ['enc.0.b', [3]],
      ['enc.1.gamma', [3]],
      ['enc.1.beta', [3]],
    ],
  );
  assert.throws(() => fd.subtree({ a: x }, 'b'), /no output under 'b'/);
});

test('frozen parameters are constants: no parameter inputs, grad wrt the input matches FD, grad wrt a parameter name throws', () => {
  const p = nn.linear.init(11, 3, 2);
  const g = fd.trace(({ x }) => fd.sum(fd.tanh(nn.linear.apply(fd.frozen(p), x))), { x: [4, 3] });
  assert.deepEqual(
    graphInputs(g).map((n) => n.attrs.name),
    ['x'],
  );
  const x = fd.initNormal([4, 3], 1, 12);
  const gx = fd.evaluate(fd.grad(g, ['x']), { x });
  assert.deepEqual(Object.keys(gx), ['grad.x']);
  // gradient flows through the frozen network: d/dx sum tanh(xW + b) = (1 - y^2) W^T, non-zero
  assert.ok(gx['grad.x'].data.some((v) => Math.abs(v) > 1e-3));
  checkGrad(g, { x }, ['x']);
  assert.throws(() => fd.grad(g, ['w']), /no argument named 'w'/);
  assert.throws(() => fd.grad(g, ['params']), /no argument named 'params'/);
  // the same network with live params gives the same input gradient, plus parameter gradients
  const live = fd.trace(({ x: t, params }) => fd.sum(fd.tanh(nn.linear.apply(params, t))), { x: [4, 3], params: fd.paramSpec(p) });
  const both = fd.evaluate(fd.grad(live, ['x', 'params']), { x, ...fd.bindInputs({ params: p }) });
  assert.deepEqual(Object.keys(both).sort(), ['grad.params.b', 'grad.params.w', 'grad.x']);
  assert.deepEqual([...both['grad.x'].data], [...gx['grad.x'].data]);
  // frozen constants are copies: mutating the host tree after tracing does not change the graph
  const before = fd.evaluate(g, { x }).out.data[0];
  p.w.data.fill(0);
  assert.equal(fd.evaluate(g, { x }).out.data[0], before);
});

test('layer forward values: linear, conv2d with bias, norms, embedding lookup', () => {
  const lin = nn.linear.init(1, 3, 2);
  const x = fd.initNormal([2, 5, 3], 1, 2); // leading axes are flattened
  const y = fd.evaluate(
    fd.trace(({ x: t }) => nn.linear.apply(fd.frozen(lin), t), { x: [2, 5, 3] }),
    { x },
  ).out;
  assert.deepEqual([...y.shape], [2, 5, 2]);
  for (let r = 0; r < 10; r++)
    for (let o = 0; o < 2; o++) {
      let s = lin.b!.data[o];
      for (let i = 0; i < 3; i++) s += x.data[r * 3 + i] * lin.w.data[i * 2 + o];
      assert.ok(Math.abs(y.data[r * 2 + o] - s) < 1e-12);
    }
  const conv = nn.conv2d.init(3, 2, 3, 3);
  const img = fd.initNormal([1, 2, 4, 4], 1, 4);
  const c = fd.evaluate(
    fd.trace(({ x: t }) => nn.conv2d.apply(fd.frozen(conv), t, { padding: 1 }), { x: [1, 2, 4, 4] }),
    { x: img },
  ).out;
  assert.deepEqual([...c.shape], [1, 3, 4, 4]);
  // output (o=1, p=1, q=2): direct sum over the 3x3 window with zero padding
  let s = conv.b!.data[1];
  for (let ch = 0; ch < 2; ch++)
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        const yy = 1 + i - 1,
          xx = 2 + j - 1;
        if (yy >= 0 && yy < 4 && xx >= 0 && xx < 4) s += img.data[ch * 16 + yy * 4 + xx] * conv.w.data[((1 * 2 + ch) * 3 + i) * 3 + j];
      }
  assert.ok(Math.abs(c.data[16 + 1 * 4 + 2] - s) < 1e-12);
  const emb = nn.embedding.init(5, 4, 3);
  const ids: NDArray = { shape: [2, 2], data: Float64Array.of(3, 0, 0, 2) };
  const e = fd.evaluate(
    fd.trace(({ i }) => nn.embedding.apply(fd.frozen(emb), i), { i: [2, 2] }),
    { i: ids },
  ).out;
  assert.deepEqual([...e.shape], [2, 2, 3]);
  [3, 0, 0, 2].forEach((id, k) =>
    assert.deepEqual([...e.data.subarray(k * 3, k * 3 + 3)], [...emb.table.data.subarray(id * 3, id * 3 + 3)]),
  );
  const gn = nn.groupNorm.init(0, 4);
  assert.deepEqual([...gn.gamma.data, ...gn.beta.data], [1, 1, 1, 1, 0, 0, 0, 0]);
});

test('layer gradients (params and input) match finite differences', () => {
  const conv = nn.conv2d.init(1, 2, 2, 3);
  const gn = nn.groupNorm.init(0, 2);
  const lin = nn.linear.init(2, 8, 3);
  const emb = nn.embedding.init(3, 4, 8);
  const params = { conv, gn, lin, emb };
  const g = fd.trace(
    ({ x, ids, p }) => {
      const h = fd.silu(nn.groupNorm.apply(p.gn, nn.conv2d.apply(p.conv, x, { padding: 1, stride: 2 }), 2)); // [1, 2, 2, 2]
      const flat = fd.reshape(h, [1, 8]);
      return fd.sum(fd.mul(nn.linear.apply(p.lin, fd.add(flat, nn.embedding.apply(p.emb, ids))), fd.constant([0.3, -1.2, 0.7], [3])));
    },
    { x: [1, 2, 4, 4], ids: [1], p: fd.paramSpec(params) },
  );
  const inputs = { x: fd.initNormal([1, 2, 4, 4], 1, 5), ids: fd.ndarray([1], [2]), ...fd.bindInputs({ p: params }) };
  const wrt = ['x', ...fd.flattenParams(params).map(([k]) => `p.${k}`)];
  checkGrad(g, inputs, wrt);
  // the ids get no gradient (the one-hot comparison blocks it)
  assert.ok(fd.evaluate(fd.grad(g, ['ids']), inputs)['grad.ids'].data.every((v) => v === 0));
});

test('unflatten builds fields from paths and never walks into a prototype', () => {
  for (const p of ['params.__proto__.polluted', 'params.constructor.prototype.polluted', '__proto__', 'a.prototype'])
    assert.throws(() => unflatten([[p, 1]]), /would reach an object's prototype/, p);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // an own field named like an Object.prototype method is a field, not the method
  assert.deepEqual(unflatten([['toString.w', 1]]), { toString: { w: 1 } });
});
