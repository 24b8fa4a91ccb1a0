// Split-K on the WGSL backend (compiler/webgpu/splitK.ts): a reduction computed as S partial reductions into a scratch
// buffer, then combined by the kernel that keeps the epilogue and the extra outputs.
// The pure transform is checked without a GPU against the kernel IR's float64 meaning (compiler/kernel/evaluate.ts):
// the inputs are multiples of 1/4 and the sums short, so every sum is exact in any order and the split kernels must
// give the unsplit kernel's values exactly. On SwiftShader (as test/webgpu.test.ts; a missing adapter fails under
// CI=true) split-K is forced on small shapes and compared with the float64 interpreter within 1e-4 (1 + |ref|):
// the partial sums are added in another order than the unsplit kernel's, so the f32 results may differ in their last
// bits from it, not from the reference by more than f32 rounding. A combine that dropped a part, or a partial that read
// its terms at a wrong offset, would be off by whole terms, far beyond that tolerance.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { compile, isAvailable, prepareWebGPU, probeBackend, shutdownBackends, WgslBackend } from '../compiler/index.ts';
import { evaluateGrid } from '../compiler/kernel/evaluate.ts';
import { reductionOf, type KernelIR } from '../compiler/kernel/ir.ts';
import { lowerKernel } from '../compiler/kernel/lower.ts';
import { fuse, mergeOutputs } from '../compiler/passes/fuse.ts';
import { padConvInputs } from '../compiler/passes/padConvInputs.ts';
import { simplify } from '../compiler/passes/simplify.ts';
import { gpuContext } from '../compiler/webgpu/gpu.ts';
import { chooseSplit, splitReduction } from '../compiler/webgpu/splitK.ts';
import type { Tuning } from '../compiler/webgpu/tune.ts';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { valueAndGrad } from '../transforms/grad.ts';

await prepareWebGPU();
after(shutdownBackends);

const skip = () =>
  isAvailable('webgpu') || process.env.CI === 'true' ? false : `no WebGPU adapter here: ${probeBackend('webgpu').reason}`;

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Multiples of 1/4 in [-1, 1]: products and short sums of them are exact in float32 and float64. */
const quarters = (shape: readonly number[], seed: number): NDArray => ({
  shape,
  data: Float64Array.from({ length: count(shape) }, (_, i) => (((i * 7 + seed * 13) % 9) - 4) / 4),
});

/** Values of sin: sums of them round, so the GPU is compared within a tolerance. */
const waves = (shape: readonly number[], seed: number): NDArray => ({
  shape,
  data: Float64Array.from({ length: count(shape) }, (_, i) => Math.sin(seed * 7.3 + i * 1.7)),
});

// ---- the pure transform, on the kernel IR ----------------------------------------------------------------------------

/** The kernels of a graph as the WGSL backend lowers them. */
const kernelsOf = (graph: Graph, multiOutput = false) => {
  const fused = fuse(padConvInputs(simplify(graph)), 'fused', { contiguousOperands: true });
  const prog = multiOutput ? mergeOutputs(fused) : fused;
  return { prog, irs: prog.kernels.map((k) => lowerKernel(prog, k)) };
};

/** The first kernel with a reduction. */
const reductionKernel = (graph: Graph): { ir: KernelIR; nodes: number } => {
  const { prog, irs } = kernelsOf(graph);
  const ir = irs.find((k) => reductionOf(k));
  if (!ir) throw new Error('no reduction kernel');
  return { ir, nodes: prog.graph.nodes.length };
};

/** The unsplit kernel's values and the split kernels' (partial into the scratch, then combine), every output. */
const bothWays = (ir: KernelIR, parts: number, scratch: number, buffers: Map<number, Float64Array>, axis = 0) => {
  const values = (k: KernelIR) => [k.value, ...k.extras.map((e) => e.value)];
  const want = evaluateGrid({ ...ir, values: values(ir) }, buffers);
  const { partial, combine } = splitReduction(ir, parts, scratch, axis);
  const partials = evaluateGrid({ ...partial, values: [partial.value] }, buffers);
  const got = evaluateGrid({ ...combine, values: values(combine) }, new Map([...buffers, [scratch, partials]]));
  return { want, got, partial, combine };
};

const buffersFor = (ir: KernelIR, shapes: (id: number) => readonly number[]) =>
  new Map(ir.reads.map((id, i) => [id, Float64Array.from(quarters(shapes(id), i + 1).data)]));

