// simplify's rule for a spatial slice of a conv2d (compiler/passes/rewrites.ts): the input gradient of a padded
// convolution (transforms/vjpRules.ts) is a full convolution of the padded cotangent, cropped back to the input's
// size; after simplify it is one conv2d of the input's size, with less padding, and no slice. Values are multiples of
// 1/4, so every sum is exact in float32 and float64: the simplified graph on the interpreter and the plan on wasm
// must equal the unsimplified graph on the interpreter exactly. Where the rule does not apply (the conv is read
// elsewhere too, the kept outputs skip input rows, a stepped slice, a strided conv's gradient) the slice stays, and
// the values too.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { compile, createBackend } from '../compiler/index.ts';
import { simplify } from '../compiler/passes/simplify.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { grad } from '../transforms/grad.ts';
import { quarters } from './support/quarters.ts';

/** evaluates g on the interpreter before and after simplify, and on wasm (1 and 2 threads): all equal, exactly */
const sameEverywhere = (g: Graph, args: Record<string, NDArray>) => {
  const want = evaluate(g, args);
  assert.deepEqual(evaluate(simplify(g), args), want);
  for (const threads of [1, 2]) {
    const exe = compile(g, { backend: createBackend('wasm', { threads }) });
    try {
      const got = exe.run(args);
      for (const name of Object.keys(want)) assert.deepEqual(got[name].data, want[name].data, `${name} on ${threads} thread(s)`);
    } finally {
      exe.dispose();
    }
  }
};

const convs = (g: Graph) => g.nodes.filter((n) => n.op === 'conv2d').map((n) => n.shape.join('x'));
const slicesOfConvs = (g: Graph) => g.nodes.filter((n) => n.op === 'slice' && g.nodes[n.inputs[0]].op === 'conv2d').length;

const cases = [
  { label: '3x3, padding 1', x: [2, 3, 6, 6], w: [4, 3, 3, 3], padding: [1, 1, 1, 1], stride: [1, 1] },
  { label: '5x5, padding 2', x: [1, 2, 5, 7], w: [3, 2, 5, 5], padding: [2, 2, 2, 2], stride: [1, 1] },
  { label: '3x3, padding top 1 bottom 0 left 2 right 1', x: [1, 2, 6, 5], w: [2, 2, 3, 3], padding: [1, 0, 2, 1], stride: [1, 1] },
] as const;

for (const c of cases)
  test(`the input gradient of a conv2d (${c.label}) is one conv2d of the input's size after simplify, with the same values`, () => {
    const [N, , H, W] = c.x;
    const out = [N, c.w[0], Math.floor((H + c.padding[0] + c.padding[1] - c.w[2]) / c.stride[0]) + 1];
    const r = [...out, Math.floor((W + c.padding[2] + c.padding[3] - c.w[3]) / c.stride[1]) + 1];
    const g = grad(
      trace(({ x, w, r: ct }) => op.sum(op.mul(op.conv2d(x, w, { padding: [...c.padding], stride: [...c.stride] }), ct)), {
        x: [...c.x],
        w: [...c.w],
        r,
      }),
      ['x'],
    );
    const before = convs(g);
    const after = simplify(g);
    assert.equal(slicesOfConvs(after), 0, `convs before: ${before.join(', ')}; after: ${convs(after).join(', ')}`);
    assert.ok(convs(after).includes(c.x.join('x')), `a conv2d of the input's shape ${c.x.join('x')}: ${convs(after).join(', ')}`);
    sameEverywhere(g, { x: quarters(c.x, 1), w: quarters(c.w, 2), r: quarters(r, 3) });
  });

test('a slice of a conv2d read elsewhere too, skipping input rows, or stepped, stays a slice (same values)', () => {
  const spec = { x: [1, 2, 8, 8], w: [3, 2, 3, 3] } as const;
  const shared = trace(({ x, w }) => {
    const y = op.conv2d(x, w, { padding: 1 });
    return { crop: op.slice(y, [null, null, [1, 7], [1, 7]]), all: op.sum(y) };
  }, spec);
  const skipping = trace(({ x, w }) => ({ crop: op.slice(op.conv2d(x, w, { padding: 1 }), [null, null, [3, 6], [2, 8]]) }), spec);
  const stepped = trace(({ x, w }) => ({ crop: op.slice(op.conv2d(x, w, { padding: 1 }), [null, null, [0, 8, 2], [0, 8]]) }), spec);
  const args = { x: quarters(spec.x, 4), w: quarters(spec.w, 5) };
  for (const g of [shared, skipping, stepped]) {
    assert.equal(slicesOfConvs(simplify(g)), 1);
    sameEverywhere(g, args);
  }
  // kept rows 2..6 of a 1-padded conv start inside the input: the rule would need a negative padding
  const inside = trace(({ x, w }) => ({ crop: op.slice(op.conv2d(x, w, { padding: 1 }), [null, null, [2, 6], [0, 8]]) }), spec);
  sameEverywhere(inside, args);
  // a strided conv's input gradient convolves the dilated cotangent (a pad with interior zeros, which stays its own
  // node) without padding: the slice stays
  const strided = grad(
    trace(({ x: xx, w, r }) => op.sum(op.mul(op.conv2d(xx, w, { padding: 1, stride: 2 }), r)), { ...spec, r: [1, 3, 4, 4] }),
    ['x'],
  );
  sameEverywhere(strided, { ...args, r: quarters([1, 3, 4, 4], 6) });
});
