// The command line never loses or overwrites work unasked, and its errors name the difference: each refusal is
// checked for its exit code, its message, and that no file changed (a hash of the whole folder before and after).
// Also the output conventions: results on stdout (one JSON object with --json), progress on stderr, sample and
// eval outputs under out/ and never beside a committed checkpoint.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '../storage/checkpoint.ts';
import { checkWritable } from '../runs/runTraining.ts';

const bin = fileURLToPath(new URL('../bin/fusediff.js', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-cli-safety-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const at = (...p: string[]) => path.join(dir, ...p);

const run = (args: string[], opts: SpawnSyncOptions = {}) => {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000, cwd: dir, ...opts });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
};
const tiny = ['--dataset', 'eightGaussians', '--backend', 'webasm', '--batch-size', '32'];
const tinyModel = ['--set', 'model.hidden=16', 'model.depth=2', 'model.timeDim=8', 'model.classDim=4'];

/** Every file under `root` with its sha256 (and every folder), so "nothing changed" is one deepEqual. */
const snapshot = (root: string): Record<string, string> => {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out[`${path.relative(root, p)}/`] = 'dir';
        walk(p);
      } else out[path.relative(root, p)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
  };
  if (fs.existsSync(root)) walk(root);
  return out;
};

/** Runs a command that must be refused: exit code 1, the message matched on stderr, and nothing under `dir` changed. */
const refused = (args: string[], message: RegExp) => {
  const before = snapshot(dir);
  const r = run(args);
  assert.equal(r.status, 1, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, message);
  assert.equal(r.stdout, '', 'a refusal prints nothing on stdout');
  assert.deepEqual(snapshot(dir), before, `${args.join(' ')} changed files`);
  return r;
};

const stage1 = at('stage1');
const stage1Ck = path.join(stage1, 'checkpoint.safetensors');

before(() => {
  const r = run(['train', ...tiny, ...tinyModel, '--steps', '3', '--out', stage1, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
});

test('an existing run folder is refused without --resume or --force; --force replaces it; not both', () => {
  const r = refused(['train', ...tiny, ...tinyModel, '--steps', '5', '--out', stage1], /RunFolderError: .* already holds a run/);
  assert.match(
    r.stderr,
    /checkpoint\.safetensors, config\.json\); nothing was changed\. Pass --resume to continue it, --force to replace it/,
  );
  // a folder with only a config.json (a run that never saved) is a run folder too
  fs.mkdirSync(at('config-only'));
  fs.writeFileSync(at('config-only', 'config.json'), '{}');
  refused(['train', ...tiny, '--steps', '1', '--out', at('config-only')], /already holds a run \(config\.json\)/);
  refused(['train', ...tiny, '--steps', '5', '--out', stage1, '--resume', '--force'], /--resume continues the run .* --force replaces it/);

  const copy = at('replace-me');
  fs.cpSync(stage1, copy, { recursive: true });
  fs.writeFileSync(path.join(copy, 'notes.txt'), 'mine');
  const f = run(['train', ...tiny, ...tinyModel, '--steps', '2', '--seed', '7', '--out', copy, '--force', '--quiet']);
  assert.equal(f.status, 0, f.stderr);
  assert.equal(loadCheckpoint(path.join(copy, 'checkpoint.safetensors')).step, 2);
  assert.equal(JSON.parse(fs.readFileSync(path.join(copy, 'losses.json'), 'utf8')).losses.length, 2);
  assert.equal(fs.readFileSync(path.join(copy, 'notes.txt'), 'utf8'), 'mine', '--force replaces the run files only');
});

test('--resume without a checkpoint is an error that says where it looked; no folder is made', () => {
  const missing = at('typo', 'run');
  const r = refused(['train', ...tiny, '--resume', '--out', missing], /RunFolderError: --resume: no checkpoint to resume/);
  assert.ok(r.stderr.includes(`looked for ${path.join(missing, 'checkpoint.safetensors')}, but the folder does not exist`), r.stderr);
  fs.mkdirSync(at('not-a-run'));
  fs.writeFileSync(at('not-a-run', 'a.txt'), '');
  refused(
    ['train', ...tiny, '--resume', '--out', at('not-a-run')],
    /looked for .*not-a-run\/checkpoint\.safetensors, but the folder holds a\.txt/,
  );
});

test('impossible step counts are refused: --steps 0, and --resume --steps at or below the checkpoint', () => {
  refused(
    ['train', ...tiny, '--steps', '0', '--out', at('zero', 'a', 'b')],
    /TrainingError: train\.steps is 0: a run trains at least one step/,
  );
  refused(
    ['train', '--steps', '2', '--resume', '--out', stage1],
    /is at step 3, past train\.steps 2: nothing to train; give --steps above 3/,
  );
  refused(['train', '--steps', '3', '--resume', '--out', stage1], /is at step 3, which is train\.steps 3: nothing to train/);
});

test('a resume with a changed config lists each differing path with both values', () => {
  const r = refused(
    ['train', '--steps', '5', '--resume', '--lr', '0.01', '--set', 'objective.minSnrGamma=5', '--out', stage1],
    /TrainingError: --resume: .* was made by a different run config; it differs at:\n/,
  );
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('  '));
  assert.deepEqual(lines, ['  objective.minSnrGamma: saved 0, requested 5', '  train.lr: saved 0.002, requested 0.01']);
});

