// The command line's small promises (issue 25): --version, a missing spec that lists the committed ones, a run folder
// as --checkpoint, a did-you-mean that finds the backend meant, the demo's words and times true for the backend it
// runs, and a step that names the input it was given but does not know.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as fd from '../index.ts';
import { adam } from '../dsl/optim.ts';
import { compileStep } from '../train/compileStep.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'fusediff.js');
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: root });

test('--version prints the version of package.json and exits 0', () => {
  const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = run(flag);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), version);
  }
});

test('experiment with no such spec lists the committed specs; a committed spec is found by its name', async () => {
  const r = run('experiment', 'nosuchspec');
  assert.equal(r.status, 1);
  assert.doesNotMatch(r.stderr, /ENOENT/);
  assert.match(r.stderr, /no spec file nosuchspec; the committed specs \(experiments[\\/]specs[\\/]\): .*\beightGaussians\b.*\bmnist16\b/);
  const { specPath } = await import('../cli/experiment.ts');
  assert.equal(specPath('eightGaussians'), path.join(root, 'experiments', 'specs', 'eightGaussians.json'));
  assert.equal(specPath('mnist16.json'), path.join(root, 'experiments', 'specs', 'mnist16.json'));
});

test('--backend gpu suggests the GPU backends, not cpu', () => {
  const r = run('sample', '--checkpoint', 'pretrained:stage1-eightGaussians', '--backend', 'gpu');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /did you mean webgpu or gpujs-webgpu\?/);
  assert.doesNotMatch(r.stderr, /did you mean cpu/);
});

test('sample --checkpoint takes a run folder (its checkpoint.safetensors)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-cli-nits-'));
  try {
    const run1 = path.join(dir, 'run');
    fs.mkdirSync(run1);
    fs.copyFileSync(path.join(root, 'pretrained', 'stage1-eightGaussians.safetensors'), path.join(run1, 'checkpoint.safetensors'));
    const out = path.join(dir, 'samples');
    const r = run(
      'sample',
      '--checkpoint',
      run1,
      '--count',
      '16',
      '--steps',
      '2',
      '--cfg',
      '1',
      '--backend',
      'wasm',
      '--quiet',
      '--json',
      '--out',
      out,
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { checkpoint: string; rows: { samples: string }[] };
    assert.equal(j.checkpoint, path.join(run1, 'checkpoint.safetensors'));
    assert.ok(fs.existsSync(j.rows[0].samples));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the demo names the backend it compiles for (no gpu.js on wasm) and times a fast stage in ms, not '0.0 s'", () => {
  const r = run('demo', '--steps', '20', '--backend', 'wasm');
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /gpu\.js/);
  assert.match(r.stdout, /stage 5 compiles the same step into fused kernels for the wasm backend/);
  assert.match(r.stdout, /^5\. compile {3}backend wasm /m);
  assert.doesNotMatch(r.stdout, /in 0\.0 s/);
  assert.match(r.stdout, /20 steps in [\d.]+ ms: loss/);
});

test('a step run with a misspelt data input names the unknown one as well as the missing one', () => {
  type P = { l: fd.LinearParams };
  const params: P = { l: fd.nn.linear.init(fd.seedFor(0, 'l'), 2, 2) };
  const step = compileStep(
    ({ params: p, x, y }: { params: fd.ParamTensors<P>; x: fd.Tensor; y: fd.Tensor }) => fd.mse(fd.nn.linear.apply(p.l, x), y),
    { params, optimizer: adam({ lr: 1e-2 }), data: { x: [4, 2], y: [4, 2] }, backend: 'cpu' },
  );
  try {
    const x = new Float32Array(8);
    assert.throws(
      () => step.run({ x, yy: x }),
      /missing data input 'y' of shape \[4, ?2\]; unknown input 'yy' \(the step's data inputs: x, y\)/,
    );
    assert.throws(() => step.run({ x, y: x, z: x }), /unknown input 'z'/);
    assert.ok(Number.isFinite(step.run({ x, y: x })));
  } finally {
    step.dispose?.();
  }
});

test('a compiled graph run with a misspelt input names it among the given ones', async () => {
  const { compile } = await import('../compiler/index.ts');
  const g = fd.trace(({ x }) => fd.mul(x, 2), { x: [4] });
  for (const backend of ['wasm', 'cpu'] as const) {
    const exe = compile(g, { backend });
    try {
      assert.throws(
        () => exe.run({ xx: new Float32Array(4) }),
        /missing input 'x' of shape \[4\]; inputs: x; given but no input of the plan: xx/,
      );
    } finally {
      exe.dispose?.();
    }
  }
});
