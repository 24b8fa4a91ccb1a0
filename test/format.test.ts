// The tree's formatting: every source file is as Prettier writes it (one config, .prettierrc.json), and no line of
// code or docs is longer than 140 characters (Prettier wraps code; comments, strings and prose are wrapped by hand).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAX = 140;
const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
const formatted = tracked.filter((f) => /\.(ts|js|json|css|html)$/.test(f) && !/^(package-lock\.json|bench\/results\/)/.test(f));
const lined = [...formatted, ...tracked.filter((f) => f.endsWith('.md'))];

test(`${formatted.length} source files are formatted as Prettier writes them`, async () => {
  const options = { ...(await prettier.resolveConfig(join(ROOT, '.prettierrc.json'))) };
  const off: string[] = [];
  for (const f of formatted) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    if (!(await prettier.check(text, { ...options, filepath: f }))) off.push(f);
  }
  assert.deepEqual(off, [], `run npx prettier --write ${off.join(' ')}`);
});

test(`no line is longer than ${MAX} characters`, () => {
  const long = lined.flatMap((f) =>
    readFileSync(join(ROOT, f), 'utf8')
      .split('\n')
      .flatMap((line, i) =>
        line.length > MAX && !/^\s*\|/.test(line) && !/\]\(|https?:\/\//.test(line) ? [`${f}:${i + 1} (${line.length})`] : [],
      ),
  );
  assert.deepEqual(long, []);
});