test('options a command would ignore are errors', () => {
  refused(
    ['train', ...tiny, '--set', 'objective.kind=sp', '--out', at('sp')],
    /train trains stage 1 with the MSE objective only; objective\.kind "sp"/,
  );
  refused(
    ['train', ...tiny, '--set', 'objective.layer=all', '--out', at('sp')],
    /objective\.layer \(--layer\) configures the sp objective/,
  );
  refused(
    ['finetune', '--from', stage1Ck, '--objective', 'mse', '--t-prime', 'same', '--out', at('ft-mse')],
    /finetune: objective\.tPrime \(--t-prime\) configures the sp objective, but this run's objective is "mse"/,
  );
});

test('finetune refuses an --out that holds its --from checkpoint, even with --force', () => {
  for (const extra of [[], ['--force'], ['--resume']])
    refused(['finetune', '--from', stage1Ck, '--steps', '2', '--out', stage1, ...extra], /--out .*stage1 holds the --from checkpoint/);
});

test('finetune --resume keeps its recorded stage 1: another --from is an error, none uses the recorded one', () => {
  const ft = at('ft');
  let r = run(['finetune', '--from', path.relative(dir, stage1Ck), '--steps', '2', '--backend', 'webasm', '--out', ft, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  // the recorded stage 1 is absolute, so a resume from another working directory finds it
  assert.equal((loadCheckpoint(path.join(ft, 'checkpoint.safetensors')).config as { init: { from: string } }).init.from, stage1Ck);
  const other = at('other.safetensors');
  fs.copyFileSync(stage1Ck, other);
  refused(['finetune', '--resume', '--from', other, '--steps', '4', '--out', ft], /the run in .*ft started from .*stage1.*, but --from is/);
  r = run(['finetune', '--resume', '--steps', '4', '--out', ft], { cwd: os.tmpdir() });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^trained steps 3\.\.4 /);
});

test('a checkpoint of the wrong kind says what it is', () => {
  const classifier = path.join(repo, 'pretrained', 'classifier-mnist16.safetensors');
  const msg =
    /CheckpointError: .*classifier-mnist16\.safetensors is an evaluation classifier \(fusediff train-classifier\), not a diffusion run/;
  refused(['finetune', '--from', classifier, '--out', at('ft-classifier')], msg);
  refused(['sample', '--checkpoint', classifier, '--out', at('s-classifier')], msg);
});

test('names match case-insensitively, typos get the closest name, webgl2 is a browser backend', () => {
  const out = at('case');
  const r = run(['train', '--dataset', 'EIGHTGAUSSIANS', '--backend', 'WebAsm', '--steps', '1', ...tinyModel, '--out', out, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.deepEqual([config.data.name, config.backend], ['eightGaussians', 'webasm']);
  refused(
    ['train', '--dataset', 'eightgausians', '--out', at('typo2')],
    /config\.data\.name: did you mean "eightGaussians" \(for "eightgausians"\)\?/,
  );
  refused(['train', '--set', 'model.kind=unnet', '--out', at('typo3')], /config\.model\.kind: expected "mlp" \| "unet", got "unnet"/);
  refused(
    ['train', ...tiny.slice(0, 2), '--backend', 'webgl2', '--out', at('gl')],
    /argument 'webgl2' is invalid\. webgl2 exists only in a browser \(see npm run play for the playground\); in Node use wasm, /,
  );
  refused(['sample', '--checkpoint', stage1Ck, '--backend', 'wsam'], /backends: wasm, .*; did you mean wasm\?/);
});

/**
 * How to run the CLI so that a 0555 folder is unwritable to it. Root ignores permissions, so as root it runs in a new
 * user namespace (`unshare -U`): its uid is still the files' owner, so it reads the clone wherever it lives (under a
 * 0700 folder too), but it has no capability over them, so the owner bits (r-x) refuse the write. Where user
 * namespaces are not allowed, it runs as uid 65534, which needs the clone to be reachable by other users.
 */
const unwritableRunner = (): { command: string; prefix: string[]; opts: SpawnSyncOptions } => {
  if (process.getuid?.() !== 0) return { command: process.execPath, prefix: [], opts: {} };
  if (spawnSync('unshare', ['-U', 'true']).status === 0) return { command: 'unshare', prefix: ['-U', process.execPath], opts: {} };
  for (const d of [dir, at('shared')]) fs.chmodSync(d, 0o777);
  return {
    command: process.execPath,
    prefix: [],
    opts: { uid: 65534, gid: 65534, env: { ...process.env, HOME: at('shared', 'read-only') } },
  };
};

test('an --out that cannot be written is refused before the first step', () => {
  const ro = at('shared', 'read-only');
  fs.mkdirSync(ro, { recursive: true });
  const runner = unwritableRunner();
  fs.chmodSync(ro, 0o555);
  const before = snapshot(dir);
  const args = [...runner.prefix, bin, 'train', ...tiny, '--steps', '1', '--out', ro];
  const out = spawnSync(runner.command, args, { encoding: 'utf8', timeout: 120_000, cwd: dir, ...runner.opts });
  const r = { status: out.status, stderr: String(out.stderr) };
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /RunFolderError: cannot write to the run folder .*read-only: EACCES: permission denied.*; nothing was trained/);
  assert.doesNotMatch(r.stderr, /train \(mse\) +\|/, 'no step ran (no progress bar)');
  assert.deepEqual(snapshot(dir), before);
  fs.chmodSync(ro, 0o755);
  fs.chmodSync(dir, 0o700);
});

test('train: the result on stdout (one JSON object with --json); --quiet hides the progress, not the result', () => {
  let r = run(['train', ...tiny, ...tinyModel, '--steps', '2', '--out', at('json'), '--json']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, r.stdout);
  const j = JSON.parse(lines[0]);
  assert.deepEqual(
    [j.command, j.checkpoint, j.startStep, j.step, j.steps, j.interrupted, j.backend, j.objective, j.dataset],
    ['train', at('json', 'checkpoint.safetensors'), 0, 2, 2, false, 'webasm', 'mse', 'eightGaussians'],
  );
  assert.ok(Number.isFinite(j.meanLossLast50) && j.seconds >= 0);
  assert.match(r.stderr, /train \(mse\) +\|/, 'progress on stderr');
  r = run(['train', ...tiny, ...tinyModel, '--steps', '2', '--out', at('quiet'), '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^trained steps 1\.\.2 in [\d.]+ s on webasm; mean loss of the last 50 steps [\d.]+; checkpoint .*quiet/);
});

test('sample and eval write under out/ by default, never beside a committed checkpoint; --json prints one result', () => {
  const committed = path.join(repo, 'pretrained');
  const before = snapshot(committed);
  const ck = path.join(committed, 'stage1-eightGaussians.safetensors');
  const cwd = at('user');
  fs.mkdirSync(cwd);
  const opts = ['--count', '16', '--steps', '4', '--backend', 'webasm', '--cfg', '1'];
  let r = run(['sample', '--checkpoint', ck, ...opts, '--json'], { cwd });
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.dir, path.join(cwd, 'out', 'samples', 'stage1-eightGaussians'));
  assert.deepEqual(
    s.rows.map((x: { cfgScale: number; count: number; samples: string }) => [x.cfgScale, x.count, path.basename(x.samples)]),
    [[1, 16, 'samples-cfg1.safetensors']],
  );
  for (const x of s.rows) assert.ok(fs.existsSync(x.picture) && fs.existsSync(x.samples));

  r = run(['eval', '--checkpoint', ck, ...opts, '--json', '--quiet'], { cwd });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const e = JSON.parse(r.stdout);
  assert.equal(e.command, 'eval');
  assert.equal(e.dir, path.join(cwd, 'out', 'eval', 'stage1-eightGaussians'));
  assert.deepEqual(
    e.rows.map((x: { cfgScale: number; metrics: { kind: string } }) => [x.cfgScale, x.metrics.kind]),
    [[1, 'points']],
  );
  assert.deepEqual(snapshot(committed), before, 'nothing was written into pretrained/');
  assert.deepEqual(Object.keys(snapshot(cwd)).sort().slice(0, 3), ['out/', 'out/eval/', 'out/eval/stage1-eightGaussians/']);

  // a run's checkpoint.safetensors is named after its folder; the report has no table without rows
  r = run(['eval', '--checkpoint', stage1Ck, ...opts, '--quiet'], { cwd });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\| no CFG \| 1 \|/);
  const md = fs.readFileSync(path.join(cwd, 'out', 'eval', 'stage1', 'report.md'), 'utf8');
  assert.doesNotMatch(md, /\| model \| source \|/, 'eval trains no model: no models table');
  // tables: runs of lines that start with '|'; each has a header, a rule and at least one row
  const tables: string[][] = [];
  let inTable = false;
  for (const line of md.split('\n')) {
    if (line.startsWith('|') && !inTable) tables.push([]);
    if (line.startsWith('|')) tables[tables.length - 1].push(line);
    inTable = line.startsWith('|');
  }
  assert.equal(tables.length, 1, md);
  for (const t of tables) assert.ok(t.length >= 3, `a table without rows:\n${t.join('\n')}`);
  // the run's losses.json gives the report a loss curve; two CFG scales give the metrics against the scale
  assert.match(md, /!\[training loss of eightGaussians\]\(eightGaussians-loss\.png\)/);
  assert.doesNotMatch(md, /-cfg\.png/, 'one CFG scale: no CFG picture');
  r = run(['eval', '--checkpoint', stage1Ck, ...opts.slice(0, -1), '1,2', '--out', 'cfg2', '--quiet'], { cwd });
  assert.equal(r.status, 0, r.stderr);
  const md2 = fs.readFileSync(path.join(cwd, 'cfg2', 'report.md'), 'utf8');
  assert.match(md2, /!\[metrics of eightGaussians against the CFG scale\]\(eightGaussians-cfg\.png\)/);
  for (const png of ['eightGaussians-loss.png', 'eightGaussians-cfg.png']) assert.ok(fs.statSync(path.join(cwd, 'cfg2', png)).size > 1000);
});

test('a short run samples well from its EMA: the warm-up keeps the average off the initial weights', () => {
  // 300 steps of the default 2-D model: without the warm-up the EMA (decay 0.995) was still mostly the random init
  // here (mode coverage 0%, 86% of samples off the data); with it, the EMA covers every mode
  const out = at('short');
  let r = run(['train', '--dataset', 'eightGaussians', '--backend', 'wasm', '--steps', '300', '--out', out, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  r = run(['eval', '--checkpoint', path.join(out, 'checkpoint.safetensors'), '--cfg', '1', '--count', '1000', '--json', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(r.stdout).rows[0].metrics;
  assert.equal(m.modeCoverage, 1, JSON.stringify(m));
  assert.ok(m.offData < 0.2, JSON.stringify(m));
});

test("a checkpoint's recorded backend does not pin later commands: finetune and sample use auto unless --backend", () => {
  // the committed models were trained on webasm (recorded in their config); gpu.js's webasm is ~30x slower here
  const ck = path.join(repo, 'pretrained', 'stage1-eightGaussians.safetensors');
  assert.equal((loadCheckpoint(ck).config as { run: { backend: string } }).run.backend, 'webasm');
  const out = at('ft-auto');
  let r = run(['finetune', '--from', ck, '--steps', '2', '--batch-size', '32', '--out', out, '--json', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.notEqual(JSON.parse(r.stdout).backend, 'webasm');
  assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).backend, 'auto');
  r = run(['sample', '--checkpoint', ck, '--count', '8', '--steps', '2', '--cfg', '1', '--out', at('s-auto'), '--json', '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.notEqual(JSON.parse(r.stdout).rows[0].backend, 'webasm');
});

test('the write probe never follows a symlink: one planted at the old probe name keeps its target intact', () => {
  const d = at('probe');
  fs.mkdirSync(d, { recursive: true });
  const target = at('precious.txt');
  fs.writeFileSync(target, 'keep me');
  // before, the probe was `.fusediff-write-test-<pid>`, written with writeFileSync: this symlink truncated its target
  fs.symlinkSync(target, path.join(d, `.fusediff-write-test-${process.pid}`));
  checkWritable(d);
  assert.equal(fs.readFileSync(target, 'utf8'), 'keep me');
  assert.deepEqual(fs.readdirSync(d), [`.fusediff-write-test-${process.pid}`], 'the probe removed itself and nothing else');
});