test('splitK transform: a weight gradient splits into [S, ...shape] partials and a combine of S parts (shapes, vars, reads)', () => {
  const graph = trace(({ x, dy }) => op.matmul(op.transpose(x), dy), { x: [64, 3], dy: [64, 5] });
  const { prog, irs } = kernelsOf(graph);
  const ir = irs.find((k) => reductionOf(k))!;
  const scratch = prog.graph.nodes.length;
  const red = reductionOf(ir)!;
  const { partial, combine, want, got } = bothWays(
    ir,
    4,
    scratch,
    buffersFor(ir, (id) => prog.graph.nodes[id].shape),
  );
  assert.deepEqual(partial.shape, [4, ...ir.shape]);
  assert.equal(partial.outVars.length, ir.outVars.length + 1);
  assert.deepEqual(partial.outVars.slice(1), ir.outVars);
  const part = partial.vars.get(partial.outVars[0])!;
  assert.deepEqual([part.extent, part.role], [4, 'out']);
  const pred = reductionOf(partial)!;
  assert.equal(pred.vars.length, red.vars.length);
  const inner = partial.vars.get(pred.vars[0])!;
  assert.deepEqual([inner.extent, inner.role], [16, 'red']);
  assert.ok(!partial.vars.has(red.vars[0]), 'the split variable is gone from the partial');
  assert.equal(partial.value, pred, 'the partial is the reduction alone');
  assert.deepEqual(partial.extras, []);
  assert.deepEqual([...partial.reads].sort(), [...ir.reads].sort(), 'the partial reads what the reduction reads');
  assert.ok(!partial.reads.includes(scratch));
  assert.deepEqual(combine.shape, ir.shape);
  assert.deepEqual(combine.outVars, ir.outVars);
  assert.deepEqual(combine.reads, [scratch], 'the combine reads only the scratch (x and dy were read only by the reduction)');
  const cred = reductionOf(combine)!;
  assert.equal(cred.op, 'sum');
  assert.equal(combine.vars.get(cred.vars[0])!.extent, 4);
  assert.deepEqual(got, want);
});

test('splitK transform: the epilogue and the extra outputs stay in the combine; a max stays a max', () => {
  // u is computed inside the matmul's kernel (an extra output, as Adam's moments are inside its update)
  const graph = trace(
    ({ x, dy, b, c }) => {
      const u = op.mul(c, 2);
      return { u, y: op.tanh(op.add(op.add(op.matmul(op.transpose(x), dy), b), u)) };
    },
    { x: [24, 4], dy: [24, 8], b: [8], c: [4, 8] },
  );
  const { prog, irs } = kernelsOf(graph, true);
  const merged = irs.filter((k) => reductionOf(k));
  assert.equal(merged.length, 1);
  const ir = merged[0];
  const shapes = (id: number) => prog.graph.nodes[id].shape;
  const { combine, partial, want, got } = bothWays(ir, 3, prog.graph.nodes.length, buffersFor(ir, shapes));
  assert.equal(ir.extras.length, 1, 'the kernel has an extra output');
  assert.deepEqual(
    combine.extras.map((e) => e.node),
    ir.extras.map((e) => e.node),
  );
  assert.ok(combine.reads.length > 1 && combine.reads.includes(prog.graph.nodes.length), 'the combine reads the bias and the scratch');
  assert.ok(!partial.reads.some((id) => combine.reads.includes(id)), 'the partial reads neither the bias nor c');
  assert.deepEqual(got, want);

  const max = reductionKernel(trace(({ x }) => op.max(op.exp(x), [0]), { x: [12, 5] }));
  const m = bothWays(
    max.ir,
    6,
    max.nodes,
    buffersFor(max.ir, () => [12, 5]),
  );
  assert.equal(reductionOf(m.combine)!.op, 'max');
  assert.deepEqual(m.got, m.want);
});

test('splitK transform: a conv2d weight gradient splits along its batch (guards and clamps substituted)', () => {
  const graph = valueAndGrad(
    trace(({ x, w, t }) => op.sum(op.mul(op.conv2d(x, w, { padding: 1 }), t)), { x: [4, 2, 5, 5], w: [3, 2, 3, 3], t: [4, 3, 5, 5] }),
    ['w'],
  );
  const { prog, irs } = kernelsOf(graph);
  const shapes = (id: number) => prog.graph.nodes[id].shape;
  const wgrads = irs.filter((k) => reductionOf(k) && count(k.shape) === 3 * 2 * 3 * 3);
  assert.ok(wgrads.length >= 1, 'a kernel of the weight gradient');
  for (const ir of wgrads)
    for (const parts of [2, 4]) {
      const { want, got } = bothWays(ir, parts, prog.graph.nodes.length, buffersFor(ir, shapes));
      assert.deepEqual(got, want, `${parts} parts`);
    }
});

