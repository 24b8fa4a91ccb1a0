// Experiments as jobs: a spec is checked whole before any work, nothing is written outside --out, a stopped
// experiment reports what is missing and --resume finishes it to the same report, a second run never mixes in,
// and three shards in separate processes merge into the report of one run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runExperiment } from '../experiments/run.ts';
import { openExperimentFolder } from '../experiments/folder.ts';
import { rowsTable } from '../experiments/report.ts';
import { decodeSpec, defaultSpec, specProblems } from '../experiments/spec.ts';
import { ConfigError } from '../runs/config.ts';
import { RunFolderError } from '../runs/runTraining.ts';

const root = path.resolve(import.meta.dirname, '..');
const cli = path.join(root, 'bin', 'fusediff.js');
const temp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `fusediff-${name}-`));

/** A small 2-D experiment on the committed stage 1: a fine-tune and two rows at two seeds (4 shardable units). */
const tinySpec = (over: Record<string, unknown> = {}) => ({
  name: 'tiny',
  backend: 'webasm',
  datasets: [
    {
      dataset: 'eightGaussians',
      stage1Checkpoint: 'pretrained/stage1-eightGaussians.safetensors',
      stage1Set: {},
      finetunes: [{ name: 'SP', set: { 'train.steps': 6, 'train.batchSize': 64 } }],
      sampleSet: { 'sample.count': 200, 'sample.steps': 6 },
      seeds: [1, 2],
      rows: [
        { name: 'MSE', model: 'stage1', cfg: 1 },
        { name: 'SP+CFG 2', model: 'SP', cfg: 2 },
      ],
      ...over,
    },
  ],
});

/** What a report says, without what varies between runs of the same jobs (timings, dates, folders). */
const content = (file: string) => {
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  return {
    complete: r.complete,
    missing: r.missing,
    datasets: r.datasets.map((d: { models: { name: string; steps: number; lossLast: number }[]; rows: unknown[] }) => ({
      models: d.models.map((m) => [m.name, m.steps, m.lossLast]),
      rows: d.rows.map((row) => {
        const { sampleSeconds: _s, ...rest } = row as { sampleSeconds: number };
        return rest;
      }),
    })),
  };
};

const run = (args: string[], cwd = root) => spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 240_000 });

test('a spec is checked whole at decode time: path names, data sets, rows, scales and seeds each named', () => {
  assert.deepEqual(specProblems(defaultSpec), []);
  const bad = {
    ...tinySpec({
      dataset: '../../escaped-dataset',
      finetunes: [
        { name: 'a/b', set: {} },
        { name: 'x y', set: {} },
        { name: 'x_y', set: {} },
      ],
      seeds: [1, 1],
      rows: [
        { name: '..', model: 'stage1', cfg: 1 },
        { name: 'neg', model: 'stage1', cfg: -3 },
        { name: 'r', model: 'nope', cfg: 1, rescale: 2 },
      ],
    }),
    name: '../../../../elsewhere',
  };
  const problems = specProblems(bad as never);
  for (const expected of [
    /^name: "..\/..\/..\/..\/elsewhere" becomes a file or folder name/,
    /datasets\[0\]\.dataset: unknown data set "..\/..\/escaped-dataset"/,
    /finetunes\[0\]\.name: "a\/b" becomes a file or folder name/,
    /finetunes: "x y" and "x_y" would write the same files/,
    /rows\[0\]\.name: "\.\." becomes/,
    /rows\[1\]\.cfg: -3 is not a guidance scale/,
    /rows\[2\]\.model: no model "nope"; models: stage1, a\/b, x y, x_y/,
    /rows\[2\]\.rescale: 2 is not a guidance rescale/,
    /seeds: \[1,1\] repeats a seed/,
  ])
    assert.ok(
      problems.some((p) => expected.test(p)),
      `${expected} in:\n${problems.join('\n')}`,
    );
  assert.throws(
    () => decodeSpec(bad, 'bad.json'),
    (e: Error) => e instanceof ConfigError && /^bad\.json is not a valid experiment/.test(e.message),
  );
});

