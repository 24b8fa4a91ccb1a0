// The gradcheck command as users run it: JSON shape, exit codes, and bad names.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/fusediff.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

test('gradcheck --json prints the documented report and exits 0', () => {
  const r = run('gradcheck', '--json', '--runs', '3', '--seed', '5', '--only', 'matmul', 'conv2d', 'graphs');
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.seed, 5);
  assert.deepEqual(
    report.primitives.map((p: { name: string }) => p.name),
    ['matmul', 'conv2d'],
  );
  for (const p of report.primitives) {
    assert.equal(p.runs, 3);
    assert.equal(p.ok, true);
    assert.ok(typeof p.maxRelErr === 'number' && p.maxRelErr < 1e-5);
  }
  assert.deepEqual([report.graphs.runs, report.graphs.failures], [3, 0]);
});

test('gradcheck rejects unknown names with the list of valid ones', () => {
  const r = run('gradcheck', '--only', 'conv3d');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown name\(s\) conv3d; valid names: neg, exp/);
});

test('gradcheck rejects a malformed --runs', () => {
  const r = run('gradcheck', '--runs', 'many');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--runs must be a non-negative integer/);
});

test("inspect --profile prints each kernel's share of the step, summing to 100%", () => {
  const r = run('inspect', '--profile', '--backend', 'wasm', '--steps', '3');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^backend: wasm/m);
  assert.match(r.stdout, /^profile: 3 steps after 3 warm-up steps on wasm: [\d.]+ ms per step \(wall\), [\d.]+ ms in kernels/m);
  // the table: one row per kernel (the top 15, then one row for the rest), then the total
  const rows = [...r.stdout.matchAll(/^ {2}(\S.*?)\s{2,}(?:\[[\d,]*\]\s+)?([\d.]+)\s+([\d.]+)%/gm)].map((m) => ({
    name: m[1],
    ms: Number(m[2]),
    share: Number(m[3]),
  }));
  const total = rows.find((x) => x.name.startsWith('total'));
  assert.ok(total, r.stdout);
  assert.match(total.name, /^total \(\d+ kernels\)$/);
  assert.equal(total.share, 100);
  const parts = rows.filter((x) => x !== total);
  assert.ok(parts.length >= 2 && parts.some((x) => /^k\d+_matmul$/.test(x.name)), r.stdout);
  const sum = parts.reduce((a, x) => a + x.share, 0);
  assert.ok(Math.abs(sum - 100) < 1, `shares sum to ${sum}\n${r.stdout}`);
  assert.ok(Math.abs(parts.reduce((a, x) => a + x.ms, 0) - total.ms) < 0.01 * parts.length, r.stdout);
  // sorted, the most expensive first (the rest row aside)
  const kernels = parts.filter((x) => x.name.startsWith('k'));
  for (let i = 1; i < kernels.length; i++) assert.ok(kernels[i - 1].ms >= kernels[i].ms, r.stdout);
});

test('inspect --profile --json reports every kernel with shares that sum to 100%', () => {
  const r = run('inspect', 'softmax', '--profile', '--json', '--backend', 'wasm', '--steps', '2');
  assert.equal(r.status, 0, r.stderr);
  const { kernels, profile } = JSON.parse(r.stdout);
  assert.equal(profile.steps, 2);
  assert.equal(profile.kernels.length, kernels);
  const sum = profile.kernels.reduce((a: number, k: { share: number }) => a + k.share, 0);
  assert.ok(Math.abs(sum - 100) < 1e-6, String(sum));
  assert.ok(profile.kernelMs > 0 && profile.stepMs >= profile.kernelMs * 0.5);
});

test('sample and eval name their default folder after the checkpoint: pretrained:NAME is NAME, a run folder its name', async () => {
  const { defaultOutDir } = await import('../cli/sample.ts');
  assert.equal(defaultOutDir('pretrained:stage1-unet-mnist16', 'sample'), path.resolve('out', 'samples', 'stage1-unet-mnist16'));
  assert.equal(defaultOutDir('pretrained:stage1-eightGaussians', 'eval'), path.resolve('out', 'eval', 'stage1-eightGaussians'));
  assert.equal(defaultOutDir('out/mnist16-sp/checkpoint.safetensors', 'sample'), path.resolve('out', 'samples', 'mnist16-sp'));
});
