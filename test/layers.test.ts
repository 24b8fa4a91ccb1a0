// The layering contract, read from the source: every folder imports only the folders below it, code above the
// compiler reaches it through compiler/index.ts alone, and no files import each other in a cycle. docs/architecture.md
// explains the layers; this test is what keeps them true. It holds for the library's own files: a user's script in the
// checkout (untracked by git, or in no folder of the table and imported by none of the library) is not checked.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'));

/** Each layer and the layers it may import, lowest first. `index` is the package root's index.ts. */
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  core: [],
  dsl: ['core'],
  transforms: ['core', 'dsl'],
  compiler: ['core'],
  train: ['core', 'dsl', 'transforms', 'compiler'],
  index: ['core', 'dsl', 'transforms', 'compiler', 'train'],
  data: ['core', 'dsl'],
  storage: ['core', 'dsl'],
  plots: ['core', 'dsl', 'storage'],
  models: ['core', 'dsl', 'transforms', 'compiler', 'train'],
  objectives: ['core', 'dsl', 'transforms', 'models'],
  eval: ['core', 'dsl', 'transforms', 'compiler', 'train', 'data', 'storage', 'models'],
  runs: ['core', 'dsl', 'transforms', 'compiler', 'train', 'data', 'storage', 'models', 'objectives', 'eval'],
  workloads: ['core', 'dsl', 'transforms', 'compiler', 'train', 'data', 'models', 'objectives'],
  experiments: ['core', 'dsl', 'transforms', 'compiler', 'train', 'data', 'storage', 'plots', 'models', 'objectives', 'eval', 'runs'],
  web: ['core', 'dsl', 'transforms', 'compiler', 'train', 'data', 'storage', 'plots', 'models', 'objectives', 'eval', 'runs'],
  cli: [
    'index',
    'core',
    'dsl',
    'transforms',
    'compiler',
    'train',
    'data',
    'storage',
    'models',
    'objectives',
    'eval',
    'runs',
    'workloads',
    'experiments',
  ],
  bench: ['core', 'dsl', 'transforms', 'compiler', 'train', 'data', 'storage', 'models', 'objectives', 'eval', 'runs', 'workloads'],
};
/** Folders that may import anything: the tests and the developer scripts. */
const TOP = ['test', 'scripts'];

export interface ImportEdge {
  readonly from: string; // file, relative to the root
  readonly to: string;
}

const layerOf = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file === 'index.ts' ? 'index' : file);

const sourceFiles = (dir: string): string[] =>
  readdirSync(join(ROOT, dir)).flatMap((name) => {
    const rel = dir ? `${dir}/${name}` : name;
    if (name === 'node_modules' || name.startsWith('.') || name === 'out') return [];
    if (statSync(join(ROOT, rel)).isDirectory()) return sourceFiles(rel);
    return /\.ts$/.test(name) ? [rel] : [];
  });

