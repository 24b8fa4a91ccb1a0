// Denoisers (models/): shapes of every named layer, the `until` cut (asking for 'mid' builds no up path), bad-input
// errors, seeded init, signatures of frozen copies, gradients against finite differences, and compiled plans
// against the f64 interpreter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkGrads } from '../transforms/check/checkGrads.ts';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { compile } from '../compiler/index.ts';
import {
  bindInputs,
  flattenParams,
  initNormal,
  mapParams,
  ndarray,
  paramSpec,
  seedFor,
  type Params,
  type ParamTensors,
} from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { assertSameSignature, createDenoiser, DenoiserError, signatureOf, type Denoiser, type DenoiserOptions } from '../models/index.ts';
import { attentionBlock, type AttentionParams } from '../models/blocks.ts';
import { backendsUnderTest, nodeBackends } from './support/backends.ts';

// a listed backend missing here fails under CI=true and is a reported skip elsewhere (test/support/backends.ts)
const backends = await backendsUnderTest('denoisers', nodeBackends);

const B = 2;
const shapeOf = (g: Graph): readonly number[] => g.nodes[g.outputs[0].id].shape;

/** The graph of model.apply on a batch of `batch`, with class ids when the model is conditional. */
const specs = new WeakMap<Denoiser, ReturnType<typeof paramSpec>>();
const traceModel = (m: Denoiser, until?: string, batch = B): Graph => {
  const params = specs.get(m) ?? specs.set(m, paramSpec(m.init(0))).get(m)!;
  const cond = m.config.numClasses !== undefined;
  return trace(({ params: p, x, t, c }) => m.apply(p as ParamTensors<Params>, x, t, cond ? c : undefined, { until }), {
    params,
    x: [batch, ...m.dataShape],
    t: [batch],
    c: [batch],
  });
};

/** Init plus noise on every leaf, so zero-initialised convs and unit norms do not hide terms from a check. */
const perturbed = (m: Denoiser, seed: number): Params =>
  mapParams(m.init(seed), (a, path) => {
    const n = initNormal(a.shape, 0.3, seedFor(seed + 1, path));
    return { shape: a.shape, data: a.data.map((v, i) => v + n.data[i]) };
  });

const inputsFor = (m: Denoiser, batch: number, seed = 5): { x: NDArray; t: NDArray; c: NDArray } => ({
  x: initNormal([batch, ...m.dataShape], 1, seed),
  t: ndarray(
    [batch],
    Array.from({ length: batch }, (_, i) => [3, 517, 999, 40][i % 4]),
  ),
  // the last id is the null class
  c: ndarray(
    [batch],
    Array.from({ length: batch }, (_, i) => (i % 2 === 0 ? 1 : (m.config.numClasses ?? 0))),
  ),
});

const tinyMlp: DenoiserOptions = { kind: 'mlp', dim: 2, hidden: 8, depth: 3, timeDim: 4, classDim: 3, numClasses: 3 };
const tinyUnet: DenoiserOptions = {
  kind: 'unet',
  imageSize: 8,
  baseChannels: 4,
  channelMults: [1, 2],
  groups: 2,
  embDim: 8,
  numClasses: 2,
};

// ---- shapes --------------------------------------------------------------------------------------------------

test('MLP: output and every named layer have the expected shape', () => {
  for (const numClasses of [undefined, 10]) {
    const m = createDenoiser({ kind: 'mlp', numClasses });
    assert.deepEqual(m.layers, ['hidden0', 'hidden1', 'mid', 'hidden2', 'out']);
    assert.deepEqual(shapeOf(traceModel(m)), [B, 2]);
    for (const l of m.layers) assert.deepEqual(shapeOf(traceModel(m, l)), l === 'out' ? [B, 2] : [B, 256], l);
  }
});

for (const size of [16, 28]) {
  test(`UNet ${size}x${size}: output and every named layer have the expected shape`, () => {
    const m = createDenoiser({ kind: 'unet', imageSize: size, numClasses: 10 });
    assert.deepEqual(m.layers, ['down0', 'down1', 'down2', 'mid', 'up0', 'up1', 'up2', 'out']);
    const s = [size, size / 2, size / 4];
    const want: Record<string, number[]> = {
      down0: [B, 16, s[0], s[0]],
      down1: [B, 32, s[1], s[1]],
      down2: [B, 32, s[2], s[2]],
      mid: [B, 32, s[2], s[2]],
      up0: [B, 32, s[2], s[2]],
      up1: [B, 32, s[1], s[1]],
      up2: [B, 16, s[0], s[0]],
      out: [B, 1, s[0], s[0]],
    };
    for (const l of m.layers) assert.deepEqual(shapeOf(traceModel(m, l)), want[l], l);
  });
}