test('splitK transform: property over random shapes, part counts and split variables (sum and max, with an epilogue)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 2, max: 6 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 3 }),
      fc.constantFrom('matmul', 'sum', 'max', 'sum of two axes'),
      (m, n, parts, per, extra, kind) => {
        const k = parts * per;
        const graph =
          kind === 'matmul'
            ? trace(({ a, b }) => op.relu(op.matmul(a, b)), { a: [m, k], b: [k, n] })
            : kind === 'sum'
              ? trace(({ a }) => op.mul(op.sum(a, [0]), 0.5), { a: [k, m, n] })
              : kind === 'max'
                ? trace(({ a }) => op.max(a, [1]), { a: [m, k] })
                : trace(({ a }) => op.sum(a, [0, 2]), { a: [k, m, extra] });
        const { prog, irs } = kernelsOf(graph);
        const ir = irs.find((x) => reductionOf(x))!;
        const red = reductionOf(ir)!;
        // split the variable of extent k (which may be the outermost or not)
        const axis = red.vars.findIndex((v) => ir.vars.get(v)!.extent === k);
        fc.pre(axis >= 0);
        const { want, got } = bothWays(
          ir,
          parts,
          prog.graph.nodes.length + 1,
          buffersFor(ir, (id) => prog.graph.nodes[id].shape),
          axis,
        );
        assert.deepEqual(got, want);
      },
    ),
    { numRuns: 150 },
  );
});

test('splitK transform: refuses part counts that do not divide, and a scratch id the kernel reads', () => {
  const { ir, nodes } = reductionKernel(trace(({ a }) => op.sum(a, [0]), { a: [10, 3] }));
  assert.throws(() => splitReduction(ir, 3, nodes), /do not divide/);
  assert.throws(() => splitReduction(ir, 1, nodes), /do not divide/);
  assert.throws(() => splitReduction(ir, 2, ir.reads[0]), /scratch id/);
});

test('chooseSplit: few outputs with a long reduction are split, many outputs or a short reduction are not', () => {
  const bias = reductionKernel(trace(({ dy }) => op.sum(dy, [0]), { dy: [8192, 16] })).ir;
  const wide = reductionKernel(trace(({ a, b }) => op.matmul(a, b), { a: [512, 64], b: [64, 512] })).ir;
  const short = reductionKernel(trace(({ dy }) => op.sum(dy, [0]), { dy: [1024, 16] })).ir;
  // 16 outputs: on software, as many parts as reach 2048 invocations, each at least 256 terms long (32); a GPU takes a
  // workgroup tree per output (64 invocations each), and as many parts as reach 8192 invocations (8)
  const soft = chooseSplit(bias, true);
  assert.match(soft.reason, /^split-K: 32 parts of 256 terms, as 16 outputs would take only 16 invocations/);
  const gpu = chooseSplit(bias, false);
  assert.match(gpu.reason, /^split-K: 8 parts of 1024 terms, as 16 outputs would take only 1024 invocations/);
  for (const software of [true, false]) {
    assert.equal(chooseSplit(wide, software).parts, 1, 'a matmul with many outputs and 64 terms is not split');
    assert.match(chooseSplit(short, software).reason, /a reduction of 1024 terms, fewer than 2048/);
  }
  // 64 x 64 outputs: on software 4 x 4 blocks are 256 invocations, so 8 parts reach 2048; a GPU's workgroup trees
  // (64 invocations per output) already fill it
  const wgrad = reductionKernel(trace(({ x, dy }) => op.matmul(op.transpose(x), dy), { x: [4096, 64], dy: [4096, 64] })).ir;
  assert.equal(chooseSplit(wgrad, true).parts, 8, chooseSplit(wgrad, true).reason);
  assert.match(chooseSplit(wgrad, false).reason, /262144 invocations unsplit, at least 8192/);
  assert.equal(chooseSplit(wgrad, true, { splitInvocations: 256 }).parts, 1);
  assert.equal(chooseSplit(short, true, { splitMinLength: 1 }).parts, 4, 'parts of at least 256 terms');
  const forced = chooseSplit(short, true, { splitK: 5 });
  assert.equal(forced.parts, 4, 'forced: the largest divisor of 1024 up to 5');
  assert.match(forced.reason, /split-K forced: 4 parts of 256 terms/);
  const odd = reductionKernel(trace(({ a }) => op.sum(a, [0]), { a: [7, 3] })).ir;
  assert.equal(chooseSplit(odd, true, { splitK: 3 }).parts, 1, 'no divisor of 7 up to 3');
  assert.equal(chooseSplit(odd, true, { splitK: 8 }).parts, 7);
});

