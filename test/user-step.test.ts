// Your own step, inspected and benchmarked (docs/your-step.md): step modules written as a user would, in a folder
// outside the repository whose node_modules/fusediff links to this checkout, type-check, and the library's
// stepPlan / profileStep / benchStep / inspectStep and their printers report sensible numbers for them; then
// `fusediff inspect <module>` and `fusediff bench <module>` load them and print the tables.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  benchStep,
  buildStep,
  compile,
  formatStepBench,
  formatStepPlan,
  formatStepProfile,
  inspectStep,
  matmul,
  profileStep,
  stepPlan,
  stepSourceOf,
  tanh,
  trace,
  type StepFactory,
} from '../index.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(repo, 'bin', 'fusediff.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-step-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const BATCH = 32;
// a factory: the CLI's --backend and --profile reach compileStep through ctx
const factoryModule = `// A user's step module: a small MLP autoencoder's training step, the package imported by name.
import { adam, compileStep, defineStep, initNormal, mse, nn, seedFor, silu } from 'fusediff';
import type { LinearParams, ParamTensors, Tensor } from 'fusediff';

type MLP = { l1: LinearParams; l2: LinearParams };
const params: MLP = { l1: nn.linear.init(seedFor(0, 'l1'), 4, 32), l2: nn.linear.init(seedFor(0, 'l2'), 32, 4) };
const loss = ({ params: p, x }: { params: ParamTensors<MLP>; x: Tensor<[${BATCH}, 4]> }) =>
  mse(nn.linear.apply(p.l2, silu(nn.linear.apply(p.l1, x))), x);

export default defineStep(async (ctx) => ({
  step: compileStep(loss, { params, optimizer: adam({ lr: 1e-3 }), data: { x: [${BATCH}, 4] }, ...ctx }),
  inputs: { x: initNormal([${BATCH}, 4], 1, 7) },
  batchSize: ${BATCH},
  describe: 'a 4-32-4 autoencoder step with Adam',
}));
`;
// named exports: a compiled executable and its inputs, the module itself the spec
const namedModule = `import { compile, initNormal, matmul, tanh, trace } from 'fusediff';
export const step = compile(trace(({ a, b }) => tanh(matmul(a, b)), { a: [16, 8], b: [8, 16] }), { backend: 'wasm', profile: true });
export const inputs = { a: initNormal([16, 8], 1, 1), b: initNormal([8, 16], 1, 2) };
`;