test('UNet 28x28 evaluates to finite values on the interpreter (batch 2, narrow channels)', () => {
  const m = createDenoiser({ kind: 'unet', imageSize: 28, baseChannels: 4, groups: 2 });
  const { x, t } = inputsFor(m, B);
  const out = evaluate(traceModel(m), { ...bindInputs({ params: perturbed(m, 1) }), x, t }).out;
  assert.deepEqual(out.shape, [B, 1, 28, 28]);
  assert.ok(out.data.every(Number.isFinite) && out.data.some((v) => v !== 0));
});

// ---- the until cut -------------------------------------------------------------------------------------------

test("UNet until 'mid' traces no node of the up path", () => {
  const m = createDenoiser({ kind: 'unet', imageSize: 16 });
  const full = traceModel(m);
  const mid = traceModel(m, 'mid');
  // upsampleNearest2d is the only 6-D broadcast; skip connections are the only 4-D concats
  const upOps = (g: Graph) =>
    g.nodes.filter((n) => (n.op === 'broadcast' && n.shape.length === 6) || (n.op === 'concat' && n.shape.length === 4)).length;
  assert.ok(upOps(full) > 0);
  assert.equal(upOps(mid), 0);
  assert.ok(mid.nodes.length < full.nodes.length, `${mid.nodes.length} vs ${full.nodes.length}`);
  // every earlier layer is a strict prefix of the next
  const counts = m.layers.map((l) => traceModel(m, l).nodes.length);
  assert.ok(
    counts.every((n, i) => i === 0 || n > counts[i - 1]),
    counts.join(' < '),
  );
});

test("MLP until 'mid' is the middle hidden layer and stops there", () => {
  const m = createDenoiser({ kind: 'mlp', hidden: 8, depth: 3 });
  const { x, t } = inputsFor(m, B);
  const inputs = { ...bindInputs({ params: m.init(0) }), x, t };
  assert.deepEqual(evaluate(traceModel(m, 'mid'), inputs).out, evaluate(traceModel(m, 'hidden1'), inputs).out);
  assert.ok(traceModel(m, 'mid').nodes.length < traceModel(m).nodes.length);
});

// ---- bad input -----------------------------------------------------------------------------------------------

test('an unknown layer name is an error listing the layers the model has', () => {
  for (const m of [createDenoiser({ kind: 'unet', imageSize: 16 }), createDenoiser({ kind: 'mlp' })])
    assert.throws(
      () => traceModel(m, 'middle'),
      (e: Error) => e instanceof DenoiserError && e.message.includes("no layer 'middle'") && e.message.includes(m.layers.join(', ')),
    );
});

test('class ids: required by a conditional model, refused by an unconditional one; shapes are checked', () => {
  const cond = createDenoiser({ kind: 'mlp', hidden: 8, numClasses: 4 });
  const uncond = createDenoiser({ kind: 'mlp', hidden: 8 });
  const run = (m: Denoiser, withC: boolean, xShape = [B, 2], tShape = [B]) =>
    trace(({ p, x, t, c }) => m.apply(p as ParamTensors<Params>, x, t, withC ? c : undefined), {
      p: paramSpec(m.init(0)),
      x: xShape,
      t: tShape,
      c: [B],
    });
  assert.throws(() => run(cond, false), /conditional \(numClasses 4\).*null class id 4/);
  assert.throws(() => run(uncond, true), /unconditional model/);
  assert.throws(() => run(uncond, false, [B, 3]), /x must be \[B,2\], got \[2,3\]/);
  assert.throws(() => run(uncond, false, [B, 2], [B + 1]), /t must be \[2\]/);
  assert.deepEqual(shapeOf(run(uncond, false, [B, 2], [B, 1])), [B, 2]); // t as [B, 1] is accepted
});

test('bad configs are errors naming the size', () => {
  assert.throws(() => createDenoiser({ kind: 'unet', imageSize: 30 }), /imageSize 30 does not halve 2 times/);
  assert.throws(() => createDenoiser({ kind: 'unet', baseChannels: 6, groups: 4 }), /6 channels do not split into 4 groups/);
  assert.throws(() => createDenoiser({ kind: 'mlp', depth: 0 }), /depth must be a positive integer/);
});

// ---- init and signatures -------------------------------------------------------------------------------------

