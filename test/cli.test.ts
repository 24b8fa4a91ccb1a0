// The gradcheck command as users run it: JSON shape, exit codes, and bad names.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/fusediff.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

test('gradcheck --json prints the documented report and exits 0', () => {
  const r = run('gradcheck', '--json', '--runs', '3', '--seed', '5', '--only', 'matmul', 'conv2d', 'graphs');
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.seed, 5);
  assert.deepEqual(report.primitives.map((p: { name: string }) => p.name), ['matmul', 'conv2d']);
  for (const p of report.primitives) {
    assert.equal(p.runs, 3);
    assert.equal(p.ok, true);
    assert.ok(typeof p.maxRelErr === 'number' && p.maxRelErr < 1e-5);
  }
  assert.deepEqual([report.graphs.runs, report.graphs.failures], [3, 0]);
});

test('gradcheck rejects unknown names with the list of valid ones', () => {
  const r = run('gradcheck', '--only', 'conv3d');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown name\(s\) conv3d; valid names: neg, exp/);
});

test('gradcheck rejects a malformed --runs', () => {
  const r = run('gradcheck', '--runs', 'many');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--runs must be a non-negative integer/);
});
