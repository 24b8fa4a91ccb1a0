// Backends own what they create. On every backend Node has, a plan's dispose() (and a training step's) brings the
// backend's counts of kernels, gpu.js kernel objects, GL textures and uploaded buffers back to what they were before
// the compile; compiling, running and disposing 200 plans leaves them flat. gpu.js's silent move of a kernel to its
// CPU path is reported in backendReason, or refused with onFallback: 'error'.
// headlessgl needs an X display (npm test provides one): without it its tests are skipped here, with the reason,
// and FAIL in CI (CI=true).
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BackendError,
  backendFor,
  compile,
  compiledKernelCount,
  createBackend,
  probeBackend,
  shutdownBackends,
  type Backend,
  type BackendCounters,
  type BackendName,
} from '../compiler/index.ts';
import type { Graph } from '../core/ir.ts';
import * as c from '../dsl/composites.ts';
import * as nn from '../dsl/nn.ts';
import * as op from '../dsl/ops.ts';
import { adam } from '../dsl/optim.ts';
import { initNormal, seedFor, type Params, type ParamTensors } from '../dsl/params.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { trace } from '../dsl/trace.ts';
import { requiredInCI } from './support/backends.ts';
import { compileStep } from '../train/compileStep.ts';
import { FusediffMatmul } from '../bench/fusediff/matmul.ts';
import { FusediffMlp } from '../bench/fusediff/mlpDenoiser.ts';

/** A test on a fresh Backend object of its own (disposed after); an unavailable backend skips with its reason, or fails in CI. */
const onBackend = (name: BackendName, title: string, body: (b: Backend, t: TestContext) => void | Promise<void>) => {
  const { available, reason } = probeBackend(name);
  const skip = !available && !requiredInCI(name) ? `${name} is not available here: ${reason}` : false;
  test(`${name}: ${title}`, { skip }, async (t) => {
    assert.ok(available, `${name} is not available: ${reason}`);
    const b = createBackend(name);
    try {
      await body(b, t);
    } finally {
      await b.dispose();
    }
  });
};

const zero: BackendCounters = { kernels: 0, engineKernels: 0, textures: 0, buffers: 0 };
const f32 = (n: number, scale = 0.1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1) * scale);

/** A few ops of sizes that depend on n, so that plans of different n share no kernel: matmul, tanh, a reduction. */
const smallGraph = (n: number): Graph =>
  trace(({ x, w }) => ({ y: op.tanh(op.matmul(x, w)), s: op.sum(op.mul(x, x)) }), { x: [4, n], w: [n, 3] });

// the MLP regression of test/step.test.ts
const params0 = { l1: nn.linear.init(seedFor(1, 'l1'), 3, 16), l2: nn.linear.init(seedFor(1, 'l2'), 16, 1) };
type P = typeof params0;
const x = initNormal([32, 3], 1, 5);
const y = initNormal([32, 1], 1, 6);
const mlpLoss = ({ params, x, y }: { params: ParamTensors<Params>; x: Tensor; y: Tensor }) => {
  const p = params as unknown as ParamTensors<P>;
  return c.mse(nn.linear.apply(p.l2, c.silu(nn.linear.apply(p.l1, x))), y);
};