test('init is deterministic in the seed, and different seeds or layers draw different values', () => {
  const m = createDenoiser(tinyUnet);
  const a = flattenParams(m.init(7));
  assert.deepEqual(a, flattenParams(m.init(7)));
  const b = flattenParams(m.init(8));
  // zero-initialised by design: the output conv, each res block's conv2 and the attention's projection
  const zeroInit = (p: string) => p.startsWith('convOut') || p.endsWith('conv2.w') || p.endsWith('attn.proj.w');
  const random = a.filter(([p]) => p.endsWith('.w') && !zeroInit(p));
  assert.ok(random.length > 5 && random.every(([p, v]) => !v.data.every((x, i) => x === b.find(([q]) => q === p)![1].data[i])));
  const [r0, r1] = [a.find(([p]) => p === 'down.down0.res0.conv1.w')![1], a.find(([p]) => p === 'up.up1.res0.emb.w')![1]];
  assert.notEqual(r0.data[0], r1.data[0]);
});

test('signatures: equal for equal configs, different otherwise; assertSameSignature names the difference', () => {
  const a = createDenoiser(tinyUnet);
  assert.equal(a.signature, createDenoiser({ ...tinyUnet }).signature);
  assert.equal(a.signature, signatureOf(a.config, a.init(3)));
  assertSameSignature(a, createDenoiser(tinyUnet));
  const wider = createDenoiser({ ...tinyUnet, baseChannels: 8 });
  assert.notEqual(a.signature, wider.signature);
  assert.throws(
    () => assertSameSignature(a, wider),
    (e: Error) =>
      e instanceof DenoiserError &&
      /frozen network does not match the online model/.test(e.message) &&
      e.message.includes('baseChannels: 4 (online) vs 8 (frozen)') &&
      e.message.includes('param convIn.w: [4,1,3,3] (online) vs [8,1,3,3] (frozen)'),
  );
  const uncond = createDenoiser({ ...tinyUnet, numClasses: undefined });
  assert.throws(
    () => assertSameSignature(a, uncond.signature),
    /numClasses: only in online \(2\)[\s\S]*param cond.cls.table: only in online \(\[3,8\]\)/,
  );
  assert.throws(() => assertSameSignature(createDenoiser(tinyMlp), a), /kind: mlp \(online\) vs unet \(frozen\)/);
});

// ---- self-attention in the UNet's middle block ---------------------------------------------------------------

test('the attention block matches a direct float64 implementation (loops), and starts as the identity', () => {
  const [b, ch, h, w, groups] = [2, 4, 3, 2, 2];
  const n = h * w;
  const p0 = attentionBlock.init(3, ch);
  const p = mapParams(p0 as unknown as Params, (a, path) => {
    const z = initNormal(a.shape, 0.5, seedFor(9, path));
    return { shape: a.shape, data: a.data.map((v, i) => v + z.data[i]) };
  }) as unknown as AttentionParams;
  const x = initNormal([b, ch, h, w], 1, 4);
  const run = (params: AttentionParams) =>
    evaluate(
      trace(({ params: q, x: xs }) => attentionBlock.apply(q as unknown as ParamTensors<AttentionParams>, xs as Tensor, groups), {
        params: paramSpec(params as unknown as Params),
        x: x.shape,
      }),
      bindInputs({ params: params as unknown as Params, x }),
    ).out;
  // reference: group norm, 1x1 convs, softmax(q^T k / sqrt(C)) over keys, v attn^T, projection, residual
  const X = (bi: number, c: number, i: number) => x.data[(bi * ch + c) * n + i];
  const want = new Float64Array(b * ch * n);
  for (let bi = 0; bi < b; bi++) {
    const normed = Array.from({ length: ch }, () => new Float64Array(n));
    const per = ch / groups;
    for (let g = 0; g < groups; g++) {
      const vals: number[] = [];
      for (let c = g * per; c < (g + 1) * per; c++) for (let i = 0; i < n; i++) vals.push(X(bi, c, i));
      const mean = vals.reduce((a, v) => a + v, 0) / vals.length;
      const v = vals.reduce((a, u) => a + (u - mean) ** 2, 0) / vals.length;
      for (let c = g * per; c < (g + 1) * per; c++)
        for (let i = 0; i < n; i++)
          normed[c][i] = ((X(bi, c, i) - mean) / Math.sqrt(v + 1e-5)) * p.norm.gamma.data[c] + p.norm.beta.data[c];
    }
    const conv = (wt: NDArray, bias: NDArray | undefined, inp: Float64Array[], o: number, i: number) =>
      inp.reduce((a, row, c) => a + wt.data[o * inp.length + c] * row[i], bias?.data[o] ?? 0);
    const qkv = Array.from({ length: 3 * ch }, (_, o) => Float64Array.from({ length: n }, (_, i) => conv(p.qkv.w, p.qkv.b, normed, o, i)));
    const [q, k, v] = [qkv.slice(0, ch), qkv.slice(ch, 2 * ch), qkv.slice(2 * ch)];
    const out = Array.from({ length: ch }, () => new Float64Array(n));
    for (let i = 0; i < n; i++) {
      const scores = Array.from({ length: n }, (_, j) => q.reduce((a, qc, c) => a + qc[i] * k[c][j], 0) / Math.sqrt(ch));
      const top = Math.max(...scores);
      const e = scores.map((sc) => Math.exp(sc - top));
      const z = e.reduce((a, u) => a + u, 0);
      for (let c = 0; c < ch; c++) out[c][i] = e.reduce((a, u, j) => a + (u / z) * v[c][j], 0);
    }
    for (let c = 0; c < ch; c++)
      for (let i = 0; i < n; i++) want[(bi * ch + c) * n + i] = X(bi, c, i) + conv(p.proj.w, p.proj.b, out, c, i);
  }
  const got = run(p);
  assert.deepEqual(got.shape, [b, ch, h, w]);
  const worst = Math.max(...got.data.map((g, i) => Math.abs(g - want[i])));
  // the same float64 arithmetic in another order: rounding differences only
  assert.ok(worst < 1e-12, `max |dsl - loops| = ${worst}`);
  assert.ok(Math.max(...want.map((v, i) => Math.abs(v - x.data[i]))) > 0.1, 'the block changes its input');
  // zero-initialised projection: at init the block is the identity
  assert.deepEqual([...run(p0).data], [...x.data]);
});

