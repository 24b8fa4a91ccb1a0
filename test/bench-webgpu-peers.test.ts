// The WebGPU bench's peer checks (bench/webgpu.ts): a matmul product is checked on sampled entries against float64
// before its speed counts (bench/peers/matmulCheck.ts), and TensorFlow.js's webgpu backend runs in Node on the webgpu
// package's adapter (bench/peers/tfjsWebgpu.ts) with the reference workload's results. In CI the adapter is
// SwiftShader (scripts/test.sh); a missing adapter fails under CI=true, as test/webgpu.test.ts does, and skips elsewhere.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { isAvailable, prepareWebGPU, probeBackend, shutdownBackends } from '../compiler/index.ts';
import { checkMatmul } from '../bench/peers/matmulCheck.ts';
import { releaseTfjsWebgpu, tfjsWebgpuMatmul, tfjsWebgpuMlp } from '../bench/peers/tfjsWebgpu.ts';
import { eightGaussians, initParams, probeNoise, referenceLoss } from '../workloads/reference.ts';

await prepareWebGPU();
after(async () => {
  releaseTfjsWebgpu();
  await shutdownBackends();
});
const gpuOptions = (): { skip?: string } =>
  isAvailable('webgpu') || process.env.CI === 'true' ? {} : { skip: `no WebGPU adapter here: ${probeBackend('webgpu').reason}` };

/** A, B with entries in [-0.5, 0.5) and their product in float64, rounded to f32 as a backend returns it. */
const operands = (n: number) => {
  const a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const b = Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  const c = new Float32Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i * n + k] * b[k * n + j];
      c[i * n + j] = s;
    }
  return { a, b, c };
};

test('checkMatmul passes a right product and fails a transposed operand, a wrong corner and a NaN', () => {
  const n = 48;
  const { a, b, c } = operands(n);
  const right = checkMatmul(n, { a, b, c });
  assert.ok(right.ok && right.worst < 1e-6, `a right product fails: ${JSON.stringify(right)}`);
  // A B^T: what a kernel that reads B with the wrong strides computes
  const bt = Float32Array.from({ length: n * n }, (_, i) => b[(i % n) * n + Math.floor(i / n)]);
  assert.equal(checkMatmul(n, { a, b, c: c.map((_, i) => dot(a, bt, n, i)) }).ok, false, 'A B^T passed');
  const corner = c.slice();
  corner[n * n - 1] += 0.01 * Math.abs(corner[n * n - 1]) + 0.01;
  assert.equal(checkMatmul(n, { a, b, c: corner }).ok, false, 'a wrong last entry passed');
  const nan = c.slice();
  nan[0] = NaN;
  assert.equal(checkMatmul(n, { a, b, c: nan }).ok, false, 'a NaN passed');
  assert.equal(checkMatmul(n, { a, b, c: c.subarray(1) }).ok, false, 'a short product passed');
});

const dot = (a: Float32Array, b: Float32Array, n: number, ij: number): number => {
  const i = Math.floor(ij / n),
    j = ij % n;
  let s = 0;
  for (let k = 0; k < n; k++) s += a[i * n + k] * b[k * n + j];
  return s;
};

test('TF.js webgpu in Node: a 96 matmul is right, resident on the device, and settles', gpuOptions(), async () => {
  const m = tfjsWebgpuMatmul();
  try {
    await m.setup(96);
    assert.match(m.backend, /^webgpu \(/, `the row names its backend and adapter: ${m.backend}`);
    await m.run(); // resolves once the queue has finished the product
    const check = checkMatmul(96, await m.readback!());
    assert.ok(check.ok, `TF.js webgpu's product: ${JSON.stringify(check)}`);
  } finally {
    await m.dispose();
  }
});

test("TF.js webgpu in Node: the reference step's probe loss is the float64 one, and a step lowers it", gpuOptions(), async () => {
  const s = tfjsWebgpuMlp();
  const probe = probeNoise();
  const ref = referenceLoss(initParams(), eightGaussians(), probe.eps, probe.t);
  try {
    await s.setup();
    const before = await s.evalLoss(probe.eps, probe.t);
    assert.ok(Math.abs(before - ref) / ref < 1e-4, `probe loss ${before}, float64 ${ref}`);
    await s.step(); // one step: on SwiftShader the first compiles every pipeline (seconds)
    assert.ok(Number.isFinite(await s.loss()), 'the step reports a finite loss');
    const after1 = await s.evalLoss(probe.eps, probe.t);
    assert.ok(after1 < before, `an Adam step lowers the probe loss: ${before} -> ${after1}`);
  } finally {
    await s.dispose();
  }
});
