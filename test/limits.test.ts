// Sizes are refused early and by name (issue 23, items 4 and 5): a checkpoint whose stored config does not describe
// its tensors, or holds an absurd size, is refused naming the file and the field before any weight of that config is
// made; config fields have bounds that name the field; a training step that cannot fit the wasm backend's memory is
// refused before its weights are made or its kernels compiled, naming the fields that size it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { adam } from '../dsl/optim.ts';
import { loadModel } from '../experiments/run.ts';
import { ConfigError, resolveConfig, type Json, type RunConfig } from '../runs/config.ts';
import { setupRun } from '../runs/setup.ts';
import { loadRunCheckpoint, train } from '../runs/trainer.ts';
import { CheckpointError, saveCheckpoint } from '../storage/checkpoint.ts';

const bin = fileURLToPath(new URL('../bin/fusediff.js', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-limits-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const sha256 = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

const tiny2d = (over: Record<string, Json> = {}): RunConfig =>
  resolveConfig(
    undefined,
    { 'data.name': 'eightGaussians', 'model.hidden': 16, 'model.depth': 2, 'model.timeDim': 8, 'model.classDim': 4, ...over },
    'eightGaussians',
  );

/**
 * A small, valid 2-D run checkpoint (hidden 16) whose stored config is then edited at `field` to `value`: the
 * tensors, the signature and the rest of the metadata stay those of the small model.
 */
const editedCheckpoint = (name: string, field: string, value: Json): string => {
  const run = tiny2d();
  const s = setupRun(run);
  const params = s.model.init(0);
  const edited = structuredClone(run) as unknown as Record<string, Record<string, Json>>;
  const [section, key] = field.split('.');
  edited[section][key] = value;
  const file = path.join(dir, `${name}.safetensors`);
  saveCheckpoint(file, {
    params,
    state: adam({ lr: 1e-3 }).init(params),
    ema: params,
    config: { run: edited },
    step: 1,
    rngCounter: 2,
    schedule: s.schedule.name,
    signature: s.model.signature,
  });
  return file;
};

/** Runs `load(file)`, which must throw a CheckpointError within `ms` whose message matches every pattern; the file is unchanged. */
const refusedQuickly = (file: string, load: (f: string) => unknown, patterns: RegExp[], ms: number) => {
  const before = sha256(file);
  const t0 = performance.now();
  let err: unknown;
  try {
    load(file);
  } catch (e) {
    err = e;
  }
  const elapsed = performance.now() - t0;
  assert.ok(err instanceof CheckpointError, `expected a CheckpointError, got ${err}`);
  assert.ok(err.message.includes(file), `the message names the file:\n${err.message}`);
  for (const p of patterns) assert.match(err.message, p);
  assert.ok(elapsed < ms, `refused after ${elapsed.toFixed(0)} ms (the bound is ${ms} ms): something was built first`);
  assert.equal(sha256(file), before, 'the file is left unchanged');
};

describe('a stored config is checked against its tensors before any weight is made', () => {
  test('model.hidden 12000 in a 2-D checkpoint of hidden 16: refused at once, naming the file, the field and the tensors', () => {
    const file = editedCheckpoint('hidden', 'model.hidden', 12000);
    const patterns = [
      /metadata\.config\.run\.model\.hidden is 12000; the file's signature records hidden=16/,
      /params\.hidden\.hidden1\.w: \[16,16\] in the file, \[12000,12000\] from its config/,
    ];
    refusedQuickly(file, loadRunCheckpoint, patterns, 1000);
    // experiments/run.ts loadModel (sample, eval, curve, experiments) builds the model of the stored config to
    // compare signatures: before this check that made 144M weights (88 s, 2.4 GB) before refusing
    refusedQuickly(file, loadModel, patterns, 1000);
  });

  test('the data set and data.conditional are named when they are what differs', () => {
    const file = editedCheckpoint('data', 'data.name', 'mnist16');
    refusedQuickly(
      file,
      loadRunCheckpoint,
      [
        /metadata\.config\.run\.data\.name is "mnist16" \(dim 256\); the file's signature records dim=2/,
        /params\.out\.w: \[16,2\] in the file/,
      ],
      1000,
    );
    const uncond = editedCheckpoint('uncond', 'data.conditional', false);
    refusedQuickly(
      uncond,
      loadRunCheckpoint,
      [/data\.conditional is false \(numClasses none\); the file's signature records numClasses=8/],
      1000,
    );
  });

  test('absurd sizes in a stored config (model.depth 1e6, schedule.T 1e12, model.classDim 1e9) are refused by name', () => {
    // before: depth 1e6 was still allocating after 60 s; T 1e12 and classDim 1e9 threw a RangeError naming no field
    for (const [field, value, expected] of [
      ['model.depth', 1e6, /metadata\.config\.run\.model\.depth: expected integer in 1\.\.128, got 1000000/],
      ['schedule.T', 1e12, /metadata\.config\.run\.schedule\.T: expected integer in 1\.\.100000, got 1000000000000/],
      ['model.classDim', 1e9, /metadata\.config\.run\.model\.classDim: expected integer in 1\.\.4096, got 1000000000/],
    ] as const) {
      const file = editedCheckpoint(field.replace('.', '-'), field, value);
      refusedQuickly(file, loadModel, [expected], 1000);
    }
  });

  test('a checkpoint whose config describes its tensors still loads', () => {
    const file = editedCheckpoint('good', 'model.hidden', 16);
    assert.equal(loadModel(file).step, 1);
  });
});

describe('config fields have bounds that name the field', () => {
  test('every size field refuses an absurd value, naming the field and the range', () => {
    const unet = { 'data.name': 'mnist16', 'model.kind': 'unet' };
    for (const [over, expected] of [
      [{ 'model.hidden': 1e6 }, /config\.model\.hidden: expected integer in 1\.\.16384, got 1000000/],
      [{ 'model.depth': 1e6 }, /config\.model\.depth: expected integer in 1\.\.128/],
      [{ 'model.timeDim': 1 }, /config\.model\.timeDim: expected integer in 2\.\.4096, got 1/],
      [{ 'model.classDim': 1e9 }, /config\.model\.classDim: expected integer in 1\.\.4096/],
      [{ ...unet, 'model.baseChannels': 1e5 }, /config\.model\.baseChannels: expected integer in 1\.\.1024/],
      [{ ...unet, 'model.channelMults': [1, 2, 1e4] }, /config\.model\.channelMults\.2: expected integer in 1\.\.64/],
      [{ ...unet, 'model.channelMults': [] }, /config\.model\.channelMults: expected array of 1\.\.8/],
      [{ ...unet, 'model.numResBlocks': 100 }, /config\.model\.numResBlocks: expected integer in 1\.\.16/],
      [{ 'schedule.T': 1e12 }, /config\.schedule\.T: expected integer in 1\.\.100000/],
      [{ 'train.batchSize': 1e9 }, /config\.train\.batchSize: expected integer in 1\.\.65536/],
      [{ 'sample.count': 1e9 }, /config\.sample\.count: expected integer in 1\.\.100000/],
      [{ 'sample.batchSize': 1e9 }, /config\.sample\.batchSize: expected integer in 1\.\.65536/],
      [{ 'sample.steps': 1e9 }, /config\.sample\.steps: expected integer in 1\.\.100000/],
    ] as [Record<string, Json>, RegExp][])
      assert.throws(
        () => resolveConfig(undefined, over, 'eightGaussians'),
        (e: Error) => e instanceof ConfigError && expected.test(e.message),
        JSON.stringify(over),
      );
  });
});

describe('a training step that cannot fit is refused before it starts', () => {
  test('library: model.hidden 8192 on the wasm backend is a MemoryLimitError at once, nothing written', async () => {
    const config = resolveConfig(
      undefined,
      { 'data.name': 'mnist16', 'model.kind': 'mlp', 'model.hidden': 8192, 'train.steps': 1, backend: 'wasm' },
      'mnist16',
    );
    const checkpoint = path.join(dir, 'big.safetensors');
    const t0 = performance.now();
    await assert.rejects(
      train({ config, checkpoint }),
      (e: Error) =>
        e.name === 'MemoryLimitError' &&
        e instanceof ConfigError &&
        /^model\.hidden=8192 and model\.depth=3 need at least \d+\.\d GB of kernel memory for a training step/.test(e.message) &&
        /the wasm backend holds at most 2 GiB/.test(e.message),
    );
    assert.ok(performance.now() - t0 < 3000, `refused after ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(fs.existsSync(checkpoint), false);
  });

  test('CLI: train --set model.hidden=8192 exits 1 in seconds naming the fields; --batch-size and sample --count 1e9 too', () => {
    const cli = (args: string[]) => {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000, cwd: dir });
      return { status: r.status, stderr: String(r.stderr), seconds: (performance.now() - t0) / 1000 };
    };
    // before: 89 s and 3.5 GB, then a BackendError blaming `kernel 0 (k0_add ...)` for the WebAssembly limit
    const out = path.join(dir, 'cli-big');
    const big = cli([
      'train',
      '--dataset',
      'mnist16',
      '--backend',
      'wasm',
      '--set',
      'model.kind=mlp',
      'model.hidden=8192',
      '--steps',
      '1',
      '--out',
      out,
      '--quiet',
    ]);
    assert.equal(big.status, 1, big.stderr);
    assert.match(big.stderr, /MemoryLimitError: model\.hidden=8192 and model\.depth=3 need at least [\d.]+ GB of kernel memory/);
    assert.match(big.stderr, /the wasm backend holds at most 2 GiB/);
    assert.doesNotMatch(big.stderr, /kernel 0|k0_/);
    assert.ok(big.seconds < 20, `took ${big.seconds.toFixed(1)} s`);
    assert.equal(fs.existsSync(out), false, 'the run folder this command created is removed again');
    // before: a ShapeError at models/schedule.ts
    const batch = cli([
      'train',
      '--dataset',
      'mnist16',
      '--batch-size',
      '1e9',
      '--steps',
      '1',
      '--out',
      path.join(dir, 'cli-batch'),
      '--quiet',
    ]);
    assert.equal(batch.status, 1, batch.stderr);
    assert.match(batch.stderr, /config\.train\.batchSize: expected integer in 1\.\.65536, got 1000000000/);
    // before: not refused (a buffer of 2e9 values)
    const ck = editedCheckpoint('sample', 'model.hidden', 16);
    const count = cli(['sample', '--checkpoint', ck, '--count', '1e9', '--out', path.join(dir, 'cli-sample'), '--quiet']);
    assert.equal(count.status, 1, count.stderr);
    assert.match(count.stderr, /config\.sample\.count: expected integer in 1\.\.100000, got 1000000000/);
    assert.equal(fs.existsSync(path.join(dir, 'cli-sample')), false);
  });
});

test('sample.cfgScales must hold a scale: an empty list is refused when the config is read, naming the field', () => {
  assert.throws(
    () => resolveConfig(undefined, { 'sample.cfgScales': [] }, 'eightGaussians'),
    (e: Error) => e instanceof ConfigError && /sample\.cfgScales/.test(e.message),
  );
});
