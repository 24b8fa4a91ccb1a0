// The documentation's own checks: README.md stays a README (at most 12,000 bytes, the set-up commands kept, every
// docs page linked), every relative markdown link in README.md and docs/*.md and every backticked repository path
// there points to something that exists inside the repository, and no tracked file refers to a folder outside it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'));
const README_LIMIT = 12_000;

/** README.md and every page under docs/, as paths relative to the root. */
const pages = (): string[] => [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

/** The text outside fenced code blocks: what is in a fence is code, not a link or a path claim. */
export const prose = (markdown: string): string => markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '');

/** Targets of markdown links and images, `[text](target)` and `![alt](target "title")`, outside code fences. */
export const markdownLinks = (markdown: string): string[] =>
  [...prose(markdown).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);

/** A link to another site, a mail address or an anchor on the same page: not a file of this repository. */
const isExternal = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#');

/** The repository's top-level folders (what a backticked path must start with to be taken as a path claim). */
const topFolders = (): Set<string> =>
  new Set(readdirSync(ROOT).filter((n) => !['node_modules', 'out', '.git'].includes(n) && statSync(join(ROOT, n)).isDirectory()));

/** Inline code spans that are repository paths: `compiler/index.ts`, `experiments/specs/`, `.ci/run`. */
export const backtickedPaths = (markdown: string, folders: ReadonlySet<string>): string[] =>
  [...prose(markdown).matchAll(/`([^`\n]+)`/g)]
    .map((m) => m[1])
    .filter((s) => /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\/?$/.test(s) && s.includes('/') && folders.has(s.slice(0, s.indexOf('/'))));

/** Where a path lands, relative to the root; '..' at its start means outside the repository. */
const resolveFrom = (page: string, target: string): string =>
  relative(ROOT, join(ROOT, dirname(page), decodeURIComponent(target.split('#')[0])));

/** Every file git tracks, or every file under the root when this is not a git checkout. */
const trackedFiles = (): string[] => {
  try {
    return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\0')
      .filter(Boolean);
  } catch {
    const walk = (dir: string): string[] =>
      readdirSync(join(ROOT, dir)).flatMap((name) => {
        const rel = dir ? `${dir}/${name}` : name;
        if (['node_modules', '.git', 'out'].includes(name)) return [];
        return statSync(join(ROOT, rel)).isDirectory() ? walk(rel) : [rel];
      });
    return walk('');
  }
};

test('README.md is a README: at most 12,000 bytes, with the set-up commands and CI sentence', () => {
  const bytes = statSync(join(ROOT, 'README.md')).size;
  assert.ok(bytes <= README_LIMIT, `README.md is ${bytes} bytes; the limit is ${README_LIMIT}: move detail into docs/`);
  const text = read('README.md');
  for (const needle of ['`npm ci && npm start`', '`npm test`', 'CI (`.ci/run`) runs `npm ci` then exactly `npm test`.'])
    assert.ok(text.includes(needle), `README.md keeps ${needle}`);
});

test('the README links every page under docs/', () => {
  const linked = new Set(
    markdownLinks(read('README.md'))
      .filter((t) => !isExternal(t))
      .map((t) => resolveFrom('README.md', t)),
  );
  const missing = pages().filter((p) => p !== 'README.md' && !linked.has(p.split('/').join(sep)));
  assert.deepEqual(missing, [], 'docs pages the README does not link');
});

test('every relative link in README.md and docs/*.md points to an existing file inside the repository', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages())
    for (const target of markdownLinks(read(page))) {
      if (isExternal(target)) continue;
      const path = resolveFrom(page, target);
      checked++;
      if (path.startsWith('..')) broken.push(`${page}: ${target} leaves the repository`);
      else if (!existsSync(join(ROOT, path))) broken.push(`${page}: ${target} (${path}) does not exist`);
    }
  assert.ok(checked > 20, `checked ${checked} links: the scan found them`);
  assert.deepEqual(broken, []);
});

test('every backticked repository path in README.md and docs/*.md exists', () => {
  const folders = topFolders();
  const missing: string[] = [];
  let checked = 0;
  for (const page of pages())
    for (const path of backtickedPaths(read(page), folders)) {
      checked++;
      if (!existsSync(join(ROOT, path))) missing.push(`${page}: \`${path}\``);
    }
  assert.ok(checked > 50, `checked ${checked} paths: the scan found them`);
  assert.deepEqual(missing, []);
});

test('no tracked file refers to the shared folder outside the repository', () => {
  const needle = ['..', 'shared', ''].join('/'); // spelt so that this file does not match itself
  const binary = /\.(png|safetensors|jpg|gif|ico|wasm)$/i;
  const offenders = trackedFiles()
    .filter((f) => f !== 'package-lock.json' && !f.startsWith('node_modules/') && !binary.test(f) && existsSync(join(ROOT, f)))
    .filter((f) => read(f).includes(needle));
  assert.deepEqual(offenders, []);
});

test('the extractors skip fenced code, external links and non-paths', () => {
  const md = [
    'See [a](docs/a.md), ![img](results/x.png "title"), [web](https://example.com/x) and [here](#top).',
    'Paths: `compiler/index.ts`, `experiments/specs/`, `out/run/report.md`, `npm test`, `<run>/checkpoint.safetensors`.',
    '```',
    '[not a link](nowhere.md) `compiler/nothing.ts`',
    '```',
  ].join('\n');
  assert.deepEqual(markdownLinks(md), ['docs/a.md', 'results/x.png', 'https://example.com/x', '#top']);
  assert.deepEqual(backtickedPaths(md, new Set(['compiler', 'experiments'])), ['compiler/index.ts', 'experiments/specs/']);
});

test('the words about backends name every backend (docs/cli.md, docs/compiler.md), not gpu.js kernels alone', async () => {
  const { backendNames } = await import('../compiler/backends/names.ts');
  const cli = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8');
  const list = /take `--backend` \(([^)]*)\)/.exec(cli.replace(/\n/g, ' '));
  assert.ok(list, 'docs/cli.md lists the --backend names');
  const compiler = readFileSync(join(ROOT, 'docs', 'compiler.md'), 'utf8');
  const example = compiler.slice(compiler.indexOf('```ts'), compiler.indexOf('fd.compile(') + 200);
  for (const b of [...backendNames, 'auto']) {
    assert.ok(list[1].includes(`\`${b}\``), `docs/cli.md's --backend list lacks ${b}`);
    assert.ok(example.includes(`'${b}'`), `docs/compiler.md's compile example lacks '${b}'`);
  }
  // the compiler writes WebAssembly and WGSL too: no page may say that a plan or codegen is gpu.js kernels only
  assert.doesNotMatch(compiler, /a plan of fused gpu\.js kernels|\*\*codegen\*\* \(`compiler\/codegen\/`\): one gpu\.js kernel/);
});
