// `auto` chosen by timing a training step (train/autoChoice.ts, train/compileStepAuto.ts, runs/autoBackendCache.ts).
// This machine has only SwiftShader, a software adapter that auto never times, so the timed path is driven by
// injected adapter facts ("treat this adapter as hardware") and, where the winner must be fixed, injected timings;
// the candidates are still compiled for real on webgpu (SwiftShader) and wasm. Under CI=true a missing adapter fails.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { backendFor, isAvailable, prepareWebGPU, probeBackend, shutdownBackends } from '../compiler/index.ts';
import { gpuContext } from '../compiler/webgpu/gpu.ts';
import { mse } from '../dsl/composites.ts';
import * as nn from '../dsl/nn.ts';
import { adam } from '../dsl/optim.ts';
import { initNormal, seedFor, type ParamTensors } from '../dsl/params.ts';
import * as op from '../dsl/ops.ts';
import type { Tensor } from '../dsl/tensor.ts';
import { memoryChoiceCache, planKey, type AdapterFacts, type ChoiceCache } from '../train/autoChoice.ts';
import { compileStep, timeSteps, traceStep } from '../train/compileStep.ts';
import { compileStepAuto, type AutoOptions } from '../train/compileStepAuto.ts';
import { fileChoiceCache } from '../runs/autoBackendCache.ts';

await prepareWebGPU();
after(shutdownBackends);

const skip = isAvailable('webgpu') ? false : `no WebGPU adapter here: ${probeBackend('webgpu').reason}`;

test('auto-backend: CI has a WebGPU adapter, and it is SwiftShader (software)', () => {
  if (process.env.CI !== 'true') return;
  assert.ok(gpuContext(), `CI must have the webgpu backend: ${probeBackend('webgpu').reason}`);
  assert.ok(gpuContext()!.software, gpuContext()!.description);
});

type MLP = { l1: nn.LinearParams; l2: nn.LinearParams };
const mlp = (hidden: number): MLP => ({
  l1: { w: initNormal([2, hidden], 0.5, seedFor(1, 'w1')), b: initNormal([hidden], 0.1, seedFor(1, 'b1')) },
  l2: { w: initNormal([hidden, 2], 0.5, seedFor(1, 'w2')), b: initNormal([2], 0.1, seedFor(1, 'b2')) },
});
const loss = ({ params: p, x, y }: { params: ParamTensors<MLP>; x: Tensor; y: Tensor }) =>
  mse(nn.linear.apply(p.l2, op.tanh(nn.linear.apply(p.l1, x))), y);
const data = { x: [8, 2], y: [8, 2] } as const;
const batch = { x: initNormal([8, 2], 1, 7).data, y: initNormal([8, 2], 1, 8).data };
const options = (hidden: number) => ({ params: mlp(hidden), optimizer: adam({ lr: 1e-2 }), data });

const hardware: AdapterFacts = { description: 'Test GPU A (SwiftShader treated as hardware)', software: false };

/** compileStepAuto with the adapter and timings injected; `timed` records which candidates were timed. */
const auto = (hidden: number, a: AutoOptions & { ms?: { webgpu: number; wasm: number } }, timed: string[] = []) =>
  compileStepAuto(loss, {
    ...options(hidden),
    auto: { ...a, time: async (b) => (timed.push(b), a.ms ? a.ms[b] : 1) },
  });

