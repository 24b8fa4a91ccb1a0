// The experiment pipeline end to end on a tiny 2-D run, and the MNIST evaluation on real digits vs noise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { runExperiment } from '../experiments/run.ts';
import { writeReport } from '../experiments/report.ts';
import { evaluateSamples } from '../experiments/evaluate.ts';
import { decodeSpec, defaultSpec } from '../experiments/spec.ts';
import { resolveConfig } from '../runs/config.ts';
import { mnistSplit, setupRun } from '../runs/setup.ts';

test('a tiny experiment: stage 1 trained, SP fine-tune, rows sampled and evaluated, report and pictures written', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-exp-'));
  try {
    const spec = decodeSpec(
      {
        name: 'tiny',
        backend: 'webasm',
        datasets: [
          {
            dataset: 'eightGaussians',
            stage1Checkpoint: null,
            stage1Set: { 'model.hidden': 16, 'model.depth': 2, 'train.steps': 30, 'train.batchSize': 64 },
            finetunes: [{ name: 'SP', set: { 'train.steps': 5 } }],
            sampleSet: { 'sample.count': 300, 'sample.steps': 10 },
            rows: [
              { name: 'MSE', model: 'stage1', cfg: 1 },
              { name: 'MSE+CFG 3', model: 'stage1', cfg: 3 },
              { name: 'SP', model: 'SP', cfg: 1 },
              { name: 'MSE uncond', model: 'stage1', cfg: 1, unconditional: true },
            ],
          },
        ],
      },
      'tiny spec',
    );
    const r = (await runExperiment(spec, dir, { quiet: true })).report!;
    assert.ok(r.complete);
    writeReport(dir, r);
    const d = r.datasets[0];
    assert.deepEqual(
      d.models.map((m) => [m.name, m.source, m.steps]),
      [
        ['stage1', 'trained', 30],
        ['SP', 'trained', 5],
      ],
    );
    assert.equal(d.models[1].config.objective.kind, 'sp');
    assert.equal(d.rows.length, 4);
    for (const row of d.rows) {
      assert.equal(row.metrics.kind, 'points');
      if (row.metrics.kind !== 'points') continue;
      assert.ok(Number.isFinite(row.metrics.logLikelihood), `${row.name}: log-likelihood ${row.metrics.logLikelihood}`);
      assert.ok(row.metrics.offData >= 0 && row.metrics.offData <= 1);
      assert.equal(row.count, 300);
      const png = PNG.sync.read(fs.readFileSync(path.join(dir, row.picture)));
      assert.ok(png.width > 100 && png.height > 100);
    }
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
    assert.equal(json.datasets[0].rows.length, 4);
    assert.equal(json.datasets[0].rows[0].samples, undefined, 'samples are not dumped into report.json');
    const md = fs.readFileSync(path.join(dir, 'report.md'), 'utf8');
    for (const name of ['MSE+CFG 3', 'SP', 'true samples']) assert.ok(md.includes(name), name);
    // the loss curves of both models trained here, and the metrics against the CFG scale (rows at CFG 1 and 3)
    assert.deepEqual(d.pictures, { loss: 'eightGaussians-loss.png', cfg: 'eightGaussians-cfg.png' });
    for (const file of [d.pictures!.loss!, d.pictures!.cfg!]) {
      const png = PNG.sync.read(fs.readFileSync(path.join(dir, file)));
      assert.ok(png.width > 400 && png.height > 200, `${file}: ${png.width}x${png.height}`);
      assert.ok(md.includes(`](${file})`), `report.md shows ${file}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a malformed experiment spec names the path and the expected type', () => {
  assert.throws(
    () =>
      decodeSpec(
        { ...defaultSpec, datasets: [{ ...defaultSpec.datasets[0], rows: [{ name: 'x', model: 'stage1', cfg: 'high' }] }] },
        'spec.json',
      ),
    /spec\.json.*\n.*cfg.*number/s,
  );
});

test('MNIST evaluation: held-out-like real digits score near the real-data floor, noise far from it', async () => {
  const s = setupRun(resolveConfig(undefined, { backend: 'webasm' }, 'mnist16'));
  const train = mnistSplit(s, 'train');
  const n = 500;
  const per = 256;
  const real = { shape: [n, 1, 16, 16], data: train.images.data.slice(per * 4000, per * (4000 + n)) };
  const labels = Int32Array.from(train.labels.subarray(4000, 4000 + n));
  const noise = { shape: [n, 1, 16, 16], data: Float64Array.from({ length: n * per }, (_, i) => Math.sin(i * 12.9898) * 0.9) };
  const r = await evaluateSamples(s, real, labels, 'webasm');
  const z = await evaluateSamples(s, noise, undefined, 'webasm');
  assert.equal(r.kind, 'image');
  assert.equal(z.kind, 'image');
  if (r.kind !== 'image' || z.kind !== 'image') return;
  // the classifier is 97.3% accurate on held-out digits: real training digits must mostly come out as labelled
  assert.ok(r.accuracy! > 0.9, `accuracy on real digits ${r.accuracy}`);
  assert.equal(r.coverage, 1);
  assert.ok(r.is > 7, `IS of real digits ${r.is}`);
  // another 500 real digits: FD of the same order as the floor (both are 500-sample estimates), noise far above
  assert.ok(r.fd < 2 * r.fdReal + 1, `FD real ${r.fd} vs floor ${r.fdReal}`);
  assert.ok(z.fd > 10 * r.fd, `FD of noise ${z.fd} vs real ${r.fd}`);
});

test('sampleAsync (webasm worker threads) draws exactly what sample draws', async () => {
  const { createSampler, denoiserPredict } = await import('../models/samplers.ts');
  const s = setupRun(resolveConfig(undefined, { 'model.hidden': 16, 'model.depth': 2, backend: 'webasm' }, 'eightGaussians'));
  const sampler = createSampler({
    predict: denoiserPredict(s.model),
    shape: [64, 2],
    schedule: s.schedule,
    prediction: 'v',
    sampler: 'ddim',
    steps: 8,
    seed: 3,
    backend: 'webasm',
    params: s.model.init(1),
    nullClass: s.numClasses,
    cfgScale: 2,
  });
  const classes = Array.from({ length: 64 }, (_, i) => i % 8);
  const a = sampler.sample({ classes, draw: 2 });
  const b = await sampler.sampleAsync({ classes, draw: 2 });
  assert.deepEqual(b.data, a.data);
  assert.ok(a.data.some((v) => v !== 0) && a.data.every(Number.isFinite));
});
