// `auto` timed for plans other than the training step: a sampler's denoising step (models/samplerAuto.ts), the
// classifier's forward pass (eval/classifier.ts), any stateless plan (train/compilePlanAuto.ts); and the experiment
// report's Backend line naming what ran (experiments/backendLine.ts). As in test/auto-backend.test.ts, this machine
// has only SwiftShader (software, never timed), so the timed path runs on injected adapter facts and timings while
// the candidates are compiled and run for real on webgpu (SwiftShader) and wasm.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { backendFor, isAvailable, prepareWebGPU, probeBackend, shutdownBackends } from '../compiler/index.ts';
import { initNormal, seedFor } from '../dsl/params.ts';
import * as nn from '../dsl/nn.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { memoryChoiceCache, planKey, type AdapterFacts, type ChoiceCache, type TimedBackend } from '../train/autoChoice.ts';
import { compilePlanAuto } from '../train/compilePlanAuto.ts';
import { createDenoiser } from '../models/index.ts';
import { createSampler, denoiserPredict, samplerStepGraph, type SamplerOptions } from '../models/samplers.ts';
import { createSamplerAuto } from '../models/samplerAuto.ts';
import { linearSchedule } from '../models/schedule.ts';
import { CLASSIFIER_CONFIG, ClassifierRunner, createClassifier } from '../eval/classifier.ts';
import { backendLine, backendSummary, phasesOf } from '../experiments/backendLine.ts';
import { runExperiment } from '../experiments/run.ts';
import { reportMarkdown } from '../experiments/report.ts';
import { decodeSpec } from '../experiments/spec.ts';

await prepareWebGPU();
after(shutdownBackends);

const skip = isAvailable('webgpu') ? false : `no WebGPU adapter here: ${probeBackend('webgpu').reason}`;
const hardware: AdapterFacts = { description: 'Test GPU A (SwiftShader treated as hardware)', software: false };
const software: AdapterFacts = { description: 'Google SwiftShader (injected)', software: true };

/** A timer of fixed ms per backend that records which candidates it timed. */
const timer = (ms: Record<TimedBackend, number>, timed: string[]) => async (b: TimedBackend) => (timed.push(b), ms[b]);

/** A cache that fails the test if it is asked at all (a software adapter must not look). */
const untouchable: ChoiceCache = {
  get: () => assert.fail('a software adapter does not look in the cache'),
  set: () => assert.fail('a software adapter does not write the cache'),
};

const mlpGraph = (hidden: number) => {
  const p = { w1: initNormal([4, hidden], 0.5, 1), w2: initNormal([hidden, 3], 0.5, 2) };
  return trace(
    ({ x }) => ({
      y: op.matmul(op.tanh(op.matmul(x as Tensor, op.constant(p.w1.data, [4, hidden]))), op.constant(p.w2.data, [hidden, 3])),
    }),
    { x: [8, 4] },
  );
};

test('auto-plans: a plan under auto on a hardware adapter is timed on both, the faster kept and the other freed', { skip }, async () => {
  const gpu = backendFor('webgpu'),
    cpu = backendFor('wasm');
  for (const [ms, winner, loser] of [
    [{ webgpu: 0.5, wasm: 4 }, 'webgpu', cpu],
    [{ webgpu: 6, wasm: 1.5 }, 'wasm', gpu],
  ] as const) {
    const before = loser.counters();
    const timed: string[] = [];
    const lines: string[] = [];
    const exe = await compilePlanAuto(mlpGraph(16), 'auto', {
      adapter: hardware,
      cache: memoryChoiceCache(),
      time: timer(ms, timed),
      log: (l) => lines.push(l),
    });
    assert.deepEqual(timed.sort(), ['wasm', 'webgpu']);
    assert.equal(exe.backend, winner);
    assert.match(exe.backendReason, new RegExp(`^auto: ${winner} \\(.*ms/step against ${winner === 'webgpu' ? 'wasm' : 'webgpu'} `));
    assert.deepEqual(lines, [exe.backendReason], 'the reason is told once');
    assert.equal(loser.counters().kernels, before.kernels, `the ${loser.name} candidate freed its kernels`);
    const y = await exe.runAsync({ x: initNormal([8, 4], 1, 3).data });
    assert.ok(y.y.data.every(Number.isFinite));
    exe.dispose();
  }
});

