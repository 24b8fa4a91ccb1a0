// The README's example, verbatim in substance: if this breaks, the documentation is wrong.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as fd from '../index.ts';

type MLP = { l1: fd.LinearParams; l2: fd.LinearParams };

const init = (seed: number): MLP => ({
  l1: fd.nn.linear.init(fd.seedFor(seed, 'l1'), 2, 16),
  l2: fd.nn.linear.init(fd.seedFor(seed, 'l2'), 16, 2),
});
const mlp = (p: fd.ParamTensors<MLP>, x: fd.Tensor) => fd.nn.linear.apply(p.l2, fd.silu(fd.nn.linear.apply(p.l1, x)));
const loss = ({ p, x, y }: { p: fd.ParamTensors<MLP>; x: fd.Tensor; y: fd.Tensor }) => fd.mse(mlp(p, x), y);

test('README example: trace, valueAndGrad, evaluate, checkGrads', () => {
  const params = init(0);
  const x = fd.initNormal([8, 2], 1, 1);
  const y = fd.initNormal([8, 2], 1, 2);

  const graph = fd.trace(({ p, x, y }) => loss({ p, x, y }), { p: fd.paramSpec(params), x: [8, 2], y: [8, 2] });
  const step = fd.valueAndGrad(graph, ['p']);
  const out = fd.evaluate(step, { ...fd.bindInputs({ p: params }), x, y });
  assert.deepEqual(out['grad.p.l1.w'].shape, [2, 16]);
  assert.ok(out.out.data[0] > 0);

  const report = fd.checkGrads(({ p, x, y }) => loss({ p, x, y }), { p: params, x, y }, { order: 2 });
  assert.ok(report.ok, JSON.stringify(report));
});
