// The bench's optional PyTorch reference (bench/peers/pytorch.ts) without PyTorch: a python3 that lacks torch or is
// not there gives a reason and no rows, the script's JSON is parsed and checked, and a stand-in interpreter that
// prints what the script prints goes through the whole path (one run per thread count, the same-workload checks).
// Nothing here times anything or needs torch.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { findPytorch, parsePytorchOutput, pytorchBackend, pytorchSpec, pythonCandidates, runPytorch } from '../bench/peers/pytorch.ts';
import { CONV, LAYER_SIZES, paramCount } from '../workloads/reference.ts';

const timing = { medianMs: 2, meanMs: 2.1, minMs: 1.9, rounds: 3, runsPerRound: 5 };
const sampleRun = (threads: number) => ({
  available: true,
  python: '/usr/bin/python3',
  torch: '1.13.0a0',
  threads,
  blasThreads: threads,
  blas: 'OpenBLAS 0.3.21 (Zen kernels)',
  blasInfo: { libraries: [], build: {}, mkl: false, mkldnn: true, openmp: true },
  mlp: { ...timing, samplesPerSec: 256000, params: 149250, probeLoss: null, loss: 0.9 },
  matmul: [{ ...timing, n: 256, gflops: 16.8 }],
  conv: { ...timing, gflops: 37.7, convBackend: '_ConvBackend.Mkldnn' },
  unet: { ...timing, params: 170369, batch: 16, loss: 1 },
});

/** An executable stand-in for python3: `-c` (the torch probe) prints a version, the script prints one run's JSON. */
const fakePython = (dir: string, body: string): string => {
  const file = path.join(dir, 'python3');
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
};

test('a python3 that is missing or lacks torch: PyTorch not available, with the reason, and no rows', () => {
  const missing = findPytorch(['/nonexistent/python3']);
  assert.ok('reason' in missing && /PyTorch not available/.test(missing.reason) && missing.reason.includes('/nonexistent/python3'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-pytorch-test-'));
  try {
    const noTorch = fakePython(dir, `echo "ModuleNotFoundError: No module named 'torch'" >&2; exit 1`);
    const r = runPytorch({ quick: true, matmulSizes: [256], candidates: [noTorch], log: () => {} });
    assert.equal(r.available, false);
    assert.ok(!r.available && r.reason.includes("No module named 'torch'"), JSON.stringify(r));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('FUSEDIFF_PYTHON names the only interpreter tried; else python3, then the system one', () => {
  assert.deepEqual(pythonCandidates({ FUSEDIFF_PYTHON: '/opt/py/bin/python' }), ['/opt/py/bin/python']);
  assert.deepEqual(pythonCandidates({}), ['python3', '/usr/bin/python3']);
});

test("the script's JSON: a run, a reason, or an error naming what is missing", () => {
  const run = parsePytorchOutput(`some warning\n${JSON.stringify(sampleRun(1))}\n`);
  assert.ok(run.available);
  assert.equal(run.mlp.samplesPerSec, 256000);
  assert.deepEqual(parsePytorchOutput(JSON.stringify({ available: false, reason: 'ImportError: x' })), {
    available: false,
    reason: 'PyTorch not available: ImportError: x',
  });
  assert.throws(() => parsePytorchOutput('Traceback (most recent call last):'), /printed no JSON/);
  const { conv: _conv, ...noConv } = sampleRun(1);
  assert.throws(() => parsePytorchOutput(JSON.stringify({ ...noConv, unet: { medianMs: 'x' } })), /missing or malformed conv, unet/);
});

test('the spec is the bench workloads: the MLP layers, the conv, the UNet of the SP cost table', () => {
  const spec = pytorchSpec([256, 512]);
  assert.deepEqual(spec.mlp.layerSizes, LAYER_SIZES);
  assert.deepEqual(spec.matmul, [256, 512]);
  assert.deepEqual(spec.conv, CONV);
  assert.equal(spec.unet.batch, 16);
  assert.deepEqual(
    { ...spec.unet.config },
    {
      channels: 1,
      imageSize: 16,
      baseChannels: 16,
      channelMults: [1, 2, 2],
      numResBlocks: 1,
      groups: 4,
      embDim: 64,
      midAttention: true,
      numClasses: 10,
    },
  );
});

test('a stand-in interpreter with "torch": one run per thread count, thread counts in the environment, the checks', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-pytorch-test-'));
  try {
    const json = JSON.stringify(sampleRun(0)).replace('"threads":0', '"threads":$OMP_NUM_THREADS');
    const py = fakePython(
      dir,
      `if [ "$1" = "-c" ]; then echo 1.13.0a0; exit 0; fi\necho '${json}' | sed "s/\\$OMP_NUM_THREADS/$OMP_NUM_THREADS/"`,
    );
    const lines: string[] = [];
    const r = runPytorch({ quick: true, matmulSizes: [256], candidates: [py], threads: [1, 3], log: (l) => lines.push(l) });
    assert.ok(r.available, JSON.stringify(r));
    assert.deepEqual(
      r.runs.map((x) => x.threads),
      [1, 3],
    );
    assert.equal(lines.length, 2);
    assert.deepEqual(r.checks.mlpParams, [149250, paramCount()]);
    assert.deepEqual(r.checks.unetParams, [170369, 170369]);
    assert.equal(r.checks.sameParamCounts, true);
    assert.equal(r.checks.mlpSameFunction, false); // the stand-in computed no probe loss
    assert.equal(pytorchBackend(r.runs[1], true), 'CPU, 3 threads (OpenBLAS 0.3.21 (Zen kernels); conv: Mkldnn)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