// ---- on the GPU (SwiftShader in CI) ------------------------------------------------------------------------------------

/** Within f32 rounding of the float64 reference: 1e-4 (1 + |ref|); NaN and infinities exactly. */
const agree = (got: number, want: number) =>
  Number.isFinite(want)
    ? Math.abs(got - want) <= 1e-4 * (1 + Math.abs(want))
    : Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want));

const mismatch = (want: Record<string, NDArray>, got: Record<string, NDArray>): string | undefined => {
  for (const [name, r] of Object.entries(want)) {
    const g = got[name];
    if (!g) return `no output ${name}`;
    for (let i = 0; i < r.data.length; i++)
      if (!agree(g.data[i], r.data[i])) return `${name}[${i}]: webgpu ${g.data[i]}, interpreter ${r.data[i]}`;
  }
  return undefined;
};

const f32 = (args: Record<string, NDArray>) =>
  Object.fromEntries(Object.entries(args).map(([k, v]) => [k, { shape: v.shape, data: Float64Array.from(Float32Array.from(v.data)) }]));

/** Runs a graph with split-K forced (or tuned as given), checks it against the interpreter, returns the sources. */
const runSplit = async (
  graph: Graph,
  args64: Record<string, NDArray>,
  tuning: Tuning,
  options: { checkNaN?: boolean; profile?: boolean } = {},
) => {
  const backend = new WgslBackend(gpuContext(), tuning);
  const args = f32(args64);
  const exe = compile(graph, { backend, ...options });
  try {
    const got = await exe.runAsync(args);
    const bad = mismatch(evaluate(graph, args), got);
    const split = exe.kernels.filter((k) => /\(2\/2, combine\)/.test(k.source.source));
    return { bad, split, kernels: exe.kernels, profile: exe.profile, backend };
  } finally {
    exe.dispose();
    assert.equal(backend.gpuBuffers(), 0, 'dispose frees the arena (scratch ranges included)');
    await backend.dispose();
  }
};

test('webgpu split-K: a weight gradient (matmul of a transposed operand) equals the interpreter', { skip: skip() }, async () => {
  const graph = trace(({ x, dy }) => op.matmul(op.transpose(x), dy), { x: [256, 6], dy: [256, 10] });
  const r = await runSplit(graph, { x: waves([256, 6], 1), dy: waves([256, 10], 2) }, { splitK: 4 });
  assert.equal(r.bad, undefined);
  assert.equal(r.split.length, 1);
  const source = r.split[0].source.source;
  assert.match(source, /^\/\/ k\d+_matmul \(1\/2, partial\): [^\n]*; split-K forced: 4 parts of 64 terms, 60 outputs \(.*splitK\.ts\)\n/);
  assert.match(source, /\n\/\/ k\d+_matmul \(2\/2, combine\): [^\n]*; the 4 parts of split-K combined \(sum\) /);
  assert.equal(source.match(/@compute/g)?.length, 2, 'the source shows both shaders');
  assert.deepEqual(r.split[0].source.args.length, 2, 'its inputs are the graph nodes x and dy, not the scratch');
});

test('webgpu split-K: a bias gradient (a sum over the batch) and a max with NaN and infinities', { skip: skip() }, async () => {
  const bias = trace(({ dy }) => op.sum(dy, [0]), { dy: [512, 12] });
  const b = await runSplit(bias, { dy: waves([512, 12], 3) }, { splitK: 8 });
  assert.equal(b.bad, undefined);
  assert.match(b.split[0]?.source.source ?? '', /split-K forced: 8 parts of 64 terms/);
  const x = waves([96, 5], 4);
  x.data[7 * 5 + 1] = NaN; // column 1: NaN in one part
  x.data[50 * 5 + 2] = Infinity; // column 2: +inf in another
  const max = trace(({ x }) => op.max(x, [0]), { x: [96, 5] });
  const m = await runSplit(max, { x }, { splitK: 6 });
  assert.equal(m.bad, undefined);
  assert.match(m.split[0]?.source.source ?? '', /combined \(max\)/);
});

