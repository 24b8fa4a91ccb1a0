// The WGSL backend's workgroup-memory tiles (compiler/webgpu/tiles.ts, printed by wgsl.ts): a workgroup stages the
// terms of its rows and of its columns in workgroup memory and its blocks read them from there. Tiles are a GPU's
// variant (tune.ts takes them by default only on a hardware adapter); here they are forced on SwiftShader.
// - Each case equals the float64 interpreter exactly: the values are multiples of 1/4 and every sum here is exact in
//   float32 (as in test/wgsl-vectors.test.ts).
// - A property over random shapes and random floats: the tiled kernel gives the same bits as the register-block
//   kernel, since tiles change where the terms are read from, not the order they are added in. A wrong tile index, a
//   missing barrier or a step that skips terms gives other bits.
// SwiftShader in CI, as test/webgpu.test.ts; a missing adapter fails under CI=true.
import assert from 'node:assert/strict';
import { after, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { compile, prepareWebGPU, probeBackend, shutdownBackends, WgslBackend } from '../compiler/index.ts';
import { gpuContext } from '../compiler/webgpu/gpu.ts';
import { exactCase, skipWithoutWebGPU, type ExactCase } from './support/exactCases.ts';
import { planTiles } from '../compiler/webgpu/tiles.ts';
import { lowerKernel } from '../compiler/kernel/lower.ts';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { fuse } from '../compiler/passes/fuse.ts';

await prepareWebGPU();
after(shutdownBackends);

const skip = skipWithoutWebGPU;
const make = exactCase;

const cases: ExactCase[] = [
  make('matmul 64 x 48 x 32 (32 x 32 tiles, steps of 16)', { a: [64, 48], b: [48, 32] }, ({ a, b }) => ({ out: op.matmul(a, b) })),
  make('matmul with a transposed operand (a weight gradient)', { a: [40, 32], b: [40, 64] }, ({ a, b }) => ({
    out: op.matmul(op.transpose(a), b),
  })),
  make('a batched matmul (the batch is uniform over a workgroup)', { a: [3, 32, 24], b: [3, 24, 32] }, ({ a, b }) => ({
    out: op.matmul(a, b),
  })),
  make(
    'matmul, bias and relu, and a second output (one multi-output kernel)',
    { a: [32, 64], b: [64, 32], bias: [32] },
    ({ a, b, bias }) => {
      const y = op.relu(op.add(op.matmul(a, b), bias));
      return { y, z: op.mul(y, 3) };
    },
  ),
  make('a max reduction of products (max over k of a[i, k] * b[k, j])', { a: [32, 24], b: [24, 32] }, ({ a, b }) => ({
    out: op.max(op.mul(op.reshape(a, [32, 24, 1]), op.reshape(b, [1, 24, 32])), 1),
  })),
  make(
    'conv2d 1 x 16 x 4 x 16, 3 x 3, padding 1 (an implicit GEMM over channels and taps)',
    { x: [1, 16, 4, 16], w: [16, 16, 3, 3] },
    ({ x, w }) => ({
      out: op.conv2d(x, w, { padding: 1 }),
    }),
  ),
];

const tiled = () => new WgslBackend(gpuContext(), { minInvocations: 1, tiles: true });
const blocked = () => new WgslBackend(gpuContext(), { minInvocations: 1, tiles: false, vectors: false });

test('webgpu tiles: every case is tiled and equals the interpreter exactly', { skip: skip() }, async (t: TestContext) => {
  assert.ok(gpuContext(), `CI must run the webgpu backend: ${probeBackend('webgpu').reason}`);
  const backend = tiled();
  try {
    for (const c of cases) {
      const exe = compile(c.graph, { backend });
      try {
        const source = exe.kernels.map((k) => k.source.source).join('\n');
        // (not assert.match: on a failure it would print every shader)
        assert.ok(/ per workgroup through workgroup memory/.test(source), `${c.name}: not tiled`);
        assert.ok(/var<workgroup> fd_tr0/.test(source) && /workgroupBarrier\(\)/.test(source), `${c.name}: no tile staged`);
        const got = await exe.runAsync(c.args);
        for (const [k, r] of Object.entries(evaluate(c.graph, c.args)))
          assert.deepEqual([...got[k].data], [...Float32Array.from(r.data)], `${c.name}: output ${k}`);
      } finally {
        exe.dispose();
      }
      t.diagnostic(`${c.name}: exact`);
    }
    assert.equal(backend.gpuBuffers(), 0, 'every plan disposed: no GPU buffer left');
  } finally {
    await backend.dispose();
  }
});

test('webgpu tiles: a tiled matmul gives the bits of the register-block kernel (random shapes and floats)', { skip: skip() }, async () => {
  const on = tiled();
  const off = blocked();
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          m: fc.integer({ min: 1, max: 3 }),
          n: fc.integer({ min: 1, max: 3 }),
          k: fc.integer({ min: 1, max: 6 }),
          seed: fc.integer({ min: 1, max: 1000 }),
        }),
        async ({ m, n, k, seed }) => {
          const shape = { a: [32 * m, 8 * k], b: [8 * k, 32 * n] } as const;
          const graph = trace(({ a, b }) => ({ out: op.matmul(a, b) }), shape);
          let s = seed;
          const random = (sh: readonly number[]): NDArray => ({
            shape: sh,
            data: Float64Array.from({ length: sh[0] * sh[1] }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1),
          });
          const args = { a: random(shape.a), b: random(shape.b) };
          const outs = await Promise.all(
            [on, off].map(async (backend) => {
              const exe = compile(graph, { backend });
              try {
                const src = exe.kernels[0].source.source;
                return { data: [...(await exe.runAsync(args)).out.data], tiledKernel: /through workgroup memory/.test(src) };
              } finally {
                exe.dispose();
              }
            }),
          );
          assert.ok(outs[0].tiledKernel && !outs[1].tiledKernel);
          assert.deepEqual(outs[0].data, outs[1].data);
        },
      ),
      { numRuns: 12 },
    );
  } finally {
    await on.dispose();
    await off.dispose();
  }
});

test('webgpu tiles: which kernels qualify, and why the others do not', () => {
  const kernelOf = (g: Graph) => {
    const p = fuse(g);
    return lowerKernel(p, p.kernels[p.kernels.length - 1]);
  };
  const mm = kernelOf(trace(({ a, b }) => ({ out: op.matmul(a, b) }), { a: [64, 48], b: [48, 32] }));
  const plan = planTiles(mm, [4, 4], 0);
  assert.ok(typeof plan !== 'string', String(plan));
  assert.equal(plan.rowTerms.length, 1);
  assert.equal(plan.colTerms.length, 1);
  assert.equal(plan.step, 16); // 48 terms: 32 does not divide them
  assert.match(String(planTiles(mm, [4, 8], 0)), /does not divide the output/);
  // a reduction whose body depends on the rows alone has nothing to share along the rows
  const rowSum = kernelOf(trace(({ a }) => ({ out: op.sum(op.mul(a, a), [1]) }), { a: [64, 48] }));
  assert.equal(typeof planTiles(rowSum, [1, 1], -1), 'string');
  // an elementwise kernel has no reduction
  const ew = kernelOf(trace(({ a }) => ({ out: op.exp(a) }), { a: [64, 32] }));
  assert.equal(planTiles(ew, [1, 1], 0), 'no reduction');
});
