// Shape sweeps for the vector and tiling paths of the compiler's own backends. The random shapes of the property suites
// are small, so extents such as 12, 20 or 36 (a multiple of 4 but not of 8: the wasm emitter's one-vector path, where
// a two-vector unroll would run past the row) and 100 were never met. Here every output extent of
// [1, 3, 5, 8, 12, 20, 36, 100] meets rows 1, 2 and 6, in one graph per shape holding a matmul (and one with an
// epilogue), a batched matmul long enough to be split over threads, a padded conv2d, row and column sums and maxima,
// and fused elementwise kernels (a broadcast and a transposed read among them), forward and with gradients.
//
// wasm: every buffer of a plan has a fixed place in one WebAssembly.Memory (compiler/wasm/plan.ts), buffers 16-byte
// aligned and back to back, with 64 KiB margins around them. Before the kernels run, every word of the memory that is
// not an input or a constant is set to a canary (a NaN no computation produces); the kernels then run one at a time,
// and after each the memory is compared with the copy taken before it: a kernel may change the words of its own
// outputs and no others (an overrun into padding, a neighbour or a margin is caught even when every result is right),
// and it must have written every one of them. On 1 thread and on 3 (large kernels split by rows over workers), and the
// two must agree bit for bit. Plans are taken from a WasmBackend whose compilePlan is wrapped to keep each plan.
// webgpu: the same graphs on the default tuning and with blocked (vec4 and scalar) and workgroup-tree kernels forced;
// robust buffer access keeps a shader inside its bindings, so there the full outputs are compared.
//
// Values: multiples of 1/4 between -1 and 1, so every product is a multiple of 1/16 and every sum here is exact in
// float32 (|sums| stay far below 2^24 / 16): matmuls, convolutions, sums and maxima must equal the float64 interpreter
// exactly. Only the transcendentals round: wasm's are within 4 ulp (test/wasm-math.test.ts), WGSL's exp within
// 3 + 2|x| ulp, so |got - f64| <= 1e-6 (1 + |f64|) on wasm and 1e-5 (1 + |f64|) on webgpu; a wrong index is O(1) off.
// Run time: about 15 s for wasm and 25 s for webgpu on SwiftShader (2 cores).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { evaluate } from '../core/interpret.ts';
import type { Graph } from '../core/ir.ts';
import type { NDArray } from '../core/ndarray.ts';
import { size } from '../core/shape.ts';
import { compile, gpuContext, shutdownBackends, WasmBackend, WgslBackend } from '../compiler/index.ts';
import type { KernelIR } from '../compiler/kernel/ir.ts';
import type { FusedProgram } from '../compiler/passes/fuse.ts';
import type { Tiling } from '../compiler/wasm/emitKernel.ts';
import type { WasmPlan } from '../compiler/wasm/plan.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { valueAndGrad } from '../transforms/grad.ts';
import { backendsUnderTest } from './support/backends.ts';
import { quarters } from './support/quarters.ts';

const backends = await backendsUnderTest('shape-sweep', ['wasm', 'webgpu']);
after(shutdownBackends);

const sweepExtents = [1, 3, 5, 8, 12, 20, 36, 100] as const;
const sweepRows = [1, 2, 6] as const;
const K = 7; // the matmul's inner dimension: odd, so no reduction is a multiple of the vector width
const BATCH = 4;

/** Multiples of 1/4 in [-1, 1] from a hash of the index: exact in f32, neighbours differ. */
interface Sweep {
  readonly label: string;
  readonly graph: Graph;
  readonly args: Record<string, NDArray>;
}

