// What `fusediff train` does with no model flags: on MNIST-16 (also the data set when none is given) it trains the
// committed UNet's recipe (pretrained/stage1-unet-mnist16.safetensors), and --set model.kind=mlp the MLP's
// (pretrained/stage1-mlp-mnist16.safetensors, the earlier default, labelled mlp by its name).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configFrom } from '../cli/options.ts';
import { loadRunCheckpoint } from '../runs/trainer.ts';

const bin = fileURLToPath(new URL('../bin/fusediff.js', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 300_000 });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-cli-defaults-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const unet = loadRunCheckpoint('pretrained:stage1-unet-mnist16').config.run;

test("train --dataset mnist16 (and train alone) resolves to the committed UNet's config; only the backend is not inherited", () => {
  assert.equal(unet.model.kind, 'unet');
  for (const flags of [{ dataset: 'mnist16' }, { dataset: 'MNIST16' }, {}]) {
    const config = configFrom(flags);
    assert.deepEqual({ ...config, backend: unet.backend }, unet, JSON.stringify(flags));
    assert.equal(config.backend, 'auto');
  }
  // the same recipe with --steps: what the README's and docs/cli.md's shortened timings ran
  assert.deepEqual(configFrom({ dataset: 'mnist16', steps: 200 }).train, { ...unet.train, steps: 200 });
});

test('--set model.kind=mlp (or a config file with kind mlp) is the MLP recipe of pretrained:stage1-mlp-mnist16', () => {
  const mlp = loadRunCheckpoint('pretrained:stage1-mlp-mnist16').config.run;
  assert.equal(mlp.model.kind, 'mlp');
  const config = configFrom({ dataset: 'mnist16', set: ['model.kind=mlp'] });
  assert.deepEqual({ ...config, backend: mlp.backend }, mlp);
  const file = path.join(dir, 'mlp.json');
  fs.writeFileSync(file, JSON.stringify({ model: { kind: 'mlp', hidden: 256 } }));
  const fromFile = configFrom({ config: file });
  assert.deepEqual(fromFile.model, { ...mlp.model, hidden: 256 });
  assert.deepEqual(fromFile.train, mlp.train);
  // the 2-D data sets keep their one MLP recipe
  assert.equal(configFrom({ dataset: 'eightGaussians' }).model.kind, 'mlp');
});

test("MLP fields without model.kind are refused with the way to the MLP; the pretrained listing labels the MLP's file", () => {
  const out = path.join(dir, 'refused');
  const r = run('train', '--dataset', 'mnist16', '--set', 'model.hidden=64', '--out', out);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /config\.model: unknown key 'hidden'/);
  assert.match(r.stderr, /mnist16's default model is the UNet \(model\.kind "unet"\); .* need model\.kind=mlp \(--set model\.kind=mlp\)/);
  assert.equal(fs.existsSync(out), false);
  const names = run('sample', '--checkpoint', 'pretrained:nope', '--quiet');
  assert.equal(names.status, 1);
  assert.match(names.stderr, /pretrained:stage1-mlp-mnist16\b/);
  assert.doesNotMatch(names.stderr, /pretrained:stage1-mnist16\b/);
  const help = run('train', '--help');
  assert.match(help.stdout.replace(/\s+/g, ' '), /default mnist16: the UNet of pretrained:stage1-unet-mnist16/);
});

test('the CLI default run is the committed run: its first 3 steps give the stored loss curve', () => {
  const out = path.join(dir, 'unet');
  const r = run('train', '--dataset', 'mnist16', '--steps', '3', '--backend', 'wasm', '--out', out, '--quiet', '--json');
  assert.equal(r.status, 0, r.stderr);
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.deepEqual(config, { ...unet, train: { ...unet.train, steps: 3 } });
  const { losses } = JSON.parse(fs.readFileSync(path.join(out, 'losses.json'), 'utf8')) as { losses: number[] };
  const saved = (
    JSON.parse(fs.readFileSync(path.join(repo, 'pretrained', 'stage1-unet-mnist16.losses.json'), 'utf8')) as { losses: number[] }
  ).losses;
  assert.equal(losses.length, 3);
  // as in test/pretrained.test.ts: the same f32 kernels, data, noise and init, equal up to the plan's thread split
  losses.forEach((l, i) => assert.ok(Math.abs(l - saved[i]) <= 1e-5 * saved[i], `step ${i + 1}: ${l} vs saved ${saved[i]}`));
});