test('auto-backend: the faster candidate is kept, either way round, and the reason gives both timings', { skip }, async () => {
  for (const [ms, winner] of [
    [{ webgpu: 0.8, wasm: 5.1 }, 'webgpu'],
    [{ webgpu: 7, wasm: 2.5 }, 'wasm'],
  ] as const) {
    const timed: string[] = [];
    const step = await auto(16, { adapter: hardware, cache: memoryChoiceCache(), ms }, timed);
    assert.deepEqual(timed.sort(), ['wasm', 'webgpu']);
    assert.equal(step.executable.backend, winner);
    assert.match(
      step.executable.backendReason,
      winner === 'webgpu'
        ? /^auto: webgpu \(Test GPU A \(SwiftShader treated as hardware\), 0\.80 ms\/step against wasm 5\.10 ms\) \(WGSL on /
        : /^auto: wasm \(2\.50 ms\/step against webgpu 7\.00 ms on Test GPU A .*\) \(\d+ threads?, /,
    );
    assert.ok(Number.isFinite(await step.runAsync(batch)));
    step.dispose();
  }
});

test('auto-backend: the choice is cached per model and per adapter: a second compile times nothing', { skip }, async () => {
  const cache = memoryChoiceCache();
  const ms = { webgpu: 1, wasm: 3 };
  const first: string[] = [];
  (await auto(16, { adapter: hardware, cache, ms }, first)).dispose();
  assert.equal(first.length, 2);
  const again: string[] = [];
  const cached = await auto(16, { adapter: hardware, cache, ms: { webgpu: 9, wasm: 1 } }, again);
  assert.deepEqual(again, [], 'the second compile of the same model on the same adapter is not timed');
  assert.equal(cached.executable.backend, 'webgpu', 'the cached winner, not the new (ignored) timings');
  assert.match(cached.executable.backendReason, /^auto: webgpu \(Test GPU A .*1\.00 ms\/step against wasm 3\.00 ms; timed .*, cached\)/);
  cached.dispose();
  const otherModel: string[] = [];
  (await auto(12, { adapter: hardware, cache, ms }, otherModel)).dispose();
  assert.equal(otherModel.length, 2, 'another model (hidden 12) is timed');
  const otherAdapter: string[] = [];
  (await auto(16, { adapter: { description: 'Test GPU B', software: false }, cache, ms }, otherAdapter)).dispose();
  assert.equal(otherAdapter.length, 2, 'another adapter is timed');
});

test('auto-backend: a candidate that fails loses, says why, and is freed; nothing is cached', { skip }, async () => {
  const gpu = backendFor('webgpu').counters();
  for (const broken of ['webgpu', 'wasm'] as const) {
    const cache = memoryChoiceCache();
    const step = await compileStepAuto(loss, {
      ...options(16),
      auto: {
        adapter: hardware,
        cache,
        time: async (b) => {
          if (b === broken) throw new Error(`${b} broke\nsecond line`);
          return 1;
        },
      },
    });
    const other = broken === 'webgpu' ? 'wasm' : 'webgpu';
    assert.equal(step.executable.backend, other);
    assert.match(step.executable.backendReason, new RegExp(`^auto: ${other} \\(.*${broken} (on .* )?failed: ${broken} broke\\)`));
    assert.equal(cache.get(planKey(traceStep(loss, options(16)).graph), hardware.description), undefined);
    assert.ok(Number.isFinite(await step.runAsync(batch)));
    step.dispose();
  }
  assert.equal(backendFor('webgpu').counters().kernels, gpu.kernels);
});

test('auto-backend: a software adapter is never timed nor chosen', async () => {
  const timed: string[] = [];
  const cache: ChoiceCache = {
    get: () => assert.fail('a software adapter does not look in the cache'),
    set: () => assert.fail('a software adapter does not write the cache'),
  };
  const adapter = { description: 'Google SwiftShader (injected)', software: true };
  const step = await auto(16, { adapter, cache, ms: { webgpu: 0.001, wasm: 100 } }, timed);
  assert.deepEqual(timed, []);
  assert.notEqual(step.executable.backend, 'webgpu');
  assert.match(step.executable.backendReason, /^auto: \w+ \(.*Google SwiftShader \(injected\), a CPU implementation/);
  step.dispose();
});

test('auto-backend: un-injected on this machine (SwiftShader under CI): wasm, with the software reason, untimed', async () => {
  const timed: string[] = [];
  const lines: string[] = [];
  const step = await compileStepAuto(loss, {
    ...options(16),
    auto: { time: async (b) => (timed.push(b), 1), log: (l) => lines.push(l) },
  });
  assert.deepEqual(timed, []);
  assert.equal(step.executable.backend, 'wasm');
  assert.deepEqual(lines, [step.executable.backendReason]);
  if (process.env.CI === 'true' || gpuContext()?.software)
    assert.match(step.executable.backendReason, /^auto: wasm \(webgpu's adapter is .*swiftshader.*, a CPU implementation/i);
  step.dispose();
});

test('auto-backend: the losing plan is disposed (webgpu buffers and kernels, wasm kernels back to where they were)', { skip }, async () => {
  const gpu = backendFor('webgpu'),
    cpu = backendFor('wasm');
  const before = { gpu: gpu.counters(), cpu: cpu.counters() };
  const wasmWins = await auto(16, { adapter: hardware, cache: memoryChoiceCache(), ms: { webgpu: 5, wasm: 1 } });
  assert.equal(wasmWins.executable.backend, 'wasm');
  assert.equal(gpu.counters().buffers, before.gpu.buffers, 'the webgpu plan freed its buffers');
  assert.equal(gpu.counters().kernels, before.gpu.kernels, 'and its kernels');
  assert.ok(cpu.counters().kernels > before.cpu.kernels, 'the kept wasm plan holds its kernels');
  wasmWins.dispose();
  assert.equal(cpu.counters().kernels, before.cpu.kernels);
  const gpuWins = await auto(16, { adapter: hardware, cache: memoryChoiceCache(), ms: { webgpu: 1, wasm: 5 } });
  assert.equal(gpuWins.executable.backend, 'webgpu');
  assert.equal(cpu.counters().kernels, before.cpu.kernels, 'the wasm plan released its kernels');
  assert.ok(gpu.counters().buffers > before.gpu.buffers, 'the kept webgpu plan holds its buffers');
  gpuWins.dispose();
  assert.equal(gpu.counters().kernels, before.gpu.kernels);
});

test('auto-backend: timing leaves a step as compiled: its losses are those of an untimed step', { skip }, async () => {
  for (const backend of ['wasm', 'webgpu'] as const) {
    const timed = compileStep(loss, { ...options(16), backend });
    const ms = await timeSteps(timed, batch, 3);
    assert.ok(ms > 0 && Number.isFinite(ms), `${backend}: ${ms} ms`);
    const plain = compileStep(loss, { ...options(16), backend });
    for (let k = 0; k < 3; k++) assert.equal(await timed.runAsync(batch), await plain.runAsync(batch), `${backend} step ${k + 1}`);
    assert.equal(timed.step, plain.step);
    await assert.rejects(timeSteps(timed, batch), /only a wasm or webgpu step that has not run yet/);
    timed.dispose();
    plain.dispose();
  }
});

test('auto-backend: un-injected timings on SwiftShader treated as hardware pick one and keep a working step', { skip }, async () => {
  const step = await compileStepAuto(loss, { ...options(16), auto: { adapter: hardware, cache: memoryChoiceCache(), runs: 2 } });
  assert.match(step.executable.backendReason, /^auto: (webgpu|wasm) \(.*[\d.]+ ms\/step against (wasm|webgpu) [\d.]+ ms/);
  const plain = compileStep(loss, { ...options(16), backend: step.executable.backend });
  assert.equal(await step.runAsync(batch), await plain.runAsync(batch));
  step.dispose();
  plain.dispose();
});

test('auto-backend: the plan key follows the step graph: same model the same key, another shape another', () => {
  const key = (hidden: number) => planKey(traceStep(loss, options(hidden)).graph);
  assert.equal(key(16), key(16));
  assert.notEqual(key(16), key(12));
  assert.match(key(16), /^[0-9a-f]{16}$/);
});

test('auto-backend: the file cache survives a corrupt file (a warning, timed again) and is read back', { skip }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-auto-'));
  try {
    const file = path.join(dir, 'sub', 'auto-backend.json');
    fs.mkdirSync(path.dirname(file));
    for (const junk of ['{ not json', JSON.stringify({ version: 1, choices: { k: { backend: 'webgl2' } } })]) {
      fs.writeFileSync(file, junk);
      const warnings: string[] = [];
      const timed: string[] = [];
      const ms = { webgpu: 1, wasm: 2 };
      (await auto(16, { adapter: hardware, cache: fileChoiceCache(file, (w) => warnings.push(w)), ms }, timed)).dispose();
      assert.equal(timed.length, 2, 'timed, as if there were no cache');
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0], /is not a valid auto-backend cache .*it is ignored and rewritten/);
      // rewritten whole: a fresh cache (another process) reads the choice back without timing
      const again: string[] = [];
      const quiet: string[] = [];
      const step = await auto(16, { adapter: hardware, cache: fileChoiceCache(file, (w) => quiet.push(w)), ms }, again);
      assert.deepEqual([again, quiet], [[], []]);
      assert.equal(step.executable.backend, 'webgpu');
      step.dispose();
      assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).version, 1);
      assert.deepEqual(fs.readdirSync(path.dirname(file)), ['auto-backend.json'], 'no temporary file is left');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("auto-backend: the playground's session under auto takes the timed winner and shows its reason", { skip }, async () => {
  const { Session } = await import('../web/session.ts');
  const { defaultRun } = await import('../web/runConfig.ts');
  const run = { ...defaultRun(), model: { ...defaultRun().model, hidden: 16 }, train: { ...defaultRun().train, batchSize: 32 } };
  for (const [ms, winner] of [
    [{ webgpu: 1, wasm: 4 }, 'webgpu'],
    [{ webgpu: 4, wasm: 1 }, 'wasm'],
  ] as const) {
    const timed: string[] = [];
    const session = new Session(run, 'auto', {
      adapter: hardware,
      cache: memoryChoiceCache(),
      time: async (b) => (timed.push(b), ms[b]),
    });
    assert.equal(session.backend.name, 'wasm', 'before the first step: the untimed choice');
    const n = await session.trainWhile(() => session.step < 3);
    // on webgpu one step is in flight when more() is asked, so one more may run
    assert.ok(n >= 3 && session.step === n, `${n} steps, session at ${session.step}`);
    assert.deepEqual(timed.sort(), ['wasm', 'webgpu']);
    assert.equal(session.backend.name, winner);
    assert.equal(session.runningBackend, winner);
    assert.match(session.backend.reason ?? '', new RegExp(`^auto: ${winner} \\(.*ms/step against`));
    assert.ok(session.losses.every((l) => Number.isFinite(l.loss)));
    session.dispose();
  }
});

test("auto-backend: fusediff train says auto's choice and why on stderr and in --json (here: SwiftShader, never taken)", () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-auto-cli-'));
  try {
    const r = spawnSync(
      process.execPath,
      [
        path.join(root, 'bin', 'fusediff.js'),
        'train',
        '--dataset',
        'eightGaussians',
        '--steps',
        '3',
        '--out',
        path.join(dir, 'run'),
        '--json',
      ],
      { encoding: 'utf8', cwd: root, env: { ...process.env, FUSEDIFF_CACHE_DIR: path.join(dir, 'cache') } },
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { backend: string; backendReason: string };
    assert.equal(j.backend, 'wasm');
    assert.match(j.backendReason, /^auto: wasm \(/);
    assert.ok(r.stderr.includes(`backend: ${j.backendReason}\n`), r.stderr);
    if (process.env.CI === 'true') assert.match(j.backendReason, /webgpu's adapter is .*swiftshader.*, a CPU implementation/i);
    assert.ok(!fs.existsSync(path.join(dir, 'cache')), 'nothing was timed, so nothing was cached');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
