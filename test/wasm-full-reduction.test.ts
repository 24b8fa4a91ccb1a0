// A full reduction to one value on wasm (compiler/wasm/emitKernel.ts, chooseTiling at rank 0): four lanes along the
// contiguous innermost reduction variable where its extent is a multiple of 4, at least 16, else scalar loops. Either
// way the value is the float64 interpreter's within float32 summation's bound (n ulps of the sum of magnitudes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { evaluate } from '../core/interpret.ts';
import { compile, WasmBackend } from '../compiler/index.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';

test('wasm full reductions: lanes where the innermost extent allows, the value of the interpreter within f32 summation error', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 70 }), fc.nat(1000), (rows, cols, seed) => {
      const g = trace(({ x }) => op.div(op.sum(op.mul(x, x)), rows * cols), { x: [rows, cols] });
      const n = rows * cols;
      const data = Float64Array.from({ length: n }, (_, i) =>
        Math.fround((((Math.imul(i + 31 * seed, 0x9e3779b1) >>> 0) % 2001) / 1000 - 1) * 3),
      );
      const x = { shape: [rows, cols], data };
      const exe = compile(g, { backend: new WasmBackend({ threads: 1 }) });
      try {
        const got = exe.run({ x }).out.data[0];
        const want = evaluate(g, { x }).out.data[0];
        const bound = (n + 2) * 2 ** -24 * want;
        assert.ok(Math.abs(got - want) <= bound, `${got} against ${want} (bound ${bound})`);
        const lanes = exe.kernels.some((k) => k.source.source.includes('4 lanes along the reduction'));
        assert.equal(lanes, cols % 4 === 0 && cols >= 16, exe.kernels.map((k) => k.source.source).join('\n'));
      } finally {
        exe.dispose();
      }
    }),
    { numRuns: 60 },
  );
});
