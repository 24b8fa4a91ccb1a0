// Call-site checks shared by the error tests: which line of a test file carries a tag, and the error a call throws.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The file of `moduleUrl` and a lookup of the 1-based line that ends with `// @site:<tag>`, read from the source
 * text itself, so the expected line does not depend on stack traces or source maps (the mechanism under test).
 */
export const sitesOf = (moduleUrl: string): { file: string; siteLine: (tag: string) => number } => {
  const file = fileURLToPath(moduleUrl);
  const lines = readFileSync(file, 'utf8').split('\n');
  const siteLine = (tag: string): number => {
    const hits = lines.flatMap((l, i) => (l.trimEnd().endsWith(`// @site:${tag}`) ? [i + 1] : []));
    assert.equal(hits.length, 1, `exactly one line should be tagged @site:${tag}`);
    return hits[0];
  };
  return { file, siteLine };
};

/** Runs `f`, which must throw; returns the error for further checks. */
export const caught = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    return e;
  }
  assert.fail('expected an error, none was thrown');
};
