// Metrics against training steps: train.keepEvery keeps step-<n> checkpoints, `curve` evaluates them in step order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { checkpointCurve, writeCurve } from '../experiments/curve.ts';
import { resolveConfig } from '../runs/config.ts';
import { runTraining } from '../runs/runTraining.ts';
import { loadRunCheckpoint } from '../runs/trainer.ts';

test('train.keepEvery keeps every n-th checkpoint (also across a resume); curve evaluates them in step order', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-curve-'));
  try {
    const over = { 'model.hidden': 16, 'model.depth': 2, 'train.batchSize': 32, 'train.keepEvery': 2, backend: 'webasm' };
    await runTraining(resolveConfig(undefined, { ...over, 'train.steps': 3 }, 'eightGaussians'), dir, { quiet: true });
    await runTraining(resolveConfig(undefined, { ...over, 'train.steps': 6 }, 'eightGaussians'), dir, { quiet: true, resume: true });
    const kept = fs
      .readdirSync(dir)
      .filter((f) => f.startsWith('step-'))
      .sort();
    assert.deepEqual(kept, ['step-2.safetensors', 'step-4.safetensors', 'step-6.safetensors']);
    assert.deepEqual(
      kept.map((f) => loadRunCheckpoint(path.join(dir, f)).step),
      [2, 4, 6],
    );
    const files = kept.reverse().map((f) => path.join(dir, f)); // any order in, step order out
    const points = await checkpointCurve(files, [1, 2], { 'sample.count': 100, 'sample.steps': 4, backend: 'webasm' });
    assert.deepEqual(
      points.map((p) => [p.step, p.cfg]),
      [
        [2, 1],
        [2, 2],
        [4, 1],
        [4, 2],
        [6, 1],
        [6, 2],
      ],
    );
    for (const p of points) assert.ok(p.metrics.kind === 'points' && Number.isFinite(p.metrics.logLikelihood));
    // a fine-tune's curve starts at its stage-1 checkpoint, as step 0
    const ft = path.join(dir, 'ft');
    const base = loadRunCheckpoint(path.join(dir, 'checkpoint.safetensors')).config.run;
    const spConfig = resolveConfig(undefined, { 'objective.kind': 'sp', 'train.steps': 2, 'train.keepEvery': 2 }, 'eightGaussians', base);
    await runTraining(spConfig, ft, { quiet: true, from: path.join(dir, 'checkpoint.safetensors') });
    const ftPoints = await checkpointCurve([path.join(ft, 'step-2.safetensors'), path.join(dir, 'step-6.safetensors')], [1], {
      'sample.count': 50,
      'sample.steps': 2,
    });
    assert.deepEqual(
      ftPoints.map((p) => p.step),
      [0, 2],
    );
    const out = path.join(dir, 'curve');
    fs.mkdirSync(out);
    await writeCurve(out, 'test curve', points, 'fusediff curve ...');
    const png = PNG.sync.read(fs.readFileSync(path.join(out, 'curve.png')));
    assert.ok(png.width > 400 && png.height > 200);
    assert.match(fs.readFileSync(path.join(out, 'curve.md'), 'utf8'), /\| 4 \| 2 \| -?\d+\.\d{3} \|/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