/** Every relative import (static, dynamic, re-export) of every .ts file under the root. */
export const readImports = (): ImportEdge[] =>
  sourceFiles('').flatMap((from) => {
    const text = readFileSync(join(ROOT, from), 'utf8');
    const specs = [...text.matchAll(/(?:from|import\(?)\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
    return specs.map((s) => ({ from, to: relative(ROOT, join(ROOT, dirname(from), s)) }));
  });

/** The files git tracks, or undefined outside a git checkout (or without git). */
const trackedFiles = (): Set<string> | undefined => {
  try {
    const out = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return new Set(out.split('\0').filter(Boolean));
  } catch {
    return undefined;
  }
};

/**
 * The library's own files among `files`: those in the folders of the layer table (the package root's index.ts, the
 * tests and scripts included) that git tracks (every one outside a git checkout), and every file they import. What
 * is left is a user's: a script in the checkout that git does not track, or one in no folder of the table that no
 * file of the library imports (`mine.ts` at the root, `my-work/`), whatever it imports.
 */
export const libraryFiles = (files: readonly string[], edges: readonly ImportEdge[], tracked?: ReadonlySet<string>, layers = LAYERS) => {
  const known = (f: string) => layerOf(f) in layers || TOP.includes(layerOf(f));
  const own = new Set(files.filter((f) => known(f) && (!tracked || tracked.has(f))));
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const queue = [...own];
  while (queue.length)
    for (const to of next.get(queue.pop()!) ?? [])
      if (!own.has(to)) {
        own.add(to);
        queue.push(to);
      }
  return own;
};

/** The imports of the library's own files (libraryFiles): what the contract is checked on. */
export const libraryImports = (edges = readImports(), tracked = trackedFiles()): ImportEdge[] => {
  const own = libraryFiles(sourceFiles(''), edges, tracked);
  return edges.filter((e) => own.has(e.from));
};

/** What breaks the contract: upward or sideways imports between layers, deep imports into the compiler, file cycles. */
export const violations = (edges: readonly ImportEdge[], layers = LAYERS): string[] => {
  const out: string[] = [];
  for (const { from, to } of edges) {
    const a = layerOf(from);
    const b = layerOf(to);
    if (a === b || TOP.includes(a)) continue;
    if (!(a in layers)) out.push(`${from}: folder '${a}' is not in the layer table`);
    else if (!layers[a].includes(b))
      out.push(`${from} imports ${to}: '${a}' may import only ${layers[a].join(', ') || 'nothing of the project'}`);
    else if (b === 'compiler' && to !== 'compiler/index.ts')
      out.push(`${from} imports ${to}: outside the compiler, import compiler/index.ts`);
  }
  return [...out, ...cycles(edges.filter((e) => !TOP.includes(layerOf(e.from)))).map((c) => `import cycle: ${c.join(' -> ')}`)];
};

/** Strongly connected components of more than one file (Tarjan), each as a closed path of files. */
export const cycles = (edges: readonly ImportEdge[]): string[][] => {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1) found.push([...scc.reverse(), scc[0]]);
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
};

test('the layer table itself has no cycle', () => {
  const edges = Object.entries(LAYERS).flatMap(([from, tos]) => tos.map((to) => ({ from: `${from}/x`, to: `${to}/x` })));
  assert.deepEqual(cycles(edges), []);
});

test('every folder imports only the layers below it, the compiler only through its index, and no file cycle exists', () => {
  const edges = libraryImports();
  assert.ok(edges.length > 300, `read ${edges.length} imports: the scan found the sources`);
  assert.deepEqual(violations(edges), []);
});

test('the check catches an upward import, a deep compiler import and a cycle', () => {
  const v = violations([
    { from: 'core/ir.ts', to: 'dsl/ops.ts' },
    { from: 'models/unet.ts', to: 'compiler/passes/fuse.ts' },
    { from: 'dsl/a.ts', to: 'dsl/b.ts' },
    { from: 'dsl/b.ts', to: 'dsl/a.ts' },
    { from: 'test/x.test.ts', to: 'cli/main.ts' },
  ]);
  assert.equal(v.length, 3, v.join('\n'));
  assert.match(v[0], /core\/ir\.ts imports dsl\/ops\.ts: 'core' may import only nothing/);
  assert.match(v[1], /import compiler\/index\.ts/);
  assert.match(v[2], /import cycle: dsl\/a\.ts -> dsl\/b\.ts -> dsl\/a\.ts/);
});

test("a user's script is not the library's: untracked, or outside the table's folders and imported by no library file", () => {
  const files = ['index.ts', 'dsl/ops.ts', 'dsl/mine.ts', 'mine.ts', 'my-work/a.ts', 'newlayer/x.ts', 'cli/main.ts', 'test/t.test.ts'];
  const edges = [
    { from: 'mine.ts', to: 'index.ts' }, // a script at the root, tracked or not
    { from: 'my-work/a.ts', to: 'cli/main.ts' }, // a folder of the user's
    { from: 'dsl/mine.ts', to: 'cli/main.ts' }, // untracked, in a library folder
    { from: 'cli/main.ts', to: 'newlayer/x.ts' }, // a library folder missing from the table: reached from cli
    { from: 'newlayer/x.ts', to: 'dsl/ops.ts' },
    { from: 'test/t.test.ts', to: 'cli/main.ts' },
  ];
  const tracked = new Set(files.filter((f) => f !== 'dsl/mine.ts'));
  const own = libraryFiles(files, edges, tracked);
  assert.deepEqual([...own].sort(), ['cli/main.ts', 'dsl/ops.ts', 'index.ts', 'newlayer/x.ts', 'test/t.test.ts']);
  const checked = edges.filter((e) => own.has(e.from));
  const v = violations(checked);
  assert.equal(v.length, 2, v.join('\n'));
  assert.match(v[0], /^cli\/main\.ts imports newlayer\/x\.ts: 'cli' may import only/);
  assert.equal(v[1], `newlayer/x.ts: folder 'newlayer' is not in the layer table`);
  // outside git every file of the table's folders is the library's, dsl/mine.ts included
  assert.ok(libraryFiles(files, edges, undefined).has('dsl/mine.ts'));
  assert.ok(!libraryFiles(files, edges, undefined).has('mine.ts'));
});
