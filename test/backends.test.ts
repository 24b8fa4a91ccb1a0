// Which backends this machine has, and the errors for unavailable or unknown ones. In CI the GL path must be
// present: a silent fall back to webasm would leave the GPU kernels untested.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { availableBackends, resolveBackend } from '../compiler/index.ts';

test(`backends available here: ${availableBackends().join(', ')}`, () => {
  assert.ok(availableBackends().includes('cpu'));
  if (process.env.CI === 'true') assert.ok(availableBackends().includes('headlessgl'), 'CI must run the headless-gl tests (is xvfb-run installed and gl built?)');
});

test('auto says which backend it chose and why', () => {
  const r = resolveBackend('auto');
  assert.equal(r.name, availableBackends()[0]);
  assert.match(r.reason, new RegExp(`^auto: ${r.name}`));
});

test('an unknown backend lists the valid ones; an unavailable one lists the available ones', () => {
  assert.throws(() => resolveBackend('metal' as never), /unknown backend 'metal'; backends: headlessgl, webgl2, webasm, cpu, or auto/);
  assert.throws(() => resolveBackend('webgl2'), /backend 'webgl2' is not available here; available: /);
});

test('a kernel the backend cannot run is reported with its ops and the backend', async () => {
  const { guard, BackendError } = await import('../compiler/index.ts');
  const kernel = { index: 3, root: 7, name: 'k3_matmul', shape: [4, 4], fusedOps: ['matmul', 'add', 'tanh'], source: { source: '', args: [], subKernels: [] } };
  assert.throws(
    () => guard(kernel, 'headlessgl', () => { throw new Error('Error compiling fragment shader: ERROR: 0:1: syntax error'); }),
    (e: unknown) => e instanceof BackendError && /backend headlessgl cannot run kernel 3 \(k3_matmul: matmul add tanh, output \[4,4\]\): Error compiling fragment shader/.test((e as Error).message),
  );
});