before(() => {
  fs.mkdirSync(path.join(dir, 'node_modules'));
  // 'fusediff' is this checkout's sources (the package itself points at dist/, which test/package.test.ts builds):
  // a module the CLI loads must share the CLI's library modules, not bring a second copy
  const linked = path.join(dir, 'node_modules', 'fusediff');
  fs.mkdirSync(linked);
  fs.writeFileSync(path.join(linked, 'package.json'), JSON.stringify({ name: 'fusediff', type: 'module', exports: './index.ts' }));
  fs.writeFileSync(path.join(linked, 'index.ts'), `export * from ${JSON.stringify(path.join(repo, 'index.ts'))};\n`);
  fs.symlinkSync(path.join(repo, 'node_modules', '@types'), path.join(dir, 'node_modules', '@types'), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  fs.writeFileSync(path.join(dir, 'my-step.ts'), factoryModule);
  fs.writeFileSync(path.join(dir, 'named.mjs'), namedModule);
});

const importFactory = async (): Promise<StepFactory> => {
  const source = stepSourceOf(await import(pathToFileURL(path.join(dir, 'my-step.ts')).href), 'my-step.ts');
  assert.equal(typeof source, 'function');
  return source as StepFactory;
};

test('a step module written against the package type-checks (defineStep, the context spread into compileStep)', () => {
  const tsconfig = {
    compilerOptions: {
      ...{ target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true },
      ...{ allowImportingTsExtensions: true, skipLibCheck: true, types: ['node'], lib: ['ES2022', 'DOM'] },
    },
    files: ['my-step.ts'],
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `tsc:\n${r.stdout}${r.stderr}`);
});

test('stepPlan, profileStep and benchStep of a user module: kernels with sources, memory, shares summing to 100%, timings', async () => {
  const spec = await buildStep(await importFactory(), { backend: 'wasm', profile: true });
  assert.equal(spec.batchSize, BATCH);

  const plan = stepPlan(spec.step);
  assert.equal(plan.backend, 'wasm');
  assert.ok(plan.kernels > 0 && plan.kernelList.length === plan.kernels, JSON.stringify(plan.kernels));
  assert.ok(plan.primitives >= plan.kernels);
  assert.ok(plan.bytes > 0 && plan.buffers > 0 && plan.bytes <= plan.naiveBytes, JSON.stringify(plan));
  for (const k of plan.kernelList) {
    assert.match(k.name, /^k\d+_\w+$/);
    assert.ok(k.source.trim().length > 0, `${k.name} has a source`);
    assert.ok(k.fused.length > 0 && k.inputs.length > 0, k.name);
  }
  assert.ok(
    plan.kernelList.some((k) => k.inputs.includes('x')),
    'a kernel reads the data input by name',
  );
  const planText = formatStepPlan(plan, { source: true });
  assert.match(planText, new RegExp(`^${plan.kernels} kernels for ${plan.primitives} primitives$`, 'm'));
  assert.match(planText, /^memory plan: \d+ buffers, [\d.]+ MB with reuse/m);
  assert.match(planText, /^ {2}\| /m, 'the sources are listed');

  const profile = await profileStep(spec, { steps: 4, warmup: 2 });
  assert.deepEqual([profile.steps, profile.warmup, profile.kernels.length], [4, 2, plan.kernels]);
  assert.ok(profile.kernelMs > 0 && profile.stepMs > 0);
  const shares = profile.kernels.reduce((a, k) => a + k.share, 0);
  assert.ok(Math.abs(shares - 100) < 1e-6, `shares sum to ${shares}`);
  assert.ok(Math.abs(profile.kernels.reduce((a, k) => a + k.ms, 0) - profile.kernelMs) < 1e-9);
  for (let i = 1; i < profile.kernels.length; i++) assert.ok(profile.kernels[i - 1].ms >= profile.kernels[i].ms, 'most expensive first');
  const profileText = formatStepProfile(profile, { top: 3 });
  assert.match(profileText, /^profile: 4 steps after 2 warm-up steps on wasm/m);
  assert.match(profileText, new RegExp(`^ {2}total \\(${plan.kernels} kernels\\)\\s+[\\d.]+\\s+100\\.0%$`, 'm'));
  assert.match(profileText, new RegExp(`^ {2}\\(${plan.kernels - 3} more\\)`, 'm'));

  const bench = await benchStep(spec, { time: 100, iterations: 5, warmup: 1, name: 'mine' });
  assert.ok(bench.runs >= 5 && bench.meanMs > 0, JSON.stringify(bench));
  assert.ok(bench.minMs <= bench.p50Ms && bench.p50Ms <= bench.p75Ms && bench.p75Ms <= bench.p99Ms && bench.p99Ms <= bench.maxMs);
  assert.equal(bench.batchSize, BATCH);
  assert.ok(Math.abs(bench.samplesPerSec! - (BATCH * 1000) / bench.meanMs) < 1e-6 * bench.samplesPerSec!);
  assert.ok(Math.abs(bench.stepsPerSec * bench.meanMs - 1000) < 1e-6);
  assert.equal(bench.latencies, undefined);
  const benchText = formatStepBench(bench);
  assert.match(benchText, new RegExp(`^bench: mine on wasm \\(${plan.kernels} kernels\\): ${bench.runs} runs`, 'm'));
  assert.match(benchText, new RegExp(`^ {2}samples/s\\s+${bench.samplesPerSec!.toFixed(1)}\\s+\\(batch ${BATCH}\\)$`, 'm'));
  spec.step.dispose();
});

test('inspectStep builds a factory fused and unfused; profiling a step compiled without profile: true is refused', async () => {
  const r = await inspectStep(await importFactory(), { backend: 'wasm', profile: { steps: 2 } });
  assert.equal(r.describe, 'a 4-32-4 autoencoder step with Adam');
  assert.ok(r.unfusedKernels !== undefined && r.unfusedKernels > r.kernels, `${r.kernels} fused, ${r.unfusedKernels} unfused`);
  assert.equal(r.profile?.kernels.length, r.kernels);

  const quiet = compile(
    trace(({ a, b }) => tanh(matmul(a, b)), { a: [4, 4], b: [4, 4] }),
    { backend: 'wasm' },
  );
  const inputs = { a: new Float32Array(16).fill(1), b: new Float32Array(16).fill(2) };
  await assert.rejects(profileStep({ step: quiet, inputs }, { steps: 2 }), /compiled without `profile: true`/);
  assert.throws(() => stepSourceOf({ x: 1 }, 'mod.js'), /mod\.js: exports neither a default step/);
  assert.throws(() => stepSourceOf({ default: { step: 1, inputs } }, 'mod.js'), /'step' must be a compiled step/);
  quiet.dispose();
});

const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000 });

