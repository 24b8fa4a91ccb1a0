// Which backends this machine has, and the errors for unavailable or unknown ones. In CI the GL path must be
// present: a silent fall back to webasm would leave the GPU kernels untested.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { availableBackends, resolveBackend } from '../compiler/index.ts';
import { requiredInCI } from './support/backends.ts';

test(`backends available here: ${availableBackends().join(', ')}`, () => {
  assert.ok(availableBackends().includes('cpu'));
  if (requiredInCI('headlessgl'))
    assert.ok(availableBackends().includes('headlessgl'), 'CI must run the headless-gl tests (is xvfb-run installed and gl built?)');
});

test('auto says which backend it chose and why: GL only on a hardware GPU, else the wasm backend', () => {
  const r = resolveBackend('auto');
  assert.match(r.reason, new RegExp(`^auto: ${r.name}`));
  // a GPU it names: headless-gl's own RENDERER is just 'ANGLE', which once passed for a GPU on llvmpipe
  if (r.name === 'headlessgl') {
    assert.doesNotMatch(r.reason, /GPU: ANGLE\)/);
    assert.doesNotMatch(r.reason, /llvmpipe|softpipe|swrast|swiftshader/i);
  } else {
    assert.equal(r.name, 'wasm');
    // here (no GPU) headless-gl, when present, runs on Mesa's llvmpipe, and auto says why it passed it over
    if (availableBackends().includes('headlessgl')) assert.match(r.reason, /headlessgl renders on .*llvmpipe.*a CPU rasterizer/i);
  }
});

test("headless-gl's driver is read from the libraries its context loaded", async () => {
  const { glDriverOfProcess } = await import('../compiler/backends/names.ts');
  const lib = (path: string) => `7f0000000000-7f0000001000 r-xp 00000000 fe:01 123 ${path}\n`;
  const mesa = lib('/usr/lib/x86_64-linux-gnu/libGLX_mesa.so.0.0.0');
  assert.equal(glDriverOfProcess(undefined, mesa + lib('/usr/lib/x86_64-linux-gnu/dri/swrast_dri.so')), 'Mesa swrast_dri.so (llvmpipe)');
  assert.equal(glDriverOfProcess(undefined, mesa + lib('/usr/lib/x86_64-linux-gnu/dri/iris_dri.so')), 'Mesa iris_dri.so');
  assert.match(glDriverOfProcess(undefined, lib('/usr/local/nvidia/lib64/libnvidia-glcore.so.580.159.04')) ?? '', /NVIDIA/);
  assert.equal(glDriverOfProcess(undefined, mesa), undefined, 'no driver library: unknown, so auto will not take GL for a GPU');
  const { isSoftwareRenderer } = await import('../compiler/index.ts');
  assert.ok(isSoftwareRenderer('ANGLE on Mesa swrast_dri.so (llvmpipe)'));
  assert.ok(!isSoftwareRenderer("ANGLE on NVIDIA's GL driver (libnvidia-glcore)"));
});

test('software rasterizers are recognised by their renderer names', async () => {
  const { isSoftwareRenderer } = await import('../compiler/index.ts');
  for (const name of [
    'llvmpipe (LLVM 15.0.6, 256 bits)',
    'Google SwiftShader',
    'ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)), SwiftShader driver)',
    'softpipe',
  ])
    assert.ok(isSoftwareRenderer(name), name);
  for (const name of [
    'NVIDIA GeForce RTX 4090/PCIe/SSE2',
    'ANGLE (NVIDIA, NVIDIA H100 Direct3D11)',
    'Apple M2',
    'Mesa Intel(R) UHD Graphics 620 (KBL GT2)',
  ])
    assert.ok(!isSoftwareRenderer(name), name);
});

test('an unknown backend lists the valid ones; an unavailable one lists the available ones', () => {
  assert.throws(
    () => resolveBackend('metal' as never),
    /unknown backend 'metal'; backends: wasm, webgpu, headlessgl, webgl2, gpujs-webgpu, webasm, cpu, or auto/,
  );
  // in Node, webgl2 is refused for what it is (a browser's), not with the headless-gl hint
  assert.throws(
    () => resolveBackend('webgl2'),
    new RegExp(
      /^Error: backend 'webgl2' is not available here: webgl2 exists only in a browser \(no document here\); /.source +
        /see npm run play for the playground; available: [a-z, ]+, or auto$/.source,
    ),
  );
});

test('a kernel the backend cannot run is reported with its ops and the backend', async () => {
  const { guard, BackendError } = await import('../compiler/index.ts');
  const kernel = {
    index: 3,
    root: 7,
    name: 'k3_matmul',
    shape: [4, 4],
    fusedOps: ['matmul', 'add', 'tanh'],
    source: { source: '', args: [], subKernels: [] },
  };
  assert.throws(
    () =>
      guard(kernel, 'headlessgl', () => {
        throw new Error('Error compiling fragment shader: ERROR: 0:1: syntax error');
      }),
    (e: unknown) =>
      e instanceof BackendError &&
      /backend headlessgl cannot run kernel 3 \(k3_matmul: matmul add tanh, output \[4,4\]\): Error compiling fragment shader/.test(
        (e as Error).message,
      ),
  );
});
