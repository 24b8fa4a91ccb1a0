// Compiled plans against the float64 interpreter, on every backend available here: random graphs and their
// gradients, every primitive's forward and backward, long reductions, fusion vs unfused.
// Tolerance: |compiled - f64| <= 1e-4 * (1 + |f64|). Kernels compute in f32 (unit round-off 6e-8); the graphs
// here chain at most ~40 ops with bounded conditioning and reduce over at most a few thousand terms, so the
// accumulated error stays far below ~1000 ulps; a wrong index or rule gives O(1) errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { valueAndGrad } from '../transforms/grad.ts';
import { graphCaseArb, programSpec, runProgram, describeProgram } from '../transforms/check/graphArbitrary.ts';
import { primitiveCases } from '../transforms/check/primitiveCases.ts';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { compile, type BackendName } from '../compiler/index.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { backendsUnderTest, nodeBackends } from './support/backends.ts';

// every Node backend but webgpu, whose run is asynchronous: test/webgpu.test.ts runs these suites there. A listed
// backend missing here fails under CI=true and is a reported skip elsewhere (test/support/backends.ts), never dropped.
const backends = await backendsUnderTest('compiled', nodeBackends);
const tol = (ref: number) => 1e-4 * (1 + Math.abs(ref));

/** Both sides see the inputs rounded to f32, as the device does (a denormal f64 cond would otherwise differ). */
const compare = (
  graph: Graph,
  args64: Record<string, NDArray>,
  backend: BackendName,
  fusion: 'fused' | 'unfused' = 'fused',
): string | undefined => {
  const args = Object.fromEntries(Object.entries(args64).map(([k, v]) => [k, { shape: v.shape, data: v.data.map(Math.fround) }]));
  const ref = evaluate(graph, args);
  const got = compile(graph, { backend, fusion }).run(args);
  for (const [name, r] of Object.entries(ref))
    for (let i = 0; i < r.data.length; i++) {
      const g = got[name].data[i];
      if (!(Math.abs(g - r.data[i]) <= tol(r.data[i]))) return `${name}[${i}]: compiled ${g}, interpreter ${r.data[i]}`;
    }
  return undefined;
};

for (const backend of backends) {
  test(`${backend}: random graphs and their gradients match the interpreter`, () => {
    fc.assert(
      fc.property(graphCaseArb(6), (c) => {
        const spec = programSpec(c.args);
        const g = valueAndGrad(
          trace((a) => runProgram(c.program, a as Record<string, Tensor>), spec),
          Object.keys(c.args),
        );
        const err = compare(g, c.args, backend);
        if (err) throw new Error(`${err}\n${describeProgram(c.program)}`);
      }),
      { numRuns: backend === 'cpu' ? 40 : 25, seed: 7 },
    );
  });

  test(`${backend}: every primitive, forward and gradient, fused and unfused`, () => {
    for (const [name, arb] of Object.entries(primitiveCases)) {
      fc.assert(
        fc.property(arb, (c) => {
          const spec = Object.fromEntries(Object.entries(c.args).map(([k, v]) => [k, v.shape]));
          const g = valueAndGrad(
            trace((a) => op.sum(op.mul(c.fn(a as Record<string, Tensor>), 0.5)), spec),
            c.wrt ?? Object.keys(c.args),
          );
          for (const fusion of ['fused', 'unfused'] as const) {
            const err = compare(g, c.args as Record<string, NDArray>, backend, fusion);
            if (err) throw new Error(`${name} (${fusion}) ${c.describe}: ${err}`);
          }
        }),
        { numRuns: 8, seed: 11 },
      );
    }
  });

  test(`${backend}: a reduction over 5000 elements is not truncated`, () => {
    const n = 5000;
    const x = { shape: [n], data: Float64Array.from({ length: n }, (_, i) => ((i % 7) - 3) / 4 + 1) };
    const g = trace(({ x }) => op.sum(x), { x: [n] });
    const got = compile(g, { backend }).run({ x }).out.data[0];
    const ref = evaluate(g, { x }).out.data[0];
    // 5000 terms of size ~1 summed in f32: error well below 1e-3 of the total (~5000); truncation at 1000 would lose 80%
    assert.ok(Math.abs(got - ref) < 1e-3 * ref, `sum ${got} vs ${ref}`);
  });
}

for (const backend of backends) {
  test(`${backend}: the RNG draws the interpreter's uniforms bit for bit, and its normals within f32 error`, () => {
    const g = trace(
      ({ step }) => ({
        u: op.uniform([4096], { seed: 9, stream: 3, counter: step }),
        n: op.normal([4096], { seed: 9, stream: 4, counter: step }),
      }),
      { step: [] },
    );
    const args = { step: { shape: [], data: Float64Array.of(12345) } };
    const ref = evaluate(g, args);
    const got = compile(g, { backend }).run(args);
    const mismatches = ref.u.data.filter((v, i) => Math.fround(v) !== got.u.data[i]).length;
    assert.equal(mismatches, 0, `${mismatches} of 4096 uniforms differ`);
    // Box-Muller's log/sqrt/cos run in f32 on the device (GL's exp/log are within a few ulp): 1e-5 absolute
    const worst = ref.n.data.reduce((m, v, i) => Math.max(m, Math.abs(v - got.n.data[i])), 0);
    assert.ok(worst < 1e-5, `normals differ by up to ${worst}`);
  });
}

for (const backend of backends.filter((b) => b !== 'webasm')) {
  test(`${backend}: outputs of one shape are written by one multi-output kernel (gpu.js kernel map), with the same values`, () => {
    // an Adam-like update: m', v' and p' share the elementwise iteration space
    const g = trace(
      ({ p, m, v, g: gr }) => {
        const m2 = op.add(op.mul(m, 0.9), op.mul(gr, 0.1));
        const v2 = op.add(op.mul(v, 0.99), op.mul(op.mul(gr, gr), 0.01));
        return { p: op.sub(p, op.div(m2, op.add(op.sqrt(v2), 1e-8))), m: m2, v: v2 };
      },
      { p: [64], m: [64], v: [64], g: [64] },
    );
    const args = Object.fromEntries(
      ['p', 'm', 'v', 'g'].map((k, j) => [
        k,
        {
          shape: [64],
          data: Float64Array.from({ length: 64 }, (_, i) => Math.fround(Math.sin(i + j) * (k === 'v' ? 0.5 : 1) + (k === 'v' ? 0.6 : 0))),
        },
      ]),
    );
    const multi = compile(g, { backend });
    const single = compile(g, { backend, multiOutput: false });
    assert.equal(multi.kernels.length, 1);
    assert.deepEqual([...(multi.kernels[0].extraOutputs ?? [])].length, 2);
    assert.equal(single.kernels.length, 3);
    const a = multi.run(args),
      b = single.run(args),
      ref = evaluate(g, args);
    // not bitwise: gpu.js's cpu backend keeps intermediates in f64 inside a kernel, so m' read from an f32 buffer
    // (single) and m' used in-register (multi) differ in the last bits; both must match the interpreter
    for (const k of ['p', 'm', 'v'])
      ref[k].data.forEach((r, i) => assert.ok(Math.abs(a[k].data[i] - r) <= tol(r) && Math.abs(b[k].data[i] - r) <= tol(r), `${k}[${i}]`));
  });
}
