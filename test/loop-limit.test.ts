// The loop limits docs/numerics.md states, measured again on every run (test/support/loopProbe.ts): the largest
// literal loop count that runs to completion on each gpu.js backend, and, on headlessgl, that the cut is one
// budget per shader invocation shared by all loops (so a long reduction cannot be made safe by nesting loops in
// one kernel). The code generator splits reductions below this limit; if a driver update moves it, this test
// fails and the page (and the split) must follow.
// headlessgl needs an X display (sh scripts/with-display.sh); without one the test is skipped locally and FAILS in
// CI (CI=true), as the browser tests do. About one second in all.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { requiredInCI } from './support/backends.ts';
import { describeProbe, probeAvailable, probeLoopLimit } from './support/loopProbe.ts';

const doc = readFileSync(new URL('../docs/numerics.md', import.meta.url), 'utf8');

/** The loop limit the page states for a backend: its row of the loop table, `| headlessgl | 65,535 | ...`. */
const documented = (backend: string): string => {
  const row = doc.split('\n').find((l) => l.startsWith(`| loop limit, ${backend} |`));
  assert.ok(row, `docs/numerics.md has no row '| loop limit, ${backend} | ... |'`);
  return row.split('|')[2].trim();
};

const glOptions =
  probeAvailable('headlessgl') || requiredInCI('headlessgl')
    ? {}
    : { skip: 'headlessgl is not available here (run under sh scripts/with-display.sh)' };

test(
  'headlessgl: the largest complete loop is the documented budget, and the budget is shared by all loops of an invocation',
  glOptions,
  async (t) => {
    const p = await probeLoopLimit('headlessgl');
    t.diagnostic(describeProbe(p));
    assert.equal(p.kernelClass, 'HeadlessGLKernel', 'the probe ran on headless-gl, not a fallback');
    assert.ok(p.limit !== null, `no loop was cut up to ${p.max}: docs/numerics.md says ${documented('headlessgl')}`);
    assert.equal(p.limit.toLocaleString('en-US'), documented('headlessgl'), describeProbe(p));
    // a cut loop is truncated silently: no error, just fewer iterations
    assert.equal(p.firstCut!.got, p.limit);
    // two loops each below the limit, and one nested in another, are cut too: the budget counts every loop
    for (const r of p.shared)
      assert.ok(
        r.got < r.want && r.got <= p.limit,
        `${r.loops}: ${r.got} of ${r.want} should be cut at the shared budget (${describeProbe(p)})`,
      );
  },
);

for (const mode of ['webasm', 'cpu'] as const)
  test(`${mode}: no literal loop is cut up to 2^22 iterations (the documented limit is gpu.js's loopMaxIterations)`, async (t) => {
    const p = await probeLoopLimit(mode, { max: 2 ** 22 });
    t.diagnostic(describeProbe(p));
    assert.equal(p.limit, null, describeProbe(p));
    assert.match(documented(mode), /none up to 2\^22/);
    for (const r of p.shared) assert.equal(r.got, r.want, r.loops);
  });