test('fusediff inspect <module> prints the plan and, with --profile, the per-kernel table', () => {
  const r = cli('inspect', 'my-step.ts', '--profile', '--steps', '3', '--backend', 'wasm');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^my-step\.ts: a 4-32-4 autoencoder step with Adam$/m);
  assert.match(r.stdout, /^backend: wasm/m);
  assert.match(r.stdout, /^\d+ kernels for \d+ primitives \(unfused: \d+ kernels, [\d.]+x\)$/m);
  assert.match(r.stdout, /^memory plan: \d+ buffers/m);
  assert.match(r.stdout, /^profile: 3 steps after 3 warm-up steps on wasm/m);
  assert.match(r.stdout, /^ {2}total \(\d+ kernels\)\s+[\d.]+\s+100\.0%$/m);

  // a module of named exports (a compiled executable and its inputs), loaded by Node itself
  const named = cli('inspect', './named.mjs', '--json');
  assert.equal(named.status, 0, named.stderr);
  const report = JSON.parse(named.stdout);
  assert.deepEqual([report.example, report.kernels, report.unfusedKernels], ['./named.mjs', 1, undefined]);
  assert.deepEqual(report.kernelList[0].inputs, ['a', 'b']);
});

test('fusediff bench <module> --quick benchmarks it in process and prints the table', () => {
  const r = cli('bench', 'my-step.ts', '--quick', '--backend', 'wasm');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^bench: my-step on wasm \(\d+ kernels\): \d+ runs in \d+ ms after 1 warm-up runs/m);
  const mean = Number(/^ {2}mean\s+([\d.]+) ms/m.exec(r.stdout)?.[1]);
  const perSec = Number(new RegExp(`^ {2}samples/s\\s+([\\d.]+)\\s+\\(batch ${BATCH}\\)$`, 'm').exec(r.stdout)?.[1]);
  assert.ok(mean > 0 && perSec > 0, r.stdout);
  // the printed mean is rounded to 0.001 ms
  assert.ok(Math.abs((BATCH * 1000) / perSec - mean) <= 0.0006 + 1e-3 * mean, r.stdout);

  const json = cli('bench', './named.mjs', '--quick', '--json');
  assert.equal(json.status, 0, json.stderr);
  const b = JSON.parse(json.stdout);
  assert.deepEqual([b.name, b.backend, b.kernels, b.batchSize], ['named', 'wasm', 1, undefined]);
  assert.ok(b.runs >= 2 && b.meanMs > 0);

  const missing = cli('bench', 'nowhere.ts', '--quick');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nowhere\.ts: no such step module/);
});
