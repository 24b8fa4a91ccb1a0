// The WGSL backend's vec4 accesses (compiler/webgpu/wgsl.ts, chosen in tune.ts): a buffer whose every load in a kernel
// is four-aligned is bound as array<vec4<f32>> and read a vector at a time; blocks four columns wide store a vec4 per
// row. Each case runs with vectors on (the default) and off, and both must equal the float64 interpreter exactly: the
// values are multiples of 1/4, so every product is a multiple of 1/16 and every sum here is exact in float32. The
// cases are the ones vec4 gets wrong first: a node whose size is not a multiple of 4 (its last vector is partial), a
// broadcast scalar, a transposed operand (its loads are not aligned: that buffer stays f32 in the same kernel), a row
// block of 8, offsets that are not multiples of 4 (a slice), a reduction unrolled by 4 whose loads share a vector, and a
// conv whose block rows are its output channels and whose taps are written out without a loop.
// SwiftShader in CI, as test/webgpu.test.ts; a missing adapter fails under CI=true.
import assert from 'node:assert/strict';
import { after, test, type TestContext } from 'node:test';
import { compile, prepareWebGPU, probeBackend, shutdownBackends, WgslBackend } from '../compiler/index.ts';
import { gpuContext } from '../compiler/webgpu/gpu.ts';
import { exactCase, skipWithoutWebGPU, type ExactCase } from './support/exactCases.ts';
import { evaluate } from '../core/interpret.ts';
import * as op from '../dsl/ops.ts';

await prepareWebGPU();
after(shutdownBackends);

const skip = skipWithoutWebGPU;
const make = exactCase;

const cases: ExactCase[] = [
  make('matmul 64 x 48 x 32 (16 x 8 blocks, two vec4 columns, k unrolled by 4)', { a: [64, 48], b: [48, 32] }, ({ a, b }) => ({
    out: op.matmul(a, b),
  })),
  make(
    'matmul 24 x 16 x 12 (8 x 4 blocks: the rows are no multiple of 16, the columns of 8)',
    { a: [24, 16], b: [16, 12] },
    ({ a, b }) => ({
      out: op.matmul(a, b),
    }),
  ),
  make('matmul 12 x 10 x 8 (k not a multiple of 4)', { a: [12, 10], b: [10, 8] }, ({ a, b }) => ({ out: op.matmul(a, b) })),
  make('matmul with a transposed operand', { a: [16, 24], b: [20, 24] }, ({ a, b }) => ({ out: op.matmul(a, op.transpose(b)) })),
  make('bias and a broadcast scalar, 7 x 12 elementwise', { x: [7, 12], bias: [12], s: [] }, ({ x, bias, s }) => ({
    out: op.mul(op.add(x, bias), s),
  })),
  make('a node of 5 floats read beside aligned ones', { x: [16, 4], v: [5] }, ({ x, v }) => ({
    out: op.add(x, op.sum(v)),
  })),
  make('a slice at column 1 (unaligned offsets)', { x: [8, 13] }, ({ x }) => ({ out: op.mul(op.slice(x, [null, [1, 13]]), 2) })),
  make(
    'conv2d 2 x 8 x 6 x 8, 3 x 3, padding 1 (rows along the output channels, taps without a loop)',
    {
      x: [2, 8, 6, 8],
      w: [8, 8, 3, 3],
    },
    ({ x, w }) => ({ out: op.conv2d(x, w, { padding: 1 }) }),
  ),
  make('two outputs of one block (a multi-output kernel)', { a: [32, 16], b: [16, 16] }, ({ a, b }) => {
    const y = op.matmul(a, b);
    return { y, z: op.mul(y, 3) };
  }),
];

const variants = (): { name: string; backend: WgslBackend }[] => [
  { name: 'vectors', backend: new WgslBackend(gpuContext(), { minInvocations: 1 }) },
  { name: 'scalar', backend: new WgslBackend(gpuContext(), { minInvocations: 1, vectors: false }) },
];

test('webgpu vec4: every case equals the interpreter exactly, with vectors on and off', { skip: skip() }, async (t: TestContext) => {
  assert.ok(gpuContext(), `CI must run the webgpu backend: ${probeBackend('webgpu').reason}`);
  const vs = variants();
  try {
    for (const c of cases) {
      const ref = evaluate(c.graph, c.args);
      for (const v of vs) {
        const exe = compile(c.graph, { backend: v.backend });
        try {
          const got = await exe.runAsync(c.args);
          for (const [k, r] of Object.entries(ref))
            assert.deepEqual([...got[k].data], [...Float32Array.from(r.data)], `${c.name} (${v.name}): output ${k}`);
        } finally {
          exe.dispose();
        }
      }
      t.diagnostic(`${c.name}: exact`);
    }
  } finally {
    for (const v of vs) await v.backend.dispose();
  }
});

test(
  'webgpu vec4: a matmul binds its operands and output as vec4, not when vectors are off; a conv blocks channels',
  { skip: skip() },
  async () => {
    const c = cases[0];
    const vs = variants();
    try {
      const [on, off] = vs.map((v) => compile(c.graph, { backend: v.backend }));
      const source = (e: typeof on) => e.kernels.map((k) => k.source.source).join('\n');
      assert.equal((source(on).match(/array<vec4<f32>>/g) ?? []).length, 3, source(on));
      assert.match(source(on), /16 x 8 outputs per invocation: .*four contiguous columns as a vec4/);
      assert.doesNotMatch(source(off), /vec4/);
      on.dispose();
      off.dispose();
      // a conv's block rows are its output channels (they share the image, as the columns share the weights)
      const conv = compile(cases.find((x) => x.name.startsWith('conv2d'))!.graph, { backend: vs[0].backend });
      assert.match(source(conv), /k\d+_conv2d: \d+ x \d+ outputs per invocation: loads shared along rows \(axis 1\) and columns/);
      conv.dispose();
    } finally {
      for (const v of vs) await v.backend.dispose();
    }
  },
);
