// The wasm backend splits each large kernel's rows over worker threads; every output element is computed by one
// thread with the same code, so a training step must give the same bits for any thread count.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBackend } from '../compiler/index.ts';
import { compileReferenceStep } from '../workloads/referenceStep.ts';
import { eightGaussians } from '../workloads/reference.ts';

test('a training step on wasm gives the same bits with 1, 2 and 3 threads', async () => {
  const x0 = eightGaussians();
  const runs = [];
  for (const threads of [1, 2, 3]) {
    const backend = createBackend('wasm', { threads });
    const step = compileReferenceStep(backend);
    assert.match(step.executable.backendReason, new RegExp(`${threads} thread`));
    const losses = [];
    for (let i = 0; i < 3; i++) losses.push(step.run({ x0 }));
    const params = step.params() as unknown as {
      hidden: Record<string, { w: { data: Float64Array } }>;
      out: { w: { data: Float64Array } };
    };
    runs.push({ threads, losses, w: [...params.hidden.hidden1.w.data], out: [...params.out.w.data] });
    step.dispose();
    await backend.dispose();
  }
  for (const r of runs.slice(1)) {
    assert.deepEqual(r.losses, runs[0].losses, `losses with ${r.threads} threads`);
    assert.deepEqual(r.w, runs[0].w, `hidden1.w with ${r.threads} threads`);
    assert.deepEqual(r.out, runs[0].out, `out.w with ${r.threads} threads`);
  }
});
