// The API reference (docs/api/, scripts/api-docs.ts) is built here, so `npm test` (CI) fails when it is stale: every
// export of every public entry point (package.json `exports`) has a doc comment, and the committed pages are exactly
// what the current types and doc comments give.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { anchors, entryPoints, readApi, renderApi, stalePages, undocumented, type ApiEntry } from '../scripts/api-docs.ts';

let api: Promise<ApiEntry[]> | undefined;
const read = () => (api ??= readApi());

test('the entry points are those of package.json exports, each with its page', () => {
  assert.deepEqual(
    entryPoints().map((e) => [e.specifier, e.source, e.page]),
    [
      ['fusediff', 'index.ts', 'docs/api/fusediff.md'],
      ['fusediff/models', 'models/index.ts', 'docs/api/models.md'],
      ['fusediff/objectives', 'objectives/index.ts', 'docs/api/objectives.md'],
      ['fusediff/storage', 'storage/index.ts', 'docs/api/storage.md'],
    ],
  );
});

test('every export of every public entry point has a doc comment', async () => {
  const entries = await read();
  const names = new Set(entries[0].exports.map((x) => x.name));
  // the ones users found only by reading the source (issue 25), and re-exports from each layer
  for (const name of ['tanh', 'adam', 'compileStep', 'compile', 'nn.linear', 'evaluate', 'grad', 'checkGrads', 'TrainStep'])
    assert.ok(names.has(name), `fusediff exports ${name}`);
  assert.ok(
    entries.every((e) => e.exports.length > 5),
    'each entry point lists its exports',
  );
  assert.deepEqual(undocumented(entries), [], 'add a /** doc comment */ to each, then run npm run docs:api');
});

test('docs/api/ is what the types and doc comments give (npm run docs:api rewrites it)', async () => {
  const pages = renderApi(await read());
  assert.deepEqual(stalePages(pages), [], 'run npm run docs:api and commit docs/api/');
});

test('the reference shows declarations as the .d.ts has them, with their doc comments', async () => {
  const pages = renderApi(await read());
  const root = pages.get('docs/api/fusediff.md')!;
  // a TrainStep's backend is findable: the interface with its documented `executable`
  assert.match(root, /### TrainStep\n\n\*interface\*\n\n```ts\ninterface TrainStep<[^]*?readonly executable: Executable;/);
  assert.match(
    root,
    /### tanh\n\n\*const\*\n\n```ts\nconst tanh: <S extends Shape>\(x: Tensor<S>\) => Tensor<S>;\n```\n\nElementwise hyperbolic tangent\./,
  );
  // overloads are listed one by one; private members of classes are left out
  assert.match(
    pages.get('docs/api/models.md')!,
    /function createDenoiser\(options: MlpOptions\): Denoiser<MlpParams>;\nfunction createDenoiser/,
  );
  assert.doesNotMatch(root, /^\s*private /m);
  // the contents link to the headings' anchors, repeats numbered as GitHub does
  assert.ok(root.includes('[NDArray](#ndarray-1)') && root.includes('[ndarray](#ndarray)'));
});

test('anchors follow GitHub: lower case, punctuation dropped, repeats numbered', () => {
  assert.deepEqual(anchors(['fusediff/models', 'nn.linear', 'NDArray', 'ndarray', 'ndarray']), [
    'fusediffmodels',
    'nnlinear',
    'ndarray',
    'ndarray-1',
    'ndarray-2',
  ]);
});

test('the check names an export without a doc comment, in a namespace too, and a page gone stale', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fusediff-api-fixture-'));
  try {
    const write = (file: string, text: string) => fs.writeFileSync(path.join(root, file), text);
    write('package.json', JSON.stringify({ name: 'fx', type: 'module', exports: { '.': { types: './dist/index.d.ts' } } }));
    const compilerOptions = { strict: true, module: 'NodeNext', allowImportingTsExtensions: true, noEmit: true, types: [] };
    write('tsconfig.json', JSON.stringify({ compilerOptions }));
    write(
      'index.ts',
      "// The fixture.\n/** Documented. */\nexport const a = 1;\nexport const b = (x: number) => x;\nexport * as ns from './ns.ts';\n",
    );
    write('ns.ts', '// A namespace.\n/** Documented. */\nexport type C = string;\nexport interface D {\n  d: number;\n}\n');
    const entries = await readApi(root);
    assert.deepEqual(
      entries[0].exports.map((x) => [x.name, x.kinds.join(), x.doc]),
      [
        ['a', 'const', 'Documented.'],
        ['b', 'const', ''],
        ['ns', 'namespace', 'A namespace.'],
        ['ns.C', 'type', 'Documented.'],
        ['ns.D', 'interface', ''],
      ],
    );
    assert.deepEqual(undocumented(entries), ['fx: b (index.ts)', 'fx: ns.D (ns.ts)']);
    const pages = renderApi(entries);
    assert.deepEqual([...pages.keys()], ['docs/api/fx.md']);
    assert.deepEqual(stalePages(pages, root), ['docs/api/fx.md'], 'a page not written yet is stale');
    fs.mkdirSync(path.join(root, 'docs/api'), { recursive: true });
    write('docs/api/fx.md', pages.get('docs/api/fx.md')!);
    write('docs/api/old.md', '# old\n');
    assert.deepEqual(stalePages(pages, root), ['docs/api/old.md'], 'a page no entry point gives is stale');
    fs.rmSync(path.join(root, 'docs/api/old.md'));
    write('index.ts', fs.readFileSync(path.join(root, 'index.ts'), 'utf8').replace('Documented.', 'Changed.'));
    assert.deepEqual(stalePages(renderApi(await readApi(root)), root), ['docs/api/fx.md'], 'a changed doc comment makes the page stale');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('links into the reference from README.md and docs/*.md name anchors its pages have', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const docs = fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md'));
  const pages = ['README.md', ...docs.map((f) => `docs/${f}`)];
  let checked = 0;
  for (const page of pages)
    for (const m of fs.readFileSync(path.join(root, page), 'utf8').matchAll(/\]\(((?:docs\/)?api\/[\w-]+\.md)#([^)\s]+)\)/g)) {
      const target = path.join(root, path.dirname(page), m[1]);
      const headings = [...fs.readFileSync(target, 'utf8').matchAll(/^#+ (.+)$/gm)].map((h) => h[1]);
      assert.ok(anchors(headings).includes(m[2]), `${page}: ${m[1]}#${m[2]} is no heading of ${m[1]}`);
      checked++;
    }
  assert.ok(checked >= 2, `checked ${checked} anchored links`);
});