test('whatever a spec gets wrong is found before any folder is made or step trained', async () => {
  const parent = temp('early');
  try {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ stage1Checkpoint: 'pretrained/stage1-eightGaussian.safetensors' }, /stage1Checkpoint: .*does not exist.*--train-stage1/],
      [{ stage1Checkpoint: 'pretrained/stage1-unet-mnist16-3k.safetensors' }, /was trained on mnist16, not eightGaussians/],
      [{ sampleSet: { 'sample.cont': 5 } }, /datasets\[0\]\.sampleSet: .*unknown key 'cont'/s],
      [{ finetunes: [{ name: 'SP', set: { 'train.lr': 'fast' } }] }, /datasets\[0\]\.finetunes\[0\]\.set: .*train\.lr/s],
      [
        {
          rows: [{ name: 'u', model: 'stage1', cfg: 1, unconditional: true }],
          stage1Checkpoint: null,
          stage1Set: { 'data.conditional': false },
        },
        /rows\[0\] \(u\): an unconditional row needs a class-conditional/,
      ],
    ];
    for (const [over, expected] of cases) {
      const out = path.join(parent, 'out');
      await assert.rejects(runExperiment(decodeSpec(tinySpec(over), 's.json'), out, { quiet: true }), expected);
      assert.ok(!fs.existsSync(out), `${expected}: no folder left behind`);
    }
  } finally {
    fs.rmSync(parent, { recursive: true, force: true });
  }
});

test('a symlinked folder inside --out cannot carry a write outside it', async () => {
  const parent = temp('symlink');
  try {
    const out = path.join(parent, 'out');
    const elsewhere = path.join(parent, 'elsewhere');
    fs.mkdirSync(elsewhere);
    const spec = decodeSpec(tinySpec({ seeds: [1] }), 's.json');
    openExperimentFolder(out, spec, { trainStage1: false });
    fs.symlinkSync(elsewhere, path.join(out, 'eightGaussians'));
    await assert.rejects(runExperiment(spec, out, { quiet: true, resume: true }), (e: Error) => {
      assert.ok(e instanceof RunFolderError, String(e));
      assert.match(e.message, /outside the experiment folder/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(elsewhere), [], 'nothing written through the link');
  } finally {
    fs.rmSync(parent, { recursive: true, force: true });
  }
});

test('stopped after a job, an experiment reports what is missing; --resume finishes it to the report of one run', async () => {
  const parent = temp('resume');
  try {
    const spec = decodeSpec(tinySpec(), 's.json');
    const whole = await runExperiment(spec, path.join(parent, 'whole'), { quiet: true });
    assert.ok(whole.report!.complete);
    const out = path.join(parent, 'stopped');
    const stopper = { stop: false };
    const first = await runExperiment(spec, out, { quiet: true, stopper, onJob: () => (stopper.stop = true) });
    assert.ok(first.interrupted);
    assert.deepEqual(first.ran, ['eightGaussians/model/SP@1']);
    assert.equal(first.report!.complete, false);
    assert.deepEqual(first.report!.missing.length, 5);
    assert.deepEqual(first.report!.datasets[0].rows, [], 'no row is reported from missing jobs');
    // a second run without --resume is refused and changes nothing
    const before = fs.readdirSync(out).sort();
    await assert.rejects(runExperiment(spec, out, { quiet: true }), /already holds the experiment 'tiny' \(1 jobs done\).*--resume/);
    assert.deepEqual(fs.readdirSync(out).sort(), before);
    // another spec is refused even with --resume, naming what differs
    const other = decodeSpec(tinySpec({ sampleSet: { 'sample.count': 300, 'sample.steps': 6 } }), 'o.json');
    await assert.rejects(
      runExperiment(other, out, { quiet: true, resume: true }),
      /differs at:\n  datasets\[0\]\.sampleSet\.sample\.count: saved 200, requested 300\n/,
    );
    const rest = await runExperiment(spec, out, { quiet: true, resume: true });
    assert.equal(rest.ran.length, 5, 'the finished job is not run again');
    assert.ok(rest.report!.complete);
    assert.equal(rowsTable(rest.report!.datasets[0].rows), rowsTable(whole.report!.datasets[0].rows));
    assert.deepEqual(
      rest.report!.datasets[0].models.map((m) => [m.name, m.seed, m.lossLast]),
      whole.report!.datasets[0].models.map((m) => [m.name, m.seed, m.lossLast]),
    );
  } finally {
    fs.rmSync(parent, { recursive: true, force: true });
  }
});

test('Ctrl-C stops an experiment mid-training with exit 130 and a partial report; --resume continues the training exactly', async () => {
  const parent = temp('sigint');
  try {
    const spec = path.join(parent, 'spec.json');
    const long = tinySpec({ seeds: [1], finetunes: [{ name: 'SP', set: { 'train.steps': 400, 'train.batchSize': 64 } }] });
    fs.writeFileSync(spec, JSON.stringify(long));
    const out = path.join(parent, 'out');
    const child = spawn(process.execPath, [cli, 'experiment', spec, '--out', out], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (b) => (stdout += b));
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (b) => {
        const had = stderr.includes("fine-tune 'SP'");
        stderr += b;
        // the progress bar is drawn: training is under way
        if (!had && stderr.includes("fine-tune 'SP'")) setTimeout(() => child.kill('SIGINT'), 200);
      });
      child.on('exit', resolve);
    });
    assert.equal(code, 130, `${stdout}\n${stderr}`);
    const partial = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    assert.equal(partial.complete, false);
    assert.ok(partial.missing.includes('eightGaussians/model/SP@1'), partial.missing.join(', '));
    assert.match(fs.readFileSync(path.join(out, 'report.md'), 'utf8'), /Partial report/);
    const losses = JSON.parse(fs.readFileSync(path.join(out, 'eightGaussians', 'SP-seed1', 'losses.json'), 'utf8')).losses;
    assert.ok(losses.length > 0 && losses.length < 400, `stopped after ${losses.length} steps`);
    const resumed = run(['experiment', spec, '--out', out, '--resume', '--quiet']);
    assert.equal(resumed.status, 0, resumed.stderr);
    const whole = run(['experiment', spec, '--out', path.join(parent, 'whole'), '--quiet']);
    assert.equal(whole.status, 0, whole.stderr);
    assert.deepEqual(content(path.join(out, 'report.json')), content(path.join(parent, 'whole', 'report.json')));
  } finally {
    fs.rmSync(parent, { recursive: true, force: true });
  }
});