test('auto-plans: un-injected timings time real runs of the plan and keep a working one', { skip }, async () => {
  const exe = await compilePlanAuto(mlpGraph(16), 'auto', { adapter: hardware, cache: memoryChoiceCache(), runs: 2 });
  assert.match(exe.backendReason, /^auto: (webgpu|wasm) \(.*[\d.]+ ms\/step against (wasm|webgpu) [\d.]+ ms/);
  exe.dispose();
});

test('auto-plans: the choice is cached per plan graph and adapter, in the cache the training step uses', { skip }, async () => {
  const cache = memoryChoiceCache();
  const first: string[] = [];
  (await compilePlanAuto(mlpGraph(16), 'auto', { adapter: hardware, cache, time: timer({ webgpu: 1, wasm: 3 }, first) })).dispose();
  assert.equal(first.length, 2);
  assert.equal(cache.get(planKey(mlpGraph(16)), hardware.description)?.backend, 'webgpu');
  const again: string[] = [];
  const cached = await compilePlanAuto(mlpGraph(16), 'auto', { adapter: hardware, cache, time: timer({ webgpu: 9, wasm: 1 }, again) });
  assert.deepEqual(again, [], 'the same plan on the same adapter is not timed again');
  assert.equal(cached.backend, 'webgpu');
  assert.match(cached.backendReason, /; timed .*, cached\)/);
  cached.dispose();
  const other: string[] = [];
  (await compilePlanAuto(mlpGraph(12), 'auto', { adapter: hardware, cache, time: timer({ webgpu: 1, wasm: 3 }, other) })).dispose();
  assert.equal(other.length, 2, 'another plan is timed');
});

test('auto-plans: a software adapter is never timed: the untimed choice, with the reason', async () => {
  const timed: string[] = [];
  const exe = await compilePlanAuto(mlpGraph(16), 'auto', {
    adapter: software,
    cache: untouchable,
    time: timer({ webgpu: 0, wasm: 9 }, timed),
  });
  assert.deepEqual(timed, []);
  assert.notEqual(exe.backend, 'webgpu');
  assert.match(exe.backendReason, /Google SwiftShader \(injected\), a CPU implementation/);
  exe.dispose();
  const named = await compilePlanAuto(mlpGraph(16), 'wasm', {
    adapter: hardware,
    cache: untouchable,
    time: timer({ webgpu: 0, wasm: 9 }, timed),
  });
  assert.deepEqual([timed, named.backend], [[], 'wasm'], 'a named backend is compiled as asked');
  assert.match(named.backendReason, /^requested/);
  named.dispose();
});

// ---- the sampler ----------------------------------------------------------------------------------------------

const model = createDenoiser({ kind: 'mlp', hidden: 16, depth: 2 });
const samplerOptions = (seed = 5): SamplerOptions => ({
  predict: denoiserPredict(model),
  shape: [16, 2],
  schedule: linearSchedule(100),
  prediction: 'eps',
  sampler: 'ddim',
  steps: 4,
  seed,
  params: model.init(3),
});

test(
  'auto-plans: a sampler under auto times its denoising step, keeps the faster, and samples as that backend does',
  { skip },
  async () => {
    const gpu = backendFor('webgpu');
    for (const [ms, winner] of [
      [{ webgpu: 1, wasm: 5 }, 'webgpu'],
      [{ webgpu: 5, wasm: 1 }, 'wasm'],
    ] as const) {
      const before = gpu.counters();
      const timed: string[] = [];
      const sampler = await createSamplerAuto(samplerOptions(), { adapter: hardware, cache: memoryChoiceCache(), time: timer(ms, timed) });
      assert.deepEqual(timed.sort(), ['wasm', 'webgpu']);
      const got = await sampler.sampleAsync();
      assert.equal(got.backend, winner);
      assert.match(got.backendReason, new RegExp(`^auto: ${winner} \\(.*ms/step against`));
      if (winner === 'wasm') assert.equal(gpu.counters().kernels, before.kernels, 'the webgpu step was freed, and the noise runs on wasm');
      const plain = createSampler({ ...samplerOptions(), backend: winner });
      assert.deepEqual(Array.from(got.data), Array.from((await plain.sampleAsync()).data), 'the same samples as a sampler named for it');
      plain.dispose();
      sampler.dispose();
      assert.equal(gpu.counters().kernels, before.kernels, 'dispose frees the timed step');
    }
  },
);

