// The examples in the documentation are written as a user writes them: every TypeScript or JavaScript block in the
// README and the docs imports the library by its package name ('fusediff', 'fusediff/models', ...), never a file of
// this repository by a relative path, and every name it imports or reads off the namespace (`fd.adam`) is an export
// of that entry point (as the API reference, docs/api/, lists them). tsconfig.json maps the package's names to the
// same sources as package.json `exports`, so a script in the checkout resolves them as an installed package would.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { entryPoints } from '../scripts/api-docs.ts';

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'));
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as { dependencies: object; devDependencies: object };

/** The markdown a user reads: every tracked .md file except the generated reference itself. */
const pages = (): string[] =>
  execFileSync('git', ['ls-files', '-z', '*.md'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f && !f.startsWith('docs/api/') && existsSync(join(ROOT, f)));

/** The code of every ```ts / ```js (and the like) block of a markdown text. */
export const codeBlocks = (markdown: string): string[] =>
  [...markdown.matchAll(/^```(?:ts|typescript|tsx|mts|js|javascript|mjs)[ \t]*\n([\s\S]*?)^```[ \t]*$/gm)].map((m) => m[1]);

export interface ImportOf {
  readonly spec: string;
  /** names imported by name (`import { a, b as c }`: a, b), without `type` */
  readonly names: readonly string[];
  /** the local name of `import * as fd` */
  readonly namespace?: string;
}

/** The imports of a block of code: static (named, default, namespace, side effect) and dynamic. */
export const importsOf = (code: string): ImportOf[] => {
  const out: ImportOf[] = [];
  for (const m of code.matchAll(/^\s*import\s+(?:type\s+)?([^'"]*?)\s*from\s*['"]([^'"]+)['"]/gm)) {
    const clause = m[1];
    const braces = /\{([^}]*)\}/.exec(clause)?.[1] ?? '';
    const names = braces
      .split(',')
      .map((n) => n.trim().replace(/^type\s+/, ''))
      .filter(Boolean)
      .map((n) => n.split(/\s+as\s+/)[0]);
    out.push({ spec: m[2], names, namespace: /\*\s*as\s+(\w+)/.exec(clause)?.[1] });
  }
  for (const m of code.matchAll(/^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm))
    out.push({ spec: m[1] ?? m[2], names: [] });
  return out;
};

/** The exports of each public entry point, by package specifier, as the API reference lists them. */
const publicExports = (): Map<string, Set<string>> =>
  new Map(entryPoints().map((e) => [e.specifier, new Set([...read(e.page).matchAll(/^### (\S+)$/gm)].map((m) => m[1]))]));

/** What is wrong with the imports of one block: relative imports of repository files, unknown specifiers or names. */
export const importProblems = (code: string, exportsBySpec: ReadonlyMap<string, ReadonlySet<string>>, page = 'README.md'): string[] => {
  const problems: string[] = [];
  const deps = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)]);
  for (const { spec, names, namespace } of importsOf(code)) {
    if (spec.startsWith('.')) {
      // a user's own module ('./my-step.ts') is fine; a file of this repository is not what a user imports
      const fromRoot = relative(ROOT, join(ROOT, spec));
      const fromPage = relative(ROOT, join(ROOT, dirname(page), spec));
      if ([fromRoot, fromPage].some((p) => !p.startsWith('..') && existsSync(join(ROOT, p))))
        problems.push(`'${spec}' is a file of this repository: import it from the package ('fusediff', 'fusediff/models', ...)`);
      continue;
    }
    if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
    const exported = exportsBySpec.get(spec);
    if (!exported) {
      const root = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      if (root === 'fusediff') problems.push(`'${spec}' is not an entry point of the package (${[...exportsBySpec.keys()].join(', ')})`);
      else if (!deps.has(root)) problems.push(`'${spec}' is not a dependency of the package`);
      continue;
    }
    for (const n of names) if (n !== 'default' && !exported.has(n)) problems.push(`'${spec}' does not export ${n}`);
    if (namespace)
      for (const m of code.matchAll(new RegExp(`\\b${namespace}\\.(\\w+)`, 'g')))
        if (!exported.has(m[1])) problems.push(`'${spec}' does not export ${m[1]} (${namespace}.${m[1]})`);
  }
  return [...new Set(problems)];
};

test('every example in the README and the docs imports the package by name, and only names it exports', () => {
  const exportsBySpec = publicExports();
  const problems: string[] = [];
  let blocks = 0;
  let imports = 0;
  for (const page of pages())
    for (const code of codeBlocks(read(page))) {
      blocks++;
      imports += importsOf(code).length;
      problems.push(...importProblems(code, exportsBySpec, page).map((p) => `${page}: ${p}`));
    }
  assert.ok(blocks >= 6 && imports >= 8, `read ${blocks} code blocks with ${imports} imports: the scan found the examples`);
  assert.deepEqual(problems, []);
});

test('the checker refuses the old forms: a repository file by path, an entry point that does not exist, a name not exported', () => {
  const exportsBySpec = publicExports();
  const code = [
    "import * as fd from './index.ts';",
    "import { adam } from './dsl/optim.ts';",
    "import makeStep from './my-step.ts';",
    "import { cosineSchedule, nothing } from 'fusediff/models';",
    "import type { Tensor } from 'fusediff';",
    "import { compile } from 'fusediff/compiler';",
    "import * as fd2 from 'fusediff';",
    'fd2.tanh(fd2.adam); fd2.notAnExport;',
  ].join('\n');
  assert.deepEqual(importProblems(code, exportsBySpec), [
    "'./index.ts' is a file of this repository: import it from the package ('fusediff', 'fusediff/models', ...)",
    "'./dsl/optim.ts' is a file of this repository: import it from the package ('fusediff', 'fusediff/models', ...)",
    "'fusediff/models' does not export nothing",
    "'fusediff/compiler' is not an entry point of the package (fusediff, fusediff/models, fusediff/objectives, fusediff/storage)",
    "'fusediff' does not export notAnExport (fd2.notAnExport)",
  ]);
});

test("tsconfig.json maps the package's names to the sources of package.json exports (a script in the checkout imports them)", () => {
  const tsconfig = JSON.parse(read('tsconfig.json')) as { compilerOptions: { paths?: Record<string, string[]> } };
  const expected = Object.fromEntries(entryPoints().map((e) => [e.specifier, [`./${e.source}`]]));
  assert.deepEqual(tsconfig.compilerOptions.paths, expected);
});