for (const name of ['headlessgl', 'webasm', 'cpu'] as const) {
  onBackend(name, "a plan's dispose() brings kernel, texture and buffer counts back to their values before the compile", (b, t) => {
    const before = b.counters();
    assert.deepEqual(before, zero);
    const exe = compile(smallGraph(8), { backend: b });
    assert.equal(exe.device, b);
    const ref = exe.run({ x: f32(32), w: f32(24) });
    // outputs the caller keeps (on GL, textures of immutable kernels) are the plan's to free if still alive
    exe.runDevice({ x: f32(32), w: f32(24) });
    const running = b.counters();
    assert.ok(running.kernels > 0 && running.engineKernels >= running.kernels, JSON.stringify(running));
    if (b.gl) assert.ok(running.textures > 0 && exe.heldBuffers() === 2, `textures ${running.textures}, held ${exe.heldBuffers()}`);
    const held = exe.heldBuffers();
    exe.dispose();
    t.diagnostic(
      `before: ${JSON.stringify(before)}; ` +
        `after run + runDevice (${held} outputs held): ${JSON.stringify(running)}; after dispose: ${JSON.stringify(b.counters())}`,
    );
    assert.deepEqual(b.counters(), before);
    assert.equal(exe.heldBuffers(), 0);
    assert.throws(() => exe.run({ x: f32(32), w: f32(24) }), /run: this plan was disposed/);
    // the same graph compiled again computes the same values
    const again = compile(smallGraph(8), { backend: b });
    assert.deepEqual([...again.run({ x: f32(32), w: f32(24) }).y.data], [...ref.y.data]);
    again.dispose();
    assert.deepEqual(b.counters(), before);
  });

  onBackend(name, 'plans that share a kernel keep it until the last of them is disposed', (b) => {
    const a = compile(smallGraph(5), { backend: b });
    const a2 = compile(smallGraph(5), { backend: b });
    a.run({ x: f32(20), w: f32(15) });
    a.dispose();
    assert.ok(b.counters().kernels > 0);
    assert.ok(Number.isFinite(a2.run({ x: f32(20), w: f32(15) }).s.data[0]), 'the other plan still runs');
    a2.dispose();
    assert.deepEqual(b.counters(), zero);
  });

  onBackend(name, "a training step's dispose() frees its resident parameters, optimizer state and plan", (b, t) => {
    const s = compileStep(mlpLoss, {
      params: params0,
      optimizer: adam({ lr: 1e-2 }),
      data: { x: [32, 3], y: [32, 1] },
      backend: b,
      emaDecay: 0.9,
    });
    for (let i = 0; i < 3; i++) s.run({ x, y });
    const running = b.counters();
    assert.ok(running.kernels > 0 && s.liveBuffers() > 0);
    s.dispose();
    t.diagnostic(`after 3 steps: ${JSON.stringify(running)}; after dispose: ${JSON.stringify(b.counters())}`);
    assert.deepEqual(b.counters(), zero, `while running: ${JSON.stringify(running)}`);
    assert.equal(s.liveBuffers(), 0);
    assert.throws(() => s.run({ x, y }), /this plan was disposed/);
    assert.throws(() => s.params(), /this step was disposed/);
  });

  onBackend(name, 'upload, read and free: the values round-trip and the buffer count returns to zero', (b) => {
    const data = Float32Array.of(1.5, -2, 3.25, 1e-7, 65504);
    const buf = b.upload(data);
    const zeros = b.allocate(7);
    assert.equal(b.counters().buffers, 2);
    assert.deepEqual([...b.read(buf, 5)], [...data]);
    assert.deepEqual([...b.read(zeros, 7)], [0, 0, 0, 0, 0, 0, 0]);
    b.free(buf);
    b.free(zeros);
    assert.deepEqual(b.counters(), zero);
  });
}

for (const name of ['headlessgl', 'cpu'] as const) {
  onBackend(name, 'compiling, running and disposing 200 plans of different sizes leaves kernel and texture counts flat', (b, t) => {
    const at: Record<number, { running: BackendCounters; disposed: BackendCounters }> = {};
    for (let i = 1; i <= 200; i++) {
      const n = 2 + i; // a new size each time: every kernel is new
      const exe = compile(smallGraph(n), { backend: b });
      const out = exe.run({ x: f32(4 * n), w: f32(3 * n) });
      assert.ok(Number.isFinite(out.s.data[0]));
      const running = b.counters();
      exe.dispose();
      if (i === 10 || i === 200) at[i] = { running, disposed: b.counters() };
    }
    t.diagnostic(
      `while plan 10 / 200 ran: ${JSON.stringify(at[10].running)} / ${JSON.stringify(at[200].running)}; ` +
        `after its dispose: ${JSON.stringify(at[10].disposed)} / ${JSON.stringify(at[200].disposed)}`,
    );
    assert.ok(at[10].running.kernels > 0, 'the plans did create kernels');
    // the same structure at every size: the same kernels and textures while a plan lives, none after
    assert.deepEqual(at[200], at[10], `after 10 plans ${JSON.stringify(at[10])}, after 200 ${JSON.stringify(at[200])}`);
    assert.deepEqual(at[200].disposed, zero);
  });
}

