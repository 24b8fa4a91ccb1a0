// The README's example as written (it imports 'fusediff', as a user's script does): taken from README.md, type-checked
// under the project's strict settings and run with tsx, both resolving 'fusediff' to this checkout's sources through
// tsconfig.json's `paths`. If this breaks, the documentation is wrong.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-readme-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The first ```ts block under the README's heading `## The DSL in one example`. */
export const readmeExample = (readme: string): string => {
  const section = readme.slice(readme.indexOf('## The DSL in one example'));
  const m = /^```ts\n([\s\S]*?)^```$/m.exec(section);
  assert.ok(m, 'README.md has a ts block under "The DSL in one example"');
  return m[1];
};

const example = readmeExample(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
// what the example's last lines say in comments, printed so that the test can hold them to it
const check = `
console.log(JSON.stringify({ gradShape: out['grad.p.l1.w'].shape, loss: out.out.data[0], report }));
`;
const file = path.join(dir, 'readme-example.ts');
fs.writeFileSync(file, example + check);
// an ES module, as the checkout's own files are (package.json "type": "module")
fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));

test("the README's example imports the package by name, as a user's script does", () => {
  assert.match(example, /^import \* as fd from 'fusediff';$/m);
  assert.doesNotMatch(example, /from '\.{1,2}\//, 'no relative import: a user has no index.ts of ours beside the script');
});

test("the README's example type-checks under the project's strict settings", () => {
  const config = path.join(dir, 'tsconfig.json');
  const compilerOptions = { noEmit: true, typeRoots: [path.join(ROOT, 'node_modules', '@types')] };
  fs.writeFileSync(config, JSON.stringify({ extends: path.join(ROOT, 'tsconfig.json'), compilerOptions, files: [file], include: [] }));
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', config], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test("the README's example runs: trace, valueAndGrad, evaluate, checkGrads at order 2", () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    gradShape: number[];
    loss: number;
    report: { ok: boolean; checks: number; worst: Record<string, number> };
  };
  assert.deepEqual(out.gradShape, [2, 16]);
  assert.ok(out.loss > 0);
  assert.ok(out.report.ok, JSON.stringify(out.report));
  // the comment's shape of the report: { ok: true, checks: 6, worst: { order, finiteDifference, reverseMode, absErr, relErr } }
  assert.equal(out.report.checks, 6);
  assert.deepEqual(Object.keys(out.report.worst).sort(), ['absErr', 'finiteDifference', 'order', 'relErr', 'reverseMode']);
});
