// `fusediff train`, `finetune` and `experiment` as users run them: help, run directories, config errors, Ctrl-C.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '../storage/checkpoint.ts';
import { resolveConfig } from '../runs/config.ts';
import { StoredConfig, train } from '../runs/trainer.ts';

const bin = fileURLToPath(new URL('../bin/fusediff.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-cli-train-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const tiny = [
  '--backend',
  'webasm',
  '--batch-size',
  '32',
  '--set',
  'model.hidden=16',
  'model.depth=2',
  'model.timeDim=8',
  'model.classDim=4',
];

test('train, finetune and experiment --help exit 0 and list their options', () => {
  const want: Record<string, string[]> = {
    train: ['--config', '--set', '--dataset', '--steps', '--batch-size', '--lr', '--seed', '--backend', '--out', '--resume', '--quiet'],
    finetune: ['--from', '--objective', '--layer', '--t-prime', '--distance', '--steps', '--backend', '--out', '--resume'],
    experiment: ['[spec]', '--out', '--train-stage1', '--quiet', '--backend'],
  };
  for (const [cmd, options] of Object.entries(want)) {
    const r = run(cmd, '--help');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Usage: fusediff ${cmd} `));
    for (const o of options) assert.ok(r.stdout.includes(o), `${cmd} --help lacks ${o}:\n${r.stdout}`);
  }
});

test('train writes checkpoint.safetensors, config.json and losses.json', () => {
  const out = path.join(dir, 'train');
  const r = run('train', '--dataset', 'eightGaussians', '--steps', '5', ...tiny, '--out', out);
  assert.equal(r.status, 0, r.stderr);
  // the result on stdout, the progress on stderr
  assert.match(r.stdout, /^trained steps 1\.\.5 in [\d.]+ s on webasm; mean loss of the last 50 steps [\d.]+; checkpoint /);
  assert.doesNotMatch(r.stderr, /trained steps/);
  const ck = loadCheckpoint(path.join(out, 'checkpoint.safetensors'), { configCodec: StoredConfig });
  assert.equal(ck.step, 5);
  assert.equal(ck.config.init, undefined);
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.deepEqual(
    [config.data.name, config.model.hidden, config.model.depth, config.train.steps, config.objective.kind, config.backend],
    ['eightGaussians', 16, 2, 5, 'mse', 'webasm'],
  );
  assert.deepEqual(config, ck.config.run);
  const log = JSON.parse(fs.readFileSync(path.join(out, 'losses.json'), 'utf8'));
  assert.equal(log.losses.length, 5);
  assert.ok(
    log.losses.every((l: unknown) => typeof l === 'number' && Number.isFinite(l)),
    String(log.losses),
  );
  assert.equal(log.backend, 'webasm');
});

test('config errors exit 1 and name the path, the expected type and the valid names', () => {
  const cfg = path.join(dir, 'bad.json');
  fs.writeFileSync(cfg, JSON.stringify({ train: { lr: 'fast' } }));
  const out = path.join(dir, 'never');
  const r = run('train', '--config', cfg, '--out', out);
  assert.equal(r.status, 1, r.stderr);
  assert.ok(r.stderr.includes(cfg), r.stderr);
  assert.match(r.stderr, /ConfigError: .*\n.*config\.train\.lr: expected positive number, got "fast"/);
  const d = run('train', '--dataset', 'cifar', '--out', out);
  assert.equal(d.status, 1, d.stderr);
  assert.match(
    d.stderr,
    new RegExp(
      /config\.data\.name: expected dataset: "mnist16" \| "mnist28" \| "eightGaussians" /.source +
        /\| "grid25" \| "checkerboard" \| "twoMoons", got "cifar"/.source,
    ),
  );
  assert.equal(fs.existsSync(out), false, 'nothing is written for an invalid config');
});

test('Ctrl-C stops after the step in flight, saves, and exits 130', async () => {
  const out = path.join(dir, 'ctrl-c');
  const child = spawn(
    process.execPath,
    [bin, 'train', '--dataset', 'eightGaussians', '--steps', '100000', ...tiny, 'train.checkpointEvery=100000', '--out', out],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8');
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => (stdout += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, delay(ms, undefined, { ref: false })]);
  // the progress bar is created at the first completed step, so its first line means training is under way
  const started = new Promise<void>((resolve) =>
    child.stderr.on('data', (s: string) => ((stderr += s), /\/100000/.test(stderr) && resolve())),
  );
  try {
    assert.ok(
      (await within(Promise.race([started.then(() => true), exited.then(() => false)]), 60_000)) === true,
      `training did not start (or exited) within 60 s:\n${stderr}`,
    );
    await delay(1500);
    child.kill('SIGINT');
    const res = await within(exited, 15_000);
    assert.ok(res, `still running 15 s after SIGINT (Ctrl-C did not stop the training):\n${stderr}`);
    assert.deepEqual(res, { code: 130, signal: null }, stderr);
    const ck = loadCheckpoint(path.join(out, 'checkpoint.safetensors'), { configCodec: StoredConfig });
    assert.ok(ck.step >= 1 && ck.step < 100_000, `step ${ck.step}`);
    assert.match(stdout, new RegExp(`^interrupted at step ${ck.step} of 100000: saved to `, 'm'));
    // the checkpoint is named once, and the line says how to continue
    assert.equal(stdout.split('checkpoint.safetensors').length - 1, 1, stdout);
    assert.ok(stdout.includes(`continue with: fusediff train --out ${out} --resume`), stdout);
    const log = JSON.parse(fs.readFileSync(path.join(out, 'losses.json'), 'utf8'));
    assert.equal(log.losses.length, ck.step);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
});

test('finetune --from a stage-1 checkpoint runs sp and records where it started', async () => {
  const stage1 = path.join(dir, 'stage1', 'checkpoint.safetensors');
  fs.mkdirSync(path.dirname(stage1));
  const config = resolveConfig(
    undefined,
    {
      'model.hidden': 16,
      'model.depth': 2,
      'model.timeDim': 8,
      'model.classDim': 4,
      'train.batchSize': 32,
      'train.steps': 3,
      backend: 'webasm',
    },
    'eightGaussians',
  );
  await train({ config, checkpoint: stage1 });
  const sha = createHash('sha256').update(fs.readFileSync(stage1)).digest('hex');
  const out = path.join(dir, 'ft');
  const r = run('finetune', '--from', stage1, '--steps', '3', '--backend', 'webasm', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const ck = loadCheckpoint(path.join(out, 'checkpoint.safetensors'), { configCodec: StoredConfig });
  assert.equal(ck.step, 3);
  assert.equal(ck.config.run.objective.kind, 'sp');
  assert.deepEqual(ck.config.run.model, config.model, 'the stage-1 model is kept');
  assert.equal(ck.config.run.train.lr, config.train.lr / 10);
  assert.deepEqual(ck.config.init, { from: stage1, sha256: sha, weights: 'ema', step: 3 });
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'losses.json'), 'utf8')).losses.length, 3);
});