/** The shapes of one sweep point: `rows` x `n` outputs, and a batched matmul with enough work to split over threads. */
const sweepAt = (rows: number, n: number): Sweep[] => {
  const kBig = Math.max(8, Math.ceil((2 ** 15 + 1) / (BATCH * rows * n))); // above PARALLEL_WORK multiply-adds
  const spec = {
    a: [rows, K],
    b: [K, n],
    x: [rows, n],
    y: [rows, n],
    xt: [n, rows],
    v: [n],
    bigA: [BATCH, rows, kBig],
    bigB: [BATCH, kBig, n],
    img: [1, 2, rows, n],
    w: [3, 2, 3, 3],
  } as const;
  const args = Object.fromEntries(Object.entries(spec).map(([k, s], j) => [k, quarters(s, j + 1)]));
  const forward = trace(
    ({ a, b, x, y, xt, v, bigA, bigB, img, w }) => ({
      mm: op.matmul(a, b),
      epilogue: op.tanh(op.add(op.matmul(a, b), v)),
      batched: op.matmul(bigA, bigB),
      conv: op.conv2d(img, w, { padding: 1 }),
      colSum: op.sum(op.mul(x, y), [0]),
      rowSum: op.sum(x, [1], true),
      colMax: op.max(x, [0]),
      rowMax: op.max(op.add(x, y), [1], true),
      elementwise: op.add(op.mul(op.sigmoid(x), y), op.exp(op.neg(op.mul(x, x)))),
      broadcast: op.mul(op.add(x, v), 0.5),
      transposed: op.sub(x, op.transpose(xt)),
    }),
    spec,
  );
  const loss = trace(
    ({ a, b, x, v, img, w }) =>
      op.add(
        op.sum(op.mul(op.tanh(op.add(op.matmul(a, b), v)), x)),
        op.sum(op.mul(op.conv2d(img, w, { padding: 1 }), op.constant(quarters([1, 3, rows, n], 99).data, [1, 3, rows, n]))),
      ),
    { a: spec.a, b: spec.b, x: spec.x, v: spec.v, img: spec.img, w: spec.w },
  );
  const gradArgs = Object.fromEntries(['a', 'b', 'x', 'v', 'img', 'w'].map((k) => [k, args[k]]));
  return [
    { label: `[${rows},${n}] forward`, graph: forward, args },
    { label: `[${rows},${n}] gradients`, graph: valueAndGrad(loss, ['a', 'b', 'v', 'img', 'w']), args: gradArgs },
  ];
};

const sweeps = sweepRows.flatMap((rows) => sweepExtents.flatMap((n) => sweepAt(rows, n)));

const mismatches = (label: string, ref: Record<string, NDArray>, got: Record<string, ArrayLike<number>>, rel: number): string[] => {
  const bad: string[] = [];
  for (const [name, r] of Object.entries(ref)) {
    const g = got[name];
    const wrong = [...r.data.keys()].filter((i) => !(Math.abs(g[i] - r.data[i]) <= rel * (1 + Math.abs(r.data[i]))));
    if (wrong.length)
      bad.push(`${label} ${name} [${r.shape}]: ${wrong.length} wrong, first [${wrong[0]}] = ${g[wrong[0]]}, want ${r.data[wrong[0]]}`);
  }
  return bad;
};

// ---- wasm: canaries around every output, kernel by kernel ---------------------------------------------------------

const CANARY = 0x7fa5a5a5; // a quiet NaN with a payload: f32 arithmetic never produces it (its NaNs are 0x7fc00000)

/** A wasm backend whose plans are kept for the test (the plan is otherwise private to its executable). */
const capturing = (threads: number, panelBytes?: number) => {
  const backend = new WasmBackend({ threads, panelBytes });
  const plans: WasmPlan[] = [];
  const compilePlan = backend.compilePlan.bind(backend);
  backend.compilePlan = (program: FusedProgram, irs: readonly KernelIR[]) => {
    const plan = compilePlan(program, irs);
    plans.push(plan);
    return plan;
  };
  return { backend, lastPlan: () => plans[plans.length - 1] };
};

interface WasmRun {
  readonly outputs: Record<string, Float32Array>;
  readonly faults: string[];
  readonly tilings: readonly Tiling[];
  readonly splitCalls: number;
}