test('auto-plans: a sampler reuses the cached choice (keyed by its step graph); a software adapter is not timed', { skip }, async () => {
  const cache = memoryChoiceCache();
  const first: string[] = [];
  (await createSamplerAuto(samplerOptions(), { adapter: hardware, cache, time: timer({ webgpu: 2, wasm: 1 }, first) })).dispose();
  assert.equal(first.length, 2);
  assert.ok(cache.get(planKey(samplerStepGraph(samplerOptions(), false)), hardware.description), 'cached under the step graph');
  const again: string[] = [];
  const cached = await createSamplerAuto(samplerOptions(), { adapter: hardware, cache, time: timer({ webgpu: 1, wasm: 9 }, again) });
  assert.deepEqual(again, []);
  const r = await cached.sampleAsync();
  assert.equal(r.backend, 'wasm');
  assert.match(r.backendReason, /^auto: wasm \(.*cached\)/);
  cached.dispose();
  const soft: string[] = [];
  const untimed = await createSamplerAuto(samplerOptions(), {
    adapter: software,
    cache: untouchable,
    time: timer({ webgpu: 0, wasm: 9 }, soft),
  });
  const u = await untimed.sampleAsync();
  assert.deepEqual(soft, []);
  assert.notEqual(u.backend, 'webgpu');
  assert.match(u.backendReason, /a CPU implementation/);
  untimed.dispose();
});

// ---- the classifier (evaluation) ------------------------------------------------------------------------------

