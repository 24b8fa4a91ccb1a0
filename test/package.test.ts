// The package as a user gets it: `npm pack` (which builds dist/), installed into a fresh project outside the
// repository, then used the ways the README says: plain Node ESM, TypeScript under nodenext and bundler resolution
// (also with the strictest consumer flags), the CLI through npx from any folder, and a browser bundle made by esbuild
// with no plugin, run in headless Chromium.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { browserTestOptions, launch } from './browser/chromium.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-package-'));
const project = path.join(dir, 'consumer');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const npm = (args: string[], cwd: string, timeout = 300_000) => {
  const r = spawnSync('npm', args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false' } });
  assert.equal(r.status, 0, `npm ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
};
const run = (cmd: string, args: string[], o: SpawnSyncOptions = {}) =>
  spawnSync(cmd, args, { cwd: project, encoding: 'utf8', timeout: 300_000, ...o }) as ReturnType<typeof spawnSync> & {
    stdout: string;
    stderr: string;
  };

let tarball = '';
let files: string[] = [];

before(() => {
  // npm pack runs prepack (npm run build); --json says what went in
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], repo, 300_000)) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = path.join(dir, packed[0].filename);
  files = packed[0].files.map((f) => f.path);
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // the dependencies come from npm's cache where it has them; no install scripts: the test runs on wasm, not GL
  npm(['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', tarball], project);
});

test('the tarball holds the built package and the weights it uses, not the repository', () => {
  const bytes = fs.statSync(tarball).size;
  assert.ok(bytes < 8e6, `tarball ${(bytes / 1e6).toFixed(1)} MB`);
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'bin/fusediff.js', 'LICENSE', 'README.md'])
    assert.ok(files.includes(f), `${f} shipped`);
  for (const f of [
    'pretrained/stage1-eightGaussians.safetensors',
    'pretrained/stage1-unet-mnist16.safetensors',
    'pretrained/classifier-mnist16.safetensors',
  ])
    assert.ok(files.includes(f), `${f} shipped`);
  const unwanted = files.filter(
    (f) => /^(test|docs|web|scripts|\.ci)\//.test(f) || /-3k\./.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')),
  );
  assert.deepEqual(unwanted, []);
});

const example = `import * as fd from 'fusediff';
const f = ({ a, b }) => fd.sum(fd.tanh(fd.matmul(a, b)));
const graph = fd.trace(f, { a: [3, 2], b: [2, 4] });
const dfda = fd.grad(graph, ['a']);
const a = fd.initNormal([3, 2], 1, 1);
const b = fd.initNormal([2, 4], 1, 2);
const reference = fd.evaluate(dfda, { a, b });
const compiled = fd.compile(dfda, { backend: 'wasm' }).run({ a, b });
const diff = Math.max(...reference['grad.a'].data.map((v, i) => Math.abs(v - compiled['grad.a'].data[i])));
console.log(JSON.stringify({ shape: reference['grad.a'].shape, diff, ok: fd.checkGrads(f, { a, b }).ok }));
`;

test('plain Node imports the package by name: the DSL, grad, the interpreter, checkGrads and a compile on wasm', () => {
  fs.writeFileSync(path.join(project, 'example.mjs'), example);
  const r = run(process.execPath, ['example.mjs']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.shape, [3, 2]);
  assert.ok(out.diff < 1e-4, `wasm (f32) against the float64 interpreter: ${out.diff}`);
  assert.equal(out.ok, true);
});

// a user's script with natural annotations, the package and its subpaths imported by name
const script = `import * as fd from 'fusediff';
import { adam, checkGrads, compile, compileStep, evaluate, grad, trace, type ParamTensors, type Tensor } from 'fusediff';
import { createDenoiser } from 'fusediff/models';
import { mseObjective } from 'fusediff/objectives';
import { loadCheckpoint } from 'fusediff/storage';

const f = ({ a, b }: { a: Tensor<[3, 2]>; b: Tensor<[2, 4]> }): Tensor<[]> => fd.sum(fd.tanh(fd.matmul(a, b)));
const graph = trace(f, { a: [3, 2], b: [2, 4] });
const a = fd.initNormal([3, 2], 1, 1);
const b = fd.initNormal([2, 4], 1, 2);
export const reference = evaluate(grad(graph, ['a']), { a, b });
export const report = checkGrads(f, { a, b }, { order: 2 });
export const compiled = compile(grad(graph, ['a']), { backend: 'wasm' });
type MLP = { l1: fd.LinearParams; l2: fd.LinearParams };
const params: MLP = { l1: fd.nn.linear.init(fd.seedFor(0, 'l1'), 2, 8), l2: fd.nn.linear.init(fd.seedFor(0, 'l2'), 8, 2) };
const mlp = (p: ParamTensors<MLP>, x: Tensor<[16, 2]>) => fd.nn.linear.apply(p.l2, fd.silu(fd.nn.linear.apply(p.l1, x)));
const loss = ({ params, x, y }: { params: ParamTensors<MLP>; x: Tensor<[16, 2]>; y: Tensor<[16, 2]> }) => fd.mse(mlp(params, x), y);
export const step = compileStep(loss, { params, optimizer: adam({ lr: 1e-2 }), data: { x: [16, 2], y: [16, 2] }, backend: 'wasm' });
export const denoiser = createDenoiser({ kind: 'mlp', dim: 2 });
export const objective = mseObjective;
export const load = loadCheckpoint;
`;

const tsc = (options: Record<string, unknown>) => {
  fs.writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', strict: true, noEmit: true, ...options }, files: ['script.ts'] }),
  );
  return run(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project]);
};

test('TypeScript consumers type-check with default strict settings under nodenext and bundler, and with the strictest flags', () => {
  fs.writeFileSync(path.join(project, 'script.ts'), script);
  const strictest = { noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true };
  for (const options of [
    { module: 'NodeNext', moduleResolution: 'NodeNext' },
    { module: 'ESNext', moduleResolution: 'Bundler' },
    { module: 'NodeNext', moduleResolution: 'NodeNext', ...strictest },
    { module: 'ESNext', moduleResolution: 'Bundler', ...strictest },
  ]) {
    const r = tsc(options);
    assert.equal(r.status, 0, `${JSON.stringify(options)}:\n${r.stdout}${r.stderr}`);
  }
  // not vacuous: a shape that contradicts its annotation is a type error
  fs.writeFileSync(
    path.join(project, 'script.ts'),
    script.replace('trace(f, { a: [3, 2], b: [2, 4] })', 'trace(f, { a: [3, 2], b: [2, 5] })'),
  );
  const wrong = tsc({ module: 'NodeNext', moduleResolution: 'NodeNext' });
  assert.match(wrong.stdout, /script\.ts\(8,\d+\): error TS2345/);
});

test('the CLI from the installed package, anywhere: demo, sample and finetune from pretrained:NAME, bench --quick --no-peers', () => {
  const npx = (args: string[]) => run('npx', ['--no-install', 'fusediff', ...args]);
  const demo = npx(['demo']);
  assert.equal(demo.status, 0, demo.stderr);
  assert.match(demo.stdout, /compile\s+backend wasm/);
  const sample = npx([
    'sample',
    '--checkpoint',
    'pretrained:stage1-unet-mnist16',
    '--count',
    '8',
    '--steps',
    '2',
    '--cfg',
    '1',
    '--out',
    'samples',
    '--quiet',
  ]);
  assert.equal(sample.status, 0, sample.stderr);
  assert.ok(fs.existsSync(path.join(project, 'samples', 'samples-cfg1.safetensors')));
  assert.ok(fs.readdirSync(path.join(project, 'samples')).some((f) => f.endsWith('.png')));
  const finetune = npx(['finetune', '--from', 'pretrained:stage1-eightGaussians', '--steps', '3', '--out', 'sp', '--quiet', '--json']);
  assert.equal(finetune.status, 0, finetune.stderr);
  assert.equal(JSON.parse(finetune.stdout).step, 3);
  const unknown = npx(['sample', '--checkpoint', 'pretrained:nope', '--quiet']);
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.stderr, /pretrained:nope: no such committed checkpoint; this package has .*pretrained:stage1-unet-mnist16/);
  const bench = npx(['bench', '--quick', '--no-peers', '--backend', 'wasm']);
  assert.equal(bench.status, 0, `${bench.stdout}\n${bench.stderr}`);
  assert.ok(fs.existsSync(path.join(project, 'fusediff-bench', 'quick.json')), 'results written to the working folder, not node_modules');
});

test('an esbuild browser bundle of the DSL example needs no plugin, stays small, and runs in Chromium', browserTestOptions(), async () => {
  const entry = path.join(project, 'browser.mjs');
  fs.writeFileSync(
    entry,
    `import { evaluate, grad, initNormal, matmul, sum, tanh, trace } from 'fusediff';
const f = ({ a, b }) => sum(tanh(matmul(a, b)));
const g = grad(trace(f, { a: [3, 2], b: [2, 4] }), ['a']);
const out = evaluate(g, { a: initNormal([3, 2], 1, 1), b: initNormal([2, 4], 1, 2) });
globalThis.result = { shape: out['grad.a'].shape, finite: out['grad.a'].data.every(Number.isFinite) };
`,
  );
  const out = path.join(project, 'bundle.js');
  execFileSync(
    path.join(repo, 'node_modules', '.bin', 'esbuild'),
    [entry, '--bundle', '--platform=browser', '--format=esm', '--minify', `--outfile=${out}`],
    {
      cwd: project,
      stdio: 'pipe',
    },
  );
  const code = fs.readFileSync(out, 'utf8');
  assert.ok(code.length < 150_000, `trace, grad and evaluate bundle to ${code.length} bytes`);
  assert.ok(!/gpu\.js|fast-check|WebAssembly\.Module/.test(code), 'no gpu.js, fast-check or wasm backend in a DSL-only bundle');
  const browser = await launch();
  try {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.setContent('<!doctype html><title>consumer</title>');
    await page.addScriptTag({ content: code, type: 'module' });
    await page
      .waitForFunction(() => (globalThis as { result?: unknown }).result !== undefined, undefined, { timeout: 20_000 })
      .catch(() => {
        throw new Error(`the bundle did not finish: ${errors.join('; ') || 'no page error'}`);
      });
    assert.deepEqual(await page.evaluate(() => (globalThis as { result?: unknown }).result), { shape: [3, 2], finite: true });
  } finally {
    await browser.close();
  }
});
