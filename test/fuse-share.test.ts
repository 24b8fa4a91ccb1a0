// fuse's shareTranscendentals (compiler/passes/fuse.ts), which compile sets for the wasm backend: a node computed
// inline and read by several kernels gets a buffer when it computes a transcendental, so that the sigmoid of a SiLU is
// computed once, in the forward pass, and read back by the backward pass instead of recomputed there. Its readers keep
// the buffers they had, a conv whose epilogue would read it keeps its own (as with a sigmoid inside the epilogue), and
// on wasm the values are the interpreter's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import { compile, createBackend } from '../compiler/index.ts';
import { fuse, type FuseOptions } from '../compiler/passes/fuse.ts';
import { simplify } from '../compiler/passes/simplify.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { quarters } from './support/quarters.ts';

// a = x g + c, s = sigmoid(a) (cost 6: inlined without the option), h = a s (cost 9: a buffer, read by two kernels)
const spec = { x: [4, 8], g: [8], c: [8], y: [4, 8] } as const;
const silu = trace(({ x, g, c, y }) => {
  const a = op.add(op.mul(x, g), c);
  const s = op.sigmoid(a);
  const h = op.mul(a, s);
  return { rows: op.sum(h, [1]), scaled: op.mul(h, y), gate: op.mul(s, y) };
}, spec);

const fused = (g: Graph, options: FuseOptions) => fuse(simplify(g), 'fused', options);
const kernelsComputing = (g: Graph, options: FuseOptions, opName: string) => {
  const p = fused(g, options);
  return p.kernels.filter((k) => k.fused.some((id) => p.graph.nodes[id].op === opName)).length;
};

test('a shared sigmoid gets a buffer with the option, and only then; the SiLU output keeps its own', () => {
  assert.equal(kernelsComputing(silu, {}, 'sigmoid'), 2, 'without the option the sigmoid is recomputed by both readers');
  assert.equal(kernelsComputing(silu, { shareTranscendentals: true }, 'sigmoid'), 1);
  for (const share of [false, true]) {
    const options = { shareTranscendentals: share };
    const p = fused(silu, options);
    const nodes = p.graph.nodes;
    const s = nodes.find((n) => n.op === 'sigmoid')!.id;
    const h = nodes.find((n) => n.op === 'mul' && n.inputs.includes(s) && nodes[n.inputs[0]].op === 'add')!.id;
    assert.equal(p.materialized.has(s), share, `sigmoid %${s}`);
    // h counts the sigmoid's cost as before: a buffer either way, not recomputed by the sum and the product that read it
    assert.ok(p.materialized.has(h), `h %${h}, shareTranscendentals ${share}`);
  }
});

test('a shared node without a transcendental is not affected', () => {
  const plain = trace(({ x, g, c, y }) => {
    const a = op.add(op.mul(x, g), c);
    return { rows: op.sum(a, [1]), scaled: op.mul(a, y) };
  }, spec);
  const without = fused(plain, {});
  const withIt = fused(plain, { shareTranscendentals: true });
  assert.deepEqual([...withIt.materialized].sort(), [...without.materialized].sort());
});

test('a conv whose epilogue reads a sigmoid given a buffer by the option keeps its buffer (plainConvEpilogues)', () => {
  const conv = { x: [2, 4, 8, 8], w: [8, 4, 3, 3], h: [2, 8, 8, 8] } as const;
  const g = trace(({ x, w, h }) => {
    const s = op.sigmoid(h);
    return { out: op.mul(op.conv2d(x, w, { padding: 1 }), s), gate: op.mul(s, h) };
  }, conv);
  const ownsConv = (options: FuseOptions) => {
    const p = fused(g, options);
    return p.kernels.some((k) => p.graph.nodes[k.root].op === 'conv2d');
  };
  assert.equal(ownsConv({ plainConvEpilogues: true, shareTranscendentals: true }), true);
  assert.equal(ownsConv({ plainConvEpilogues: true }), true);
  assert.equal(ownsConv({ shareTranscendentals: true }), false, 'without plainConvEpilogues the conv takes its epilogue');
});

test('wasm: the shared sigmoid is computed once, with the values of the interpreter', () => {
  const exe = compile(silu, { backend: createBackend('wasm', { threads: 1 }) });
  try {
    const sigmoidKernels = exe.kernels.filter((k) => k.fusedOps.includes('sigmoid'));
    assert.equal(sigmoidKernels.length, 1, exe.kernels.map((k) => `${k.name} [${k.fusedOps.join(' ')}]`).join(', '));
    const args = { x: quarters(spec.x, 1), g: quarters(spec.g, 2), c: quarters(spec.c, 3), y: quarters(spec.y, 4) };
    const want = evaluate(silu, args);
    const got = exe.run(args);
    for (const name of ['rows', 'scaled', 'gate']) {
      const w = want[name].data;
      const v = got[name].data;
      // f32 products and sums of values in [-1, 1] against float64, the sigmoid within wasm's 4 ulp
      const bad = w.findIndex((x, i) => !(Math.abs(v[i] - x) <= 1e-6 * (1 + Math.abs(x)) * 8));
      assert.equal(bad, -1, `${name}[${bad}]: ${v[bad]} against ${w[bad]}`);
    }
  } finally {
    exe.dispose();
  }
});