test("auto-plans: the evaluation classifier's forward pass under auto is timed, and the loser freed", { skip }, async () => {
  // a narrow classifier: the full one (16/32 channels) does not finish compiling on webgpu here (SwiftShader), at HEAD too
  const narrow = createClassifier({ ...CLASSIFIER_CONFIG, c1: 4, c2: 4, hidden: 8 });
  const params = narrow.init(seedFor(1, 'classifier'));
  const gpu = backendFor('webgpu');
  const before = gpu.counters();
  const timed: string[] = [];
  const runner = await ClassifierRunner.create(
    params,
    20,
    'auto',
    { adapter: hardware, cache: memoryChoiceCache(), time: timer({ webgpu: 8, wasm: 2 }, timed) },
    narrow,
  );
  assert.deepEqual(timed.sort(), ['wasm', 'webgpu']);
  assert.equal(runner.exe.backend, 'wasm');
  assert.match(runner.exe.backendReason, /^auto: wasm \(2\.00 ms\/step against webgpu 8\.00 ms on Test GPU A/);
  assert.equal(gpu.counters().kernels, before.kernels, 'the webgpu candidate was freed');
  const out = await runner.run({ shape: [3, 1, 16, 16], data: initNormal([3 * 256], 1, 4).data });
  assert.deepEqual(out.logits.shape, [3, 10]);
  runner.exe.dispose();
  const gpuRunner = await ClassifierRunner.create(
    params,
    20,
    'auto',
    { adapter: hardware, cache: memoryChoiceCache(), time: timer({ webgpu: 1, wasm: 2 }, []) },
    narrow,
  );
  assert.equal(gpuRunner.exe.backend, 'webgpu');
  const onGpu = await gpuRunner.run({ shape: [3, 1, 16, 16], data: initNormal([3 * 256], 1, 4).data });
  assert.ok(onGpu.logits.data.every(Number.isFinite), 'a webgpu winner reads its results back (asynchronously)');
  gpuRunner.exe.dispose();
  const soft: string[] = [];
  const untimed = await ClassifierRunner.create(
    params,
    20,
    'auto',
    { adapter: software, cache: untouchable, time: timer({ webgpu: 0, wasm: 1 }, soft) },
    narrow,
  );
  assert.deepEqual(soft, []);
  assert.notEqual(untimed.exe.backend, 'webgpu');
  untimed.exe.dispose();
});

// ---- the report's Backend line --------------------------------------------------------------------------------

test('auto-plans: the Backend line names each phase on the backend that ran it, with its reason', () => {
  const trained = { backend: 'webgpu', backendReason: 'auto: webgpu (Test GPU A, 1.00 ms/step against wasm 5.00 ms)' };
  const rows = [
    {
      backend: 'wasm',
      backendReason: 'auto: wasm (2.00 ms/step against webgpu 3.00 ms on Test GPU A)',
      evalBackend: 'wasm',
      evalBackendReason: 'requested',
    },
    { backend: 'wasm', backendReason: 'auto: wasm (2.00 ms/step against webgpu 3.00 ms on Test GPU A)' },
  ];
  const phases = phasesOf([{ models: [trained, {}], rows }]);
  assert.deepEqual(
    phases.map((p) => [p.phase, p.backend]),
    [
      ['training', 'webgpu'],
      ['sampling', 'wasm'],
      ['evaluation', 'wasm'],
    ],
    'one entry per distinct phase, backend and reason; a model without a reason (an older job file) is left out',
  );
  const summary = backendSummary(phases, { name: 'wasm', reason: 'auto: wasm (untimed)' });
  assert.equal(summary.backend, 'webgpu, wasm');
  const line = backendLine({ ...summary, phases });
  assert.equal(
    line,
    'Backend: training on **webgpu** (auto: webgpu (Test GPU A, 1.00 ms/step against wasm 5.00 ms)); ' +
      'sampling on **wasm** (auto: wasm (2.00 ms/step against webgpu 3.00 ms on Test GPU A)); evaluation on **wasm** (requested).',
  );
  assert.ok(!line.includes('untimed'), 'the untimed choice is not what the line says');
  assert.equal(backendSummary([], { name: 'wasm', reason: 'auto: wasm (x)' }).backendReason, 'auto: wasm (x); no plan ran here');
});

test("auto-plans: an experiment under auto reports the timed winner that ran, not auto's untimed choice", { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-auto-exp-'));
  try {
    const spec = decodeSpec(
      {
        name: 'tiny-auto',
        backend: 'auto',
        datasets: [
          {
            dataset: 'eightGaussians',
            stage1Checkpoint: null,
            stage1Set: { 'model.hidden': 16, 'model.depth': 2, 'train.steps': 4, 'train.batchSize': 32 },
            finetunes: [],
            sampleSet: { 'sample.count': 32, 'sample.steps': 3 },
            rows: [{ name: 'MSE', model: 'stage1', cfg: 1 }],
          },
        ],
      },
      'tiny auto spec',
    );
    const timed: string[] = [];
    const auto = { adapter: hardware, cache: memoryChoiceCache(), time: timer({ webgpu: 1, wasm: 5 }, timed) };
    const r = (await runExperiment(spec, dir, { quiet: true, trainStage1: true, auto })).report!;
    assert.ok(r.complete, r.missing.join(', '));
    assert.deepEqual(timed.sort(), ['wasm', 'wasm', 'webgpu', 'webgpu'], 'the training step and the sampler step were each timed');
    const d = r.datasets[0];
    assert.equal(d.models[0].backend, 'webgpu');
    assert.equal(d.rows[0].backend, 'webgpu');
    assert.equal(r.backend, 'webgpu', 'the untimed choice here is wasm: the report names what ran');
    const line = reportMarkdown(r)
      .split('\n')
      .find((l) => l.startsWith('Backend:'))!;
    assert.match(line, /^Backend: training on \*\*webgpu\*\* \(auto: webgpu \(Test GPU A .*1\.00 ms\/step against wasm 5\.00 ms\)/);
    assert.ok(line.includes(`(${d.models[0].backendReason})`), 'the reason the training log printed');
    assert.match(line, /; sampling on \*\*webgpu\*\* \(auto: webgpu \(Test GPU A .*against wasm 5\.00 ms\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
