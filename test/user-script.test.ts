// The library as a user meets it: a script written the natural way (literal shapes in the annotations, the package
// imported by its name), in a folder outside the repository whose node_modules/fusediff links to this checkout,
// type-checks with tsc and runs: trace, grad, checkGrads, compile and compileStep.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-user-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const script = `// A user's script: literal shapes in the annotations, the package imported by name.
import * as fd from 'fusediff';
import { adam, checkGrads, compile, compileStep, evaluate, grad, trace, type ParamTensors, type Tensor } from 'fusediff';

const f = ({ a, b }: { a: Tensor<[3, 2]>; b: Tensor<[2, 4]> }): Tensor<[]> => fd.sum(fd.tanh(fd.matmul(a, b)));
const graph = trace(f, { a: [3, 2], b: [2, 4] });
const dfda = grad(graph, ['a']);
const a = fd.initNormal([3, 2], 1, 1);
const b = fd.initNormal([2, 4], 1, 2);
const reference = evaluate(dfda, { a, b });
const report = checkGrads(f, { a, b }, { order: 2 });
const compiled = compile(dfda, { backend: 'wasm' }).run({ a, b });

type MLP = { l1: fd.LinearParams; l2: fd.LinearParams };
const params: MLP = { l1: fd.nn.linear.init(fd.seedFor(0, 'l1'), 2, 8), l2: fd.nn.linear.init(fd.seedFor(0, 'l2'), 8, 2) };
const mlp = (p: ParamTensors<MLP>, x: Tensor<[16, 2]>) => fd.nn.linear.apply(p.l2, fd.silu(fd.nn.linear.apply(p.l1, x)));
const loss = ({ params, x, y }: { params: ParamTensors<MLP>; x: Tensor<[16, 2]>; y: Tensor<[16, 2]> }) => fd.mse(mlp(params, x), y);
const step = compileStep(loss, { params, optimizer: adam({ lr: 1e-2 }), data: { x: [16, 2], y: [16, 2] }, backend: 'wasm' });
const x = fd.initNormal([16, 2], 1, 3);
const first = step.run({ x, y: x });
for (let i = 0; i < 20; i++) step.run({ x, y: x });
const last = step.run({ x, y: x });
const trained: MLP = step.params();

let refused = false;
try {
  // @ts-expect-error the spec's [3, 3] is not the annotated [3, 2]
  trace(f, { a: [3, 3], b: [2, 4] });
} catch {
  refused = true;
}

const gradA = reference['grad.a'];
console.log(
  JSON.stringify({
    gradShape: gradA.shape,
    maxDiff: Math.max(...gradA.data.map((v, i) => Math.abs(v - compiled['grad.a'].data[i]))),
    checkGrads: report.ok,
    lossDown: last < first,
    trained: Object.keys(trained),
    refused,
  }),
);
`;

// what a user's project needs to type-check a package that ships TypeScript sources
const tsconfig = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noEmit: true,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    types: ['node'],
    lib: ['ES2022', 'DOM'],
  },
  files: ['script.ts'],
};

test('a user script with natural annotations type-checks against the package by name, and runs', () => {
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(repo, path.join(dir, 'node_modules', 'fusediff'), 'dir');
  fs.symlinkSync(path.join(repo, 'node_modules', '@types'), path.join(dir, 'node_modules', '@types'), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  fs.writeFileSync(path.join(dir, 'script.ts'), script);
  const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const typed = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  assert.equal(typed.status, 0, `tsc:\n${typed.stdout}${typed.stderr}`);

  // the check is not vacuous: the same script with a shape that contradicts its annotation fails
  fs.writeFileSync(path.join(dir, 'script.ts'), script.replace('trace(f, { a: [3, 2], b: [2, 4] })', 'trace(f, { a: [3, 2], b: [2, 5] })'));
  const wrong = spawnSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stdout, /script\.ts\(6,\d+\): error TS2345/);
  fs.writeFileSync(path.join(dir, 'script.ts'), script);

  const tsx = pathToFileURL(path.join(repo, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const r = spawnSync(process.execPath, ['--import', tsx, 'script.ts'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.gradShape, [3, 2]);
  assert.ok(out.maxDiff < 1e-4, String(out.maxDiff));
  assert.deepEqual([out.checkGrads, out.lossDown, out.refused], [true, true, true]);
  assert.deepEqual(out.trained, ['l1', 'l2']);
});