test('webgpu split-K: an epilogue and extra outputs (a multi-output kernel) stay in the combine', { skip: skip() }, async () => {
  const graph = trace(
    ({ x, dy, b, c }) => {
      const u = op.mul(c, 2);
      return { u, y: op.tanh(op.add(op.add(op.matmul(op.transpose(x), dy), b), u)) };
    },
    { x: [128, 6], dy: [128, 8], b: [8], c: [6, 8] },
  );
  const args = { x: waves([128, 6], 5), dy: waves([128, 8], 6), b: waves([8], 7), c: waves([6, 8], 8) };
  const r = await runSplit(graph, args, { splitK: 4 });
  assert.equal(r.bad, undefined);
  assert.equal(r.split.length, 1);
  assert.ok((r.split[0].extraOutputs?.length ?? 0) > 0, 'the split kernel has extra outputs');
  assert.match(r.split[0].source.source, /combine\)[^\n]*\n[^]*fd_tanh\(/, 'the combine shader has the epilogue');
});

test('webgpu split-K: a conv2d weight gradient equals the interpreter', { skip: skip() }, async () => {
  const graph = valueAndGrad(
    trace(({ x, w, t }) => op.sum(op.mul(op.conv2d(x, w, { padding: 1 }), t)), { x: [4, 3, 6, 6], w: [5, 3, 3, 3], t: [4, 5, 6, 6] }),
    ['w'],
  );
  const args = { x: waves([4, 3, 6, 6], 8), w: waves([5, 3, 3, 3], 9), t: waves([4, 5, 6, 6], 10) };
  const r = await runSplit(graph, args, { splitK: 4 });
  assert.equal(r.bad, undefined);
  assert.ok(
    r.split.some((k) => count(k.shape) === 5 * 3 * 3 * 3),
    `the weight gradient's kernel is split: ${r.split.map((k) => `${k.name} [${k.shape}]`).join(', ')}`,
  );
});

test(
  'webgpu split-K: checkNaN and profile run both dispatches of a split kernel; one profile entry per kernel',
  { skip: skip() },
  async () => {
    const graph = trace(({ x, dy }) => op.matmul(op.transpose(x), dy), { x: [64, 4], dy: [64, 4] });
    const args = { x: waves([64, 4], 11), dy: waves([64, 4], 12) };
    for (const options of [{ checkNaN: true }, { profile: true }]) {
      const r = await runSplit(graph, args, { splitK: 4 }, options);
      assert.equal(r.bad, undefined, JSON.stringify(options));
      assert.equal(r.split.length, 1);
      assert.equal(r.profile.length, r.kernels.length);
    }
  },
);

test(
  'webgpu split-K: property over random shapes and part counts (sum, max, matmul) against the interpreter',
  { skip: skip() },
  async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 1, max: 40 }),
        fc.constantFrom('matmul', 'sum', 'max'),
        fc.nat(),
        async (m, n, parts, per, kind, seed) => {
          const k = parts * per;
          const [graph, args] =
            kind === 'matmul'
              ? [trace(({ a, b }) => op.matmul(a, b), { a: [m, k], b: [k, n] }), { a: waves([m, k], seed), b: waves([k, n], seed + 1) }]
              : kind === 'sum'
                ? [trace(({ a }) => op.sum(a, [0]), { a: [k, m, n] }), { a: waves([k, m, n], seed) }]
                : [trace(({ a }) => op.max(a, [1]), { a: [m, k] }), { a: waves([m, k], seed) }];
          const r = await runSplit(graph, args, { splitK: parts });
          assert.equal(r.bad, undefined, `${kind} m ${m} n ${n} k ${k} in ${parts} parts`);
          assert.equal(r.split.length, 1, 'the kernel was split');
        },
      ),
      { numRuns: 12 },
    );
  },
);

test('webgpu split-K: the default tuning splits a weight gradient over a batch of 2048 on SwiftShader', { skip: skip() }, async (t) => {
  const graph = trace(({ x, dy }) => op.matmul(op.transpose(x), dy), { x: [2048, 16], dy: [2048, 16] });
  const r = await runSplit(graph, { x: waves([2048, 16], 13), dy: waves([2048, 16], 14) }, {});
  assert.equal(r.bad, undefined);
  if (gpuContext()?.software) {
    assert.equal(r.split.length, 1);
    assert.match(r.split[0].source.source, /split-K: 8 parts of 256 terms, as 256 outputs would take only 256 invocations/);
  } else t.diagnostic(`a hardware adapter: ${r.split.length} kernels split`);
});
