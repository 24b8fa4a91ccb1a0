// fuse's cap on the buffers one kernel reads (FuseOptions.maxReads): WebGPU binds each read as a storage buffer,
// 8 per shader stage by default with the output, so compile passes 7 there. A sum of 12 inputs fuses into one
// kernel reading all 12 without the cap; with it, every kernel reads at most 7. That the values stay right is
// checked where the cap applies: the random graphs and the playground on WebGPU (test/browser*.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuse } from '../compiler/passes/fuse.ts';
import { simplify } from '../compiler/passes/simplify.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';

const names = Array.from({ length: 12 }, (_, i) => `x${i}`);
const graph = trace(
  (a) => ({ out: names.map((n) => op.mul(a[n] as Tensor, a[n] as Tensor)).reduce((s, x) => op.add(s, x)) }),
  Object.fromEntries(names.map((n) => [n, [8]])),
);

test('fuse: without a cap one kernel reads all 12 inputs; with maxReads 7 no kernel reads more than 7', () => {
  const free = fuse(simplify(graph));
  assert.equal(Math.max(...free.kernels.map((k) => k.reads.length)), 12);
  const capped = fuse(simplify(graph), 'fused', { maxReads: 7 });
  const reads = capped.kernels.map((k) => k.reads.length);
  assert.ok(Math.max(...reads) <= 7, `reads per kernel: ${reads.join(', ')}`);
  assert.ok(capped.kernels.length > 1);
});
