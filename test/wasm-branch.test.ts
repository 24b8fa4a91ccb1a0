// The wasm emitter's branches (compiler/wasm/emitKernel.ts, branch): a concat whose condition is the same on every
// lane (the parts lie along an axis that is not the vector axis, as a time embedding's sin and cos halves) and whose
// parts compute a transcendental is an if / else, so only the part taken is computed, instead of both and a select.
// Checked on random sizes: each part of the concat equals, bit for bit, the same part compiled as a graph of its own
// (the routines give the same bits in every lane and in scalar code), 1 and 3 threads give the same bits, and the
// values are the interpreter's within the routines' stated bounds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { compile, WasmBackend } from '../compiler/index.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';

const caseArb = fc.record({
  rows: fc.constantFrom(4, 8, 12, 16, 20),
  k1: fc.integer({ min: 1, max: 9 }),
  k2: fc.integer({ min: 1, max: 9 }),
  k3: fc.integer({ min: 1, max: 5 }),
  seed: fc.nat(1000),
});

const values = (shape: readonly number[], seed: number, scale: number): NDArray => ({
  shape,
  data: Float64Array.from(
    { length: shape.reduce((a, b) => a * b, 1) },
    (_, i) => (((Math.imul(i + 7919 * seed, 0x9e3779b1) >>> 0) % 2001) / 1000 - 1) * scale,
  ),
});

const runOn = (g: Graph, args: Record<string, NDArray>, threads: number): Float64Array => {
  const exe = compile(g, { backend: new WasmBackend({ threads }) });
  try {
    return exe.run(args).out.data;
  } finally {
    exe.dispose();
  }
};

test('wasm branches: a concat of sin, cos and a plain part equals each part compiled alone, bit for bit', () => {
  fc.assert(
    fc.property(caseArb, ({ rows, k1, k2, k3, seed }) => {
      const spec = { x: [rows, 1], f1: [k1], f2: [k2], y: [rows, k3] } as const;
      const args = {
        x: values(spec.x, seed, 3),
        f1: values(spec.f1, seed + 1, 2),
        f2: values(spec.f2, seed + 2, 2),
        y: values(spec.y, seed + 3, 1),
      };
      const sinPart = trace(({ x, f1 }) => op.sin(op.mul(x, f1)), { x: spec.x, f1: spec.f1 });
      const cosPart = trace(({ x, f2 }) => op.cos(op.mul(x, f2)), { x: spec.x, f2: spec.f2 });
      const whole = trace(({ x, f1, f2, y }) => op.concat([op.sin(op.mul(x, f1)), op.cos(op.mul(x, f2)), op.mul(y, 2)], 1), spec);
      const got = runOn(whole, args, 1);
      const three = runOn(whole, args, 3);
      const s = runOn(sinPart, { x: args.x, f1: args.f1 }, 1);
      const c = runOn(cosPart, { x: args.x, f2: args.f2 }, 1);
      const want = evaluate(whole, args).out.data;
      const width = k1 + k2 + k3;
      for (let r = 0; r < rows; r++)
        for (let j = 0; j < width; j++) {
          const v = got[r * width + j];
          const alone = j < k1 ? s[r * k1 + j] : j < k1 + k2 ? c[r * k2 + j - k1] : 2 * Math.fround(args.y.data[r * k3 + j - k1 - k2]);
          assert.ok(Object.is(v, alone), `[${r}, ${j}]: ${v} in the concat, ${alone} alone`);
          assert.ok(Object.is(v, three[r * width + j]), `[${r}, ${j}]: 1 and 3 threads differ`);
          // |x f| <= 6: the f32 argument's rounding (6 * 2^-24) plus the routines' 4e-7
          assert.ok(Math.abs(v - want[r * width + j]) <= 1e-6, `[${r}, ${j}]: ${v} against ${want[r * width + j]}`);
        }
    }),
    { numRuns: 40 },
  );
});
