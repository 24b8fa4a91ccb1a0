// Seeds in experiments: every fine-tune trained once per seed, every row sampled once per seed from that seed's
// fine-tune, and the row's metrics the mean over seeds with a Student-t 95% interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { meanInterval } from '../eval/interval.ts';
import { runExperiment } from '../experiments/run.ts';
import { rowsTable } from '../experiments/report.ts';
import { decodeSpec } from '../experiments/spec.ts';

test('meanInterval: Student t with n - 1 degrees of freedom, no interval claimed from one value', () => {
  // 1, 2, 3: mean 2, sd 1, t_0.975(2) = 4.303: half-width 4.303 / sqrt(3)
  const r = meanInterval([1, 2, 3]);
  assert.equal(r.mean, 2);
  assert.ok(Math.abs(r.half - 4.303 / Math.sqrt(3)) < 1e-12, `${r.half}`);
  assert.deepEqual(meanInterval([5]), { mean: 5, half: 0, n: 1 });
  assert.equal(meanInterval([4, 4, 4, 4]).half, 0);
  // 41 values: beyond the table, the normal quantile
  const xs = Array.from({ length: 41 }, (_, i) => i % 2);
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - 20 / 41) ** 2, 0) / 40);
  assert.ok(Math.abs(meanInterval(xs).half - (1.96 * sd) / Math.sqrt(41)) < 1e-12);
  assert.throws(() => meanInterval([]), /no values/);
});

test('a seeded experiment: one fine-tune per seed, one sampling run per seed and row, means with intervals', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-seeds-'));
  try {
    const spec = decodeSpec(
      {
        name: 'seeds',
        backend: 'webasm',
        datasets: [
          {
            dataset: 'eightGaussians',
            stage1Checkpoint: null,
            stage1Set: { 'model.hidden': 16, 'model.depth': 2, 'train.steps': 30, 'train.batchSize': 64 },
            finetunes: [{ name: 'SP', set: { 'train.steps': 4, 'objective.renoise': 'fresh' } }],
            sampleSet: { 'sample.count': 200, 'sample.steps': 8 },
            seeds: [3, 4],
            rows: [
              { name: 'MSE', model: 'stage1', cfg: 1 },
              { name: 'SP', model: 'SP', cfg: 1 },
            ],
          },
        ],
      },
      'seeded spec',
    );
    const d = (await runExperiment(spec, dir, { quiet: true })).report!.datasets[0];
    assert.deepEqual(
      d.models.map((m) => [m.name, m.seed, m.config.train.seed]),
      [
        ['stage1', undefined, 0],
        ['SP', 3, 3],
        ['SP', 4, 4],
      ],
    );
    assert.equal(d.models[1].config.objective.renoise, 'fresh');
    assert.notEqual(d.models[1].checkpoint, d.models[2].checkpoint);
    assert.notDeepEqual(d.models[1].losses, d.models[2].losses, 'the two seeds train on different noise');
    for (const row of d.rows) {
      const s = row.seeds!;
      assert.deepEqual(s.seeds, [3, 4]);
      assert.equal(s.perSeed.length, 2);
      const ll = s.perSeed.map((m) => (m.kind === 'points' ? m.logLikelihood : NaN));
      assert.notEqual(ll[0], ll[1], `${row.name}: two sampling seeds, two sample sets`);
      assert.equal(row.metrics.kind === 'points' && row.metrics.logLikelihood, (ll[0] + ll[1]) / 2);
      assert.ok(Math.abs(s.interval.logLikelihood!.half - (12.706 * Math.abs(ll[0] - ll[1])) / 2) < 1e-9);
    }
    assert.match(rowsTable(d.rows), /\| MSE \| 1 \| -?\d+\.\d{3} ± \d+\.\d{3} \|/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