test("the UNet's middle block is res, attention, res; midAttention: false leaves two res blocks", () => {
  const withAttn = createDenoiser(tinyUnet);
  const without = createDenoiser({ ...tinyUnet, midAttention: false });
  const names = (m: Denoiser) =>
    flattenParams(m.init(0))
      .map(([path]) => path)
      .filter((path) => path.startsWith('mid.'));
  assert.ok(names(withAttn).some((path) => path.startsWith('mid.attn.qkv')));
  assert.ok(!names(without).some((path) => path.includes('attn')));
  assert.notEqual(withAttn.signature, without.signature);
  const g = traceModel(withAttn, 'mid');
  const ops = new Set(g.nodes.map((nd) => nd.op));
  assert.ok(ops.has('matmul') && ops.has('exp'), 'attention traces as matmul and softmax');
});

// ---- gradients and compiled plans ----------------------------------------------------------------------------

for (const opts of [tinyMlp, tinyUnet]) {
  const m = createDenoiser(opts);
  const { x, t, c } = inputsFor(m, opts.kind === 'mlp' ? 3 : 1);
  const args = { params: perturbed(m, 2), x, t, c };
  const f = ({ params, x, t, c }: ParamTensors<typeof args>): Tensor =>
    m.apply(params as ParamTensors<Params>, x as Tensor, t as Tensor, c as Tensor);

  test(`tiny ${opts.kind}: gradients w.r.t. params and input match finite differences`, () => {
    const report = checkGrads(f, args, { wrt: ['params', 'x'], directions: 3 });
    assert.ok(report.ok, JSON.stringify(report));
    // through 'mid' too: the path the self-perceptual loss differentiates
    const mid = checkGrads(
      (a: ParamTensors<typeof args>) =>
        m.apply(a.params as ParamTensors<Params>, a.x as Tensor, a.t as Tensor, a.c as Tensor, { until: 'mid' }),
      args,
      { wrt: ['params', 'x'], directions: 2 },
    );
    assert.ok(mid.ok, JSON.stringify(mid));
  });

  // f32 kernels vs the f64 interpreter: the tiny models chain ~30 ops (UNet: convs of <= 72 terms, group norms over
  // <= 32 elements with variance O(1) >> eps) on O(1) values, so the error stays a few hundred f32 ulps (~1e-5
  // relative); 1e-4 * (1 + |ref|) is the tolerance of test/compiled.test.ts, and an indexing bug gives O(1) errors.
  for (const backend of backends)
    test(`tiny ${opts.kind}: compiled on ${backend} matches the interpreter within 1e-4 * (1 + |ref|)`, () => {
      const f32 = (a: NDArray): NDArray => ({ shape: a.shape, data: a.data.map(Math.fround) });
      const inputs = Object.fromEntries(Object.entries(bindInputs(args)).map(([k, v]) => [k, f32(v)]));
      const g = trace(f as never, { params: paramSpec(args.params), x: x.shape, t: t.shape, c: c.shape });
      const ref = evaluate(g, inputs).out;
      const got = compile(g, { backend }).run(inputs).out;
      const bad = ref.data.findIndex((r, i) => !(Math.abs(got.data[i] - r) <= 1e-4 * (1 + Math.abs(r))));
      assert.equal(bad, -1, `out[${bad}]: compiled ${got.data[bad]}, interpreter ${ref.data[bad]}`);
      assert.ok(ref.data.some((v) => Math.abs(v) > 1e-3));
    });
}