onBackend('webasm', "a kernel gpu.js moves to its CPU path is named in backendReason; onFallback: 'error' refuses it", (b) => {
  // an Adam-like update whose three outputs one kernel map writes; gpu.js's webasm has no kernel maps
  const g = trace(
    ({ p, m, v, g: gr }) => {
      const m2 = op.add(op.mul(m, 0.9), op.mul(gr, 0.1));
      const v2 = op.add(op.mul(v, 0.99), op.mul(op.mul(gr, gr), 0.01));
      return { p: op.sub(p, op.div(m2, op.add(op.sqrt(v2), 1e-8))), m: m2, v: v2 };
    },
    { p: [64], m: [64], v: [64], g: [64] },
  );
  const args = { p: f32(64), m: f32(64), v: f32(64, 0.5).map(Math.abs), g: f32(64) };
  const plain = compile(g, { backend: b });
  const plainOut = plain.run(args);
  assert.equal(plain.backendReason, 'requested');
  assert.deepEqual(plain.fallbacks, []);

  const mapped = compile(g, { backend: b, multiOutput: true });
  assert.equal(mapped.kernels.length, 1);
  assert.equal(mapped.backendReason, 'requested', 'nothing is known before the first run');
  const out = mapped.run(args);
  assert.match(
    mapped.backendReason,
    /^requested \(1 kernel fell back to gpu\.js's CPU path: k0_sub \(kernel maps are not supported on the webasm backend\)\)$/,
  );
  assert.equal(mapped.fallbacks[0].kernel.name, 'k0_sub');
  // gpu.js's CPU path computes in f64 inside a kernel: close to the webasm result, not bitwise
  for (const k of ['p', 'm', 'v'])
    out[k].data.forEach((v, i) => assert.ok(Math.abs(v - plainOut[k].data[i]) <= 1e-6 * (1 + Math.abs(v)), `${k}[${i}]`));

  const strict = compile(g, { backend: b, multiOutput: true, onFallback: 'error' });
  assert.throws(
    () => strict.run(args),
    (e: unknown) =>
      e instanceof BackendError &&
      new RegExp(
        /backend webasm cannot run kernel 0 \(k0_sub: .*\): gpu\.js moved it to its CPU path /.source +
          /\(kernel maps are not supported on the webasm backend\) and onFallback is 'error'/.source,
      ).test((e as Error).message),
  );
  for (const e of [plain, mapped, strict]) e.dispose();
  assert.deepEqual(b.counters(), zero);
});

test('plans compiled without a backend object use the shared one, which shutdownBackends disposes', async () => {
  const base = compiledKernelCount();
  const exe = compile(smallGraph(6), { backend: 'cpu' });
  assert.equal(exe.device, backendFor('cpu'));
  exe.run({ x: f32(24), w: f32(18) });
  assert.ok(compiledKernelCount() > base && compiledKernelCount(exe.device) > 0);
  exe.dispose();
  assert.equal(compiledKernelCount(), base);
  const kept = compile(smallGraph(6), { backend: 'cpu' });
  await shutdownBackends();
  assert.ok(kept.device.disposed);
  assert.throws(
    () => kept.run({ x: f32(24), w: f32(18) }),
    /run: backend cpu was disposed \(shutdownBackends or Backend\.dispose\) after this plan was compiled/,
  );
  assert.notEqual(backendFor('cpu'), kept.device, 'a new shared backend after shutdown');
  await shutdownBackends();
});

test('each backend says whether it is available and why', () => {
  assert.deepEqual(probeBackend('cpu'), { available: true, reason: 'always available' });
  assert.deepEqual(probeBackend('webgl2'), {
    available: false,
    reason: 'webgl2 exists only in a browser (no document here); see npm run play for the playground',
  });
  const gl = probeBackend('headlessgl');
  assert.ok(gl.reason.length > 0);
  if (requiredInCI('headlessgl')) assert.ok(gl.available, gl.reason);
});

test("wasm: a plan's dispose() and shutdownBackends end its worker threads; the bench's fusediff classes end theirs", async (t) => {
  // every worker_threads Worker started from here on is counted until it exits (compiler/wasm/threads.ts looks the
  // constructor up on the module each time it starts a pool)
  const wt = process.getBuiltinModule('node:worker_threads') as { Worker: typeof import('node:worker_threads').Worker };
  const Native = wt.Worker;
  const live = new Set<object>();
  let started = 0;
  wt.Worker = class CountedWorker extends Native {
    constructor(...args: ConstructorParameters<typeof Native>) {
      super(...args);
      live.add(this);
      started++;
      this.once('exit', () => live.delete(this));
    }
  };
  /** live workers once the terminated ones have exited (their exit events come asynchronously) */
  const settled = async () => {
    for (let i = 0; i < 250 && live.size > 0; i++) await sleep(20);
    return live.size;
  };
  try {
    const matmul = (n: number) => trace(({ a, b }) => op.matmul(a, b), { a: [n, n], b: [n, n] });
    const backend = createBackend('wasm', { threads: 3 });
    const plans = [64, 80, 96, 112].map((n) => compile(matmul(n), { backend }));
    plans.forEach((p, i) => assert.ok(Number.isFinite(p.run({ a: f32((64 + 16 * i) ** 2), b: f32((64 + 16 * i) ** 2) }).out.data[0])));
    const whileLive = live.size;
    plans.forEach((p) => p.dispose());
    const afterDispose = await settled();
    const kept = compile(matmul(64), { backend: 'wasm' });
    const beforeShutdown = live.size;
    await shutdownBackends();
    assert.ok(kept.device.disposed);
    const afterShutdown = await settled();
    await backend.dispose();
    t.diagnostic(`compile(): ${whileLive} live, ${afterDispose} after dispose; shared: ${beforeShutdown}, ${afterShutdown} after shutdown`);
    assert.equal(whileLive, 8, 'four plans on 3 threads: two workers each');
    assert.equal(afterDispose, 0);
    assert.equal(beforeShutdown, availableParallelism() - 1, "the shared backend's plan: one worker per further core");
    assert.equal(afterShutdown, 0);

    // the bench's classes (bench/run.ts, npm run bench:page): a second setup ends the first plan, dispose the last
    const startedBefore = started;
    const m = new FusediffMatmul('wasm');
    for (const n of [64, 96]) {
      await m.setup(n);
      await m.run();
    }
    const mlp = new FusediffMlp('wasm');
    await mlp.setup();
    await mlp.step();
    await sleep(200); // the first matmul plan's worker exits
    const benchLive = live.size;
    const startedByBench = started - startedBefore;
    await m.dispose();
    await mlp.dispose();
    const benchAfter = await settled();
    await shutdownBackends();
    t.diagnostic(`bench classes: ${startedByBench} workers started, ${benchLive} live, ${benchAfter} after dispose`);
    assert.equal(benchLive, 2 * (availableParallelism() - 1), 'the last matmul plan and the MLP step hold workers, no more');
    assert.equal(benchAfter, 0, `the bench's classes left ${benchAfter} workers after dispose`);
  } finally {
    wt.Worker = Native;
  }
});