/** Runs the plan kernel by kernel over a memory full of canaries; every word a kernel changes must be its own output's. */
const runWithCanaries = (s: Sweep, threads: number, captured: ReturnType<typeof capturing>): WasmRun => {
  const exe = compile(s.graph, { backend: captured.backend });
  const plan = captured.lastPlan();
  try {
    const { graph, kernels } = exe.program;
    const words = new Uint32Array(plan.memory.buffer);
    const kept = new Uint8Array(words.length); // 1: an input or constant, set before the run
    for (const n of graph.nodes)
      if ((n.op === 'input' || n.op === 'constant') && plan.offsets.has(n.id))
        kept.fill(1, plan.offsets.get(n.id)! / 4, plan.offsets.get(n.id)! / 4 + size(n.shape));
    for (let i = 0; i < words.length; i++) if (!kept[i]) words[i] = CANARY;
    for (const n of graph.nodes) if (n.op === 'input') plan.view(n.id).set(s.args[n.attrs.name].data);
    const faults: string[] = [];
    const owner = (word: number): string => {
      for (const [id, off] of plan.offsets) {
        const n = graph.nodes[id];
        const from = off / 4;
        if (word >= from && word < from + size(n.shape)) return `node ${id} (${n.op} [${n.shape}])`;
        if (word >= from + size(n.shape) && word < from + Math.ceil(size(n.shape) / 4) * 4) return `the padding after node ${id}`;
      }
      return 'a margin';
    };
    const describe = (i: number) => `${graph.nodes[kernels[i].root].op} [${kernels[i].shape}], tiling ${JSON.stringify(plan.tilings[i])}`;
    kernels.forEach((k, i) => {
      const before = words.slice();
      try {
        plan.runKernel(i);
      } catch (e) {
        faults.push(`${s.label}, ${threads} thread(s): kernel ${i} (${describe(i)}) threw ${e}`);
        return;
      }
      const own = [k.root, ...(k.extraOutputs ?? [])].map((id) => [plan.offsets.get(id)! / 4, size(graph.nodes[id].shape)] as const);
      const mine = (w: number) => own.some(([from, n]) => w >= from && w < from + n);
      // a packed kernel also writes its thread's scratch (after every buffer), which holds no value between kernels
      const scratch = (w: number) => w >= plan.scratch.base / 4 && w < (plan.scratch.base + plan.scratch.bytes) / 4;
      const stray: number[] = [];
      for (let w = 0; w < words.length; w++) if (words[w] !== before[w] && !mine(w) && !scratch(w)) stray.push(w);
      if (stray.length)
        faults.push(
          `${s.label}, ${threads} thread(s): kernel ${i} (${describe(i)}) wrote ${stray.length} word(s) outside its outputs, ` +
            `first in ${owner(stray[0])}`,
        );
      for (const [from, n] of own) {
        const missed = words.subarray(from, from + n).filter((x) => x === CANARY).length;
        if (missed)
          faults.push(
            `${s.label}, ${threads} thread(s): kernel ${i} (${graph.nodes[k.root].op} [${k.shape}]) left ${missed} outputs unwritten`,
          );
      }
    });
    const outputs = Object.fromEntries(graph.outputs.map((o) => [o.name, plan.view(o.id).slice()]));
    if (faults.length) return { outputs, faults, tilings: plan.tilings, splitCalls: plan.splitCalls() };
    // the public path gives the same bits as the kernel-by-kernel run
    const viaRun = exe.run(s.args);
    for (const [name, v] of Object.entries(viaRun))
      if (!v.data.every((x, j) => Object.is(x, outputs[name][j])))
        faults.push(`${s.label}: run() and the kernel-by-kernel run differ on ${name}`);
    return { outputs, faults, tilings: plan.tilings, splitCalls: plan.splitCalls() };
  } finally {
    exe.dispose();
  }
};

