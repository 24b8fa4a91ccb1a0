// runDevice / runDeviceAsync with `into`: the caller's arrays receive the outputs they name, on every backend, with the
// same values as a run without them; other outputs stay fresh copies; a wrong array is refused before the run, by
// an error that names the output.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { compile, createBackend, shutdownBackends, type Executable } from '../compiler/index.ts';
import * as op from '../dsl/ops.ts';
import { trace } from '../dsl/trace.ts';
import { backendsUnderTest, nodeBackendsWithWebGPU } from './support/backends.ts';

after(shutdownBackends);

const X = [2, 3, 6, 6] as const;
const W = [4, 3, 3, 3] as const;
/** a padded conv (the bench's conv row in small) and a second, smaller output */
const graph = trace(({ x, w }) => ({ y: op.conv2d(x, w, { padding: [1, 1, 1, 1] }), s: op.sum(op.mul(x, x)) }), { x: [...X], w: [...W] });
const ySize = 2 * 4 * 6 * 6;

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37));
const inputs = (seed: number) => ({ x: values(2 * 3 * 6 * 6, seed), w: values(4 * 3 * 3 * 3, seed + 1) });

/** runDeviceAsync's outputs as host arrays (webgpu runs only asynchronously) */
const hostOf = async (exe: Executable, out: Awaited<ReturnType<Executable['runDeviceAsync']>>, name: 'y' | 's') =>
  Float32Array.from(
    await exe.readAsync(out[name], exe.program.graph.nodes[exe.program.graph.outputs.find((o) => o.name === name)!.id].shape),
  );

for (const backend of await backendsUnderTest('run-into', nodeBackendsWithWebGPU)) {
  test(`${backend}: into fills the caller's array, the same values as a plain run; other outputs are fresh copies`, async () => {
    const exe = compile(graph, { backend });
    try {
      const plain = await exe.runDeviceAsync(inputs(1));
      const [yPlain, sPlain] = [await hostOf(exe, plain, 'y'), await hostOf(exe, plain, 's')];
      const mine = new Float32Array(ySize).fill(Number.NaN);
      const out = await exe.runDeviceAsync(inputs(1), { into: { y: mine } });
      assert.equal(out.y, mine, 'the run returns the caller array in the output place');
      assert.deepEqual(mine, yPlain);
      assert.deepEqual(await hostOf(exe, out, 's'), sPlain);
      // the next run writes the array again; what it held is the caller's to keep until then
      const kept = mine.slice();
      await exe.runDeviceAsync(inputs(2), { into: { y: mine } });
      assert.notDeepEqual(mine, kept);
      const again = await exe.runDeviceAsync(inputs(2));
      assert.deepEqual(mine, await hostOf(exe, again, 'y'));
      if (backend !== 'webgpu') {
        const sync = exe.runDevice(inputs(1), { into: { y: mine } });
        assert.equal(sync.y, mine);
        assert.deepEqual(mine, yPlain);
      }
    } finally {
      exe.dispose();
    }
  });

  test(`${backend}: a wrong into array is refused before the run, naming the output`, async () => {
    const exe = compile(graph, { backend });
    try {
      const untouched = new Float32Array(1).fill(-1);
      const refused = (into: Record<string, Float32Array>, message: RegExp) =>
        assert.rejects(() => exe.runDeviceAsync(inputs(1), { into: { s: untouched, ...into } }), message);
      await refused({ y: new Float32Array(ySize - 1) }, /into\.y has 287 values, output 'y' is \[2,4,6,6\] \(288 values\)/);
      await refused({ z: new Float32Array(1) }, /into\.z: the plan has no output 'z'; outputs: y, s/);
      await refused({ y: new Float64Array(ySize) as unknown as Float32Array }, /into\.y must be a Float32Array of 288 values/);
      assert.deepEqual(untouched, Float32Array.of(-1), 'no run wrote the valid array given beside the wrong one');
    } finally {
      exe.dispose();
    }
  });
}

test('wasm: a fed-back output cannot be written into an array (it stays in the plan)', () => {
  const g = trace(({ p, x }) => ({ next: op.add(p, x), loss: op.sum(op.mul(p, p)) }), { p: [4], x: [4] });
  const exe = compile(g, { backend: 'wasm', feedback: { next: 'p' } });
  try {
    assert.throws(
      () => exe.runDevice({ p: new Float32Array(4), x: new Float32Array(4) }, { into: { next: new Float32Array(4) } }),
      /into\.next: output 'next' is fed back and stays in the plan/,
    );
  } finally {
    exe.dispose();
  }
});

test('wasm: into on 1 and 2 threads gives the same bits', () => {
  const [one, two] = [1, 2].map((threads) => compile(graph, { backend: createBackend('wasm', { threads }) }));
  try {
    const [a, b] = [new Float32Array(ySize), new Float32Array(ySize)];
    one.runDevice(inputs(3), { into: { y: a } });
    two.runDevice(inputs(3), { into: { y: b } });
    assert.deepEqual(a, b);
    assert.ok(a.some((v) => v !== 0));
  } finally {
    one.dispose();
    two.dispose();
  }
});
