// The wasm tilings chosen for the UNet step's shapes (compiler/wasm/emitKernel.ts, chooseTiling): elementwise kernels
// compute four vectors per step where 16 divides the vector axis (two where 8 does), and a 3x3 weight gradient (a
// 3-wide output axis, a contiguous reduction) runs its lanes along the reduction, with columns. shape-sweep's extents
// never divide by 16, so here: each shape on 1 and 3 threads (large kernels split by rows), the values against the
// float64 interpreter (transcendentals within wasm's 4 ulp; sums of quarters exact) and the threads bit for bit.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { compile, WasmBackend } from '../compiler/index.ts';
import type { KernelIR } from '../compiler/kernel/ir.ts';
import type { FusedProgram } from '../compiler/passes/fuse.ts';
import type { Tiling } from '../compiler/wasm/emitKernel.ts';
import type { WasmPlan } from '../compiler/wasm/plan.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { quarters } from './support/quarters.ts';

/** a backend that keeps the tilings of the plans it compiles */
class Capturing extends WasmBackend {
  readonly tilings: Tiling[] = [];
  override compilePlan(program: FusedProgram, irs: readonly KernelIR[]): WasmPlan {
    const plan = super.compilePlan(program, irs);
    this.tilings.push(...plan.tilings);
    return plan;
  }
}
const one = new Capturing({ threads: 1 });
const three = new Capturing({ threads: 3 });
after(async () => {
  await one.dispose();
  await three.dispose();
});

const agree = (g: Graph, args: Record<string, NDArray>, tolerance: number) => {
  const want = evaluate(g, args);
  const [a, b] = [one, three].map((backend) => {
    const exe = compile(g, { backend });
    try {
      return exe.run(args);
    } finally {
      exe.dispose();
    }
  });
  for (const name of Object.keys(want)) {
    const bad = want[name].data.findIndex((w, j) => !(Math.abs(a[name].data[j] - w) <= tolerance * (1 + Math.abs(w))));
    assert.equal(bad, -1, `${name}[${bad}]: ${a[name].data[bad]} against ${want[name].data[bad]}`);
    assert.ok(
      a[name].data.every((x, j) => Object.is(x, b[name].data[j])),
      `${name} differs between 1 and 3 threads`,
    );
  }
};

// the silu backward of the UNet's blocks, its product with a second input, and a rank-1 update long enough to split
const silu = ({ g, h }: { g: Tensor; h: Tensor }) => {
  const s = op.sigmoid(h);
  return { out: op.add(op.mul(g, s), op.mul(op.mul(g, h), op.mul(s, op.sub(1, s)))), e: op.exp(op.neg(h)) };
};
for (const shape of [[16], [2, 32], [3, 48], [4, 2, 80], [5, 24], [65536], [3, 2, 16384]])
  test(`elementwise ${shape.join('x')}: ${shape.at(-1)! % 16 === 0 ? 4 : 2} vectors per step, values and threads agree`, () => {
    const before = one.tilings.length;
    agree(trace(silu, { g: shape, h: shape }), { g: quarters(shape, 1), h: quarters(shape, 2) }, 1e-6);
    const vectors = one.tilings.slice(before).map((t) => t.vectors);
    assert.ok(vectors.includes(shape.at(-1)! % 16 === 0 ? 4 : 2), `tilings' vectors: ${vectors.join(', ')}`);
  });

for (const size of [16, 8, 4])
  test(`a 3x3 weight gradient over ${size}x${size} images: lanes along the reduction, with columns; values exact, threads agree`, () => {
    const spec = { x: [4, 8, size, size], ct: [4, 12, size, size] } as const;
    // the weight gradient of a padded 3x3 conv: correlate the padded input with the cotangent, batch as the reduction
    const g = trace(
      ({ x, ct }) =>
        op.permute(op.conv2d(op.permute(x, [1, 0, 2, 3]), op.permute(ct, [1, 0, 2, 3]), { padding: [1, 1, 1, 1] }), [1, 0, 2, 3]),
      spec,
    );
    const before = one.tilings.length;
    agree(g, { x: quarters(spec.x, 3), ct: quarters(spec.ct, 4) }, 0);
    const mine = one.tilings.slice(before);
    // columns (a second output axis of the tile, compiler/wasm/emitKernel.ts columnsOf) share the loads that do not move
    // with them; the short reductions of 8x8 and 4x4 images take lanes along the reduction only with columns
    assert.ok(
      mine.some((t) => t.lanesOnReduction === true && t.colAxis !== undefined && t.rows * t.vectors <= 6),
      `tilings: ${JSON.stringify(mine)}`,
    );
  });