// panelBytes 64 packs every matmul that has a row tile (compiler/wasm/emitKernel.ts, panelOf): the packed path on
// every shape here, which the default (half an L2) reaches only from about 256 x 256 up
for (const packed of [false, true])
  if (backends.includes('wasm'))
    test(`wasm${packed ? ' packed' : ''}: each sweep shape, 1 and 3 threads: no stray writes, results exact, threads agree`, async () => {
      const one = capturing(1, packed ? 64 : undefined);
      const three = capturing(3, packed ? 64 : undefined);
      const faults: string[] = [];
      const tilings: Tiling[] = [];
      let splits = 0;
      try {
        for (const s of sweeps) {
          const ref = evaluate(s.graph, s.args);
          const a = runWithCanaries(s, 1, one);
          const b = runWithCanaries(s, 3, three);
          faults.push(...a.faults, ...b.faults, ...mismatches(`${s.label} (1 thread)`, ref, a.outputs, 1e-6));
          for (const [name, v] of Object.entries(a.outputs))
            if (!v.every((x, j) => Object.is(x, b.outputs[name][j]))) faults.push(`${s.label}: ${name} differs between 1 and 3 threads`);
          tilings.push(...a.tilings);
          splits += b.splitCalls;
        }
      } finally {
        await one.backend.dispose();
        await three.backend.dispose();
      }
      assert.deepEqual(faults, []);
      // the sweep reaches every path it is meant to (else it would pass vacuously)
      const seen = (p: (t: Tiling) => boolean, what: string) => assert.ok(tilings.some(p), `no kernel took ${what}`);
      seen((t) => t.width === 1, 'the scalar path');
      seen((t) => t.width === 4 && t.vectors === 1, 'one vector per step');
      seen((t) => t.vectors === 2, 'the two-vector unroll');
      seen((t) => t.rows === 2, 'a 2-row tile');
      seen((t) => t.rows === 4, 'a 4-row tile');
      seen((t) => t.lanesOnReduction === true, 'lanes along the reduction');
      if (packed) seen((t) => t.panel > 0 && t.vectors === 1, 'a packed panel of one vector per step');
      if (packed) seen((t) => t.panel > 0 && t.vectors === 2, 'a packed panel of two vectors per step');
      else
        assert.ok(
          tilings.every((t) => t.panel === 0),
          'a small shape was packed at the default panel size',
        );
      assert.ok(splits > 0, 'no kernel was split over threads');
    });

// ---- webgpu: full outputs on the default, blocked and workgroup-tree kernels --------------------------------------

if (backends.includes('webgpu'))
  test('webgpu: every sweep shape, default tuning and blocked and tree kernels forced, matches the interpreter', async () => {
    const variants = [
      { name: 'default', backend: 'webgpu' as const },
      { name: 'blocked', backend: new WgslBackend(gpuContext(), { minInvocations: 1 }) },
      { name: 'blocked, scalar', backend: new WgslBackend(gpuContext(), { minInvocations: 1, vectors: false }) },
      { name: 'tree', backend: new WgslBackend(gpuContext(), { treeOutputsBelow: Infinity, treeMinLength: 1 }) },
    ];
    const faults: string[] = [];
    try {
      for (const s of sweeps) {
        const ref = evaluate(s.graph, s.args);
        // the tree changes only reductions with few outputs: the forward graphs hold every kind of them
        for (const v of variants.filter((x) => x.name !== 'tree' || s.label.endsWith('forward'))) {
          const exe = compile(s.graph, { backend: v.backend });
          try {
            const got = await exe.runAsync(s.args);
            faults.push(
              ...mismatches(`${s.label} (${v.name})`, ref, Object.fromEntries(Object.entries(got).map(([k, x]) => [k, x.data])), 1e-5),
            );
          } finally {
            exe.dispose();
          }
        }
      }
    } finally {
      for (const v of variants) if (typeof v.backend === 'object') await v.backend.dispose();
    }
    assert.deepEqual(faults, []);
  });