test('three shards in separate processes, merged, give the report of one run', async () => {
  const parent = temp('shards');
  try {
    const spec = path.join(parent, 'spec.json');
    fs.writeFileSync(spec, JSON.stringify(tinySpec()));
    const shards = [1, 2, 3].map((i) => path.join(parent, `shard${i}`));
    const results = await Promise.all(
      shards.map(
        (dir, i) =>
          new Promise<{ code: number | null; err: string }>((resolve) => {
            const c = spawn(process.execPath, [cli, 'experiment', spec, '--out', dir, '--shard', `${i + 1}/3`, '--quiet'], { cwd: root });
            let err = '';
            c.stderr.on('data', (b) => (err += b));
            c.on('exit', (code) => resolve({ code, err }));
          }),
      ),
    );
    for (const r of results) assert.equal(r.code, 0, r.err);
    const ran = shards.map((d) => fs.readdirSync(path.join(d, 'jobs')).length);
    assert.deepEqual(ran, [3, 2, 1], 'units (SP@1, SP@2, stage1@1, stage1@2 with their rows) dealt in turn');
    const merged = path.join(parent, 'merged');
    const m = run(['experiment', spec, '--out', merged, '--quiet', '--merge', ...shards]);
    assert.equal(m.status, 0, m.stderr);
    const whole = run(['experiment', spec, '--out', path.join(parent, 'whole'), '--quiet']);
    assert.equal(whole.status, 0, whole.stderr);
    assert.deepEqual(content(path.join(merged, 'report.json')), content(path.join(parent, 'whole', 'report.json')));
    for (const f of ['eightGaussians-MSE.png', 'eightGaussians-SP_CFG_2.png', 'eightGaussians/SP-seed2/checkpoint.safetensors'])
      assert.ok(fs.existsSync(path.join(merged, f)), f);
  } finally {
    fs.rmSync(parent, { recursive: true, force: true });
  }
});

test('eval refuses a malformed losses.json before it samples anything', () => {
  const parent = temp('losses');
  try {
    const run = path.join(parent, 'run');
    fs.mkdirSync(run);
    fs.copyFileSync(path.join(root, 'pretrained/stage1-eightGaussians.safetensors'), path.join(run, 'checkpoint.safetensors'));
    fs.writeFileSync(path.join(run, 'losses.json'), '{"losses": [0.5,');
    const out = path.join(parent, 'eval');
    const r = spawnSync(
      process.execPath,
      [cli, 'eval', '--checkpoint', path.join(run, 'checkpoint.safetensors'), '--out', out, '--quiet'],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /losses\.json cannot be read as the run's loss log/);
    assert.ok(!fs.existsSync(out) || fs.readdirSync(out).length === 0, 'nothing sampled or written');
  } finally {
    fs.rmSync(parent, { recursive: true, force: true });
  }
});
