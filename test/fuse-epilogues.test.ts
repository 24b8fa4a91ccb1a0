// fuse's plainConvEpilogues (compiler/passes/fuse.ts), which compile sets for the wasm backend: a conv2d read only by
// an elementwise chain is that chain's epilogue, except where the chain computes a transcendental (an exp, a sigmoid,
// ...), whose math ran at about 40% of its speed after the conv's loop nest; there the conv keeps its buffer. A
// matmul keeps its epilogue either way. Without the option (GL, webgpu) the epilogue is fused as before. On wasm the
// two kernels give the interpreter's values (the sigmoid within wasm's 4 ulp).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate } from '../core/interpret.ts';
import { compile, createBackend } from '../compiler/index.ts';
import { fuse } from '../compiler/passes/fuse.ts';
import { simplify } from '../compiler/passes/simplify.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { quarters } from './support/quarters.ts';

const spec = { x: [2, 4, 8, 8], w: [8, 4, 3, 3], h: [2, 8, 8, 8] } as const;
const silu = trace(({ x, w, h }) => op.mul(op.conv2d(x, w, { padding: 1 }), op.sigmoid(h)), spec);
const affine = trace(({ x, w, h }) => op.add(op.mul(op.conv2d(x, w, { padding: 1 }), h), h), spec);
const matmulExp = trace(({ a, b }) => op.exp(op.matmul(a, b)), { a: [8, 12], b: [12, 16] });

const convKernels = (g: typeof silu, plain: boolean) =>
  fuse(simplify(g), 'fused', { plainConvEpilogues: plain }).kernels.map((k) => k.fused.length);
const ownsConv = (g: typeof silu, plain: boolean) => {
  const p = fuse(simplify(g), 'fused', { plainConvEpilogues: plain });
  return p.kernels.some((k) => p.graph.nodes[k.root].op === 'conv2d' || p.graph.nodes[k.root].op === 'matmul');
};

test('a conv whose epilogue computes a transcendental keeps its buffer with the option, and only then', () => {
  assert.equal(ownsConv(silu, true), true, `kernels: ${convKernels(silu, true)}`);
  assert.equal(ownsConv(silu, false), false, `kernels: ${convKernels(silu, false)}`);
  // a matmul keeps its epilogue: the MLP's SiLU stays in the matmul's kernel
  assert.equal(ownsConv(matmulExp, true), false);
  assert.equal(ownsConv(matmulExp, false), false);
  // an epilogue of plain arithmetic is fused either way
  assert.equal(ownsConv(affine, true), false);
  assert.equal(ownsConv(affine, false), false);
});

test('wasm: the conv with a sigmoid epilogue runs as two kernels, with the values of the interpreter', () => {
  const exe = compile(silu, { backend: createBackend('wasm', { threads: 1 }) });
  try {
    assert.ok(
      exe.kernels.some((k) => k.name.endsWith('_conv2d')),
      exe.kernels.map((k) => k.name).join(', '),
    );
    const args = { x: quarters(spec.x, 1), w: quarters(spec.w, 2), h: quarters(spec.h, 3) };
    const want = evaluate(silu, args).out.data;
    const got = exe.run(args).out.data;
    const bad = want.findIndex((v, i) => !(Math.abs(got[i] - v) <= 1e-6 * (1 + Math.abs(v))));
    assert.equal(bad, -1, `out[${bad}]: ${got[bad]} against ${want[bad]}`);
  } finally {
    exe.dispose();
  }
});
